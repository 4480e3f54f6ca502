"""Pooling unit: max or sum (-> requant) over swg windows (depthwise order) or over the whole frame (global)."""

from __future__ import annotations

from .common import (
    Port,
    Rendered,
    Stream,
    axis_ports,
    clog2,
    header,
    module_name,
    pow2_at_least,
    ram_style_for,
    render_template,
    sbits,
    value_range,
)
from .requant import RequantSpec, requant_ctx


def render_pool(layer: str, *, mode: str, channels: int, simd: int, a_bits: int, a_signed: bool = False,
                kernel=(2, 2), num_pix: int = 1, global_pool: bool = False, ifm_dim=None,
                requant: RequantSpec | None = None) -> Rendered:
    """mode "max": ops.maxpool; mode "sum": ops.pool_sum followed by `requant` (thresholds for an average).

    Windowed (default): the input is an swg's depthwise-order stream (per output pixel: C/SIMD folds x
    K_H*K_W beats) and `num_pix` output pixels make a frame. Global: the input is the plain NHWC stream of an
    `ifm_dim` frame, reduced to one pixel."""
    assert mode in ("max", "sum")
    assert channels % simd == 0
    cf = channels // simd
    if global_pool:
        h, w = (ifm_dim, ifm_dim) if isinstance(ifm_dim, int) else ifm_dim
        reduce_n, num_pix = h * w, 1
        counters = [dict(name="pix", n=reduce_n), dict(name="cf", n=cf)]
        red = "pix"
    else:
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        reduce_n = kh * kw
        counters = [dict(name="pix", n=num_pix), dict(name="cf", n=cf), dict(name="kk", n=reduce_n)]
        red = "kk"
    for i, c in enumerate(counters):
        c["carry"] = " && ".join(f"last_{d['name']}" for d in counters[i + 1:] if d["n"] > 1)
    lo, hi = value_range(a_bits, a_signed)
    if mode == "max":
        acc_bits = a_bits if a_signed else a_bits + 1
        requant = RequantSpec("none")
        rq = dict(ob=a_bits, lat=0, mode="none", idxw=0)
        o_bits = a_bits
    else:
        acc_bits = sbits(reduce_n * lo, reduce_n * hi)
        requant = requant or RequantSpec("none")
        rq = requant_ctx(requant, channels, simd, reduce_n * lo, reduce_n * hi, acc_bits, din="res_d",
                         din_valid="res_v", din_idx="res_i", din_last="res_t")
        o_bits = rq["ob"]
    lat = 1 + rq["lat"]
    oq_depth = pow2_at_least(lat + 2)
    name = module_name("pool", layer)
    params = dict(CHANNELS=channels, SIMD=simd, A_BITS=a_bits, ACC_BITS=acc_bits, O_BITS=o_bits, CF=cf,
                  REDUCE=reduce_n, NUM_PIX=num_pix, GLOBAL=int(global_pool))
    rq_uses_idx = mode == "sum" and requant.mode != "none" and cf > 1
    ctx = dict(name=name, params=params, header=header("pool", name, layer, params,
               f"mode {mode}; analytic cycles per frame = input beats = {num_pix * cf * reduce_n}."),
               MAX=mode == "max", GLOBAL=global_pool, SIMD=simd, A_BITS=a_bits, A_SIGNED=a_signed, ACC_BITS=acc_bits,
               O_BITS=o_bits, CF=cf, REDUCE=reduce_n, NUM_PIX=num_pix, COUNTERS=counters, RED=red, RQ=rq,
               RQ_MODE=requant.mode, RQ_USES_IDX=rq_uses_idx,
               ACC_RAM_STYLE=ram_style_for(cf * simd * acc_bits, cf, "auto" if cf * simd * acc_bits > 64 else
                                           "registers").replace("block", "distributed"),
               OQ=dict(width=simd * o_bits, depth=oq_depth, aw=clog2(oq_depth), lat=lat,
                       reserve="(fire && last)", push="rq_valid", push_data="rq_dout", push_last="rq_last"))
    sv = render_template("pool.sv.j2", **ctx)
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", simd * a_bits) + \
        axis_ports("m_axis", "out", simd * o_bits)
    r = Rendered("pool", name, sv, {}, ports, [Stream("s_axis", "in", simd, a_bits),
                                                Stream("m_axis", "out", simd, o_bits)],
                 params, cycles_per_frame=num_pix * cf * reduce_n)
    r.extra = dict(rq=rq)
    return r
