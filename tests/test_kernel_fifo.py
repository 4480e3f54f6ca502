"""fifo (library module gen_fifo): shift-register (shallow), memory (deep: registers, LUTRAM or BRAM) and
wire-through (depth 0) FIFOs pass frames unchanged; `count` is the fill level. Library lint / $error checks:
tests/test_rtllib.py."""

import numpy as np

from gen.sim.cases import fifo_case
from gen.sim.testing import cached, kernel_tests


def random_params(rng) -> dict:
    return dict(depth=int(rng.choice([1, 2, 3, 5, 8, 16, 32, 40, 100])), lanes=int(rng.integers(1, 5)),
                bits=int(rng.choice([1, 2, 4, 8])), style=str(rng.choice(["auto", "srl", "ram"])),
                frame_beats=int(rng.integers(1, 60)))


EDGE = [
    dict(depth=1, lanes=1, bits=8, style="srl"),
    dict(depth=2, lanes=2, bits=4, style="srl"),
    dict(depth=16, lanes=4, bits=8, style="srl", frame_beats=40),
    dict(depth=64, lanes=1, bits=8, style="ram", frame_beats=100),                  # LUTRAM
    dict(depth=8, lanes=1, bits=1, style="ram"),                                    # registers
    dict(depth=512, lanes=8, bits=8, style="ram", frame_beats=50),                  # BRAM
    dict(depth=40, lanes=2, bits=4, style="ram", ram_style="block", frame_beats=30),
    dict(depth=0, lanes=2, bits=4),                                                 # wire-through
]

N_RANDOM = 12
N_SLOW = 60


@cached
def default_cases():
    rng = np.random.default_rng(71)
    cases = [fifo_case(f"e{i}", rng, **p) for i, p in enumerate(EDGE)]
    rng = np.random.default_rng(72)
    return cases + [fifo_case(f"r{i}", rng, **random_params(rng)) for i in range(N_RANDOM)]


@cached
def slow_cases():
    rng = np.random.default_rng(73)
    return [fifo_case(f"s{i}", rng, frames=2, **random_params(rng)) for i in range(N_SLOW)]


def test_fifo_styles():
    """The edge cases cover every implementation of gen_fifo."""
    got = {(c.info["style"], c.info["ram_style"]) for c in default_cases()[:len(EDGE)]}
    assert got >= {("srl", None), ("wire", None), ("ram", "registers"), ("ram", "distributed"), ("ram", "block")}


globals().update(kernel_tests("fifo", default_cases, slow_cases))


def test_fifo_fill_level():
    """With the output stalled a FIFO takes exactly its capacity; `count` tracks every push and pop."""
    from gen.sim.harness import build_cases
    from gen.sim.runner import run
    cases = default_cases()
    b = build_cases("tb_fifo", cases)
    insts = [dict(name=c.name, prefix=f"i{k}_", capacity=c.info["capacity"], width=c.info["lanes"] * c.info["bits"])
             for k, c in enumerate(cases)]
    res = run(b, dict(instances=insts), name="levels", test_module="gen.sim.tb_fifo")
    bad = [f"{r['name']}: {r.get('errors')}" for r in res["instances"] if not r.get("ok")]
    assert not bad, "\n".join(bad)
