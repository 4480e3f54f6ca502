"""Small streaming kernels: add, concat, upsample, dwc, fifo, label_select, lut_act, requant.

add, label_select, lut_act and requant are rendered from their templates (one module per layer); concat,
upsample, dwc and fifo are instances of the static RTL library (gen/rtl/lib: gen_concat, gen_upsample, gen_dwc,
gen_fifo) with named parameters."""

from __future__ import annotations

import numpy as np

from .common import (
    Port,
    Rendered,
    Stream,
    axis_ports,
    clog2,
    encode,
    gcd,
    header,
    lib_kernel,
    module_name,
    pack_words,
    pow2_at_least,
    ram_style_for,
    render_template,
    sbits,
    ubits,
    value_range,
)
from .requant import RequantSpec, requant_ctx


def _clk_rst():
    return [Port("clk", "input", 1), Port("rst", "input", 1)]


def _oq(width, lat, reserve, push, data, last):
    d = pow2_at_least(lat + 2)
    return dict(width=width, depth=d, aw=clog2(d), lat=lat, reserve=reserve, push=push, push_data=data,
                push_last=last)


# ------------------------------------------------------------------------------------------------ add

def render_add(layer: str, *, channels: int, simd: int, ka, kb, a_bits: int, b_bits: int | None = None,
               a_signed: bool = False, b_signed: bool | None = None, requant: RequantSpec | None = None) -> Rendered:
    """ops.add(a, b, ka, kb) (per-channel integer weights) followed by `requant` (thresholds for the exact
    quantised sum). Streams a and b: (H, W, CHANNELS), SIMD per beat, joined beat by beat."""
    b_bits = a_bits if b_bits is None else b_bits
    b_signed = a_signed if b_signed is None else b_signed
    assert channels % simd == 0
    cf = channels // simd
    ka = np.broadcast_to(np.asarray(ka, dtype=np.int64).reshape(-1), (channels,))
    kb = np.broadcast_to(np.asarray(kb, dtype=np.int64).reshape(-1), (channels,))
    alo, ahi = value_range(a_bits, a_signed)
    blo, bhi = value_range(b_bits, b_signed)
    pa = np.stack([ka * alo, ka * ahi])
    pb = np.stack([kb * blo, kb * bhi])
    lo = int((pa.min(0) + pb.min(0)).min())
    hi = int((pa.max(0) + pb.max(0)).max())
    acc_bits = max(sbits(lo, hi), 2)
    kaw = sbits(min(int(ka.min()), 0), max(int(ka.max()), 0))
    kbw = sbits(min(int(kb.min()), 0), max(int(kb.max()), 0))
    requant = requant or RequantSpec("none")
    rq = requant_ctx(requant, channels, simd, lo, hi, acc_bits, din="acc2", din_valid="v2", din_idx="i2",
                     din_last="t2")
    o_bits = rq["ob"]
    name = module_name("add", layer)
    params = dict(CHANNELS=channels, SIMD=simd, A_BITS=a_bits, B_BITS=b_bits, ACC_BITS=acc_bits, O_BITS=o_bits,
                  CF=cf)

    def ext(sig, bits, sg):
        return f"{sig}[l*{bits} +: {bits}]" if sg else f"{{1'b0, {sig}[l*{bits} +: {bits}]}}"

    lat = 2 + rq["lat"]
    ctx = dict(name=name, params=params, header=header("add", name, layer, params,
               "analytic cycles per frame = beats per input frame."), SIMD=simd, CF=cf, A_BITS=a_bits,
               B_BITS=b_bits, A_SIGNED=a_signed, B_SIGNED=b_signed, ACC_BITS=acc_bits, O_BITS=o_bits, KAW=kaw,
               KBW=kbw, KMW=max(kaw, kbw), KA_WORDS=pack_words(ka.reshape(cf, simd), kaw),
               KB_WORDS=pack_words(kb.reshape(cf, simd), kbw), A_EXT=ext("s_axis_a_tdata", a_bits, a_signed),
               B_EXT=ext("s_axis_b_tdata", b_bits, b_signed), RQ=rq, RQ_MODE=requant.mode,
               RQ_USES_IDX=requant.mode != "none" and cf > 1,
               OQ=_oq(simd * o_bits, lat, "fire", "rq_valid", "rq_dout", "rq_last"))
    sv = render_template("add.sv.j2", **ctx)
    ports = _clk_rst() + axis_ports("s_axis_a", "in", simd * a_bits) + axis_ports("s_axis_b", "in", simd * b_bits) \
        + axis_ports("m_axis", "out", simd * o_bits)
    r = Rendered("add", name, sv, {}, ports, [Stream("s_axis_a", "in", simd, a_bits),
                                               Stream("s_axis_b", "in", simd, b_bits),
                                               Stream("m_axis", "out", simd, o_bits)], params)
    r.extra = dict(rq=rq, acc_range=(lo, hi))
    return r


# ------------------------------------------------------------------------------------------------ concat

def render_concat(layer: str, *, ch_a: int, ch_b: int, simd: int, a_bits: int, num_pix: int) -> Rendered:
    """ops.concat([a, b]) on the channel axis: per pixel CH_A/SIMD beats of a, then CH_B/SIMD beats of b
    (library module gen_concat)."""
    assert ch_a % simd == 0 and ch_b % simd == 0, "SIMD must divide both channel counts (use a dwc before)"
    cfa, cfb = ch_a // simd, ch_b // simd
    name = module_name("concat", layer)
    params = dict(CH_A=ch_a, CH_B=ch_b, OFM_CH=ch_a + ch_b, SIMD=simd, A_BITS=a_bits, NUM_PIX=num_pix)
    inst = dict(CH_A=ch_a, CH_B=ch_b, SIMD=simd, A_BITS=a_bits, NUM_PIX=num_pix)
    w = simd * a_bits
    ports = _clk_rst() + axis_ports("s_axis_a", "in", w) + axis_ports("s_axis_b", "in", w) + \
        axis_ports("m_axis", "out", w)
    cycles = num_pix * (cfa + cfb)
    return lib_kernel("concat", name, "gen_concat", inst, ports,
                      [Stream("s_axis_a", "in", simd, a_bits), Stream("s_axis_b", "in", simd, a_bits),
                       Stream("m_axis", "out", simd, a_bits)], params, layer=layer,
                      note=f"analytic cycles per frame = {cycles}.", cycles_per_frame=cycles)


# ------------------------------------------------------------------------------------------------ upsample

def render_upsample(layer: str, *, ifm_ch: int, ifm_dim, simd: int, a_bits: int, factor=(2, 2),
                    ram_style: str = "auto") -> Rendered:
    """ops.upsample(x, factor): nearest neighbour by integer factors (library module gen_upsample)."""
    h, w = (ifm_dim, ifm_dim) if isinstance(ifm_dim, int) else tuple(ifm_dim)
    fh, fw = (factor, factor) if isinstance(factor, int) else tuple(factor)
    assert ifm_ch % simd == 0
    cf = ifm_ch // simd
    rowlen = w * cf
    name = module_name("upsample", layer)
    params = dict(IFM_CH=ifm_ch, SIMD=simd, A_BITS=a_bits, IFM_DIM_H=h, IFM_DIM_W=w, FACTOR_H=fh, FACTOR_W=fw,
                  OFM_DIM_H=h * fh, OFM_DIM_W=w * fw)
    style = ram_style_for(rowlen * simd * a_bits, rowlen, ram_style)
    inst = dict(IFM_CH=ifm_ch, SIMD=simd, A_BITS=a_bits, IFM_DIM_H=h, IFM_DIM_W=w, FACTOR_H=fh, FACTOR_W=fw,
                RAM_STYLE=style)
    out_beats = h * fh * w * fw * cf
    wd = simd * a_bits
    r = lib_kernel("upsample", name, "gen_upsample", inst,
                   _clk_rst() + axis_ports("s_axis", "in", wd) + axis_ports("m_axis", "out", wd),
                   [Stream("s_axis", "in", simd, a_bits), Stream("m_axis", "out", simd, a_bits)], params,
                   layer=layer, note=f"analytic cycles per frame = output beats = {out_beats}.",
                   cycles_per_frame=out_beats)
    r.extra = dict(ram_style=style, rowlen=rowlen)
    return r


# ------------------------------------------------------------------------------------------------ dwc

def dwc_mode(in_simd: int, out_simd: int) -> str:
    """gen_dwc's implementation for these widths: "gather" (the input width divides the output width), "split"
    (the output width divides the input width) or "shift" (a shift buffer, otherwise and for equal widths)."""
    g = gcd(in_simd, out_simd)
    iu, ou = in_simd // g, out_simd // g
    return "gather" if (iu == 1 and ou > 1) else "split" if (ou == 1 and iu > 1) else "shift"


def render_dwc(layer: str, *, in_simd: int, out_simd: int, a_bits: int, n_elems: int) -> Rendered:
    """Stream width converter: IN_SIMD -> OUT_SIMD elements per beat; N_ELEMS elements per frame (a multiple
    of both). Library module gen_dwc."""
    assert n_elems % in_simd == 0 and n_elems % out_simd == 0
    name = module_name("dwc", layer)
    params = dict(IN_SIMD=in_simd, OUT_SIMD=out_simd, A_BITS=a_bits, N_ELEMS=n_elems)
    nbeats = n_elems // out_simd
    cycles = max(n_elems // in_simd, nbeats)
    mode = dwc_mode(in_simd, out_simd)
    r = lib_kernel("dwc", name, "gen_dwc", dict(params),
                   _clk_rst() + axis_ports("s_axis", "in", in_simd * a_bits) +
                   axis_ports("m_axis", "out", out_simd * a_bits),
                   [Stream("s_axis", "in", in_simd, a_bits), Stream("m_axis", "out", out_simd, a_bits)], params,
                   layer=layer, note=f"{mode}; analytic cycles per frame = max(input, output beats) = {cycles}.",
                   cycles_per_frame=cycles)
    r.extra = dict(mode=mode)
    return r


# ------------------------------------------------------------------------------------------------ fifo

FIFO_SRL_MAX = 32   # render_fifo's "auto": shift registers up to this depth, memory + output queue beyond


def fifo_geometry(depth: int, style: str = "auto") -> dict:
    """gen_fifo's implementation of a requested depth: style ("wire" for depth 0, "srl" or "ram"), capacity,
    the memory depth (ram) and the width of `count`."""
    if depth < 0:
        raise ValueError(f"FIFO depth {depth} < 0")
    if style == "auto":
        style = "srl" if depth <= FIFO_SRL_MAX else "ram"
    if style not in ("srl", "ram"):
        raise ValueError(f"FIFO style {style!r}: auto, srl or ram")
    if depth == 0:
        return dict(style="wire", capacity=0, ram_depth=0, cntw=1)
    if style == "srl":
        return dict(style="srl", capacity=depth, ram_depth=0, cntw=ubits(depth))
    ram_depth = pow2_at_least(max(2, depth - 4))
    cap = ram_depth + 4   # + gen_fifo's 4-entry output queue
    return dict(style="ram", capacity=cap, ram_depth=ram_depth, cntw=ubits(cap))


def render_fifo(layer: str, *, depth: int, width: int, style: str = "auto", lanes: int = 1,
                ram_style: str = "auto") -> Rendered:
    """FIFO of `depth` beats of `width` bits (+ tlast), library module gen_fifo: shift registers (SRL) when
    shallow, memory (registers, LUTRAM or BRAM by size, or `ram_style`) + output queue when deep, a direct
    connection for depth 0. Output `count` = fill level. `lanes` only describes the stream."""
    geo = fifo_geometry(depth, style)
    name = module_name("fifo", layer)
    params = dict(DEPTH=depth, WIDTH=width)
    inst = dict(WIDTH=width, DEPTH=depth)
    if geo["style"] != "wire":
        inst["STYLE"] = geo["style"]
    if geo["style"] == "ram":
        geo["ram_style"] = ram_style_for(geo["ram_depth"] * (width + 1), geo["ram_depth"], ram_style)
        inst["RAM_STYLE"] = geo["ram_style"]
    cap, cntw = geo["capacity"], geo["cntw"]
    bits = width // lanes
    r = lib_kernel("fifo", name, "gen_fifo", inst,
                   _clk_rst() + axis_ports("s_axis", "in", width) + axis_ports("m_axis", "out", width) +
                   [Port("count", "output", cntw)],
                   [Stream("s_axis", "in", lanes, bits), Stream("m_axis", "out", lanes, bits)], params,
                   layer=layer, note=f"style {geo['style']}"
                   + (f", ram_style {geo['ram_style']}" if "ram_style" in geo else "") + f", capacity {cap}.")
    r.extra = dict(capacity=cap, style=geo["style"], **({"ram_style": geo["ram_style"]} if "ram_style" in geo else {}))
    return r


# ------------------------------------------------------------------------------------------------ label_select

def render_label_select(layer: str, *, n_elems: int, simd: int, a_bits: int, a_signed: bool = False,
                        k: int = 1) -> Rendered:
    """ops.label_select(x, k): indices of the k largest elements of the frame, largest first, ties to the lower
    index; one element per cycle (cycles per frame: max(N_ELEMS, k + 1))."""
    assert n_elems % simd == 0 and 1 <= k <= n_elems
    idx_bits = max(1, clog2(n_elems))
    name = module_name("label_select", layer)
    params = dict(N_ELEMS=n_elems, SIMD=simd, A_BITS=a_bits, TOPK=k, IDX_BITS=idx_bits)
    ctx = dict(name=name, params=params, header=header("label_select", name, layer, params,
               f"analytic cycles per frame = N_ELEMS = {n_elems} (one element per cycle)."), **params,
               A_SIGNED=a_signed, VB=a_bits + (0 if a_signed else 1))
    sv = render_template("label_select.sv.j2", **ctx)
    return Rendered("label_select", name, sv, {}, _clk_rst() + axis_ports("s_axis", "in", simd * a_bits) +
                    axis_ports("m_axis", "out", idx_bits), [Stream("s_axis", "in", simd, a_bits),
                                                            Stream("m_axis", "out", 1, idx_bits)], params,
                    cycles_per_frame=max(n_elems, k + 1))  # the k outputs drain before the next frame ends


# ------------------------------------------------------------------------------------------------ lut_act

def render_lut_act(layer: str, *, simd: int, a_bits: int, a_signed: bool, table, in_lo: int, o_bits: int,
                   o_signed: bool = False) -> Rendered:
    """ops.lut(x, table, in_lo): any element-wise function of a <= 8-bit input, one ROM per lane."""
    assert a_bits <= 8
    table = np.asarray(table, dtype=np.int64)
    lo, hi = value_range(a_bits, a_signed)
    rom = []
    for raw in range(1 << a_bits):
        v = raw - (1 << a_bits) if (a_signed and raw >= (1 << (a_bits - 1))) else raw
        i = v - in_lo
        rom.append(int(encode([table[i]], o_bits)[0]) if 0 <= i < len(table) else 0)
    name = module_name("lut_act", layer)
    params = dict(SIMD=simd, A_BITS=a_bits, O_BITS=o_bits)
    ctx = dict(name=name, params=params, header=header("lut_act", name, layer, params), **params,
               A_SIGNED=a_signed, IN_LO=in_lo, ROM=rom, OQ=_oq(simd * o_bits, 1, "fire", "v1", "d1", "t1"))
    sv = render_template("lut_act.sv.j2", **ctx)
    return Rendered("lut_act", name, sv, {}, _clk_rst() + axis_ports("s_axis", "in", simd * a_bits) +
                    axis_ports("m_axis", "out", simd * o_bits), [Stream("s_axis", "in", simd, a_bits),
                                                                 Stream("m_axis", "out", simd, o_bits)], params)


# ------------------------------------------------------------------------------------------------ requant

def render_requant(layer: str, *, channels: int, simd: int, in_bits: int, requant: RequantSpec,
                   in_range: tuple[int, int] | None = None) -> Rendered:
    """A standalone Requant layer: signed IN_BITS-bit integers -> codes (thresholds or multiplier/shift)."""
    assert channels % simd == 0
    cf = channels // simd
    lo, hi = in_range or (-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1)
    rq = requant_ctx(requant, channels, simd, lo, hi, in_bits, din="s_axis_tdata", din_valid="fire",
                     din_idx="cf", din_last="s_axis_tlast")
    o_bits = rq["ob"]
    name = module_name("requant", layer)
    params = dict(CHANNELS=channels, SIMD=simd, IN_BITS=in_bits, O_BITS=o_bits)
    ctx = dict(name=name, params=params, header=header("requant", name, layer, params), **params, CF=cf, RQ=rq,
               RQ_MODE=requant.mode, OQ=_oq(simd * o_bits, rq["lat"], "fire", "rq_valid", "rq_dout", "rq_last"))
    sv = render_template("requant.sv.j2", **ctx)
    r = Rendered("requant", name, sv, {}, _clk_rst() + axis_ports("s_axis", "in", simd * in_bits) +
                 axis_ports("m_axis", "out", simd * o_bits), [Stream("s_axis", "in", simd, in_bits),
                                                              Stream("m_axis", "out", simd, o_bits)], params)
    r.extra = dict(rq=rq)
    return r
