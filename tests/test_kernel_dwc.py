"""dwc (library module gen_dwc): stream width converter, identity on the element stream - gather, split (power
of two and not) and shift buffer (non-integer ratios, equal widths). Library lint / $error checks:
tests/test_rtllib.py."""

import math

import numpy as np

from gen.rtl.elementwise import dwc_mode
from gen.sim.cases import dwc_case
from gen.sim.testing import cached, kernel_tests


def random_params(rng) -> dict:
    i, o = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    lcm = i * o // math.gcd(i, o)
    return dict(in_simd=i, out_simd=o, a_bits=int(rng.choice([1, 2, 4, 8])), n_elems=lcm * int(rng.integers(1, 4)))


EDGE = [
    dict(in_simd=1, out_simd=4, a_bits=4, n_elems=16),                                # gather
    dict(in_simd=8, out_simd=2, a_bits=4, n_elems=32),                                # split
    dict(in_simd=3, out_simd=2, a_bits=8, n_elems=12),                                # 3 -> 2
    dict(in_simd=2, out_simd=3, a_bits=1, n_elems=18),                                # 2 -> 3
    dict(in_simd=4, out_simd=4, a_bits=2, n_elems=8),                                 # same width
    dict(in_simd=6, out_simd=4, a_bits=4, n_elems=12),
    dict(in_simd=1, out_simd=1, a_bits=8, n_elems=1),
    dict(in_simd=9, out_simd=3, a_bits=1, n_elems=27),                                # split, 3 slices
    dict(in_simd=12, out_simd=2, a_bits=2, n_elems=12),                               # split, one word a frame
    dict(in_simd=2, out_simd=8, a_bits=3, n_elems=8),                                 # gather, one word a frame
]

N_RANDOM = 12
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(61)
    cases = [dwc_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(62)
    return cases + [dwc_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(63)
    return [dwc_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


def test_dwc_modes():
    assert {dwc_mode(p["in_simd"], p["out_simd"]) for p in EDGE} == {"gather", "split", "shift"}
    assert [c.rendered.extra["mode"] for c in default_cases()[:3]] == ["gather", "split", "shift"]


globals().update(kernel_tests("dwc", default_cases, slow_cases))
