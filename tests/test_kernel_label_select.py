"""label_select: ops.label_select (top-k indices, largest first, ties to the lower index); also over bipolar
streams (-1 / +1 as one bit each, as gen/rtl/emit.py's render_label_unit feeds them), where ties are the rule."""

import math  # noqa: F401

import numpy as np

from gen.golden import ops
from gen.sim.cases import Case, frames_of, label_select_case
from gen.sim.testing import cached, kernel_tests


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def random_params(rng) -> dict:
    c = int(rng.choice([1, 2, 4, 5, 8, 10, 12]))
    h, w = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    bits = int(rng.choice([1, 2, 4, 8]))
    return dict(ifm_dim=(h, w), channels=c, simd=int(rng.choice(_divisors(c))), a_bits=bits,
                a_signed=bits > 1 and rng.random() < 0.3, k=int(rng.integers(1, min(5, h * w * c) + 1)),
                spread=int(rng.choice([0, 1, 2, 3, 1000])))


EDGE = [
    dict(channels=10, simd=1, a_bits=8, k=1),
    dict(channels=10, simd=10, a_bits=8, k=1),                                        # SIMD = channels
    dict(channels=10, simd=5, a_bits=4, k=3, spread=2),                               # many ties
    dict(channels=16, simd=4, a_bits=8, a_signed=True, k=5, spread=3),
    dict(channels=4, simd=2, a_bits=1, k=4, spread=1),                                # 1 bit, k = all
    dict(channels=1, simd=1, a_bits=4, k=1),                                          # one element
    dict(ifm_dim=(2, 3), channels=3, simd=3, a_bits=2, k=2, spread=3),                # over H, W, C
    dict(channels=8, simd=2, a_bits=8, k=1, spread=0),                                # all equal -> 0
]

# bipolar scores: (elements, simd, k); many classes at +1 (or all at -1) tie
BIPOLAR = [(10, 1, 1), (10, 5, 1), (12, 4, 3), (7, 7, 7), (1, 1, 1), (16, 2, 1)]

N_RANDOM = 24
N_SLOW = 60


def bipolar_case(name: str, rng, n: int, simd: int, k: int, frames: int = 4) -> Case:
    """The emitter's label unit over a bipolar stream; frames from all +1 / all -1 to random signs."""
    from gen.rtl.emit import Enc, render_label_unit
    p_plus = np.array([1.0, 0.0, 0.8, 0.5, 0.2][:frames] + [0.5] * max(0, frames - 5))
    x = np.where(rng.random((frames, 1, 1, n)) < p_plus[:, None, None, None], 1, -1).astype(np.int64)
    r = render_label_unit(name, n_elems=n, simd=simd, x=Enc(1, False, True), k=k)
    y = ops.label_select(x, k)
    phases = [{"in": {"s_axis": frames_of(x, 1, bipolar=True)}, "out": {"m_axis": [list(map(int, f)) for f in y]}}]
    return Case(name, r, phases, r.cycles_per_frame, dict(n=n, simd=simd, k=k, bipolar=True))


@cached
def default_cases():
    rng = np.random.default_rng(81)
    cases = [label_select_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(82)
    cases += [label_select_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]
    rng = np.random.default_rng(84)
    return cases + [bipolar_case(f"b{i}", rng, *p) for i, p in enumerate(BIPOLAR)]


@cached
def slow_cases():
    rng = np.random.default_rng(83)
    return [label_select_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


globals().update(kernel_tests("label_select", default_cases, slow_cases, len(EDGE) + N_RANDOM + len(BIPOLAR)))
