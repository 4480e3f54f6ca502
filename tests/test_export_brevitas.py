"""Brevitas exports (issue 14, family 2): `export_onnx_qcdq` graphs and `export_qonnx` for comparison.

Tiny VGG-, MobileNet- and ResNet-like nets exported by Brevitas 0.13.4 (tests/exports/make_brevitas.py,
committed under tests/data/exports/brevitas/): 8 / 4 / 2 bits (QCDQ narrows with Clip), per-tensor and
per-channel weight scales, float and Int32 bias, both torch exporters (dynamo, TorchScript), Linear with bias
(Gemm) and without (MatMul of a Transposed Q/C/DQ weight), QuantIdentity first. Each converts, `gen check`
finds no unexplained mismatch, and the design lowers to the zybo-z7 hardware graph and folds. A quantised
constant through a layout op keeps its per-channel parameters with their channel (scales a Transpose puts on a
MatMul's input axis are one clear error line, not read along the wrong axis).
Slow: the RTL of two VGG-like and one ResNet-like QCDQ export equals the golden model (`python -m gen` +
`make -C OUT/sim sim`), and the exports regenerate with Brevitas when it is importable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gen.boards import load_board
from gen.errors import GenError
from gen.fold import fold_design
from gen.frontend import Loaded, load, lower, prepare
from gen.golden.check import check_stream, input_sampler
from gen.hw import build_hw_graph
from gen.ir import layers as L
from tests.real_exports import export_script, gen_and_simulate

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO / "tests" / "data" / "exports" / "brevitas"
NAMES = sorted(p.stem for p in EXPORTS.glob("*.onnx"))


def _configs():
    return export_script("make_brevitas")


def _check(path: Path, n: int):
    loaded = load(path)
    design = lower(loaded)
    rep = check_stream(design, loaded.model,
                       input_sampler(design, loaded.model).batches(n, n, np.random.default_rng(0)))
    return loaded, design, rep


def test_exports_present():
    assert sorted(_configs().CONFIGS) == NAMES, NAMES
    assert all((EXPORTS / f"{n}.onnx").stat().st_size < 200_000 for n in NAMES)


def _expect_graph(name, cfg, loaded):
    ops = [nd.op_type for nd in loaded.model.graph.node]
    if cfg.exporter.startswith("qonnx"):
        assert loaded.flavour == "qonnx"
        return
    assert loaded.flavour == "qdq" and "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # below 8 bits QCDQ narrows the int8 / uint8 codes with Clip (activations and weights; at 8 bits only the
    # weights' narrow range [-127, 127])
    assert "Clip" in ops, ops
    if not cfg.fc_bias and cfg.exporter == "ts":
        assert "Transpose" in ops and "MatMul" in ops  # Linear without bias: MatMul(x, Transpose(DQ(W)))
    if cfg.dynamic_batch:
        assert "Shape" in ops  # x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape


def _expect_design(cfg, design):
    kinds = {type(la) for la in design.layers}
    assert {L.Input, L.Conv, L.Dense, L.Requant} <= kinds
    if cfg.net == "resnet":
        assert L.Add in kinds
    if cfg.net == "mobilenet":
        assert L.AvgPool in kinds and any(la.groups > 1 for la in design.layers if isinstance(la, L.Conv))
    if cfg.net == "vgg":
        assert L.MaxPool in kinds
    codes = [design.tensors[la.output] for la in design.layers if isinstance(la, L.Requant)]
    assert max(t.hi - t.lo for t in codes) < (1 << cfg.bits)  # the Clip's narrowing reaches the hardware


@pytest.mark.parametrize("name", NAMES)
def test_export_checks_and_lowers(name):
    cfg = _configs().CONFIGS[name]
    loaded, design, rep = _check(EXPORTS / f"{name}.onnx", 16)
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()} | {"e2e": rep.end_to_end.examples}
    assert sum(s.compared for s in rep.layers.values()) > 0
    _expect_graph(name, cfg, loaded)
    _expect_design(cfg, design)
    graph = build_hw_graph(design, dma_bits=64)
    folding = fold_design(design, graph, load_board("zybo-z7"))
    assert {n.kind for n in graph.nodes} >= {"input", "mvu", "output"}
    assert all(n.name in folding for n in graph.nodes)


# ---------------------------------------------------------------------------------------------------- units
def _linear_model(layout_nodes, w_name, w_init, extra_inits=(), k=6, n=4):
    """x(1, k) -> Q -> DQ -> MatMul(x, <layout_nodes applied to DQ(w)>) -> y; weights per-channel int8."""
    s = numpy_helper.from_array(np.array(1 / 16, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"], name="dq0"),
             *layout_nodes,
             helper.make_node("MatMul", ["a", w_name], ["y"], name="mm")]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, k))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, n))],
                          [s, z, *w_init, *extra_inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _per_channel_weight(rng, shape, axis):
    codes = rng.integers(-7, 8, size=shape).astype(np.int8)
    scale = (2.0 ** -rng.integers(2, 6, size=shape[axis])).astype(np.float32)
    return codes, scale, [numpy_helper.from_array(codes, "wq"), numpy_helper.from_array(scale, "ws"),
                          numpy_helper.from_array(np.zeros(shape[axis], np.int8), "wz")]


@pytest.mark.parametrize("layout", ["transpose", "reshape", "unsqueeze_squeeze"])
def test_moved_per_channel_weight(layout):
    """DequantizeLinear(axis) -> layout op(s) -> MatMul: each output channel keeps its own scale (== onnxruntime)."""
    rng = np.random.default_rng(3)
    k, n = 6, 4
    if layout == "transpose":    # (N, K) per output channel, Transpose -> (K, N)
        _, _, inits = _per_channel_weight(rng, (n, k), 0)
        mid = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wdq", axis=0),
               helper.make_node("Transpose", ["wd"], ["w"], name="wt", perm=[1, 0])]
        extra = []
    elif layout == "reshape":    # (K * N,) flat codes cannot carry a per-channel axis: (K, 1, N) -> (K, N)
        _, _, inits = _per_channel_weight(rng, (k, 1, n), 2)
        mid = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wdq", axis=2),
               helper.make_node("Reshape", ["wd", "shape"], ["w"], name="wr")]
        extra = [numpy_helper.from_array(np.array([k, n], np.int64), "shape")]
    else:
        _, _, inits = _per_channel_weight(rng, (k, n), 1)
        mid = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wdq", axis=1),
               helper.make_node("Unsqueeze", ["wd", "ax"], ["wu"], name="wu"),
               helper.make_node("Squeeze", ["wu", "ax"], ["w"], name="ws_")]
        extra = [numpy_helper.from_array(np.array([0], np.int64), "ax")]
    m = prepare(_linear_model(mid, "w", inits, extra, k, n), "qdq")
    d = lower(Loaded(m, "qdq", "t", None))
    rep = check_stream(d, m, input_sampler(d, m).batches(32, 32, np.random.default_rng(1)))
    assert rep.unexplained == 0 and rep.end_to_end.compared == 32 * n
    dense = next(la for la in d.layers if isinstance(la, L.Dense))
    assert dense.weight.shape == (n, k)


def test_moved_weight_scale_along_inputs_refused():
    """Per-channel scales that a Transpose puts on the MatMul's input axis (not its outputs): one error line
    naming the MatMul - the scales moved with their channel instead of being read along the wrong axis."""
    rng = np.random.default_rng(0)
    k, n = 6, 4
    _, _, inits = _per_channel_weight(rng, (n, k), 1)   # one scale per input (K) element
    mid = [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="wdq", axis=1),
           helper.make_node("Transpose", ["wd"], ["w"], name="wt", perm=[1, 0])]
    with pytest.raises(GenError) as e:
        lower(Loaded(prepare(_linear_model(mid, "w", inits, (), k, n), "qdq"), "qdq", "t", None))
    msg = str(e.value)
    assert "\n" not in msg and "'mm'" in msg and "per-output-channel" in msg, msg


# ---------------------------------------------------------------------------------------------------- slow
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg_w8a8_dynamo", "vgg_w2a2_ts", "resnet_w8a8_shared_dynamo"])
def test_rtl_equals_golden(name, tmp_path):
    """`python -m gen` then `make -C OUT/sim sim`: 32 random frames (+4) through Verilator == golden."""
    gen_and_simulate(EXPORTS / f"{name}.onnx", tmp_path / "out")


@pytest.mark.slow
def test_exports_regenerate(tmp_path):
    """The committed files are what the script makes with Brevitas here (same graph, same initialisers)."""
    pytest.importorskip("brevitas")
    mk = _configs()
    names = ["vgg_w8a8_dynamo", "vgg_w2a2_ts", "resnet_w4a4_unshared_ts", "vgg_w8a8_qonnx"]
    mk.main([str(tmp_path), *names])
    for name in names:
        new = onnx.load(str(tmp_path / f"{name}.onnx"))
        old = onnx.load(str(EXPORTS / f"{name}.onnx"))
        assert [n.op_type for n in new.graph.node] == [n.op_type for n in old.graph.node]
        inits = {i.name: numpy_helper.to_array(i) for i in old.graph.initializer}
        for i in new.graph.initializer:
            assert np.array_equal(numpy_helper.to_array(i), inits[i.name]), (name, i.name)
        _, _, rep = _check(tmp_path / f"{name}.onnx", 16)
        assert rep.unexplained == 0


def test_narrowing_clip_keeps_other_uses_wide():
    """A requantiser (int8) feeds both a Flatten -> QCDQ narrowing Clip(-2, 1) and a plain DequantizeLinear; the two
    branches meet in an Add. The Clip may be fused into the quantiser only when it is the quantiser's sole use:
    here the other branch must keep the wide codes (golden == onnxruntime on every frame)."""
    s = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    z = numpy_helper.from_array(np.array(0, np.int8), "z")
    lo, hi = numpy_helper.from_array(np.array(-2, np.int8), "lo"), numpy_helper.from_array(np.array(1, np.int8), "hi")
    so = numpy_helper.from_array(np.array(0.1, np.float32), "so")
    s0 = numpy_helper.from_array(np.array(0.02, np.float32), "s0")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s0", "z"], ["x0"]),   # the input layer
             helper.make_node("DequantizeLinear", ["x0", "s0", "z"], ["xd"]),
             helper.make_node("QuantizeLinear", ["xd", "s", "z"], ["q"]),    # a requantiser
             helper.make_node("Flatten", ["q"], ["qf"]),
             helper.make_node("Clip", ["qf", "lo", "hi"], ["qc"]),
             helper.make_node("DequantizeLinear", ["qc", "s", "z"], ["a"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["b4"]),
             helper.make_node("Flatten", ["b4"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["sum"]),
             helper.make_node("QuantizeLinear", ["sum", "so", "z"], ["y"])]
    g = helper.make_graph(nodes, "narrow2", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 36])],
                          initializer=[s0, s, z, lo, hi, so])
    m = prepare(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "qdq")
    d = lower(Loaded(m, "qdq", "narrow2", None))
    x = (np.random.default_rng(0).integers(-128, 128, size=(16, 1, 4, 3, 3)) * 0.02).astype(np.float32)
    rep = check_stream(d, m, iter([x.reshape(16, 4, 3, 3)]))
    assert rep.unexplained == 0 and rep.end_to_end.unexplained == 0
