"""The static RTL library: hand-written, parametric SystemVerilog modules, one module per file `<module>.sv`, in
the style of verilog-axis / FINN's finn-rtllib. Each documents its #(...) parameters in its header comment,
checks them at elaboration time ($error naming the bad value) and is linted and simulated over many parameter
sets (tests/test_kernel_*.py, tests/test_rtllib.py).

Generated designs instantiate these modules with named parameters (gen/rtl/emit.py); every module a design uses
is copied into its rtl/ folder and listed in rtl/filelist.f. The files ship inside the package (package data),
read through importlib.resources.

| module | what | parameters |
|---|---|---|
| gen_fifo | AXI-Stream FIFO: SRL shift registers, or a memory (registers / LUTRAM / BRAM) + output queue; \
DEPTH 0 wires through | WIDTH, DEPTH, STYLE, RAM_STYLE |
| gen_dwc | width converter: gather, split or shift buffer | IN_SIMD, OUT_SIMD, A_BITS, N_ELEMS |
| gen_axis_fork | broadcast of one stream to N consumers | N, WIDTH |
| gen_upsample | nearest-neighbour upsampling (one row buffered) | IFM_CH, SIMD, A_BITS, IFM_DIM_H/W, FACTOR_H/W, \
RAM_STYLE |
| gen_concat | channel concatenation of two streams | CH_A, CH_B, SIMD, A_BITS, NUM_PIX |
"""

from __future__ import annotations

import functools
from importlib import resources

MODULES = ("gen_fifo", "gen_dwc", "gen_axis_fork", "gen_upsample", "gen_concat")


@functools.cache
def source(module: str) -> str:
    """The SystemVerilog text of library module `module` (file `<module>.sv` of this package)."""
    if module not in MODULES:
        raise KeyError(f"no RTL library module {module!r} (have: {', '.join(MODULES)})")
    return resources.files(__name__).joinpath(f"{module}.sv").read_text()


def sources(modules) -> dict[str, str]:
    """file name -> text of the given library modules, in a fixed order (the order of MODULES)."""
    want = set(modules)
    unknown = want - set(MODULES)
    if unknown:
        raise KeyError(f"no RTL library module(s) {sorted(unknown)}")
    return {f"{m}.sv": source(m) for m in MODULES if m in want}
