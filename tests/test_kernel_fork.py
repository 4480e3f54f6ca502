"""fork (library module gen_axis_fork): every output gets every beat exactly once, whatever the outputs'
back-pressure (each sink stalls at random on its own). Library lint / $error checks: tests/test_rtllib.py."""

import numpy as np

from gen.sim.cases import fork_case
from gen.sim.testing import cached, kernel_tests


def random_params(rng) -> dict:
    return dict(n=int(rng.integers(1, 6)), width=int(rng.choice([1, 3, 8, 17, 36])),
                frame_beats=int(rng.integers(1, 40)))


EDGE = [
    dict(n=1, width=8),
    dict(n=2, width=36),
    dict(n=3, width=1),
    dict(n=4, width=12, frame_beats=1),
]

N_RANDOM = 6
N_SLOW = 40


@cached
def default_cases():
    rng = np.random.default_rng(81)
    cases = [fork_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(82)
    return cases + [fork_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(83)
    return [fork_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("fork", default_cases, slow_cases))
