"""Folding (PE/SIMD per hardware node), FIFO sizing and the analytic resource model.

- `resources`: LUT / FF / BRAM18 / DSP of each kernel as a function of its parameters, calibrated against Yosys.
- `fold`: `fold_design(...)` chooses PE/SIMD per node for a target fps or the board's resources.
- `fifo`: FIFO depths between nodes (rate / burst analysis; fork/join skew).
"""

from .fifo import size_fifos  # noqa: E402
from .fold import META, fold_design, fold_summary, read_fold_file, strip_meta  # noqa: E402

__all__ = ["META", "fold_design", "fold_summary", "read_fold_file", "strip_meta", "size_fifos"]
