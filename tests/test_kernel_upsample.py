"""upsample (library module gen_upsample): ops.upsample (nearest, integer factors); bit-exact, cycles,
back-pressure, every row-buffer style. Library lint / $error checks: tests/test_rtllib.py."""

import numpy as np

from gen.sim.cases import upsample_case
from gen.sim.testing import cached, kernel_tests


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    c = int(rng.choice([1, 2, 3, 4, 6, 8]))
    return dict(ifm_ch=c, simd=int(rng.choice(_divisors(c))), a_bits=int(rng.choice([1, 2, 4, 8])),
                ifm_dim=(int(rng.integers(1, 5)), int(rng.integers(1, 5))),
                factor=(int(rng.integers(1, 4)), int(rng.integers(1, 4))))


EDGE = [
    dict(ifm_ch=4, simd=2, a_bits=4, ifm_dim=3, factor=2),
    dict(ifm_ch=1, simd=1, a_bits=1, ifm_dim=1, factor=3),                            # 1x1x1
    dict(ifm_ch=3, simd=3, a_bits=8, ifm_dim=(2, 5), factor=(1, 2)),                  # width only
    dict(ifm_ch=2, simd=1, a_bits=4, ifm_dim=(4, 1), factor=(3, 1)),                  # height only
    dict(ifm_ch=4, simd=4, a_bits=2, ifm_dim=3, factor=1),                            # identity
    dict(ifm_ch=16, simd=2, a_bits=8, ifm_dim=(2, 6), factor=2, frames=2),            # LUTRAM row buffer
    dict(ifm_ch=64, simd=2, a_bits=8, ifm_dim=(1, 70), factor=(2, 1), frames=2),      # BRAM row buffer
]

N_RANDOM = 12
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(51)
    cases = [upsample_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(52)
    return cases + [upsample_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(53)
    return [upsample_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


def test_upsample_row_buffer_styles():
    assert {c.rendered.extra["ram_style"] for c in default_cases()[:len(EDGE)]} == {"registers", "distributed",
                                                                                    "block"}


globals().update(kernel_tests("upsample", default_cases, slow_cases))
