"""Property tests: random small graphs of every flavour and op - golden vs the reference executor.

QONNX and QDQ (defined in float): no unexplained mismatch, every difference a proven near-tie.
QOperator (integer programs with float32 requantisation): bit for bit, no near-ties, except the requantisers of
the float pools / means onnxruntime computes in float32 (FLOAT_POOLS), which follow the QDQ rule.
Seeded cases cover every kind; hypothesis draws further kinds and seeds (derandomised, so CI is repeatable).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from gen.frontend import Loaded, lower, prepare
from gen.golden.check import check
from gen.ir.layers import Requant
from tests.modelgen import (
    QDQ_KINDS,
    QONNX_KINDS,
    QOP_KINDS,
    qdq_model,
    qdq_models,
    qonnx_model,
    qonnx_models,
    qop_model,
    qop_models,
)

MAKERS = {"qonnx": qonnx_model, "qdq": qdq_model, "qop": qop_model}

# onnxruntime averages dequantised float32 values in these ops (QLinearAveragePool, and float pools / means that
# quantize_static leaves between DequantizeLinear and QuantizeLinear in QOperator graphs): they convert, and
# their requantisers are float-defined (near-ties allowed, proven) while every other QOperator layer stays bit-exact
FLOAT_POOLS = {"QLinearAveragePool", "AveragePool", "GlobalAveragePool", "ReduceMean"}


def _run(gm, flavour, frames=6, seed=0):
    m = prepare(gm.model, flavour)
    d = lower(Loaded(m, flavour, "random", None))
    rep = check(d, m, gm.sample(frames, np.random.default_rng(seed)))
    # unexplained includes arg-max disagreements not attributable to a proven near-tie in the same frame
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()} | {"e2e": rep.end_to_end.examples}
    assert sum(s.compared for s in rep.layers.values()) > 0
    if flavour == "qop":
        float_defined = {la.name for la in d.layers if isinstance(la, Requant) and not la.exact_f32}
        assert not float_defined or {n.op_type for n in m.graph.node} & FLOAT_POOLS
        assert all(s.near_ties == 0 for k, s in rep.layers.items() if k not in float_defined)
        assert rep.end_to_end.unexplained == 0
        if not float_defined:
            assert rep.argmax_agree == rep.argmax_total
    return rep


CASES = [(f, k) for f, kinds in (("qonnx", QONNX_KINDS), ("qdq", QDQ_KINDS), ("qop", QOP_KINDS)) for k in kinds]


@pytest.mark.parametrize("flavour,kind", CASES)
@pytest.mark.parametrize("seed", range(3))
def test_random_graph(flavour, kind, seed):
    rng = np.random.default_rng(1000 + seed)
    _run(MAKERS[flavour](kind, rng), flavour, seed=seed)


_hyp = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@_hyp
@given(qonnx_models())
def test_hypothesis_qonnx(gm):
    _run(gm, "qonnx")


@_hyp
@given(qdq_models())
def test_hypothesis_qdq(gm):
    _run(gm, "qdq")


@_hyp
@given(qop_models())
def test_hypothesis_qop(gm):
    _run(gm, "qop")
