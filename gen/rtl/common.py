"""Shared helpers for rendering the kernel templates in gen/rtl/templates/ and instantiating the static RTL library.

Kernels whose logic depends on the layer's data (mvu, swg, pool, add, requant, lut_act, label_select) are
rendered into one self-contained SystemVerilog module per layer (module name ``<kernel>_<layer>``): structural
parameters (PE, SIMD, bit widths, ...) are baked in at render time and listed as localparams with the IR's
names; per-layer constants (weights, thresholds, ...) go into `.mem` files (weights: loaded with $readmemh,
optionally writable at run time) or into case-ROM functions.
The others (fifo, dwc, fork, upsample, concat) are static modules of the RTL library gen/rtl/lib: their
`Rendered` names the library module and its named parameters (`module`, `inst_params`, `lib`), which a design's
top instantiates directly; its `sv` is only a thin standalone wrapper module `name` (`lib_kernel`) for
simulating, linting or synthesizing one instance on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"   # package data

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
    lib: tuple = ()                # library modules (gen/rtl/lib) that `sv` needs
    module: str = ""               # the library module a design instantiates for this kernel ("": module `name`)
    inst_params: dict = field(default_factory=dict)  # that instantiation's named parameters

    def sources(self) -> dict[str, str]:
        """file name -> SystemVerilog text that elaborates module `name` on its own: the library modules it
        needs, then `sv` (last)."""
        from .lib import sources as lib_sources
        out = lib_sources(self.lib) if self.lib else {}
        out[f"{self.name}.sv"] = self.sv
        return out

    def write(self, outdir: str | Path) -> list[Path]:
        """Write sources() and the .mem files into `outdir`; returns the paths, `<name>.sv` first."""
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        paths = [outdir / f"{self.name}.sv"]
        for fname, text in self.sources().items():
            (outdir / fname).write_text(text)
            if fname != paths[0].name:
                paths.append(outdir / fname)
        for fname, text in self.mem_files.items():
            p = outdir / fname
            p.write_text(text)
            paths.append(p)
        return paths


def axis_ports(prefix: str, direction: str, width: int) -> list[Port]:
    i, o = ("input", "output") if direction == "in" else ("output", "input")
    return [Port(f"{prefix}_tdata", i, width), Port(f"{prefix}_tvalid", i, 1), Port(f"{prefix}_tready", o, 1),
            Port(f"{prefix}_tlast", i, 1)]


def sv_param(value) -> str:
    """A parameter value as SystemVerilog: integers in decimal, strings quoted."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"parameter value {value!r}: only integers and strings")
    return str(int(value))


def instance(module: str, iname: str, params: dict, conns: list[tuple[str, str]], indent: str = "  ") -> str:
    """`module #(.P(v), ...) iname (.port(expr), ...);` with named parameters and ports."""
    ps = ""
    if params:
        ps = f" #(\n{indent}  " + f",\n{indent}  ".join(f".{k}({sv_param(v)})" for k, v in params.items()) + \
            f"\n{indent})"
    return f"{indent}{module}{ps} {iname} (\n{indent}  " + \
        f",\n{indent}  ".join(f".{p}({s})" for p, s in conns) + f"\n{indent});"


def lib_kernel(kernel: str, name: str, module: str, inst_params: dict, ports: list[Port], streams: list[Stream],
               params: dict, *, layer: str = "", note: str = "", conns: dict[str, str] | None = None,
               lib_ports: list[str] | None = None, **kw) -> Rendered:
    """A kernel built from library module `module` (gen/rtl/lib) with the named parameters `inst_params`.
    Its `sv` is a standalone wrapper module `name` with `ports` around one instance (for simulating, linting or
    synthesizing the instance on its own); `conns` maps a library port to the wrapper expression driving it
    (default: the wrapper port of the same name; `lib_ports` lists the library's ports when they differ)."""
    from .lib import MODULES
    assert module in MODULES, module
    conns = dict(conns or {})
    names = lib_ports or [p.name for p in ports]
    decl = [f"  {p.direction:<6} logic {f'[{p.width - 1}:0] ' if p.width > 1 else ''}{p.name}" for p in ports]
    lines = [header(kernel, name, layer or name, params, note),
             f"// Standalone wrapper of the library module {module} (gen/rtl/lib/{module}.sv); a generated design",
             f"// instantiates {module} directly with these parameters.",
             f"module {name} (", ",\n".join(decl), ");",
             instance(module, "u", inst_params, [(n, conns.get(n, n)) for n in names]), "endmodule", ""]
    return Rendered(kernel, name, "\n".join(lines), {}, ports, streams, params, lib=(module,), module=module,
                    inst_params=dict(inst_params), **kw)


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
