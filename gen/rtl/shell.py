"""The accelerator shell around the kernels: input/output adapters, stream fork, the AXI-Lite control block
(generated from gen/shell/regmap.py) and the plain-Verilog top wrapper `regmap.TOP_MODULE`."""

from __future__ import annotations

from ..errors import GenError
from ..shell import regmap
from .common import Port, Rendered, Stream, axis_ports, clog2, header, lib_kernel, render_template, ubits


def render_input_adapter(*, n_elems: int, simd: int, a_bits: int, dma_bits: int) -> Rendered:
    dma_bytes = dma_bits // 8
    assert a_bits <= 8 and (n_elems % simd == 0)
    nb = regmap.beats(regmap.in_frame_bytes(n_elems), dma_bits)
    lastn = n_elems - (nb - 1) * dma_bytes
    cap = simd + dma_bytes
    nout = n_elems // simd
    name = "accel_input"
    params = dict(N_ELEMS=n_elems, SIMD=simd, A_BITS=a_bits, DMA_BITS=dma_bits, NB=nb)
    sv = render_template("accel_input.sv.j2", name=name, params=params,
                         header=header("input adapter", name, "input", params),
                         N_ELEMS=n_elems, SIMD=simd, A_BITS=a_bits, DMA_BITS=dma_bits, DMA_BYTES=dma_bytes, NB=nb,
                         LASTN=lastn, CAP=cap, CNTW=ubits(cap), BW=max(1, clog2(nb)), NOUT=nout,
                         OW=max(1, clog2(nout)))
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", dma_bits) + \
        axis_ports("m_axis", "out", simd * a_bits) + [Port("meta_space", "input", 1), Port("frame_start", "output", 1),
                                                      Port("frame_done", "output", 1), Port("frame_flags", "output", 2)]
    return Rendered("accel_input", name, sv, {}, ports, [Stream("m_axis", "out", simd, a_bits)], params,
                    cycles_per_frame=max(nb, nout))


def render_output_adapter(*, num_scores: int, lanes: int, s_bits: int, s_signed: bool, s_bipolar: bool,
                          num_classes: int, idx_bits: int, dma_bits: int) -> Rendered:
    """regmap's output frame from the scores stream and, when num_classes > 0, the class stream (num_classes
    indices per frame, largest first: the header takes rank 1, ranks 2.. go before the scores)."""
    if dma_bits != 64:
        raise GenError(f"output adapter: DMA width {dma_bits} bits; the output frame format (gen/shell/regmap.py) "
                       "is laid out for 64-bit DMA beats")
    if num_scores % lanes or num_classes < 0:
        raise GenError(f"output adapter: NUM_SCORES={num_scores} not a multiple of LANES={lanes} "
                       f"or NUM_CLASSES={num_classes} < 0")
    has_class = num_classes > 0
    wpb = dma_bits // 32
    more = max(num_classes, 1) - 1  # class words after the header
    nob = -(-(more + num_scores) // wpb)
    rb = num_scores // lanes
    name = "accel_output"
    params = dict(NUM_SCORES=num_scores, LANES=lanes, S_BITS=s_bits, DMA_BITS=dma_bits, NUM_CLASSES=num_classes)
    sv = render_template("accel_output.sv.j2", name=name, params=params,
                         header=header("output adapter", name, "output", params), NS=num_scores, LANES=lanes,
                         S_BITS=s_bits, S_SIGNED=s_signed, S_BIPOLAR=s_bipolar, HAS_CLASS=has_class, NC=num_classes,
                         MORE=more, CW=max(1, clog2(num_classes)), IDX_BITS=idx_bits, DMA_BITS=dma_bits, WPB=wpb,
                         NOB=nob, RB=rb, RW=max(1, clog2(rb)), EW=max(1, clog2(nob + 1)))
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_scores", "in", lanes * s_bits)
    if has_class:
        ports += axis_ports("s_class", "in", idx_bits)
    ports += [Port("meta_valid", "input", 1), Port("meta_flags", "input", 8), Port("meta_pop", "output", 1)] + \
        axis_ports("m_axis", "out", dma_bits) + [Port("frame_sent", "output", 1)]
    return Rendered("accel_output", name, sv, {}, ports, [Stream("s_scores", "in", lanes, s_bits)], params,
                    cycles_per_frame=max(rb, 1 + nob))


def render_fork(name: str, *, n: int, width: int) -> Rendered:
    """A stream to `n` consumers: library module gen_axis_fork (a design connects its packed m_axis_* ports,
    output i at m_axis_tdata[i*WIDTH +: WIDTH], directly). The standalone wrapper `name` exposes the outputs as
    m<i>_axis_* (one stream each, for the testbench)."""
    params = dict(N=n, WIDTH=width)
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", width)
    for i in range(n):
        ports += axis_ports(f"m{i}_axis", "out", width)

    def cat(sig):
        return "{" + ", ".join(f"m{i}_axis_{sig}" for i in reversed(range(n))) + "}"

    conns = {f"m_axis_{sig}": cat(sig) for sig in ("tdata", "tvalid", "tready", "tlast")}
    lib_ports = ["clk", "rst"] + [f"{x}_{sig}" for x in ("s_axis", "m_axis") for sig in ("tdata", "tvalid", "tready",
                                                                                          "tlast")]
    streams = [Stream("s_axis", "in", 1, width)] + [Stream(f"m{i}_axis", "out", 1, width) for i in range(n)]
    return lib_kernel("fork", name, "gen_axis_fork", dict(params), ports, streams, params,
                      note="every beat to all outputs", conns=conns, lib_ports=lib_ports)


# ------------------------------------------------------------------------------------------------ control block

def axil_port_decls() -> str:
    """SystemVerilog port declarations of the AXI-Lite slave inside the design (regmap.axil_ports), one per line,
    each ending with a comma."""
    return "\n".join(f"  {d:<6} logic {f'[{w - 1}:0] ' if w > 1 else ''}{n}," for n, d, w in regmap.axil_ports())


def render_ctrl(*, design_hash: int, in_bytes: int, out_bytes: int, num_scores: int, num_classes: int,
                clock_khz: int, runtime_weights: bool) -> Rendered:
    """AXI-Lite slave with the registers of regmap.REGISTERS (the only description of the register map)."""
    R = regmap.REG
    A = regmap.AXIL_ADDR_BITS
    consts = {"ID": regmap.ID_MAGIC, "VERSION": regmap.version_word(), "DESIGN_HASH": design_hash,
              "IN_FRAME_BYTES": in_bytes, "OUT_FRAME_BYTES": out_bytes, "NUM_SCORES": num_scores,
              "NUM_CLASSES": num_classes, "CLOCK_KHZ": clock_khz}
    fld = {f"{r.name}.{f.name}": f.lsb for r in regmap.REGISTERS for f in r.fields}
    ro = {"STATUS": "status_w", "ERRORS": "errors", "FRAMES_IN": "frames_in", "FRAMES_OUT": "frames_out",
          "LAST_LATENCY": "last_latency", "LAST_INTERVAL": "last_interval", "CFG_LAYER": "cfg_layer",
          "CFG_ADDR": "cfg_addr"}
    nerr = max(f.lsb + f.width for f in R["ERRORS"].fields)
    reads = []
    for r in regmap.REGISTERS:
        if r.name in consts:
            val = f"32'h{consts[r.name] & 0xFFFFFFFF:08x}"
        elif r.name in ro:
            val = f"32'({ro[r.name]})"
        elif r.name.startswith("CFG_DATA"):
            val = f"cfg_data[{32 * int(r.name[8:])} +: 32]"
        else:  # write-only registers read as 0
            val = "32'd0"
        reads.append(dict(offset=r.offset, name=r.name, access=r.access, value=val))
    name = "accel_ctrl"
    sv = render_template("accel_ctrl.sv.j2", name=name, reads=reads, fld=fld, R=R, A=A, nd=regmap.CFG_DATA_WORDS,
                         nerr=nerr, rw="1'b1" if runtime_weights else "1'b0", axil_decls=axil_port_decls(),
                         header=header("control block", name, "accel",
                                       dict(REGISTERS=len(regmap.REGISTERS), ADDR_BITS=A)))
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)]
    return Rendered("ctrl", name, sv, {}, ports, [], {})


def render_top_wrapper(accel_module: str, dma_bits: int) -> str:
    """Plain Verilog TOP_MODULE with exactly regmap.top_ports(dma_bits) and Vivado interface attributes."""
    ports = regmap.top_ports(dma_bits)
    decl = []
    for n, d, w in ports:
        attr = ""
        if n == "ap_clk":
            attr = ('(* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 ap_clk CLK", X_INTERFACE_PARAMETER = '
                    '"ASSOCIATED_BUSIF s_axis:m_axis:s_axil, ASSOCIATED_RESET ap_rst_n" *) ')
        elif n == "ap_rst_n":
            attr = ('(* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 ap_rst_n RST", X_INTERFACE_PARAMETER = '
                    '"POLARITY ACTIVE_LOW" *) ')
        elif n == "interrupt":
            attr = ('(* X_INTERFACE_INFO = "xilinx.com:signal:interrupt:1.0 interrupt INTERRUPT", '
                    'X_INTERFACE_PARAMETER = "SENSITIVITY EDGE_RISING" *) ')
        else:
            bus, sig = n.split("_", 2)[:2], n.split("_", 2)[2]
            busname = "_".join(bus)
            if busname in ("s_axis", "m_axis"):
                attr = f'(* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 {busname} {sig.upper()}" *) '
            else:
                attr = f'(* X_INTERFACE_INFO = "xilinx.com:interface:aximm:1.0 {busname} {sig.upper()}" *) '
        rng = f"[{w - 1}:0] " if w > 1 else ""
        decl.append(f"  {attr}{d} wire {rng}{n}")
    return render_template("accel_top.v.j2", top=regmap.TOP_MODULE, decl=decl, dma_bits=dma_bits,
                           accel_module=accel_module)
