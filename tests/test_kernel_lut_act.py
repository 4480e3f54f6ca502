"""lut_act: ops.lut (any element-wise function of a <= 8-bit input, by table)."""

import math  # noqa: F401

import numpy as np

from gen.sim.cases import lut_act_case
from gen.sim.testing import cached, kernel_tests


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    a = int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8]))
    return dict(simd=int(rng.integers(1, 5)), a_bits=a, a_signed=a > 1 and rng.random() < 0.5,
                o_bits=int(rng.integers(1, 9)), o_signed=bool(rng.random() < 0.3),
                ifm_dim=(int(rng.integers(1, 4)), int(rng.integers(1, 4))))


EDGE = [
    dict(simd=2, a_bits=4, a_signed=True, o_bits=4),
    dict(simd=1, a_bits=8, a_signed=False, o_bits=8, o_signed=True),                  # full 8-bit table
    dict(simd=4, a_bits=1, a_signed=False, o_bits=1),
    dict(simd=3, a_bits=2, a_signed=True, o_bits=3),
    dict(simd=8, a_bits=8, a_signed=True, o_bits=2, channels=8),                      # SIMD = channels
]

N_RANDOM = 24
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(91)
    cases = [lut_act_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(92)
    return cases + [lut_act_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(93)
    return [lut_act_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("lut_act", default_cases, slow_cases, len(EDGE) + N_RANDOM))
