"""Sliding-window generator (line buffer): the stream of k x k windows the mvu / pool kernels consume."""

from __future__ import annotations

from .common import (
    Port,
    Rendered,
    Stream,
    axis_ports,
    clog2,
    encode,
    header,
    module_name,
    pack_words,
    pow2_at_least,
    ram_style_for,
    render_template,
    sbits,
    ubits,
)


def _pair(v):
    return (int(v), int(v)) if isinstance(v, (int,)) or not hasattr(v, "__len__") else (int(v[0]), int(v[1]))


def swg_geometry(ifm_dim, k, stride, pads):
    (h, w), (kh, kw), (sh, sw) = _pair(ifm_dim), _pair(k), _pair(stride)
    pt, pl, pb, pr = (int(p) for p in pads)
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    return h, w, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow


def render_swg(layer: str, *, ifm_ch: int, ifm_dim, simd: int, a_bits: int, k, stride=1, pads=(0, 0, 0, 0),
               pad_value: int = 0, depthwise: bool = False, ram_style: str = "auto",
               max_rows: int | None = None) -> Rendered:
    """Windows of an (H, W, IFM_CH) stream as ops.sliding_windows(x, k, stride, pads, pad_value) produces them:
    per output pixel K_H*K_W*IFM_CH elements in (KH, KW, C) order, or in depthwise mode (C/SIMD, KH, KW, SIMD).
    SIMD = K_H*K_W*IFM_CH (K > 1, not depthwise) is the window-parallel generator (render_swg_wide).
    `pad_value` is the element value (e.g. the input zero point) used for padding. `max_rows` caps the line
    buffer (fewer rows cost stalls at frame boundaries)."""
    h, w, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow = swg_geometry(ifm_dim, k, stride, pads)
    if is_wide(ifm_ch, (kh, kw), simd, depthwise):
        return render_swg_wide(layer, ifm_ch=ifm_ch, ifm_dim=(h, w), a_bits=a_bits, k=(kh, kw), stride=(sh, sw),
                               pads=pads, pad_value=pad_value, ram_style=ram_style)
    assert ifm_ch % simd == 0, "SIMD must divide IFM_CH"
    assert oh >= 1 and ow >= 1, "empty output"
    assert max(pt, pb) < kh and max(pl, pr) < kw, "padding must be smaller than the kernel"
    cf = ifm_ch // simd
    # rows: K+S keeps the writer S rows ahead inside a frame; at a frame's end the reader still holds the
    # last window's rows (and any unused trailing rows) while the writer fills the next frame's first window
    # (the reader holds max(K, S) rows per output row: the window and the rows the next output row skips)
    # rows from row_end on are below every window and are not stored
    lo_last = max(0, (oh - 1) * sh - pt)
    row_end = min(h, (oh - 1) * sh - pt + kh)
    nrows = max(min(max(kh, sh), row_end) + sh, (row_end - lo_last) + min(row_end, max(kh, sh) - pt))
    if max_rows is not None:
        nrows = max(min(nrows, max_rows), row_end - lo_last, min(row_end, max(kh, sh)))
    rowlen = w * cf
    depth = nrows * rowlen
    name = module_name("swg", layer)
    cw = ubits(2 * h + 2 * nrows + kh + sh + 2)
    iy_hi = max((oh - 1) * sh + kh, (ow - 1) * sw + kw, h, w) + max(sh, sw) + 1
    swid = sbits(-max(pt, pl) - 1, iy_hi)
    inner = ["cf", "kh", "kw"] if depthwise else ["kh", "kw", "cf"]
    sizes = dict(kh=kh, kw=kw, cf=cf)
    counters = []
    for pos, nm in enumerate(inner):
        carry = " && ".join(f"last_{d}" for d in inner[pos + 1:] if sizes[d] > 1)
        counters.append(dict(name=nm, n=sizes[nm], inner=True, pos=pos, carry=carry))
    counters += [dict(name="ox", n=ow, inner=False, pos=-1, carry=""), dict(name="oy", n=oh, inner=False, pos=-2,
                                                                           carry="")]
    raw = int(encode([pad_value], a_bits)[0])
    pad_word = pack_words([[raw] * simd], a_bits)[0]
    lat = 2
    oq_depth = pow2_at_least(lat + 2)
    params = dict(IFM_CH=ifm_ch, SIMD=simd, A_BITS=a_bits, IFM_DIM_H=h, IFM_DIM_W=w, K_H=kh, K_W=kw, STRIDE_H=sh,
                  STRIDE_W=sw, PAD_TOP=pt, PAD_LEFT=pl, PAD_BOTTOM=pb, PAD_RIGHT=pr, OFM_DIM_H=oh, OFM_DIM_W=ow,
                  DEPTHWISE=int(depthwise))
    in_beats, out_beats = h * w * cf, oh * ow * kh * kw * cf
    style = ram_style_for(depth * simd * a_bits, depth, ram_style)
    ctx = dict(name=name, params=params, **params, header=header("swg", name, layer, params,
               f"analytic cycles per frame = max(input beats {in_beats}, output beats {out_beats})."),
               CF=cf, DW=depthwise, NROWS=nrows, ROWLEN=rowlen, DEPTH=depth, AW=max(1, clog2(depth)), CW=cw, SW=swid,
               COUNTERS=counters, ROW_END=row_end, PAD_VAL=pad_value, PAD_WORD=pad_word, RAM_STYLE=style,
               CHECK_BOTTOM=((oh - 1) * sh + kh - 1 - pt) >= h, CHECK_RIGHT=((ow - 1) * sw + kw - 1 - pl) >= w,
               OQ=dict(width=simd * a_bits, depth=oq_depth, aw=clog2(oq_depth), lat=lat, reserve="issue", push="vb",
                       push_data="dout_b", push_last="tb"))
    sv = render_template("swg.sv.j2", **ctx)
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", simd * a_bits) + \
        axis_ports("m_axis", "out", simd * a_bits)
    r = Rendered("swg", name, sv, {}, ports,
                 [Stream("s_axis", "in", simd, a_bits), Stream("m_axis", "out", simd, a_bits)],
                 params, cycles_per_frame=max(in_beats, out_beats))
    r.extra = dict(nrows=nrows, depth=depth, ram_style=style, ofm_dim=(oh, ow))
    return r


def is_wide(ifm_ch: int, k, simd: int, depthwise: bool) -> bool:
    """SIMD = a whole window (K_H*K_W*IFM_CH lanes, K > 1): the window-parallel generator."""
    kh, kw = _pair(k)
    return (not depthwise) and kh * kw > 1 and simd == kh * kw * ifm_ch


def wide_geometry(ifm_dim, k, stride, pads) -> dict:
    """The padded image the window-parallel generator walks: rows / columns up to the last real pixel or the
    last window's corner, whichever is further; which of them are real and which end a window (as Verilog bit
    literals, and per position in raster order: REAL, EMIT)."""
    h, w, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow = swg_geometry(ifm_dim, k, stride, pads)
    ly, lx = (oh - 1) * sh + kh - 1, (ow - 1) * sw + kw - 1
    hs, ws = max(pt + h, ly + 1), max(pl + w, lx + 1)
    real_r, real_c = set(range(pt, pt + h)), set(range(pl, pl + w))
    out_r, out_c = {kh - 1 + i * sh for i in range(oh)}, {kw - 1 + j * sw for j in range(ow)}

    def bits(n, ones):  # Verilog binary literal, index 0 at the right
        return "".join("1" if i in ones else "0" for i in reversed(range(n)))
    return dict(HS=hs, WS=ws, LAST_Y=ly, LAST_X=lx,
                REAL_ROW=bits(hs, real_r), REAL_COL=bits(ws, real_c), OUT_ROW=bits(hs, out_r),
                OUT_COL=bits(ws, out_c),
                REAL=tuple(y in real_r and x in real_c for y in range(hs) for x in range(ws)),
                EMIT=tuple(y in out_r and x in out_c for y in range(hs) for x in range(ws)))


def render_swg_wide(layer: str, *, ifm_ch: int, ifm_dim, a_bits: int, k, stride=1, pads=(0, 0, 0, 0),
                    pad_value: int = 0, ram_style: str = "auto") -> Rendered:
    """Window-parallel sliding-window generator: one input pixel in and at most one whole window out per cycle
    ((K_H - 1) line buffers of the padded row width, K_H x K_W window registers). For the first layers of
    few-channel images (RGB, wafer maps), where one window element per cycle would bound the frame rate."""
    h, w, kh, kw, sh, sw, pt, pl, pb, pr, oh, ow = swg_geometry(ifm_dim, k, stride, pads)
    assert oh >= 1 and ow >= 1, "empty output"
    assert max(pt, pb) < kh and max(pl, pr) < kw, "padding must be smaller than the kernel"
    g = wide_geometry(ifm_dim, k, stride, pads)
    simd = kh * kw * ifm_ch
    name = module_name("swg", layer)
    raw = int(encode([pad_value], a_bits)[0])
    pad_word = pack_words([[raw] * ifm_ch], a_bits)[0]
    params = dict(IFM_CH=ifm_ch, SIMD=simd, A_BITS=a_bits, IFM_DIM_H=h, IFM_DIM_W=w, K_H=kh, K_W=kw, STRIDE_H=sh,
                  STRIDE_W=sw, PAD_TOP=pt, PAD_LEFT=pl, PAD_BOTTOM=pb, PAD_RIGHT=pr, OFM_DIM_H=oh, OFM_DIM_W=ow,
                  DEPTHWISE=0)
    cycles = g["HS"] * g["WS"]
    style = ram_style_for(g["WS"] * ifm_ch * a_bits, g["WS"], ram_style)
    ctx = dict(name=name, params=params, **params, **g, header=header(
        "swg", name, layer, params, f"window-parallel; analytic cycles per frame = padded positions "
        f"{g['HS']} x {g['WS']} = {cycles}."), PAD_VAL=pad_value, PAD_WORD=pad_word, RAM_STYLE=style,
        YW=max(1, clog2(g["HS"])), XW=max(1, clog2(g["WS"])))
    sv = render_template("swg_wide.sv.j2", **ctx)
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", ifm_ch * a_bits) + \
        axis_ports("m_axis", "out", simd * a_bits)
    r = Rendered("swg", name, sv, {}, ports, [Stream("s_axis", "in", ifm_ch, a_bits),
                                              Stream("m_axis", "out", simd, a_bits)],
                 params, cycles_per_frame=cycles)
    r.extra = dict(nrows=kh - 1, depth=g["WS"], ram_style=style, ofm_dim=(oh, ow), wide=True)
    return r
