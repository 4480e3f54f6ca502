"""Concat of inputs with different scales, zero points and bit widths (issue 14, family 5).

Real exports (tests/exports/make_concat.py, committed under tests/data/exports/concat/): a DenseNet-like block
made with Brevitas (separate QuantReLU quantisers of 8/4/6/3 bits, torch.cat feeding the next QuantConv2d
directly; export_qonnx and export_onnx_qcdq) and a PyTorch net with torch.cat of four branches quantised by
onnxruntime's quantize_static (QDQ, and QOperator's QLinearConcat). `gen check`: no unexplained mismatch.
Random models (tests/modelgen/concats.py): 2-5 inputs with random scale ratios, zero points, 2-8 bit widths and
signedness, the concat feeding a Conv directly, a quantiser, a MaxPool or the model output, in all three flavours.
Slow: hypothesis sweeps with the near-tie rate, RTL == golden for one model per flavour (`python -m gen` +
`make -C OUT/sim sim`), and the exports regenerated with the real tools.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper, numpy_helper

from gen.errors import UnsupportedError
from gen.frontend import Loaded, load, lower, prepare
from gen.golden.check import check, check_stream, input_sampler
from gen.hw import build_hw_graph
from gen.ir import layers as L
from tests.modelgen.concats import CONCAT_KINDS, concat_model, concat_models
from tests.real_exports import export_script, gen_and_simulate

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO / "tests" / "data" / "exports" / "concat"
NAMES = sorted(p.stem for p in EXPORTS.glob("*.onnx"))


def _check_file(path: Path, n: int):
    loaded = load(path)
    design = lower(loaded)
    rep = check_stream(design, loaded.model,
                       input_sampler(design, loaded.model).batches(n, 32, np.random.default_rng(0)))
    return loaded, design, rep


def _examples(rep):
    return {k: s.examples for k, s in rep.layers.items()} | {"e2e": rep.end_to_end.examples}


def test_exports_present():
    assert NAMES == ["branches_qdq", "branches_qop", "densenet_qcdq", "densenet_qonnx"], NAMES


@pytest.mark.parametrize("name", NAMES)
def test_export_checks(name):
    loaded, design, rep = _check_file(EXPORTS / f"{name}.onnx", 32)
    assert rep.unexplained == 0, _examples(rep)
    concats = [la for la in design.layers if isinstance(la, L.Concat)]
    assert concats
    # the inputs really are quantised differently
    for la in concats:
        grids = {(design.tensors[t].scale[:1] if design.tensors[t].scale else None, design.tensors[t].lo,
                  design.tensors[t].hi) for t in la.inputs}
        assert len(grids) > 1 or name.endswith("qop")
    if name.startswith("densenet"):
        # three convs read a concat directly: the scale ratios became integer weight factors
        assert sum("folded into its integer weights" in n for n in design.notes) == 3, design.notes
        assert max(len(la.inputs) for la in concats) == 4
    if name.endswith("qop"):
        assert any(nd.op_type == "QLinearConcat" for nd in loaded.model.graph.node)
        assert all(s.near_ties == 0 for s in rep.layers.values())
    build_hw_graph(design)   # the hardware graph maps (n-way concat, recodes of the narrower inputs)


# ---------------------------------------------------------------------------------------------- random models
def _run(gm, frames=6, seed=0):
    m = prepare(gm.model, gm.flavour)
    d = lower(Loaded(m, gm.flavour, "random", None))
    rep = check(d, m, gm.sample(frames, np.random.default_rng(seed)))
    assert rep.unexplained == 0, _examples(rep) | {"info": gm.info}
    assert sum(s.compared for s in rep.layers.values()) > 0
    if gm.flavour == "qop":
        assert all(s.near_ties == 0 for s in rep.layers.values())
    return d, rep


@pytest.mark.parametrize("flavour", ["qonnx", "qdq", "qop"])
@pytest.mark.parametrize("kind", CONCAT_KINDS)
def test_random_concat(flavour, kind):
    gm = concat_model(flavour, kind, np.random.default_rng(4))
    d, _ = _run(gm)
    graph = build_hw_graph(d)
    cat = next(la for la in d.layers if isinstance(la, L.Concat))
    # an n-input concat is a chain of n - 1 two-input kernels
    assert sum(n.kind == "concat" and cat.name in n.layers for n in graph.nodes) == len(cat.inputs) - 1
    if kind == "quant" and flavour != "qop":
        # the per-channel quantiser after the concat became one lookup table per input, in front of it
        split = [n for n in graph.nodes if n.name.startswith(f"{cat.name}_rq")]
        assert len(split) == len(cat.inputs) and all(n.kind == "lut_act" for n in split)
    if kind == "conv" and flavour != "qop":
        assert any("folded into its integer weights" in n for n in d.notes), d.notes


DOM = "qonnx.custom_op.general"


def _quant(x, scale, y):
    return helper.make_node("Quant", [x, scale, "z", "b"], [y], domain=DOM, signed=1, narrow=0,
                            rounding_mode="ROUND", name=y)


def _qonnx(nodes, scales, out_shape, extra=()):
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in
             (*scales.items(), ("z", 0.0), ("b", 8.0))] + list(extra)
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOM, 1)],
                             ir_version=8)


def _qonnx_relu_after_quant():
    """Concat of a quantised tensor and Relu(quantised tensor): the second is no plain quantised tensor."""
    nodes = [_quant("x", "s0", "q0"), _quant("q0", "s1", "q1"), _quant("q0", "s2", "q2"),
             helper.make_node("Relu", ["q2"], ["r2"], name="relu"),
             helper.make_node("Concat", ["q1", "r2"], ["y"], axis=1, name="cat")]
    return _qonnx(nodes, {"s0": 0.05, "s1": 0.1, "s2": 0.07}, [1, 4, 3, 3])


def _qonnx_cat_conv(s1, s2):
    """Two requantisers of the quantised input (scales s1, s2), concatenated, read by a 1x1 Conv directly."""
    nodes = [_quant("x", "s0", "q0"), _quant("q0", "s1", "q1"), _quant("q0", "s2", "q2"),
             helper.make_node("Concat", ["q1", "q2"], ["c"], axis=1, name="cat"),
             _quant("w", "one", "wq"),
             helper.make_node("Conv", ["c", "wq"], ["y"], kernel_shape=[1, 1], name="conv")]
    return _qonnx(nodes, {"s0": 0.05, "s1": s1, "s2": s2, "one": 1.0}, [1, 2, 3, 3],
                  [numpy_helper.from_array(np.ones((2, 4, 1, 1), np.float32), "w")])


def test_weight_factors_exact_ratio():
    """Scales 0.1 and 0.07 (float32): the Conv's weights carry the exact integer ratio of the two."""
    m = prepare(_qonnx_cat_conv(0.1, 0.07), "qonnx")
    d = lower(Loaded(m, "qonnx", "t", None))
    conv = next(la for la in d.layers if isinstance(la, L.Conv))
    w = np.asarray(conv.weight)
    k1, k2 = int(w[0, 0, 0, 0]), int(w[0, 0, 0, 2])
    from fractions import Fraction
    assert Fraction(k1, k2) == Fraction(float(np.float32(0.1))) / Fraction(float(np.float32(0.07)))
    x = (np.random.default_rng(0).integers(-128, 128, (4, 2, 3, 3)) * np.float32(0.05)).astype(np.float32)
    rep = check(d, m, x)
    assert rep.unexplained == 0


def test_refuses_scale_ratio_beyond_62_bits():
    m = prepare(_qonnx_cat_conv(1.0, float(np.float32(2.0 ** -70 * (1 + 2.0 ** -23)))), "qonnx")
    with pytest.raises(UnsupportedError, match="op Conv.*no exact integer ratio.*Quantise the Concat output"):
        lower(Loaded(m, "qonnx", "t", None))


def test_refuses_non_affine_input_clearly():
    m = prepare(_qonnx_relu_after_quant(), "qonnx")
    with pytest.raises(UnsupportedError, match="cat.*quantised differently.*Quantise each input"):
        lower(Loaded(m, "qonnx", "t", None))


# ---------------------------------------------------------------------------------------------------- slow
_hyp = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
TIES: dict[str, list[int]] = {}


def _sweep(gm):
    _, rep = _run(gm, frames=16)
    t = TIES.setdefault(gm.flavour, [0, 0, 0])
    t[0] += sum(s.near_ties for s in rep.layers.values())
    t[1] += sum(s.compared for s in rep.layers.values())
    t[2] += 1
    print(f"{gm.flavour}: {t[2]} models, near-tie rate {t[0]}/{t[1]}")


@pytest.mark.slow
@_hyp
@given(concat_models("qonnx"))
def test_hypothesis_qonnx(gm):
    _sweep(gm)


@pytest.mark.slow
@_hyp
@given(concat_models("qdq"))
def test_hypothesis_qdq(gm):
    _sweep(gm)


@pytest.mark.slow
@_hyp
@given(concat_models("qop"))
def test_hypothesis_qop(gm):
    _sweep(gm)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet_qonnx", "branches_qdq", "branches_qop"])
def test_rtl_equals_golden(name, tmp_path):
    """`python -m gen` then `make -C OUT/sim sim`: 32 random frames (+4) through Verilator == golden."""
    gen_and_simulate(EXPORTS / f"{name}.onnx", tmp_path / "out")


@pytest.mark.slow
def test_exports_regenerate(tmp_path):
    """The committed files are what the script makes with the real tools (Brevitas, torch, onnxruntime) here."""
    pytest.importorskip("brevitas")
    make_concat = export_script("make_concat")
    make_concat.main([str(tmp_path)])
    for name in NAMES:
        new = onnx.load(str(tmp_path / f"{name}.onnx"))
        old = onnx.load(str(EXPORTS / f"{name}.onnx"))
        assert [n.op_type for n in new.graph.node] == [n.op_type for n in old.graph.node]
        _, _, rep = _check_file(tmp_path / f"{name}.onnx", 16)
        assert rep.unexplained == 0
