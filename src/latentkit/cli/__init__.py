"""The `latentkit` command line: `latentkit fit | evaluate | sample | impute | report | demo`.

`main(argv)` runs it in-process and returns the exit status; `cli.models.REGISTRY` names the
models it knows, `cli.report` builds the HTML pages and `cli.demo.SECTIONS` lists the demo.
"""

from .main import main

__all__ = ["main"]
