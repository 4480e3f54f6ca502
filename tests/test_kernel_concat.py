"""concat (library module gen_concat): ops.concat([a, b]) on channels, two streams; bit-exact, cycles,
back-pressure. Library lint / $error checks: tests/test_rtllib.py."""

import numpy as np

from gen.sim.cases import concat_case
from gen.sim.testing import cached, kernel_tests


def random_params(rng) -> dict:
    simd = int(rng.choice([1, 2, 3, 4]))
    return dict(ch_a=simd * int(rng.integers(1, 4)), ch_b=simd * int(rng.integers(1, 4)), simd=simd,
                a_bits=int(rng.choice([1, 2, 4, 8])), ifm_dim=(int(rng.integers(1, 5)), int(rng.integers(1, 5))))


EDGE = [
    dict(ch_a=4, ch_b=2, simd=2, a_bits=4, ifm_dim=3),
    dict(ch_a=1, ch_b=1, simd=1, a_bits=1, ifm_dim=1),                               # 1 channel each, 1 bit
    dict(ch_a=8, ch_b=8, simd=8, a_bits=8, ifm_dim=(2, 5)),                          # SIMD = channels
    dict(ch_a=3, ch_b=9, simd=3, a_bits=2, ifm_dim=(3, 1)),
    dict(ch_a=2, ch_b=6, simd=1, a_bits=4, ifm_dim=2),                               # PE = 1
]

N_RANDOM = 12
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(41)
    cases = [concat_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(42)
    return cases + [concat_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(43)
    return [concat_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("concat", default_cases, slow_cases))
