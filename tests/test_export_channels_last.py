"""Channels-last QONNX (QKeras -> qonnx.converters.from_keras): the committed real exports and random models in
the same style lower, pass `gen check`, and the channels-last rewrite (gen/frontend/channels_last.py) keeps the
graph's values exactly.

Default suite: the three committed exports (tests/data/exports/channels_last, made by tests/exports/make_qkeras.py)
and one random model per generator kind. Slow: more random models, the exports regenerated with the real tools
(when a Python with TensorFlow + QKeras + qonnx 0.4.0 is named by GEN_QKERAS_PYTHON), and the U-Net-like export
through `python -m gen` + `make -C OUT/sim sim` (RTL == golden on 32 frames under back-pressure).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from gen.frontend import load_design
from gen.frontend.channels_last import to_channels_first
from gen.golden.check import check, sample_inputs
from tests.modelgen.channels_last import (
    CHANNELS_LAST_KINDS,
    QONNX_CHANNELS_LAST_KINDS,
    channels_last_model,
    qonnx_channels_last_model,
)

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO / "tests" / "data" / "exports" / "channels_last"
NAMES = ["qkeras_conv", "qkeras_branch", "qkeras_unet"]


def _gen_check(loaded, design, x):
    rep = check(design, loaded.model, x)
    assert rep.unexplained == 0, {k: (s.unexplained, s.examples) for k, s in rep.layers.items()}
    assert rep.argmax_unexplained == 0   # an arg-max differing only where the scores are a proven near-tie
    return rep


@pytest.mark.parametrize("name", NAMES)
def test_export_gen_check(name):
    loaded, design = load_design(EXPORTS / f"{name}.onnx")
    assert loaded.model.producer_name == "tf2onnx"
    _gen_check(loaded, design, sample_inputs(design, 16, np.random.default_rng(3)))
    layers = {type(layer).__name__ for layer in design.layers}
    assert {"Input", "Conv", "Requant", "MaxPool"} <= layers
    if name == "qkeras_unet":
        assert {"Concat", "Upsample"} <= layers
        assert design.output_boundary["kind"] == "tensor"
        assert design.tensors[design.output].shape == (16, 16, 3)   # per-pixel scores, N,H,W,K
    if name == "qkeras_branch":
        # 6 input channels: NHWC is known only by the Transpose behind the input's Relu (hoisted above it)
        assert design.layers[0].layout == "NHWC"


@pytest.mark.parametrize("name", NAMES)
def test_qonnx_channels_last_ops(name):
    """hls4ml-style *_ch_last.onnx (qonnx ConvertToChannelsLastAndClean: Conv / MaxPool in the
    qonnx.custom_op.channels_last domain). qonnx's own cleanup crashes on them once value_info is dropped; gen
    writes the ops as Transposes around the standard ops first, and that graph computes what qonnx's channels-last
    ops compute, bit for bit."""
    path = EXPORTS / f"{name}_ch_last.onnx"
    original = onnx.load(path)
    assert any(nd.domain == "qonnx.custom_op.channels_last" for nd in original.graph.node)
    loaded, design = load_design(path)
    assert not any(nd.domain == "qonnx.custom_op.channels_last" for nd in loaded.model.graph.node)
    x = sample_inputs(design, 8, np.random.default_rng(4))
    _gen_check(loaded, design, x)
    assert np.array_equal(_qonnx_exec(loaded.model, x[:4]), _qonnx_exec(original, x[:4]))


def _qonnx_exec(model, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    mw = ModelWrapper(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.concatenate([execute_onnx(mw, {mw.graph.input[0].name: x[i:i + 1]})[mw.graph.output[0].name]
                               for i in range(len(x))])


def _as_written(model):
    """The model without the channels-last rewrite: batch pinned to 1 and qonnx's cleanup, as gen's prepare."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_value = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cleanup_model(ModelWrapper(m)).model


def _random_case(kind, seed, tmp_path, n=8):
    gm = channels_last_model(kind, np.random.default_rng(seed))
    path = tmp_path / f"{kind}_{seed}.onnx"
    onnx.save(gm.model, path)
    loaded, design = load_design(path)
    x = gm.sample(n, np.random.default_rng(seed + 1))
    # the rewritten graph (what gen check's reference runs) == the model as written, bit for bit
    # (frame by frame both: onnxruntime's float Conv may sum in another order for another batch size)
    assert np.array_equal(_qonnx_exec(loaded.model, x), _qonnx_exec(_as_written(gm.model), x))
    _gen_check(loaded, design, x)
    return gm, loaded


@pytest.mark.parametrize("kind", CHANNELS_LAST_KINDS)
def test_random_channels_last(kind, tmp_path):
    gm, loaded = _random_case(kind, 7, tmp_path)
    ops = [nd.op_type for nd in gm.model.graph.node]
    if kind in ("cl_branch", "cl_unet"):   # the generator wrote the NHWC forms, the rewrite removed them
        assert any(nd.op_type == "Concat" and helper.get_attribute_value(nd.attribute[0]) in (3, -1)
                   for nd in gm.model.graph.node)
        assert all(helper.get_attribute_value(a) == 1 for nd in loaded.model.graph.node if nd.op_type == "Concat"
                   for a in nd.attribute if a.name == "axis")
    assert "Transpose" in ops


def _random_chl_case(kind, seed, tmp_path, n=6):
    gm = qonnx_channels_last_model(kind, np.random.default_rng(seed))
    assert any(nd.domain == "qonnx.custom_op.channels_last" for nd in gm.model.graph.node)
    path = tmp_path / f"{kind}_{seed}.onnx"
    onnx.save(gm.model, path)
    loaded, design = load_design(path)
    x = gm.sample(n, np.random.default_rng(seed + 1))
    # Transposes around standard ops == qonnx's own execution of its channels-last ops, bit for bit
    assert np.array_equal(_qonnx_exec(loaded.model, x), _qonnx_exec(gm.model, x))
    _gen_check(loaded, design, x)


@pytest.mark.parametrize("kind", QONNX_CHANNELS_LAST_KINDS)
def test_random_qonnx_channels_last_ops(kind, tmp_path):
    _random_chl_case(kind, 11, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", QONNX_CHANNELS_LAST_KINDS)
@pytest.mark.parametrize("seed", range(8))
def test_random_qonnx_channels_last_sweep(kind, seed, tmp_path):
    _random_chl_case(kind, 200 + seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", CHANNELS_LAST_KINDS)
@pytest.mark.parametrize("seed", range(10))
def test_random_channels_last_sweep(kind, seed, tmp_path):
    _random_case(kind, 100 + seed, tmp_path)


def _tiny(op_nodes, inits, in_shape, out_shape):
    g = helper.make_graph(op_nodes, "t", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return onnx.shape_inference.infer_shapes(m)


def test_resize_scales_read_as_onnx_defines_them():
    """(1, 1, a, 1) is a valid N,C,H,W Resize (H only): it is left alone; (1, a, b, 1) is N,H,W,C and rewritten."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    for scales, rewrites in (((1, 1, 2, 1), 0), ((1, 2, 3, 1), 1)):
        inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
                 numpy_helper.from_array(np.array(scales, np.float32), "sc")]
        m = _tiny([helper.make_node("Resize", ["x", "roi", "sc"], ["y"], mode="nearest")], inits,
                  [1, 2, 3, 4], None)
        before = ReferenceEvaluator(m).run(None, {"x": x})[0]
        assert to_channels_first(m) == rewrites
        assert np.array_equal(ReferenceEvaluator(m).run(None, {"x": x})[0], before)


@pytest.mark.slow
def test_regenerate_with_qkeras(tmp_path):
    """The exports made again with the real tools lower and pass gen check (the files may differ from the
    committed ones in the order tf2onnx gives the weight quantisers, not in what they compute)."""
    py = os.environ.get("GEN_QKERAS_PYTHON", "/tmp/tfvenv/bin/python")
    if not Path(py).exists():
        pytest.skip("no Python with TensorFlow + QKeras + qonnx 0.4.0 (set GEN_QKERAS_PYTHON)")
    r = subprocess.run([py, str(REPO / "tests" / "exports" / "make_qkeras.py"), str(tmp_path)], check=False,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in NAMES:
        loaded, design = load_design(tmp_path / f"{name}.onnx")
        _gen_check(loaded, design, sample_inputs(design, 16, np.random.default_rng(5)))


@pytest.mark.slow
def test_unet_rtl_matches_golden(tmp_path):
    """`python -m gen` on the U-Net-like export, then the design's own `make sim`: 32 random frames under
    random back-pressure, RTL == golden."""
    out = tmp_path / "unet"
    r = subprocess.run([sys.executable, "-m", "gen", str(EXPORTS / "qkeras_unet.onnx"), "--board", "zybo-z7",
                        "-o", str(out)], check=False, capture_output=True, text=True, timeout=1200, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run(["make", "-C", str(out / "sim"), "sim", f"PYTHON={sys.executable}"], check=False,
                       capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
