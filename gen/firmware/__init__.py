"""Firmware for the Zynq system, per design: OUT/firmware/.

    kernel/     Linux driver (misc device /dev/<design>, dmaengine client of the AXI DMA): Kbuild, Makefile
    overlay/    device-tree overlay (.dtso): bitstream, AXI DMA node, accelerator node
    include/    accel_regs.h (gen/shell/regmap.py), accel_proto.h (protocol.py), accel_design.h, accel_uapi.h
    libaccel/   C library + Python ctypes wrapper (accel.py)
    server/     inference server for the board (TCP, links libaccel)
    host/       client for the STM32MP1 host (accel_client.py, accel_proto.py), PROTOCOL.md
    Makefile    libaccel, server (cc -Wall -Werror)

The C and Python sources are the same for every design (gen/firmware/src/, package data); what
differs per design is generated here into headers and data modules from regmap.py, protocol.py and spec.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2

from ..shell import regmap
from ..vendor.system import FCLK0_DT_CLOCK, design_clock_mhz, fclk0, system
from . import inputs, protocol
from .spec import Spec, make_spec, output_description

__all__ = ["write_firmware", "make_spec", "Spec", "SOURCES"]

SOURCES = Path(__file__).resolve().parent / "src"   # the design-independent sources (package data)
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

# (source under gen/firmware/src/, destination under OUT/firmware/)
_COPIES = (("kernel/accel_drv.c", "kernel/accel_drv.c"), ("kernel/accel_dma.c", "kernel/accel_dma.c"),
           ("kernel/accel_dma.h", "kernel/accel_dma.h"), ("kernel/accel_clock.h", "kernel/accel_clock.h"),
           ("include/accel_uapi.h", "include/accel_uapi.h"),
           ("include/accel_uapi.h", "kernel/accel_uapi.h"), ("libaccel/libaccel.c", "libaccel/libaccel.c"),
           ("libaccel/libaccel.h", "libaccel/libaccel.h"),
           ("libaccel/le32.h", "libaccel/le32.h"), ("libaccel/accel.py", "libaccel/accel.py"),
           ("server/accel_server.c", "server/accel_server.c"), ("host/accel_client.py", "host/accel_client.py"),
           ("host/g85grid.py", "host/g85grid.py"))


def _mask(names) -> int:
    return sum(1 << (regmap.REG[n].offset // 4) for n in names)


def _readable() -> list[str]:
    return [r.name for r in regmap.REGISTERS if r.access in ("ro", "rw", "w1c", "const")]


def _writable() -> list[str]:
    # CFG_* stay behind the atomic ACCEL_IOC_WRITE_WEIGHT; user space may reset, clear errors and ack errors
    return [r.name for r in regmap.REGISTERS if r.access in ("wo", "w1c") and not r.name.startswith("CFG_")]


def write_firmware(out_dir, design, board: dict, *, runtime_weights: bool | None = None,
                   design_hash: int | None = None, input_kind: str | None = None, **opts) -> Path:
    """Write OUT/firmware/ for `design` on `board`; returns the folder. `design_hash`: the DESIGN_HASH the
    emitted RTL carries (default: computed as gen/rtl/emit.py does). `input_kind`: what the input files mean
    (gen/firmware/inputs.py syntax; default: the design's input_contract, else `tensor`)."""
    spec = make_spec(design, board, runtime_weights=runtime_weights, design_hash=design_hash)
    contract = inputs.parse_input_kind(input_kind) if input_kind is not None else \
        (design.input_contract or inputs.input_contract(None))
    host_input = inputs.host_description(design, contract)   # validates the kind against the input tensor
    sysmap = system(board)
    root = Path(out_dir) / "firmware"
    for sub in ("kernel", "overlay", "include", "libaccel", "server", "host"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for src, dst in _COPIES:
        shutil.copyfile(SOURCES / src, root / dst)

    regs_h = regmap.c_header("ACCEL", spec.constants())
    design_h = _env.get_template("accel_design.h.j2").render(
        spec=spec, readable=_readable(), writable=_writable(), readable_mask=_mask(_readable()),
        writable_mask=_mask(_writable()), input_kind=contract["spec"])
    for d in ("include", "kernel"):   # the kernel build sees only kernel/
        (root / d / "accel_regs.h").write_text(regs_h)
        (root / d / "accel_design.h").write_text(design_h)
    (root / "include" / "accel_proto.h").write_text(protocol.c_header())
    (root / "kernel" / "Kbuild").write_text(_env.get_template("Kbuild.j2").render(spec=spec))
    (root / "kernel" / "Makefile").write_text(_env.get_template("kernel_Makefile.j2").render(spec=spec))
    (root / "overlay" / f"{spec.name}.dtso").write_text(_env.get_template("overlay.dtso.j2").render(
        spec=spec, sys=sysmap, board_description=board.get("description", board.get("name", "")),
        fclk=FCLK0_DT_CLOCK, fclk_hz=fclk0(design_clock_mhz(design, board)).hz,
        irq_mm2s=sysmap.irq_dt(0), irq_s2mm=sysmap.irq_dt(1), irq_accel=sysmap.irq_dt(2)))
    (root / "Makefile").write_text(_env.get_template("user_Makefile.j2").render(spec=spec))

    host_constants = dict(spec.constants(), name=spec.name, runtime_weights=list(spec.runtime_weights),
                          input=host_input, output=output_description(design))
    proto_py = protocol.python_module(host_constants)
    (root / "host" / "accel_proto.py").write_text(proto_py)
    (root / "libaccel" / "accel_proto.py").write_text(proto_py)
    (root / "host" / "PROTOCOL.md").write_text(protocol.markdown())
    (root / "README.md").write_text(_env.get_template("README.md.j2").render(
        spec=spec, sys=sysmap, board=board, protocol=protocol, regtable=regmap.markdown_table(),
        input_kind=contract["spec"], input_meaning=inputs.describe(contract), output=output_description(design),
        input_formats="\n".join(f"- {f}" for f in inputs.file_formats(contract))))
    return root
