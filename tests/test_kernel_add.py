"""add: ops.add(a, b, ka, kb) + exact requant, two joined streams; bit-exact, cycles, back-pressure."""

import math  # noqa: F401

import numpy as np

from gen.sim.cases import add_case
from gen.sim.testing import cached, kernel_tests


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    c = int(rng.choice([1, 2, 3, 4, 6, 8]))
    ab, bb = int(rng.choice([1, 2, 4, 8])), int(rng.choice([1, 2, 4, 8]))
    rq = str(rng.choice(["thresholds", "thresholds", "none", "multshift"]))
    return dict(channels=c, simd=int(rng.choice(_divisors(c))), a_bits=ab, b_bits=bb,
                a_signed=ab > 1 and rng.random() < 0.4, b_signed=bb > 1 and rng.random() < 0.4,
                ifm_dim=(int(rng.integers(1, 5)), int(rng.integers(1, 5))), kmax=int(rng.choice([1, 4, 16])), rq=rq,
                o_bits=int(rng.choice([1, 2, 3, 4])) if rq == "thresholds" else int(rng.choice([4, 8])),
                o_signed=bool(rng.random() < 0.3))


EDGE = [
    dict(channels=4, simd=2, a_bits=4, ifm_dim=3, rq="thresholds", o_bits=4),
    dict(channels=3, simd=1, a_bits=8, b_bits=4, a_signed=True, b_signed=False, ifm_dim=(2, 3), rq="thresholds",
         o_bits=4, o_signed=True),
    dict(channels=6, simd=6, a_bits=2, ifm_dim=2, rq="none"),                       # SIMD = channels
    dict(channels=2, simd=2, a_bits=8, a_signed=True, ifm_dim=3, kmax=100, rq="multshift", o_bits=8,
         o_signed=True),
    dict(channels=1, simd=1, a_bits=1, ifm_dim=1, kmax=1, rq="thresholds", o_bits=1),  # 1-bit, 1x1x1
    dict(channels=8, simd=4, a_bits=4, ifm_dim=4, rq="thresholds", o_bits=8),        # 255 thresholds
]

N_RANDOM = 24
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(31)
    cases = [add_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(32)
    return cases + [add_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(33)
    return [add_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("add", default_cases, slow_cases, len(EDGE) + N_RANDOM))
