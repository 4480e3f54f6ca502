"""gen/rtl/compress.py: the compressor-tree plan sums exactly, and costs fewer LUTs than an adder tree."""

import numpy as np
import pytest

from gen.rtl.common import ubits
from gen.rtl.compress import evaluate, plan


@pytest.mark.parametrize("n_in,in_w", [(1, 2), (2, 1), (3, 2), (7, 2), (192, 2), (43, 3), (100, 1), (5, 4)])
def test_plan_sums_exactly(n_in, in_w):
    rng = np.random.default_rng(n_in * 10 + in_w)
    out_w = ubits(n_in * ((1 << in_w) - 1))
    p = plan(n_in, in_w, out_w)
    for _ in range(200):
        v = rng.integers(0, 1 << in_w, n_in).tolist()
        assert evaluate(p, v) == sum(v)
    top = [(1 << in_w) - 1] * n_in
    assert evaluate(p, top) == sum(top)
    assert all(max(w for w, _ in r) < out_w for r in p.rows if r)


def test_counters_beat_an_adder_tree():
    """576 XNOR lanes in 192 2-bit group sums: the counters + final adder use about 2/3 of a binary adder
    tree's LUTs (one LUT per adder bit)."""
    p = plan(192, 2, 10)
    tree, n, w = 0, 192, 2
    while n > 1:
        tree += (n // 2) * (w + 1)
        n, w = (n + 1) // 2, w + 1
    assert p.luts + p.out_w < 0.75 * tree
