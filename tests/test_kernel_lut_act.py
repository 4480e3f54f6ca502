"""lut_act: ops.lut (any element-wise function of a <= 8-bit input, by table)."""

import math  # noqa: F401

import numpy as np
import pytest

from gen.sim.cases import lut_act_case
from gen.sim.testing import cached, check_sim, lint_rendered


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


@pytest.mark.parametrize("idx", range(len(EDGE) + N_RANDOM))
def test_lut_act_lint(idx):
    lint_rendered(default_cases()[idx].rendered)


def test_lut_act_exact_and_cycles():
    """No back-pressure: bit-exact; cycles per frame within 5% of the analytic count."""
    check_sim("tb_lut_act", default_cases(), cycles_tol=0.05, tag="nobp")


def test_lut_act_backpressure():
    """Random sink back-pressure and source gaps: still bit-exact."""
    check_sim("tb_lut_act", default_cases(), bp=0.5, gap=0.3, seed=9, tag="bp")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nobp", "bp"])
def test_lut_act_sweep_slow(mode):
    cases = slow_cases()
    for c in cases:
        lint_rendered(c.rendered)
    if mode == "nobp":
        check_sim("tb_lut_act_slow", cases, cycles_tol=0.05, tag=mode)
    else:
        check_sim("tb_lut_act_slow", cases, bp=0.6, gap=0.4, seed=29, tag=mode)
