"""mvu (matrix-vector unit): RTL == ops.conv / ops.dense (+ bias) + requant, bit for bit; throughput."""

import numpy as np
import pytest

from gen.rtl.common import value_range
from gen.sim.cases import mvu_case
from gen.sim.testing import cached, check_sim, lint_rendered, shards


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    kind = str(rng.choice(["conv", "conv", "conv", "dense", "dw"]))
    wb, ab = int(rng.choice([1, 2, 4, 8])), int(rng.choice([1, 2, 4, 8]))
    w_bip = wb == 1 and rng.random() < 0.7
    a_bip = ab == 1 and rng.random() < 0.7
    p = dict(kind=kind, w_bits=wb, a_bits=ab, w_bipolar=w_bip, a_bipolar=a_bip,
             w_signed=(not w_bip) and wb > 1 and rng.random() < 0.7,
             a_signed=(not a_bip) and ab > 1 and rng.random() < 0.4, bias=bool(rng.random() < 0.4))
    if kind == "dense":
        ih = iw = int(rng.integers(1, 3))
        ic, oc = int(rng.integers(1, 7)), int(rng.integers(1, 11))
        p.update(ifm_dim=(ih, iw), ifm_ch=ic, ofm_ch=oc, k=1)
        mw = ih * iw * ic
        p["simd"] = int(rng.choice(_divisors(mw)))
        p["pe"] = int(rng.choice(_divisors(oc)))
    else:
        k = int(rng.choice([1, 2, 3]))
        s = int(rng.choice([1, 1, 2, 3]))
        pads = tuple(int(x) for x in rng.integers(0, k, size=4)) if rng.random() < 0.5 else (0, 0, 0, 0)
        ih = int(rng.integers(max(k, 2), 7))
        iw = int(rng.integers(max(k, 2), 7))
        ic = int(rng.choice([1, 2, 3, 4, 6, 8]))
        p.update(k=k, stride=s, pads=pads, ifm_dim=(ih, iw), ifm_ch=ic,
                 pad_value=int(rng.integers(0, 3)) if (ab > 1 and not p["a_signed"]) else 0)
        if kind == "dw":
            p["pe"] = p["simd"] = int(rng.choice(_divisors(ic)))
        else:
            oc = int(rng.integers(1, 9))
            p["ofm_ch"] = oc
            p["pe"] = int(rng.choice(_divisors(oc)))
            p["simd"] = int(rng.choice(_divisors(ic) + ([k * k * ic] if rng.random() < 0.3 else [])))
        if a_bip:
            p["pads"] = (0, 0, 0, 0)  # a bipolar stream has no zero to pad with
    rq = str(rng.choice(["none", "thresholds", "thresholds", "multshift"]))
    p["rq"] = rq
    if rq == "thresholds":
        p["o_bits"] = int(rng.choice([1, 2, 3, 4]))
        p["o_signed"] = bool(rng.random() < 0.4) and p["o_bits"] > 1
        p["o_bipolar"] = bool(rng.random() < 0.15)
    elif rq == "multshift":
        p["o_bits"] = int(rng.choice([4, 8]))
        p["o_signed"] = bool(rng.random() < 0.5)
    if wb == 8 and ab == 8 and rng.random() < 0.3:
        p["use_dsp"] = False
    if not a_bip and ab > 1 and rng.random() < 0.3:  # a narrower activation range (holding the pad value)
        lo, hi = value_range(ab, p["a_signed"])
        a, b = sorted(int(v) for v in rng.integers(lo, hi + 1, size=2))
        pv = p.get("pad_value", 0)
        p["a_range"] = (min(a, pv), max(b, pv, min(a, pv) + 1))
    return p


EDGE = [
    # PE=1, SIMD=1: fully folded
    dict(kind="conv", pe=1, simd=1, w_bits=4, a_bits=4, ifm_ch=2, ofm_ch=3, ifm_dim=4, k=3, rq="thresholds"),
    # SIMD = whole window, PE = all channels: NF = SF = 1
    dict(kind="conv", pe=4, simd=18, w_bits=2, a_bits=2, ifm_ch=2, ofm_ch=4, ifm_dim=4, k=3, rq="thresholds",
         o_bits=2),
    # k = 1, stride > k
    dict(kind="conv", pe=2, simd=2, w_bits=4, a_bits=4, w_signed=True, a_signed=True, ifm_ch=4, ofm_ch=4, ifm_dim=5,
         k=1, stride=2, rq="none"),
    # odd sizes, padding with a non-zero zero point
    dict(kind="conv", pe=5, simd=3, w_bits=4, a_bits=4, ifm_ch=3, ofm_ch=5, ifm_dim=(5, 3), k=3, stride=1,
         pads=(1, 2, 1, 0), pad_value=7, rq="thresholds", o_bits=3, o_signed=True, bias=True),
    # 1-bit: XNOR-popcount with bipolar output
    dict(kind="conv", pe=4, simd=4, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=8, ofm_ch=8,
         ifm_dim=4, k=3, rq="thresholds", o_bipolar=True),
    # bipolar weights x 4-bit activations, binary {0,1} activations x 2-bit weights
    dict(kind="conv", pe=2, simd=4, w_bits=1, a_bits=4, w_bipolar=True, ifm_ch=4, ofm_ch=4, ifm_dim=3, k=2,
         rq="thresholds"),
    dict(kind="conv", pe=2, simd=2, w_bits=2, a_bits=1, w_signed=True, ifm_ch=2, ofm_ch=2, ifm_dim=4, k=3,
         rq="thresholds", o_bits=2),
    dict(kind="conv", pe=2, simd=2, w_bits=2, a_bits=1, a_bipolar=True, w_signed=True, ifm_ch=4, ofm_ch=2,
         ifm_dim=3, k=2, rq="none"),
    # 8-bit: DSP multiply with multiplier/shift, and the same in LUTs
    dict(kind="conv", pe=2, simd=4, w_bits=8, a_bits=8, a_signed=True, ifm_ch=4, ofm_ch=4, ifm_dim=4, k=2,
         rq="multshift", o_bits=8, o_signed=True, bias=True),
    dict(kind="dense", pe=2, simd=8, w_bits=8, a_bits=8, ifm_ch=8, ofm_ch=6, ifm_dim=2, k=1, rq="multshift",
         o_bits=8, use_dsp=False),
    # dense, raw accumulators out
    dict(kind="dense", pe=3, simd=5, w_bits=4, a_bits=2, ifm_ch=5, ofm_ch=9, ifm_dim=(1, 3), k=1, rq="none",
         bias=True),
    # depthwise, stride 2, padding with zero point 1
    dict(kind="dw", pe=2, simd=2, w_bits=4, a_bits=4, ifm_ch=6, ifm_dim=5, k=3, stride=2, pads=(1, 1, 1, 1),
         pad_value=1, rq="thresholds", bias=True),
    dict(kind="dw", pe=1, simd=1, w_bits=2, a_bits=8, ifm_ch=3, ifm_dim=4, k=2, rq="multshift", o_bits=4),
    # run-time weight update through the configuration port
    dict(kind="conv", pe=2, simd=2, w_bits=4, a_bits=4, ifm_ch=2, ofm_ch=4, ifm_dim=3, k=2, rq="thresholds",
         runtime_writable=True),
    dict(kind="dense", pe=1, simd=4, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=8, ofm_ch=3,
         ifm_dim=1, k=1, rq="none", runtime_writable=True),
    # NF > 1 with SF = 1 (the input buffer replays single beats)
    dict(kind="conv", pe=1, simd=4, w_bits=4, a_bits=4, ifm_ch=4, ofm_ch=3, ifm_dim=3, k=1, rq="thresholds"),
    # narrowed datapath (the activation range is known): CNV-W2A2-like {-1, 0, 1} x {-1, 0, 1} (products in 2
    # bits), an unsigned 4-bit range [3, 9] padded with 5, bipolar weights x 3-bit codes in [1, 6]
    dict(kind="conv", pe=4, simd=12, w_bits=2, a_bits=2, w_signed=True, a_signed=True, ifm_ch=4, ofm_ch=8,
         ifm_dim=4, k=3, pads=(1, 1, 1, 1), rq="thresholds", o_bits=2, o_signed=True, a_range=(-1, 1),
         w_range=(-1, 1)),
    dict(kind="conv", pe=2, simd=6, w_bits=4, a_bits=4, w_signed=True, ifm_ch=6, ofm_ch=4, ifm_dim=4, k=2,
         pads=(1, 0, 0, 1), pad_value=5, rq="thresholds", a_range=(3, 9), bias=True),
    dict(kind="dense", pe=2, simd=10, w_bits=1, a_bits=3, w_bipolar=True, ifm_ch=10, ofm_ch=4, ifm_dim=2, k=1,
         rq="none", a_range=(1, 6)),
    # lane pairs (bipolar weights x multi-bit activations, a binarised net's first layer): odd SIMD (a single
    # last lane), per-channel corrections with a bias and NF > 1, signed activations, a block-RAM weight memory
    dict(kind="conv", pe=2, simd=9, w_bits=1, a_bits=8, w_bipolar=True, ifm_ch=3, ofm_ch=4, ifm_dim=4, k=3,
         rq="thresholds", bias=True),
    dict(kind="dense", pe=1, simd=5, w_bits=1, a_bits=4, w_bipolar=True, a_signed=True, ifm_ch=10, ofm_ch=3,
         ifm_dim=1, k=1, rq="none"),
    dict(kind="conv", pe=4, simd=27, w_bits=1, a_bits=8, w_bipolar=True, ifm_ch=3, ofm_ch=8, ifm_dim=4, k=3,
         rq="none", ram_style="block"),
    # ternary weights x wide activations (select and negate per lane): a W2A2 net's 8-bit first layer with a
    # bias and NF > 1, signed 4-bit activations x {-1, 0, 1} weights held in 4-bit codes
    dict(kind="conv", pe=2, simd=9, w_bits=2, a_bits=8, w_signed=True, ifm_ch=3, ofm_ch=4, ifm_dim=4, k=3,
         rq="thresholds", bias=True, w_range=(-1, 1)),
    dict(kind="dense", pe=1, simd=5, w_bits=4, a_bits=4, w_signed=True, a_signed=True, ifm_ch=10, ofm_ch=3,
         ifm_dim=1, k=1, rq="none", w_range=(-1, 1)),
    # compressor trees (>= 6 unsigned group sums): XNOR conv (12 groups), XNOR dense with a short last group and
    # SF > 1, unsigned 2-bit weights x {0, 1} activations
    dict(kind="conv", pe=2, simd=36, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=4, ofm_ch=4,
         ifm_dim=4, k=3, rq="thresholds", o_bipolar=True),
    dict(kind="dense", pe=2, simd=64, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=128, ofm_ch=4,
         ifm_dim=1, k=1, rq="none"),
    dict(kind="dense", pe=1, simd=24, w_bits=2, a_bits=1, w_signed=False, ifm_ch=48, ofm_ch=3, ifm_dim=1, k=1,
         rq="none"),
    # weight memory kinds: block RAM ($readmemh), the bit-sliced LUT ROM (here 3 PE x 12 words), registers
    dict(kind="conv", pe=2, simd=4, w_bits=4, a_bits=4, ifm_ch=4, ofm_ch=4, ifm_dim=4, k=3, rq="thresholds",
         ram_style="block"),
    dict(kind="conv", pe=3, simd=3, w_bits=2, a_bits=2, ifm_ch=3, ofm_ch=6, ifm_dim=4, k=2, rq="none",
         ram_style="distributed"),
    dict(kind="dense", pe=2, simd=2, w_bits=4, a_bits=4, ifm_ch=4, ofm_ch=4, ifm_dim=1, k=1, rq="none",
         ram_style="registers"),
    # weight-folded first-stage tables (LUT6_2 / LUT6 primitives): XNOR over 4 words with a short last group
    # (3 + 3 + 2 lanes), XNOR over 8 words (six-input LUT6s), one-word weights (not folded), 2-bit signed weights x
    # {0, 1} activations (the unsigned 2-bit x 2-bit case below takes one lane per table)
    dict(kind="dense", pe=2, simd=8, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=16, ofm_ch=4,
         ifm_dim=1, k=1, rq="thresholds", o_bipolar=True),
    dict(kind="dense", pe=2, simd=16, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=32, ofm_ch=8,
         ifm_dim=1, k=1, rq="none", ram_style="distributed"),
    dict(kind="dense", pe=4, simd=12, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=12, ofm_ch=4,
         ifm_dim=1, k=1, rq="thresholds"),
    dict(kind="dense", pe=2, simd=6, w_bits=2, a_bits=1, w_signed=True, ifm_ch=12, ofm_ch=4, ifm_dim=1, k=1,
         rq="none", bias=True),
    # packed weight ROM (two 24-word columns per LUT6_2) under XNOR group tables
    dict(kind="dense", pe=2, simd=8, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True, ifm_ch=48, ofm_ch=8,
         ifm_dim=1, k=1, rq="thresholds", o_bipolar=True),
    # 8-bit thresholds (255 per channel)
    dict(kind="conv", pe=2, simd=2, w_bits=2, a_bits=8, ifm_ch=2, ofm_ch=2, ifm_dim=3, k=1, rq="thresholds",
         o_bits=8),
]

N_RANDOM = 24
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(20240611)
    cases = [mvu_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(7)
    cases += [mvu_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]
    return cases


@cached
def slow_cases():
    rng = np.random.default_rng(99)
    return [mvu_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


@pytest.mark.parametrize("idx", range(len(EDGE) + N_RANDOM))
def test_mvu_lint(idx):
    lint_rendered(default_cases()[idx].rendered)


@pytest.mark.parametrize("shard", [0, 1])
def test_mvu_exact_and_cycles(shard):
    """No back-pressure: bit-exact, and cycles per frame within 5% of MH/PE * MW/SIMD * pixels."""
    cases = default_cases()
    check_sim("tb_mvu", cases, select=shards(len(cases), 2)[shard], cycles_tol=0.05, tag="nobp")


@pytest.mark.parametrize("shard", [0, 1])
def test_mvu_backpressure(shard):
    """Random sink back-pressure and random source gaps: still bit-exact."""
    cases = default_cases()
    check_sim("tb_mvu", cases, select=shards(len(cases), 2)[shard], bp=0.5, gap=0.3, seed=3 + shard, tag="bp")


@pytest.mark.slow
@pytest.mark.parametrize("idx", range(N_SLOW))
def test_mvu_lint_slow(idx):
    lint_rendered(slow_cases()[idx].rendered)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nobp", "bp"])
def test_mvu_sweep_slow(mode):
    cases = slow_cases()
    if mode == "nobp":
        check_sim("tb_mvu_slow", cases, cycles_tol=0.05, tag=mode)
    else:
        check_sim("tb_mvu_slow", cases, bp=0.6, gap=0.4, seed=11, tag=mode)


def test_known_ranges_narrow_the_datapath():
    """Weights and activations in {-1, 0, 1} (Brevitas narrow 2-bit): 2-bit products and a smaller accumulator
    than the full 2-bit code range would need; XNOR lanes are summed three at a time by one table."""
    from gen.rtl.mvu import render_mvu
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, size=(8, 64))
    full = render_mvu("full", w, pe=2, simd=16, w_bits=2, a_bits=2, w_signed=True, a_signed=True)
    narrow = render_mvu("narrow", w, pe=2, simd=16, w_bits=2, a_bits=2, w_signed=True, a_signed=True,
                        a_range=(-1, 1))
    assert narrow.params["ACC_BITS"] < full.params["ACC_BITS"]
    assert "logic signed [1:0] tr0" in narrow.sv and "logic signed [1:0] tr0" not in full.sv
    with pytest.raises(AssertionError, match="outside"):
        render_mvu("bad", w, pe=2, simd=16, w_bits=2, a_bits=2, w_signed=True, a_signed=True, a_range=(-3, 1))
    x = render_mvu("x", np.where(w > 0, 1, -1), pe=2, simd=16, w_bits=1, a_bits=1, w_bipolar=True, a_bipolar=True)
    # 16 lanes = 5 groups of 3 + 1, one LUT6 per bit of each 2-bit group sum
    assert x.extra["group"] == 3 and x.sv.count("LUT6 #(") - x.sv.count("u_k") == 6 * 2
    assert "wire [1:0] gs5;" in x.sv and "gs6" not in x.sv


def test_lut_primitive_modes_are_exercised():
    """The edge cases above really take the weight-folded and the packed-ROM paths (else the simulations
    would not test them)."""
    cases = default_cases()
    folded = [c.rendered for c in cases if c.rendered.extra.get("folded")]
    packed = [c.rendered for c in cases if not c.rendered.extra.get("folded") and "LUT6_2 #(" in c.rendered.sv]
    assert len(folded) >= 5 and any("LUT6 #(" in r.sv for r in folded) and any("LUT6_2 #(" in r.sv for r in folded)
    assert any(r.params["NF"] * r.params["SF"] == 24 for r in packed)
    assert any(r.extra["group"] == 1 for r in folded) and any(r.extra["group"] == 3 for r in folded)
