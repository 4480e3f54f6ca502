"""Shared helpers for rendering the kernel templates in rtl_templates/.

Every kernel is rendered into one self-contained SystemVerilog module per layer (module name
``<kernel>_<layer>``). Structural parameters (PE, SIMD, bit widths, ...) are baked in at render time and
listed as localparams with the IR's names; per-layer constants (weights, thresholds, ...) go into `.mem`
files (weights: loaded with $readmemh, optionally writable at run time) or into case-ROM functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "rtl_templates"

_env: jinja2.Environment | None = None


def env() -> jinja2.Environment:
    global _env
    if _env is None:
        _env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
        _env.globals.update(clog2=clog2, hexw=hexw, shex=shex, max=max, min=min, enumerate=enumerate, len=len)
    return _env


def render_template(template: str, **ctx) -> str:
    text = env().get_template(template).render(**ctx)
    # collapse runs of blank lines left behind by template conditionals
    out, blank = [], 0
    for line in text.splitlines():
        if line.strip():
            blank = 0
            out.append(line.rstrip())
        else:
            blank += 1
            if blank < 2:
                out.append("")
    return "\n".join(out).strip() + "\n"


# ------------------------------------------------------------------------------------------------ widths

def clog2(n: int) -> int:
    """ceil(log2(n)), at least 0."""
    n = int(n)
    return 0 if n <= 1 else (n - 1).bit_length()


def ubits(n: int) -> int:
    """Bits to hold an unsigned counter value 0..n (at least 1)."""
    return max(1, int(n).bit_length())


def sbits(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer of [lo, hi] (at least 1)."""
    lo, hi = int(lo), int(hi)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def bits_for(lo: int, hi: int) -> tuple[int, bool]:
    """(width, signed) of the cheapest encoding of [lo, hi]: unsigned when lo >= 0."""
    if lo >= 0:
        return ubits(hi), False
    return sbits(lo, hi), True


def value_range(bits: int, signed: bool, bipolar: bool = False) -> tuple[int, int]:
    if bipolar:
        return -1, 1
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def hexw(value: int, width: int) -> str:
    """SystemVerilog sized hex literal of a (possibly negative) value in `width` bits."""
    return f"{width}'h{int(value) & ((1 << width) - 1):x}"


def shex(value: int, width: int) -> str:
    """Signed sized literal of a (possibly negative) value."""
    return f"$signed({hexw(value, width)})"


# ------------------------------------------------------------------------------------------------ packing

def encode(values, bits: int, bipolar: bool = False) -> np.ndarray:
    """Integer values -> raw element codes (two's complement in `bits`; bipolar: +1 -> 1, -1 -> 0)."""
    v = np.asarray(values, dtype=np.int64)
    if bipolar:
        return (v > 0).astype(np.int64)
    return v & ((1 << bits) - 1)


def decode(raw, bits: int, signed: bool, bipolar: bool = False) -> np.ndarray:
    r = np.asarray(raw, dtype=np.int64) & ((1 << bits) - 1)
    if bipolar:
        return np.where(r & 1, 1, -1).astype(np.int64)
    if signed:
        return np.where(r >= (1 << (bits - 1)), r - (1 << bits), r)
    return r


def pack_words(lanes: np.ndarray, bits: int) -> list[int]:
    """(N, L) raw lane codes -> N integers, lane i at bits [i*bits +: bits]."""
    lanes = np.asarray(lanes, dtype=np.int64)
    words = []
    for row in lanes.reshape(lanes.shape[0], -1):
        w = 0
        for i, x in enumerate(row.tolist()):
            w |= (int(x) & ((1 << bits) - 1)) << (i * bits)
        words.append(w)
    return words


def mem_text(words: list[int], width: int) -> str:
    """$readmemh content, one word per line."""
    nd = max(1, (width + 3) // 4)
    return "".join(f"{w:0{nd}x}\n" for w in words)


# ------------------------------------------------------------------------------------------------ results

@dataclass
class Port:
    name: str
    direction: str  # "input" | "output"
    width: int


@dataclass
class Stream:
    """An AXI-Stream port group: `prefix`_tdata carries `lanes` elements of `bits` bits each."""
    prefix: str
    direction: str  # "in" | "out"
    lanes: int
    bits: int


@dataclass
class Rendered:
    """A rendered kernel: SystemVerilog text plus the .mem files it loads."""
    kernel: str
    name: str                      # module name
    sv: str
    mem_files: dict[str, str] = field(default_factory=dict)  # file name -> content
    ports: list[Port] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    cycles_per_frame: int = 0      # analytic, without back-pressure (steady state)
    extra: dict = field(default_factory=dict)  # kernel-specific facts (latency, widths, ...)

    def write(self, outdir: str | Path) -> list[Path]:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        paths = [outdir / f"{self.name}.sv"]
        paths[0].write_text(self.sv)
        for fname, text in self.mem_files.items():
            p = outdir / fname
            p.write_text(text)
            paths.append(p)
        return paths


def axis_ports(prefix: str, direction: str, width: int) -> list[Port]:
    i, o = ("input", "output") if direction == "in" else ("output", "input")
    return [Port(f"{prefix}_tdata", i, width), Port(f"{prefix}_tvalid", i, 1), Port(f"{prefix}_tready", o, 1),
            Port(f"{prefix}_tlast", i, 1)]


def header(kernel: str, name: str, layer: str, params: dict, extra: str = "") -> str:
    lines = [f"{name}: {kernel} kernel generated by gen/rtl for layer '{layer}'.",
             "Parameters / folding: " + ", ".join(f"{k}={v}" for k, v in params.items())]
    if extra:
        lines.append(extra)
    return "\n".join("// " + ln for ln in lines)


def module_name(kernel: str, layer: str) -> str:
    safe = "".join(c if (c.isalnum() or c == "_") else "_" for c in str(layer))
    if not safe or not (safe[0].isalpha() or safe[0] == "_"):
        safe = "l" + safe
    return f"{kernel}_{safe}"


def ram_style_for(bits: int, depth: int, style: str = "auto", rom: bool = False) -> str:
    """Memory style by size (UG901 attribute values): registers for tiny memories, distributed (LUTRAM) for shallow
    or small ones, block RAM beyond. A constant table (ROM) goes to block RAM sooner: LUT ROMs cost more LUTs per
    bit than LUTRAM. On the xc7z020 one RAMB18 (18 kbit) is worth roughly 190 of its 53k LUTs."""
    if style != "auto":
        return style
    if depth <= 2 or bits <= 64:
        return "registers"
    if depth <= 64 or bits <= (1024 if rom else 8192):
        return "distributed"
    return "block"


def pow2_at_least(n: int) -> int:
    return 1 << clog2(max(1, n))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def gcd(a: int, b: int) -> int:
    return math.gcd(a, b)
