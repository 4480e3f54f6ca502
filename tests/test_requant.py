"""Thresholds from exact preimages / float32 bisection equal brute-force evaluation on the whole input range."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.golden import ops
from gen.ir.elementwise import Affine, Arith, Clip, LeakyRelu, Relu, Round, chain_exact, chain_f32
from gen.ir.requant import find_multshift, thresholds_exact, thresholds_f32


@st.composite
def chains(draw):
    C = draw(st.integers(1, 3))
    a = [Fraction(draw(st.floats(-2, 2, width=32).filter(lambda v: abs(v) > 1e-3))) for _ in range(C)]
    b = [Fraction(draw(st.floats(-20, 20, width=32))) for _ in range(C)]
    act = draw(st.sampled_from([[], [Relu()], [LeakyRelu(0.125)], [Clip(-3.0, 5.0)]]))
    s = draw(st.floats(0.0625, 4, width=32))
    zp = draw(st.integers(-3, 3))
    bits = draw(st.integers(1, 6))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if draw(st.booleans()) else (0, (1 << bits) - 1)
    mode = draw(st.sampled_from(["ROUND", "FLOOR", "CEIL", "HALF_UP", "DOWN", "UP"]))
    code = [Arith("div", np.float32(s)), Arith("add", np.float32(zp)), Clip(lo, hi), Round(mode)]
    return C, [Affine(a, b)] + act + code, lo, hi


@settings(max_examples=60, deadline=None)
@given(chains(), st.integers(-300, 0), st.integers(1, 300))
def test_exact_thresholds_match_bruteforce(ch, xlo, xhi):
    C, chain, lo, hi = ch
    T, neg, _ = thresholds_exact(chain, C, lo, hi, xlo, xhi)
    xs = np.arange(xlo, xhi + 1)
    got = ops.requant_thresholds(np.repeat(xs[:, None], C, 1), T, neg, lo)
    want = np.array([[int(chain_exact(chain, c, int(x))) for c in range(C)] for x in xs])
    assert np.array_equal(got, want)
    ms = find_multshift(T, neg, lo, xlo, xhi)
    if ms is not None:
        m, off, sh = ms
        assert np.array_equal(ops.requant_multshift(np.repeat(xs[:, None], C, 1), m, sh, off, lo, hi), want)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0001220703125, 1.0, width=32), st.integers(-10, 10), st.booleans())
def test_f32_thresholds_match_bruteforce(m, zp, signed):
    lo, hi = (-128, 127) if signed else (0, 255)
    chain = [Arith("mul", np.float32(m)), Round("ROUND"), Arith("add", np.float32(zp)), Clip(lo, hi)]
    T, neg = thresholds_f32(chain, 1, lo, hi, -5000, 5000)
    xs = np.arange(-5000, 5001)
    want = chain_f32(chain, xs.astype(np.float64)[:, None]).astype(np.int64)
    got = ops.requant_thresholds(xs[:, None], T, neg, lo)
    assert np.array_equal(got, want)
