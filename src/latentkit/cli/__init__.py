"""The `latentkit` command line: `latentkit fit | evaluate | sample | impute | report | demo`.

`main(argv)` runs it in-process and returns the exit status. It is orchestration over
`latentkit.registry` (the models, their options, figures and demo sections): `commands`
does the work of each subcommand, `data` reads DATA, `report` builds the HTML pages and
`demo` runs the demo sections.
"""

from .main import main

__all__ = ["main"]
