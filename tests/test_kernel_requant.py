"""requant: standalone requantiser, thresholds (binary search) or multiplier/shift, exact."""

import math  # noqa: F401

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.golden import ops
from gen.rtl.requant import RequantSpec, requant_ctx
from gen.sim.cases import requant_case
from gen.sim.testing import cached, kernel_tests


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    c = int(rng.choice([1, 2, 3, 4, 6, 8]))
    rq = str(rng.choice(["thresholds", "multshift"]))
    return dict(channels=c, simd=int(rng.choice(_divisors(c))), in_bits=int(rng.integers(2, 24)), rq=rq,
                o_bits=int(rng.choice([1, 2, 3, 4])) if rq == "thresholds" else int(rng.choice([2, 4, 8])),
                o_signed=bool(rng.random() < 0.4), ifm_dim=(int(rng.integers(1, 4)), int(rng.integers(1, 4))))


EDGE = [
    dict(channels=4, simd=2, in_bits=12, rq="thresholds", o_bits=4),
    dict(channels=3, simd=3, in_bits=16, rq="multshift", o_bits=8, o_signed=True),
    dict(channels=2, simd=1, in_bits=8, rq="thresholds", o_bits=1, o_bipolar=True),   # sign -> bipolar
    dict(channels=8, simd=4, in_bits=20, rq="thresholds", o_bits=8, o_signed=True),   # 255 thresholds
    dict(channels=1, simd=1, in_bits=2, rq="thresholds", o_bits=2),
    dict(channels=6, simd=2, in_bits=10, rq="multshift", o_bits=4),
]

N_RANDOM = 24
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(101)
    cases = [requant_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(102)
    return cases + [requant_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(103)
    return [requant_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("requant", default_cases, slow_cases, len(EDGE) + N_RANDOM))


# ---------------------------------------------------------------------------------------------------------------
# The binary-search tables the hardware uses, checked exhaustively in Python over the whole input range.


def _model(r, x, channels):
    """What the RTL computes, stage by stage, from the tables requant_ctx() renders."""
    lanes, B = r["lanes"], r["stages"]
    neg = np.zeros(channels, bool)
    if r["neg_mode"] == "all":
        neg[:] = True
    elif r["neg_mode"] == "rom":
        for i, w in enumerate(r["neg_words"]):
            for lane in range(lanes):
                neg[i * lanes + lane] = bool((w >> lane) & 1)
    out = np.zeros((len(x), channels), dtype=np.int64)
    for c in range(channels):
        idx, lane = divmod(c, lanes)
        v = -x if neg[c] else x
        pos = np.zeros(len(x), dtype=np.int64)
        for s in range(B):
            t = np.asarray(r["stage_tables"][s][lane])[idx * (1 << s) + (pos >> (B - s))]
            pos += np.where(v >= t, 1 << (B - 1 - s), 0)
        out[:, c] = pos + r["out_lo"]
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_threshold_tables_exhaustive(data):
    channels = data.draw(st.sampled_from([1, 2, 3, 4, 6]))
    lanes = data.draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    in_bits = data.draw(st.integers(2, 9))
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    k = data.draw(st.integers(0, 15))
    per_tensor = data.draw(st.booleans())
    rows = 1 if per_tensor else channels
    T = np.sort(np.array(data.draw(st.lists(st.integers(lo - 40, hi + 40), min_size=rows * k, max_size=rows * k)),
                         dtype=np.int64).reshape(rows, k), axis=1)
    neg = np.zeros(channels, bool) if per_tensor else np.array(
        data.draw(st.lists(st.booleans(), min_size=channels, max_size=channels)), bool)
    out_lo = data.draw(st.integers(-8, 3))
    spec = RequantSpec("thresholds", thresholds=T, negate=neg, out_lo=out_lo)
    r = requant_ctx(spec, channels, lanes, lo, hi, in_bits, "d", "v", "i", "l")
    x = np.arange(lo, hi + 1, dtype=np.int64)
    want = ops.requant_thresholds(np.repeat(x[:, None], channels, 1), T, neg, out_lo)
    assert np.array_equal(_model(r, x, channels), want)
