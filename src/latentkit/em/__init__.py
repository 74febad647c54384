"""The EM engine (DESIGN section 3), in three layers:

- `contract` — what a family supplies: pure init / E-step / M-step functions (`EMFamily`),
  its statistics (`SufficientStats`) and what an M-step reports (`StepInfo`);
- `sources` — where the data comes from (in memory, memory-mapped `.npy`, iterators of
  chunks, scipy.sparse row blocks) and the map-reduce seam of the E-step;
- `loop` — iterations, guards, restarts, online EM; `callbacks` — what a running fit
  reports (callbacks, Checkpoint, the progress bar).
"""

from .callbacks import Checkpoint, EMIteration, progress_bar
from .contract import (
    BOUND,
    EXACT,
    NOTHING,
    ConvergenceWarning,
    EMFamily,
    ReseedWarning,
    StepInfo,
    SufficientStats,
)
from .loop import (
    ChunkResult,
    EMResult,
    Iterate,
    OnlineState,
    better_iterate,
    e_pass,
    fit_em,
    monotone_tolerance,
    online_em_step,
    returned_iterate,
    run_em,
)
from .online import fit_online
from .sources import (
    ArraySource,
    ChunkSource,
    IterableSource,
    MappedPages,
    SparseSource,
    as_source,
    auto_chunk_rows,
    is_dask,
    is_streaming,
    num_threads,
    threaded_map,
)

__all__ = [
    "BOUND", "EXACT", "NOTHING", "ArraySource", "Checkpoint", "ChunkResult", "ChunkSource",
    "ConvergenceWarning", "EMFamily", "EMIteration", "EMResult", "IterableSource", "Iterate",
    "MappedPages", "OnlineState", "ReseedWarning", "SparseSource", "StepInfo",
    "SufficientStats", "as_source", "auto_chunk_rows", "better_iterate", "e_pass", "fit_em",
    "fit_online", "is_dask", "is_streaming", "monotone_tolerance", "num_threads",
    "online_em_step", "progress_bar", "returned_iterate", "run_em", "threaded_map",
]
