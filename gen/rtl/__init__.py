"""RTL emission: render the parametric kernels in rtl_templates/ for one layer each (see gen/rtl/common.py)."""

from .common import Port, Rendered, Stream
from .mvu import mvu_matrix, mvu_weight_words, render_mvu
from .requant import RequantSpec

__all__ = ["Port", "Rendered", "Stream", "RequantSpec", "mvu_matrix", "mvu_weight_words", "render_mvu"]
