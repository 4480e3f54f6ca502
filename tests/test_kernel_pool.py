"""pool: max (ops.maxpool), average = window sum (ops.pool_sum) + exact requant, windowed (after the swg in
depthwise mode) and global; bit-exact against the golden functions, with and without back-pressure."""

import numpy as np
import pytest

from gen.sim.cases import pool_case
from gen.sim.testing import cached, check_sim, lint_rendered, shards


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    mode = str(rng.choice(["max", "sum"]))
    glob = bool(rng.random() < 0.3)
    c = int(rng.choice([1, 2, 3, 4, 6, 8]))
    bits = int(rng.choice([1, 2, 4, 8]))
    signed = bits > 1 and rng.random() < 0.3
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    pads = tuple(int(x) for x in (rng.integers(0, kh), rng.integers(0, kw), rng.integers(0, kh),
                                  rng.integers(0, kw))) if rng.random() < 0.4 else (0, 0, 0, 0)
    h = int(rng.integers(max(1, kh - pads[0] - pads[2]), 7))
    w = int(rng.integers(max(1, kw - pads[1] - pads[3]), 7))
    p = dict(mode=mode, channels=c, simd=int(rng.choice(_divisors(c))), a_bits=bits, a_signed=signed,
             ifm_dim=(h, w), k=(kh, kw), stride=(sh, sw), pads=pads, global_pool=glob)
    if mode == "sum":
        p["rq"] = str(rng.choice(["thresholds", "thresholds", "none", "multshift"]))
        p["o_bits"] = int(rng.choice([2, 4, 8])) if p["rq"] != "thresholds" else int(rng.choice([1, 2, 4]))
        p["o_signed"] = bool(rng.random() < 0.3)
        if not signed:
            p["pad_value"] = int(rng.integers(0, 1 << bits))
    return p


EDGE = [
    dict(mode="max", channels=4, simd=2, a_bits=4, ifm_dim=4, k=2, stride=2),
    dict(mode="max", channels=3, simd=1, a_bits=8, a_signed=True, ifm_dim=5, k=3, stride=2, pads=(1, 1, 1, 1)),
    dict(mode="max", channels=2, simd=2, a_bits=1, ifm_dim=(3, 5), k=(1, 2), stride=(1, 3)),
    dict(mode="max", channels=4, simd=4, a_bits=2, ifm_dim=3, k=1, stride=1),       # k = 1
    dict(mode="max", channels=8, simd=2, a_bits=4, ifm_dim=4, global_pool=True),
    dict(mode="sum", channels=4, simd=2, a_bits=4, ifm_dim=4, k=2, stride=2, rq="thresholds", o_bits=4),
    dict(mode="sum", channels=3, simd=3, a_bits=8, ifm_dim=5, k=3, stride=1, pads=(1, 1, 1, 1), pad_value=128,
         rq="thresholds", o_bits=4),                                                # zero point 128
    dict(mode="sum", channels=6, simd=3, a_bits=4, ifm_dim=(4, 3), global_pool=True, rq="thresholds", o_bits=4),
    dict(mode="sum", channels=2, simd=1, a_bits=8, a_signed=True, ifm_dim=6, global_pool=True, rq="multshift",
         o_bits=8, o_signed=True),
    dict(mode="sum", channels=4, simd=4, a_bits=2, ifm_dim=3, k=3, stride=3, rq="none"),
    dict(mode="sum", channels=1, simd=1, a_bits=1, ifm_dim=1, global_pool=True, rq="thresholds", o_bits=1),
]

N_RANDOM = 24
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(21)
    cases = [pool_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(22)
    return cases + [pool_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(23)
    return [pool_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


@pytest.mark.parametrize("idx", range(len(EDGE) + N_RANDOM))
def test_pool_lint(idx):
    lint_rendered(default_cases()[idx].rendered)


@pytest.mark.parametrize("shard", [0, 1])
def test_pool_exact_and_cycles(shard):
    cases = default_cases()
    check_sim("tb_pool", cases, select=shards(len(cases), 2)[shard], cycles_tol=0.05, tag="nobp")


@pytest.mark.parametrize("shard", [0, 1])
def test_pool_backpressure(shard):
    cases = default_cases()
    check_sim("tb_pool", cases, select=shards(len(cases), 2)[shard], bp=0.5, gap=0.3, seed=7 + shard, tag="bp")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nobp", "bp"])
def test_pool_sweep_slow(mode):
    cases = slow_cases()
    for c in cases:
        lint_rendered(c.rendered)
    if mode == "nobp":
        check_sim("tb_pool_slow", cases, cycles_tol=0.05, tag=mode)
    else:
        check_sim("tb_pool_slow", cases, bp=0.6, gap=0.4, seed=19, tag=mode)
