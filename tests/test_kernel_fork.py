"""fork (library module gen_axis_fork): every output gets every beat exactly once, whatever the outputs'
back-pressure (each sink stalls at random on its own). Library lint / $error checks: tests/test_rtllib.py."""

import numpy as np
import pytest

from gen.sim.cases import fork_case
from gen.sim.harness import lint_cases
from gen.sim.testing import cached, check_sim


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


def test_fork_lint():
    lint_cases("tb_fork", default_cases())


def test_fork_exact_and_cycles():
    """No back-pressure: every output gets the frames; one beat per cycle."""
    check_sim("tb_fork", default_cases(), cycles_tol=0.05, tag="nobp")


def test_fork_backpressure():
    """Independent random back-pressure per output and source gaps: no beat lost or duplicated."""
    check_sim("tb_fork", default_cases(), bp=0.5, gap=0.3, seed=9, tag="bp")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nobp", "bp"])
def test_fork_sweep_slow(mode):
    cases = slow_cases()
    lint_cases("tb_fork_slow", cases)
    if mode == "nobp":
        check_sim("tb_fork_slow", cases, cycles_tol=0.05, tag=mode)
    else:
        check_sim("tb_fork_slow", cases, bp=0.6, gap=0.4, seed=29, tag=mode)
