"""Xilinx 7-series LUT primitives for tables the generator knows better than synthesis does.

A LUT6 site computes one function of six inputs or, as LUT6_2 with I5 tied to 1, two functions of the same
five inputs (O5 reads INIT[31:0], O6 reads INIT[63:32]). Vivado packs two such 5-input functions into one site
by itself; Yosys' synth_xilinx never does, and neither can see that a ROM column of 24 words and its neighbour
share their address inputs once they are mixed into other logic. So where the mvu holds constant tables of
known shape - weights folded into its first-stage sums, shallow weight ROMs - it instantiates the primitives
itself, with INIT computed here. Vivado takes them from its unisim library, Yosys from its cell library, and
Verilator (simulation and lint) from gen/sim/xilinx_prims.v, a model with the same INIT semantics.

The emitters write generate loops over units (a group of lanes, a pair of ROM columns) whose INITs come from
localparams, at most 1024 LUTs each (Verilator's widest literal is 65,536 bits).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LUTS_PER_PARAM = 1024  # 1024 x 64 = 65,536 bits, Verilator's literal limit


@dataclass
class LutSpec:
    """One LUT of a unit: its input nets (Verilog text, may use the genvar `g`; I0 first; at most 6, or 5 when
    dual) and its output nets (one: LUT6 O; two: LUT6_2 O5, O6)."""
    ins: list[str]
    outs: list[str]

    @property
    def dual(self) -> bool:
        return len(self.outs) == 2


def bit_column(values, b: int) -> int:
    """The integer whose bit x is bit b of values[x]: a LUT's INIT for output bit b of a table, or a ROM column."""
    return sum(((int(v) >> b) & 1) << x for x, v in enumerate(values))


def luts_for(bits: int, inputs: int) -> int:
    """LUT sites for a `bits`-wide function of `inputs` inputs: two output bits per site up to five inputs."""
    assert inputs <= 6
    return (bits + 1) // 2 if inputs <= 5 else bits


def inits_for(table: list[int], inputs: int, bits: int) -> list[int]:
    """INIT words of the LUTs computing `table` (value of each input pattern, 2**inputs entries, lane order as in
    LutSpec.ins; only the low `bits` bits matter): per LUT6_2 output bits (2j, 2j + 1) in (O5, O6); with six
    inputs, or a last odd bit, one LUT6 per bit."""
    assert len(table) == 1 << inputs and inputs <= 6
    out = []
    if inputs <= 5:
        for j in range(0, bits, 2):
            lo = bit_column(table, j)
            if j + 1 < bits:
                hi = bit_column(table, j + 1)
                out.append(lo | (hi << 32))
            else:
                out.append(lo | (lo << 32))  # a single function: LUT6 with I5 tied to 0 reads INIT[31:0]
    else:
        for j in range(bits):
            out.append(bit_column(table, j))
    return out


def specs_for(ins: list[str], bits: int, out: str) -> list[LutSpec]:
    """The LutSpecs matching inits_for(): output bit b goes to `out.format(b=b)`."""
    n = len(ins)
    assert n <= 6
    specs = []
    if n <= 5:
        for j in range(0, bits, 2):
            outs = [out.format(b=j)] + ([out.format(b=j + 1)] if j + 1 < bits else [])
            specs.append(LutSpec(ins, outs))
    else:
        specs = [LutSpec(ins, [out.format(b=j)]) for j in range(bits)]
    return specs


def _instance(spec: LutSpec, init: str, inst: str, indent: str) -> str:
    pins = list(spec.ins)
    if spec.dual:
        pins = pins + ["1'b0"] * (5 - len(pins)) + ["1'b1"]
        outs = f".O5({spec.outs[0]}), .O6({spec.outs[1]})"
        prim = "LUT6_2"
    else:
        pins = pins + ["1'b0"] * (6 - len(pins))
        outs = f".O({spec.outs[0]})"
        prim = "LUT6"
    conn = ", ".join(f".I{i}({p})" for i, p in enumerate(pins))
    return f"{indent}{prim} #(.INIT({init})) {inst} ({conn}, {outs});"


def bank(name: str, start: int, inits: list[list[int]], specs: list[LutSpec], indent: str = "  ") -> str:
    """Verilog for units g = start .. start + len(inits) - 1, each the LUTs `specs` (nets may use genvar `g`)
    with INITs inits[g - start][j]: localparams NAME_<chunk> and one generate loop per chunk."""
    per = len(specs)
    assert per and all(len(u) == per for u in inits)
    step = max(1, MAX_LUTS_PER_PARAM // per)
    lines = []
    for c0 in range(0, len(inits), step):
        chunk = inits[c0:c0 + step]
        pname = f"{name.upper()}_{start + c0}"
        bits = len(chunk) * per * 64
        val = 0
        for u, words in enumerate(chunk):
            for j, w in enumerate(words):
                val |= (w & ((1 << 64) - 1)) << ((u * per + j) * 64)
        lines.append(f"{indent}localparam logic [{bits - 1}:0] {pname} = {bits}'h{val:x};")
        g0, g1 = start + c0, start + c0 + len(chunk)
        lines.append(f"{indent}for (genvar g = {g0}; g < {g1}; g++) begin : g_{name}_{g0}")
        for j, s in enumerate(specs):
            init = f"{pname}[((g - {g0}) * {per} + {j}) * 64 +: 64]"
            lines.append(_instance(s, init, f"u{j}", indent + "  "))
        lines.append(f"{indent}end")
    return "\n".join(lines)
