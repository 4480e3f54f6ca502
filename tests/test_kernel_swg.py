"""swg (sliding-window generator): RTL == ops.sliding_windows (standard and depthwise order), bit for bit."""

import numpy as np
import pytest

from gen.sim.cases import swg_case
from gen.sim.testing import cached, check_sim, lint_rendered, shards


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if rng.random() < 0.6:
        kw = kh
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    if rng.random() < 0.6:
        sw = sh
    pads = tuple(int(x) for x in (rng.integers(0, kh), rng.integers(0, kw), rng.integers(0, kh), rng.integers(0, kw)))
    if rng.random() < 0.4:
        pads = (0, 0, 0, 0)
    h = int(rng.integers(max(1, kh - pads[0] - pads[2]), 9))
    w = int(rng.integers(max(1, kw - pads[1] - pads[3]), 9))
    c = int(rng.choice([1, 2, 3, 4, 6, 8]))
    bits = int(rng.choice([1, 2, 4, 8]))
    signed = bits > 1 and rng.random() < 0.3
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    dw = bool(rng.random() < 0.4)
    simd = int(rng.choice(_divisors(c)))
    if not dw and kh * kw > 1 and rng.random() < 0.3:
        simd = kh * kw * c  # window-parallel
    return dict(ifm_ch=c, ifm_dim=(h, w), simd=simd, a_bits=bits, a_signed=signed,
                k=(kh, kw), stride=(sh, sw), pads=pads, pad_value=int(rng.integers(lo, hi + 1)), depthwise=dw)


EDGE = [
    dict(ifm_ch=4, ifm_dim=6, simd=1, a_bits=8, k=3, stride=1),                          # SIMD = 1
    dict(ifm_ch=4, ifm_dim=6, simd=4, a_bits=4, k=3, stride=1, pads=(1, 1, 1, 1), pad_value=5),  # zero point 5
    dict(ifm_ch=3, ifm_dim=5, simd=3, a_bits=4, k=1, stride=1),                          # k = 1: identity
    dict(ifm_ch=2, ifm_dim=7, simd=2, a_bits=2, k=1, stride=3),                          # stride > k
    dict(ifm_ch=2, ifm_dim=7, simd=1, a_bits=4, k=2, stride=3, pads=(0, 1, 1, 0), pad_value=2),
    dict(ifm_ch=3, ifm_dim=(5, 3), simd=1, a_bits=4, k=(3, 2), stride=(2, 1), pads=(1, 0, 1, 1), pad_value=9),
    dict(ifm_ch=1, ifm_dim=1, simd=1, a_bits=1, k=1, stride=1),                           # 1x1x1, 1 bit
    dict(ifm_ch=2, ifm_dim=2, simd=2, a_bits=1, k=3, stride=1, pads=(1, 1, 1, 1), pad_value=1),  # window > image
    dict(ifm_ch=4, ifm_dim=5, simd=2, a_bits=4, k=3, stride=2, pads=(1, 1, 1, 1), pad_value=3, depthwise=True),
    dict(ifm_ch=6, ifm_dim=4, simd=3, a_bits=8, a_signed=True, k=2, stride=2, depthwise=True, pad_value=-128),
    dict(ifm_ch=4, ifm_dim=(1, 9), simd=4, a_bits=4, k=(1, 3), stride=1, pads=(0, 1, 0, 1)),  # 1-row image
    dict(ifm_ch=8, ifm_dim=12, simd=8, a_bits=8, k=3, stride=1, pads=(1, 1, 1, 1), ram_style="block"),  # BRAM-size
    dict(ifm_ch=2, ifm_dim=4, simd=1, a_bits=4, k=4, stride=1),                           # k = image
    # window-parallel (SIMD = K_H*K_W*C: one pixel in, one whole window out per cycle)
    dict(ifm_ch=3, ifm_dim=5, simd=27, a_bits=4, k=3, stride=1, pads=(1, 1, 1, 1), pad_value=5),
    dict(ifm_ch=1, ifm_dim=8, simd=9, a_bits=1, k=3, stride=1),                           # wafer map, 1 bit
    dict(ifm_ch=1, ifm_dim=(7, 6), simd=4, a_bits=2, k=2, stride=3, pads=(0, 1, 1, 0), pad_value=3),  # rows unused
    dict(ifm_ch=2, ifm_dim=(5, 3), simd=12, a_bits=8, a_signed=True, k=(3, 2), stride=(2, 1), pads=(1, 0, 1, 1),
         pad_value=-7),
    dict(ifm_ch=1, ifm_dim=2, simd=9, a_bits=4, k=3, stride=1, pads=(1, 1, 1, 1), pad_value=9),  # window > image
]

N_RANDOM = 24
N_SLOW = 80


@cached
def default_cases():
    rng = np.random.default_rng(11)
    cases = [swg_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(12)
    return cases + [swg_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(13)
    return [swg_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


@pytest.mark.parametrize("idx", range(len(EDGE) + N_RANDOM))
def test_swg_lint(idx):
    lint_rendered(default_cases()[idx].rendered)


@pytest.mark.parametrize("shard", [0, 1])
def test_swg_exact_and_cycles(shard):
    """No back-pressure: bit-exact; cycles per frame within 5% of max(input beats, output beats)."""
    cases = default_cases()
    check_sim("tb_swg", cases, select=shards(len(cases), 2)[shard], cycles_tol=0.05, tag="nobp")


@pytest.mark.parametrize("shard", [0, 1])
def test_swg_backpressure(shard):
    cases = default_cases()
    check_sim("tb_swg", cases, select=shards(len(cases), 2)[shard], bp=0.5, gap=0.3, seed=5 + shard, tag="bp")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["nobp", "bp"])
def test_swg_sweep_slow(mode):
    cases = slow_cases()
    for c in cases:
        lint_rendered(c.rendered)
    if mode == "nobp":
        check_sim("tb_swg_slow", cases, cycles_tol=0.05, tag=mode)
    else:
        check_sim("tb_swg_slow", cases, bp=0.6, gap=0.4, seed=17, tag=mode)


CHAINS = [
    dict(kind="conv", ifm_ch=4, ifm_dim=6, simd=2, pe=2, ofm_ch=4, a_bits=4, k=3, pads=(1, 1, 1, 1), pad_value=3),
    dict(kind="conv", ifm_ch=3, ifm_dim=(5, 7), simd=3, pe=1, ofm_ch=2, a_bits=2, k=(3, 2), stride=(2, 1)),
    dict(kind="dwconv", ifm_ch=6, ifm_dim=5, simd=3, a_bits=4, k=3, stride=2, pads=(1, 1, 1, 1), pad_value=1),
    dict(kind="maxpool", ifm_ch=4, ifm_dim=6, simd=2, a_bits=4, k=2, stride=2),
    dict(kind="maxpool", ifm_ch=2, ifm_dim=5, simd=1, a_bits=8, k=3, stride=2, pads=(1, 1, 1, 1)),
    dict(kind="avgpool", ifm_ch=4, ifm_dim=4, simd=4, a_bits=4, k=2, stride=1, pads=(0, 0, 1, 1), pad_value=2),
]


@cached
def chain_cases():
    from gen.sim.cases import chain_case
    rng = np.random.default_rng(14)
    return [chain_case(f"c{i}", rng, **p) for i, p in enumerate(CHAINS)]


@pytest.mark.parametrize("bp", [0.0, 0.5])
def test_swg_chains_match_golden_layers(bp):
    """swg -> mvu == ops.conv (+ requant), swg -> mvu (depthwise) == ops.conv(groups=C), swg -> pool ==
    ops.maxpool / ops.pool_sum (+ requant), on the unwindowed input."""
    check_sim("tb_chain", chain_cases(), bp=bp, gap=bp / 2, seed=31, tag=f"bp{bp}")
