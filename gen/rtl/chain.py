"""Chains of single-input kernels: stage i's m_axis feeds stage i+1's s_axis (e.g. swg -> mvu, swg -> pool)."""

from __future__ import annotations

from .common import Port, Rendered, Stream, axis_ports, header, module_name


def render_chain(layer: str, stages: list[Rendered]) -> Rendered:
    """One module wiring `stages` in sequence; its text also carries the stages' modules (and .mem files)."""
    for a, b in zip(stages, stages[1:]):
        wa = next(p.width for p in a.ports if p.name == "m_axis_tdata")
        wb = next(p.width for p in b.ports if p.name == "s_axis_tdata")
        assert wa == wb, f"{a.name} -> {b.name}: {wa} != {wb} bits per beat"
    for s in stages:
        extra = {p.name for p in s.ports} - {"clk", "rst"} - {f"{x}_{y}" for x in ("s_axis", "m_axis")
                                                               for y in ("tdata", "tvalid", "tready", "tlast")}
        assert not extra, f"{s.name}: only single-stream kernels can be chained ({extra})"
    name = module_name("chain", layer)
    win = next(p.width for p in stages[0].ports if p.name == "s_axis_tdata")
    wout = next(p.width for p in stages[-1].ports if p.name == "m_axis_tdata")
    lines = [header("chain", name, layer, {"STAGES": " -> ".join(s.name for s in stages)}),
             f"module {name} (", "  input  logic clk,", "  input  logic rst,",
             f"  input  logic [{win - 1}:0] s_axis_tdata,", "  input  logic s_axis_tvalid,",
             "  output logic s_axis_tready,", "  input  logic s_axis_tlast,",
             f"  output logic [{wout - 1}:0] m_axis_tdata,", "  output logic m_axis_tvalid,",
             "  input  logic m_axis_tready,", "  output logic m_axis_tlast", ");"]
    for i, s in enumerate(stages[:-1]):
        w = next(p.width for p in s.ports if p.name == "m_axis_tdata")
        lines += [f"  logic [{w - 1}:0] c{i}_tdata;", f"  logic c{i}_tvalid, c{i}_tready, c{i}_tlast;"]
    for i, s in enumerate(stages):
        src = "s_axis" if i == 0 else f"c{i - 1}"
        dst = "m_axis" if i == len(stages) - 1 else f"c{i}"
        lines.append(f"  {s.name} u{i} (.clk(clk), .rst(rst), .s_axis_tdata({src}_tdata), "
                     f".s_axis_tvalid({src}_tvalid), .s_axis_tready({src}_tready), .s_axis_tlast({src}_tlast), "
                     f".m_axis_tdata({dst}_tdata), .m_axis_tvalid({dst}_tvalid), .m_axis_tready({dst}_tready), "
                     f".m_axis_tlast({dst}_tlast));")
    lines.append("endmodule")
    sv = "\n\n".join(s.sv for s in stages) + "\n" + "\n".join(lines) + "\n"
    mem = {}
    for s in stages:
        mem.update(s.mem_files)
    first, last = stages[0].streams[0], stages[-1].streams[-1]
    return Rendered("chain", name, sv, mem, [Port("clk", "input", 1), Port("rst", "input", 1)] +
                    axis_ports("s_axis", "in", win) + axis_ports("m_axis", "out", wout),
                    [Stream("s_axis", "in", first.lanes, first.bits), Stream("m_axis", "out", last.lanes, last.bits)],
                    {"STAGES": [s.name for s in stages]},
                    cycles_per_frame=max(s.cycles_per_frame for s in stages))
