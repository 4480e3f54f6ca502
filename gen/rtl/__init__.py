"""RTL emission: render the parametric kernels in gen/rtl/templates/ for one layer each.

Every render function takes the layer name first and the IR's parameters as keyword arguments, and returns a
`Rendered` (SystemVerilog text of one self-contained module `<kernel>_<layer>`, its .mem files, ports, streams,
parameters and the analytic cycles per frame). See gen/rtl/templates/README.md for the kernel list and conventions.
"""

from .chain import render_chain
from .common import Port, Rendered, Stream
from .elementwise import (
                          render_add,
                          render_concat,
                          render_dwc,
                          render_fifo,
                          render_label_select,
                          render_lut_act,
                          render_requant,
                          render_upsample,
)
from .mvu import mvu_matrix, mvu_weight_words, render_mvu
from .pool import render_pool
from .requant import RequantSpec
from .swg import render_swg, swg_geometry

__all__ = ["Port", "Rendered", "Stream", "RequantSpec", "mvu_matrix", "mvu_weight_words", "render_mvu",
           "render_swg", "swg_geometry", "render_pool", "render_add", "render_concat", "render_upsample",
           "render_dwc", "render_fifo", "render_label_select", "render_lut_act", "render_requant", "render_chain"]
