"""Vivado flow for the Zynq system around the accelerator: OUT/vivado/build.tcl and its Makefile.

`write_vivado(out_dir, design, board)` renders templates/build.tcl.j2 from the board YAML (part, board part,
clock, DMA width, address map, PS7 fallback settings) and gen/shell/regmap.py (the accelerator's top module).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jinja2

from ..rtl.mvu import MEM_FLAT_DEFINE
from ..shell import regmap
from .system import ACCEL, DMA, IRQS, PS7, System, c_name, design_clock_mhz, fclk0, system, tcl_mhz

__all__ = ["write_vivado", "render_build_tcl", "System", "system", "fclk0", "design_clock_mhz"]

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render_build_tcl(design, board: dict) -> str:
    clk = fclk0(design_clock_mhz(design, board))   # the design's clock, not the board's default
    return _env.get_template("build.tcl.j2").render(
        name=c_name(design.name), board_name=board.get("name", "?"), board_description=board.get("description", ""),
        sys=dataclasses.replace(system(board), clock_mhz=clk.mhz), fclk=clk, mhz=tcl_mhz(clk.mhz),
        top=regmap.TOP_MODULE, irqs=IRQS, cells={"ps7": PS7, "dma": DMA, "accel": ACCEL},
        mem_define=MEM_FLAT_DEFINE, image_irqs=board.get("image_irqs") or [])


def write_vivado(out_dir, design, board: dict, **opts) -> Path:
    """Write OUT/vivado/ (build.tcl, Makefile); returns the folder. `opts` is accepted for symmetry."""
    d = Path(out_dir) / "vivado"
    d.mkdir(parents=True, exist_ok=True)
    (d / "build.tcl").write_text(render_build_tcl(design, board))
    (d / "Makefile").write_text(_env.get_template("Makefile.j2").render(name=c_name(design.name)))
    return d
