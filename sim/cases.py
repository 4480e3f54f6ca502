"""Random test cases per kernel: render the kernel, draw inputs, compute the golden outputs with gen/golden/ops.py.

Each `*_case` function returns a sim.harness.Case whose frames are raw element codes (lane order = element
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
             use_dsp=None, ram_style: str = "auto") -> Case:
    from gen.rtl.mvu import mvu_matrix, mvu_weight_words, render_mvu
    ih, iw = (ifm_dim, ifm_dim) if isinstance(ifm_dim, int) else ifm_dim
    kh, kw = (k, k) if isinstance(k, int) else k
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    x = rand_vals(rng, (frames, ih, iw, ifm_ch), a_bits, a_signed, a_bipolar)
    dw = kind == "dw"
    if kind == "dense":
        wt = rand_vals(rng, (ofm_ch, ih * iw * ifm_ch), w_bits, w_signed, w_bipolar)
    elif dw:
        ofm_ch = ifm_ch
        wt = rand_vals(rng, (ifm_ch, kh, kw, 1), w_bits, w_signed, w_bipolar)
    else:
        wt = rand_vals(rng, (ofm_ch, kh, kw, ifm_ch), w_bits, w_signed, w_bipolar)
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
