"""Random test cases per kernel: render the kernel, draw inputs, compute the golden outputs with gen/golden/ops.py.

Each `*_case` function returns a gen.sim.harness.Case whose frames are raw element codes (lane order = element
order of the NHWC stream), so the testbench only packs lanes and compares.
"""

from __future__ import annotations

import numpy as np

from gen.golden import ops
from gen.rtl.common import encode, value_range
from gen.rtl.requant import RequantSpec

from .harness import Case


def rand_vals(rng, shape, bits, signed, bipolar=False):
    lo, hi = value_range(bits, signed, bipolar)
    if bipolar:
        return rng.choice(np.array([-1, 1]), size=shape).astype(np.int64)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def frames_of(x: np.ndarray, bits: int, bipolar: bool = False) -> list[list[int]]:
    """(N, ...) values -> N frames of raw codes in C order."""
    n = x.shape[0]
    return encode(x.reshape(n, -1), bits, bipolar).tolist()


def rand_requant(rng, acc: np.ndarray, mode: str, o_bits: int, o_signed: bool, bipolar: bool = False,
                 channels: int | None = None, acc_lo: int | None = None, acc_hi: int | None = None) -> RequantSpec:
    """Random per-channel requantiser spread over the observed accumulator values (plus some extremes)."""
    c = channels or acc.shape[-1]
    flat = acc.reshape(-1, c)
    if mode == "none":
        return RequantSpec("none")
    if bipolar:
        t = np.array([[int(rng.choice(flat[:, ch]))] * 2 for ch in range(c)], dtype=np.int64)
        neg = rng.random(c) < 0.3
        t = np.where(neg[:, None], -t, t)
        return RequantSpec("thresholds", thresholds=t, negate=neg, out_lo=-1, o_bipolar=True)
    out_lo = -(1 << (o_bits - 1)) if o_signed else 0
    out_hi = out_lo + (1 << o_bits) - 1
    if mode == "thresholds":
        nthr = (1 << o_bits) - 1
        neg = rng.random(c) < 0.3
        T = np.zeros((c, nthr), dtype=np.int64)
        for ch in range(c):
            v = flat[:, ch] * (-1 if neg[ch] else 1)
            lo, hi = int(v.min()), int(v.max())
            pts = rng.integers(lo - 2, hi + 3, size=nthr)
            # a few thresholds beyond the reachable range, and repeated ones
            if rng.random() < 0.3:
                pts[0] = (acc_lo if acc_lo is not None else lo) - 1000
            if rng.random() < 0.3:
                pts[-1] = (acc_hi if acc_hi is not None else hi) + 1000
            if rng.random() < 0.3 and nthr > 1:
                pts[1] = pts[0]
            T[ch] = np.sort(pts)
        if rng.random() < 0.2:  # per-tensor thresholds
            T, neg = T[:1], np.zeros(c, bool)
        return RequantSpec("thresholds", thresholds=T, negate=neg, out_lo=out_lo)
    if mode == "multshift":
        span = max(1, int(np.abs(flat).max()))
        shift = int(rng.integers(4, 16))
        # scale so the codes spread over the output range
        m = np.maximum(1, ((1 << o_bits) << shift) // (2 * span)) * rng.integers(1, 3, size=c)
        m = np.where(rng.random(c) < 0.2, -m, m).astype(np.int64)
        off = rng.integers(-(1 << shift) * 4, (1 << shift) * 4, size=c).astype(np.int64)
        return RequantSpec("multshift", mult=m, offset=off, shift=shift, out_lo=out_lo, out_hi=out_hi)
    raise ValueError(mode)


# ================================================================================================== mvu

def mvu_case(name: str, rng, *, kind: str = "conv", pe: int, simd: int, w_bits: int, a_bits: int,
             w_signed: bool = True, a_signed: bool = False, w_bipolar: bool = False, a_bipolar: bool = False,
             ifm_ch: int = 4, ofm_ch: int = 4, ifm_dim=(4, 4), k=(3, 3), stride=(1, 1), pads=(0, 0, 0, 0),
             pad_value: int = 0, rq: str = "thresholds", o_bits: int = 4, o_signed: bool = False,
             o_bipolar: bool = False, bias: bool = False, frames: int = 3, runtime_writable: bool = False,
             use_dsp=None, ram_style: str = "auto", a_range=None, w_range=None) -> Case:
    """`a_range` / `w_range` (lo, hi): draw activations / weights from a sub-range of their codes (the mvu is told
    the activation range and narrows its datapath; the padding value must lie inside it)."""
    from gen.rtl.mvu import mvu_matrix, mvu_weight_words, render_mvu
    ih, iw = (ifm_dim, ifm_dim) if isinstance(ifm_dim, int) else ifm_dim
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x = rand_vals(rng, (frames, ih, iw, ifm_ch), a_bits, a_signed, a_bipolar)
    if a_range is not None:
        assert any(pads) == 0 or a_range[0] <= pad_value <= a_range[1]
        x = rng.integers(a_range[0], a_range[1] + 1, size=x.shape, dtype=np.int64)
    dw = kind == "dw"
    if kind == "dense":
        wt = rand_vals(rng, (ofm_ch, ih * iw * ifm_ch), w_bits, w_signed, w_bipolar)
    elif dw:
        ofm_ch = ifm_ch
        wt = rand_vals(rng, (ifm_ch, kh, kw, 1), w_bits, w_signed, w_bipolar)
    else:
        wt = rand_vals(rng, (ofm_ch, kh, kw, ifm_ch), w_bits, w_signed, w_bipolar)
    if w_range is not None:
        wt = rng.integers(w_range[0], w_range[1] + 1, size=wt.shape, dtype=np.int64)
    lo_w, hi_w = value_range(w_bits, w_signed, w_bipolar)
    b = rng.integers(-40, 41, size=ofm_ch).astype(np.int64) if bias else None

    def golden_acc(wt_):
        if kind == "dense":
            return ops.dense(x, wt_, bias=b)
        return ops.conv(x, wt_, stride=(sh, sw), pads=pads, groups=ifm_ch if dw else 1, pad_value=pad_value,
                        bias=b)

    acc = golden_acc(wt)
    spec = rand_requant(rng, acc, rq, o_bits, o_signed, bipolar=o_bipolar)
    # the stream the mvu consumes: sliding windows (or the whole frame for dense)
    if kind == "dense":
        xin, num_pix = x.reshape(frames, -1), 1
    else:
        win = np.asarray(ops.sliding_windows(x, (kh, kw), (sh, sw), pads, pad_value))  # N,OH,OW,KH,KW,C
        num_pix = win.shape[1] * win.shape[2]
        if dw:
            n, oh, ow = win.shape[:3]
            win = win.reshape(n, oh, ow, kh, kw, ifm_ch // simd, simd).transpose(0, 1, 2, 5, 3, 4, 6)
        xin = win.reshape(frames, -1)
    mat = mvu_matrix(wt)
    r = render_mvu(name, mat, pe=pe, simd=simd, w_bits=w_bits, a_bits=a_bits, w_signed=w_signed,
                   a_signed=a_signed, w_bipolar=w_bipolar, a_bipolar=a_bipolar, num_pix=num_pix, depthwise=dw,
                   bias=b, requant=spec, runtime_writable=runtime_writable, use_dsp=use_dsp, ram_style=ram_style,
                   a_range=a_range,
                   ir_params=dict(IFM_CH=ifm_ch, OFM_CH=ofm_ch) if kind == "dense" else
                   dict(IFM_CH=ifm_ch, OFM_CH=ofm_ch, K=kh, STRIDE=sh, IFM_DIM=ih,
                        OFM_DIM=(win.shape[1] if kind != "dense" else 1)))
    rqc = r.extra["rq"]

    def out_frames(acc_):
        y = spec.golden(acc_)
        return frames_of(y, rqc["ob"], bipolar=o_bipolar)

    in_frames = frames_of(xin, a_bits, a_bipolar)
    phases = [dict(**{"in": {"s_axis": in_frames}, "out": {"m_axis": out_frames(acc)}})]
    if runtime_writable:
        # new weights through the configuration port, then the same inputs again
        wt2 = rand_vals(rng, wt.shape, w_bits, w_signed, w_bipolar)
        acc2 = golden_acc(wt2)
        words = mvu_weight_words(mvu_matrix(wt2), pe=pe, simd=simd, w_bits=w_bits, w_bipolar=w_bipolar,
                                 depthwise=dw)
        phases.append(dict(cfg=[list(w) for w in words], **{"in": {"s_axis": in_frames},
                                                             "out": {"m_axis": out_frames(acc2)}}))
    info = dict(kind=kind, pe=pe, simd=simd, w_bits=w_bits, a_bits=a_bits, w_signed=w_signed, a_signed=a_signed,
                w_bipolar=w_bipolar, a_bipolar=a_bipolar, ifm_ch=ifm_ch, ofm_ch=ofm_ch, ifm_dim=(ih, iw), k=(kh, kw),
                stride=(sh, sw), pads=pads, pad_value=pad_value, rq=rq, bias=bias, runtime=runtime_writable,
                mh=mat.shape[0], mw=mat.shape[1], num_pix=num_pix, acc_bits=r.params["ACC_BITS"],
                o_bits=rqc["ob"], use_dsp=use_dsp, w_range=(lo_w, hi_w))
    return Case(name, r, phases, r.cycles_per_frame, info)


# ================================================================================================== swg

def swg_windows(x, k, stride, pads, pad_value, simd, depthwise):
    """The element stream the swg emits: windows in (KH, KW, C) or depthwise (C/SIMD, KH, KW, SIMD) order."""
    win = np.asarray(ops.sliding_windows(x, k, stride, pads, pad_value))  # N,OH,OW,KH,KW,C
    if depthwise:
        n, oh, ow, kh, kw, c = win.shape
        win = win.reshape(n, oh, ow, kh, kw, c // simd, simd).transpose(0, 1, 2, 5, 3, 4, 6)
    return win.reshape(win.shape[0], -1)


def swg_case(name: str, rng, *, ifm_ch: int, ifm_dim, simd: int, a_bits: int, a_signed: bool = False, k=3,
             stride=1, pads=(0, 0, 0, 0), pad_value: int = 0, depthwise: bool = False, frames: int = 3,
             ram_style: str = "auto") -> Case:
    from gen.rtl.swg import render_swg, swg_geometry
    h, w, kh, kw, sh, sw, *_ = swg_geometry(ifm_dim, k, stride, pads)
    x = rand_vals(rng, (frames, h, w, ifm_ch), a_bits, a_signed)
    r = render_swg(name, ifm_ch=ifm_ch, ifm_dim=(h, w), simd=simd, a_bits=a_bits, k=(kh, kw), stride=(sh, sw),
                   pads=pads, pad_value=pad_value, depthwise=depthwise, ram_style=ram_style)
    y = swg_windows(x, (kh, kw), (sh, sw), pads, pad_value, simd, depthwise)
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": frames_of(y, a_bits)}}]
    info = dict(ifm_ch=ifm_ch, ifm_dim=(h, w), simd=simd, a_bits=a_bits, k=(kh, kw), stride=(sh, sw), pads=pads,
                pad_value=pad_value, depthwise=depthwise, nrows=r.extra["nrows"])
    return Case(name, r, phases, r.cycles_per_frame, info)


# ================================================================================================== pool

def pool_case(name: str, rng, *, mode: str, channels: int, simd: int, a_bits: int, a_signed: bool = False,
              ifm_dim=4, k=2, stride=2, pads=(0, 0, 0, 0), pad_value: int | None = None, global_pool: bool = False,
              rq: str = "thresholds", o_bits: int = 4, o_signed: bool = False, frames: int = 3) -> Case:
    """Windowed pools get the swg's depthwise window stream (padding: min code for max, `pad_value` for sum);
    expected outputs come from ops.maxpool / ops.pool_sum on the plain input."""
    from gen.rtl.pool import render_pool
    h, w = (ifm_dim, ifm_dim) if isinstance(ifm_dim, int) else ifm_dim
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    lo, hi = value_range(a_bits, a_signed)
    x = rand_vals(rng, (frames, h, w, channels), a_bits, a_signed)
    if global_pool:
        kh, kw, sh, sw, pads = h, w, 1, 1, (0, 0, 0, 0)
        xin = x.reshape(frames, -1)
        num_pix = 1
    else:
        pv = lo if mode == "max" else (0 if pad_value is None else pad_value)
        xin = swg_windows(x, (kh, kw), (sh, sw), pads, pv, simd, True)
    if mode == "max":
        y = ops.maxpool(x, (kh, kw), (sh, sw), pads)
        spec = None
    else:
        acc = ops.pool_sum(x, (kh, kw), (sh, sw), pads, 0 if pad_value is None else pad_value)
        spec = rand_requant(rng, acc, rq, o_bits, o_signed)
        y = spec.golden(acc)
    num_pix = y.shape[1] * y.shape[2]
    r = render_pool(name, mode=mode, channels=channels, simd=simd, a_bits=a_bits, a_signed=a_signed,
                    kernel=(kh, kw), num_pix=num_pix, global_pool=global_pool, ifm_dim=(h, w), requant=spec)
    ob = r.params["O_BITS"]
    phases = [{"in": {"s_axis": frames_of(xin, a_bits)}, "out": {"m_axis": frames_of(y, ob)}}]
    info = dict(mode=mode, channels=channels, simd=simd, a_bits=a_bits, a_signed=a_signed, ifm_dim=(h, w),
                k=(kh, kw), stride=(sh, sw), pads=pads, pad_value=pad_value, global_pool=global_pool, rq=rq)
    return Case(name, r, phases, r.cycles_per_frame, info)


# ================================================================================================== small kernels

def _hw(d):
    return (d, d) if isinstance(d, int) else tuple(d)


def add_case(name: str, rng, *, channels: int, simd: int, a_bits: int, b_bits: int | None = None,
             a_signed: bool = False, b_signed: bool | None = None, ifm_dim=3, kmax: int = 8, rq: str = "thresholds",
             o_bits: int = 4, o_signed: bool = False, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_add
    b_bits = a_bits if b_bits is None else b_bits
    b_signed = a_signed if b_signed is None else b_signed
    h, w = _hw(ifm_dim)
    a = rand_vals(rng, (frames, h, w, channels), a_bits, a_signed)
    b = rand_vals(rng, (frames, h, w, channels), b_bits, b_signed)
    ka = rng.integers(-kmax, kmax + 1, size=channels)
    kb = rng.integers(-kmax, kmax + 1, size=channels)
    acc = ops.add(a, b, ka, kb)
    spec = rand_requant(rng, acc, rq, o_bits, o_signed)
    r = render_add(name, channels=channels, simd=simd, ka=ka, kb=kb, a_bits=a_bits, b_bits=b_bits, a_signed=a_signed,
                   b_signed=b_signed, requant=spec)
    y = spec.golden(acc)
    phases = [{"in": {"s_axis_a": frames_of(a, a_bits), "s_axis_b": frames_of(b, b_bits)},
               "out": {"m_axis": frames_of(y, r.params["O_BITS"])}}]
    return Case(name, r, phases, h * w * channels // simd,
                dict(channels=channels, simd=simd, a_bits=a_bits, b_bits=b_bits, a_signed=a_signed, b_signed=b_signed,
                     ifm_dim=(h, w), rq=rq))


def concat_case(name: str, rng, *, ch_a: int, ch_b: int, simd: int, a_bits: int, a_signed: bool = False, ifm_dim=3,
                frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_concat
    h, w = _hw(ifm_dim)
    a = rand_vals(rng, (frames, h, w, ch_a), a_bits, a_signed)
    b = rand_vals(rng, (frames, h, w, ch_b), a_bits, a_signed)
    r = render_concat(name, ch_a=ch_a, ch_b=ch_b, simd=simd, a_bits=a_bits, num_pix=h * w)
    y = ops.concat([a, b])
    phases = [{"in": {"s_axis_a": frames_of(a, a_bits), "s_axis_b": frames_of(b, a_bits)},
               "out": {"m_axis": frames_of(y, a_bits)}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(ch_a=ch_a, ch_b=ch_b, simd=simd, a_bits=a_bits,
                                                          ifm_dim=(h, w)))


def upsample_case(name: str, rng, *, ifm_ch: int, simd: int, a_bits: int, ifm_dim=3, factor=2,
                  frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_upsample
    h, w = _hw(ifm_dim)
    f = _hw(factor)
    x = rand_vals(rng, (frames, h, w, ifm_ch), a_bits, False)
    r = render_upsample(name, ifm_ch=ifm_ch, ifm_dim=(h, w), simd=simd, a_bits=a_bits, factor=f)
    y = ops.upsample(x, f)
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": frames_of(y, a_bits)}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(ifm_ch=ifm_ch, simd=simd, a_bits=a_bits, ifm_dim=(h, w),
                                                          factor=f))


def dwc_case(name: str, rng, *, in_simd: int, out_simd: int, a_bits: int, n_elems: int, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_dwc
    x = rand_vals(rng, (frames, n_elems), a_bits, False)
    r = render_dwc(name, in_simd=in_simd, out_simd=out_simd, a_bits=a_bits, n_elems=n_elems)
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": frames_of(x, a_bits)}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(in_simd=in_simd, out_simd=out_simd, a_bits=a_bits,
                                                          n_elems=n_elems))


def fifo_case(name: str, rng, *, depth: int, lanes: int, bits: int, style: str = "auto", ram_style: str = "auto",
              frame_beats: int = 20, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_fifo
    x = rand_vals(rng, (frames, frame_beats * lanes), bits, False)
    r = render_fifo(name, depth=depth, width=lanes * bits, style=style, lanes=lanes, ram_style=ram_style)
    phases = [{"in": {"s_axis": frames_of(x, bits)}, "out": {"m_axis": frames_of(x, bits)}}]
    # a one-entry FIFO (ready = not full) alternates push and pop: half rate
    per = frame_beats * (2 if r.extra["capacity"] == 1 else 1)
    return Case(name, r, phases, per, dict(depth=depth, lanes=lanes, bits=bits, style=r.extra["style"],
                                           ram_style=r.extra.get("ram_style"), capacity=r.extra["capacity"]))


def fork_case(name: str, rng, *, n: int, width: int, frame_beats: int = 20, frames: int = 3) -> Case:
    """gen_axis_fork: every output gets every frame unchanged (each sink with its own random back-pressure)."""
    from gen.rtl.shell import render_fork
    x = rand_vals(rng, (frames, frame_beats), width, False)
    r = render_fork(name, n=n, width=width)
    fr = frames_of(x, width)
    phases = [{"in": {"s_axis": fr}, "out": {f"m{i}_axis": fr for i in range(n)}}]
    return Case(name, r, phases, frame_beats, dict(n=n, width=width, frame_beats=frame_beats))


def label_select_case(name: str, rng, *, ifm_dim=1, channels: int = 10, simd: int = 1, a_bits: int = 8,
                      a_signed: bool = False, k: int = 1, spread: int | None = None, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_label_select
    h, w = _hw(ifm_dim)
    lo, hi = value_range(a_bits, a_signed)
    if spread:  # few distinct values: many ties
        base = int(rng.integers(lo, max(lo, hi - spread) + 1))
        x = rng.integers(base, min(hi, base + spread) + 1, size=(frames, h, w, channels))
    else:
        x = rand_vals(rng, (frames, h, w, channels), a_bits, a_signed)
    n = h * w * channels
    r = render_label_select(name, n_elems=n, simd=simd, a_bits=a_bits, a_signed=a_signed, k=k)
    y = ops.label_select(x, k)
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": [list(map(int, f)) for f in y]}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(n=n, simd=simd, a_bits=a_bits, a_signed=a_signed, k=k,
                                                          spread=spread))


def lut_act_case(name: str, rng, *, simd: int, a_bits: int, a_signed: bool, o_bits: int, o_signed: bool = False,
                 ifm_dim=2, channels: int | None = None, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_lut_act
    h, w = _hw(ifm_dim)
    c = channels or simd * 2
    lo, hi = value_range(a_bits, a_signed)
    olo, ohi = value_range(o_bits, o_signed)
    table = rng.integers(olo, ohi + 1, size=hi - lo + 1)
    x = rand_vals(rng, (frames, h, w, c), a_bits, a_signed)
    r = render_lut_act(name, simd=simd, a_bits=a_bits, a_signed=a_signed, table=table, in_lo=lo, o_bits=o_bits,
                       o_signed=o_signed)
    y = ops.lut(x, table, lo)
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": frames_of(y, o_bits)}}]
    return Case(name, r, phases, h * w * c // simd, dict(simd=simd, a_bits=a_bits, a_signed=a_signed, o_bits=o_bits))


def requant_case(name: str, rng, *, channels: int, simd: int, in_bits: int, rq: str, o_bits: int,
                 o_signed: bool = False, ifm_dim=2, o_bipolar: bool = False, frames: int = 3) -> Case:
    from gen.rtl.elementwise import render_requant
    h, w = _hw(ifm_dim)
    x = rand_vals(rng, (frames, h, w, channels), in_bits, True)
    spec = rand_requant(rng, x, rq, o_bits, o_signed, bipolar=o_bipolar)
    r = render_requant(name, channels=channels, simd=simd, in_bits=in_bits, requant=spec)
    y = spec.golden(x)
    phases = [{"in": {"s_axis": frames_of(x, in_bits)},
               "out": {"m_axis": frames_of(y, r.params["O_BITS"], bipolar=o_bipolar)}}]
    return Case(name, r, phases, h * w * channels // simd, dict(channels=channels, simd=simd, in_bits=in_bits, rq=rq,
                                                                o_bits=o_bits))


# ================================================================================================== chains

def chain_case(name: str, rng, *, kind: str, ifm_ch: int, ifm_dim, simd: int, a_bits: int, k=3, stride=1,
               pads=(0, 0, 0, 0), pad_value: int = 0, pe: int = 1, ofm_ch: int = 4, w_bits: int = 4,
               o_bits: int = 4, frames: int = 3) -> Case:
    """swg -> mvu (conv), swg -> mvu (depthwise), swg -> pool (max / average): the composition against the plain
    golden layer (ops.conv / ops.maxpool / ops.pool_sum + requant) on the unwindowed input."""
    from gen.rtl.chain import render_chain
    from gen.rtl.mvu import mvu_matrix, render_mvu
    from gen.rtl.pool import render_pool
    from gen.rtl.swg import render_swg, swg_geometry
    h, w, kh, kw, sh, sw, *_ , oh, ow = swg_geometry(ifm_dim, k, stride, pads)
    x = rand_vals(rng, (frames, h, w, ifm_ch), a_bits, False)
    dw = kind in ("dwconv", "maxpool", "avgpool")
    pv = 0 if kind == "maxpool" else pad_value  # unsigned codes: 0 is the minimum
    swg = render_swg(name + "_swg", ifm_ch=ifm_ch, ifm_dim=(h, w), simd=simd, a_bits=a_bits, k=(kh, kw),
                     stride=(sh, sw), pads=pads, pad_value=pv, depthwise=dw)
    if kind in ("conv", "dwconv"):
        shape = (ifm_ch, kh, kw, 1) if dw else (ofm_ch, kh, kw, ifm_ch)
        wt = rand_vals(rng, shape, w_bits, True)
        acc = ops.conv(x, wt, (sh, sw), pads, groups=ifm_ch if dw else 1, pad_value=pad_value)
        spec = rand_requant(rng, acc, "thresholds", o_bits, False)
        y = spec.golden(acc)
        second = render_mvu(name + "_mvu", mvu_matrix(wt), pe=simd if dw else pe, simd=simd, w_bits=w_bits,
                            a_bits=a_bits, num_pix=oh * ow, depthwise=dw, requant=spec)
    elif kind == "maxpool":
        y = ops.maxpool(x, (kh, kw), (sh, sw), pads)
        second = render_pool(name + "_pool", mode="max", channels=ifm_ch, simd=simd, a_bits=a_bits, kernel=(kh, kw),
                             num_pix=oh * ow)
    else:
        acc = ops.pool_sum(x, (kh, kw), (sh, sw), pads, pad_value)
        spec = rand_requant(rng, acc, "thresholds", o_bits, False)
        y = spec.golden(acc)
        second = render_pool(name + "_pool", mode="sum", channels=ifm_ch, simd=simd, a_bits=a_bits, kernel=(kh, kw),
                             num_pix=oh * ow, requant=spec)
    r = render_chain(name, [swg, second])
    ob = second.params["O_BITS"]
    phases = [{"in": {"s_axis": frames_of(x, a_bits)}, "out": {"m_axis": frames_of(y, ob)}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(kind=kind, ifm_ch=ifm_ch, ifm_dim=(h, w), simd=simd,
                                                          k=(kh, kw), stride=(sh, sw), pads=pads, pe=pe))
