"""`latentkit demo`: every model family fitted to real bundled data, as one HTML report.

The sections come from the registry: each `ModelSpec` with a `demo` contributes its
family's section, a function `(out_dir, progress, *, quick=False) -> Section` that fits its
models, writes its figures under out_dir/<section>/ and returns the report Section; `quick`
shrinks the data and iteration counts so the whole demo runs in seconds (tests). A section
whose dataset is absent says so (`missing_note`) and falls back to data bundled with
scikit-learn, so the demo never fails for want of files.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .report import Report


@dataclass
class Progress:
    """Where the demo reports what it is doing: step lines on stderr, and progress bars
    (the models' `verbose`) when stderr is a terminal."""

    enabled: bool = True

    def step(self, message: str) -> None:
        if self.enabled:
            print(message, file=sys.stderr, flush=True)

    @property
    def verbose(self) -> int:
        return int(self.enabled and sys.stderr.isatty())


def missing_note(error: Exception, fallback: str) -> str:
    """The note a section shows when its dataset is absent and it uses `fallback`."""
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (f"Note: the dataset was not found ({first}); this section uses {fallback} "
            f"instead. See shared/data/SOURCES.md, or set LATENTKIT_DATA.")


def sections() -> list:
    """The demo's sections, in registration order: each registered spec's `demo`."""
    from latentkit.registry import registered_specs

    found = []
    for spec in registered_specs().values():
        if spec.demo is not None and spec.demo not in found:
            found.append(spec.demo)
    return found


def run_demo(out_dir, *, quick: bool = False, progress: Progress | None = None,
             only=None) -> Path:
    """Run every section (`only`: these sections instead of `sections()`) and write
    out_dir/index.html; returns its path."""
    progress = progress or Progress()
    chosen = sections() if only is None else list(only)
    report = Report("latentkit demo", intro=(
        "Latent variable models fitted to real data by `latentkit demo`"
        + (" (quick mode: small subsets)." if quick else ".")))
    total = time.perf_counter()
    for index, section in enumerate(chosen, 1):
        summary = (section.__doc__ or section.__name__).strip().splitlines()[0]
        progress.step(f"[{index}/{len(chosen)}] {summary}")
        start = time.perf_counter()
        report.add(section(out_dir, progress, quick=quick))
        progress.step(f"      done in {time.perf_counter() - start:.1f} s")
    path = report.write(out_dir)
    progress.step(f"demo finished in {time.perf_counter() - total:.1f} s")
    return path
