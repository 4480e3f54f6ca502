"""Nearest Resize: gen's exact source-index rule (gen/frontend/ops/pool.py `nearest_source`) against onnxruntime
for every coordinate_transformation_mode x nearest_mode, and the lowering accepts exactly the combinations that
repeat each pixel k times (the hardware Upsample kernel) and refuses the others with one clear error."""

import itertools

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gen.errors import GenError
from gen.frontend import Loaded, lower, prepare
from gen.frontend.ops.pool import nearest_source

CTMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn"]
ROUNDINGS = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def _resize_graph(n_in, k, ctm, rounding, quantised=False):
    opset = 11 if ctm == "tf_half_pixel_for_nn" else 19
    attrs = dict(mode="nearest", coordinate_transformation_mode=ctm, nearest_mode=rounding)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 1, float(k)])
    roi = helper.make_tensor("roi", TensorProto.FLOAT, [0], [])
    nodes, inits = [], [scales, roi]
    x = "x"
    if quantised:
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [0.5]),
                  helper.make_tensor("z", TensorProto.UINT8, [], [0])]
        nodes += [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        x = "xd"
    nodes.append(helper.make_node("Resize", [x, "roi" if opset == 11 else "", "scales"], ["r"], **attrs))
    out = "r"
    if quantised:
        nodes += [helper.make_node("QuantizeLinear", ["r", "s", "z"], ["y"])]
        out = "y"
    g = helper.make_graph(nodes, "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, n_in])],
                          [helper.make_tensor_value_info(out, TensorProto.UINT8 if quantised else TensorProto.FLOAT,
                                                         [1, 1, 1, n_in * k])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("ctm,rounding", list(itertools.product(CTMS, ROUNDINGS)))
def test_source_index_equals_onnxruntime(ctm, rounding):
    for n_in, k in [(1, 2), (3, 2), (4, 3), (5, 4)]:
        m = _resize_graph(n_in, k, ctm, rounding)
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": np.arange(n_in, dtype=np.float32).reshape(1, 1, 1, n_in)})[0]
        assert nearest_source(ctm, rounding, n_in, k) == got.reshape(-1).astype(int).tolist(), (n_in, k)


@pytest.mark.parametrize("ctm,rounding", [("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
                                          ("asymmetric", "ceil"), ("align_corners", "round_prefer_floor"),
                                          ("tf_half_pixel_for_nn", "floor")])
def test_lowering_accepts_only_pixel_repetition(ctm, rounding):
    m = prepare(_resize_graph(6, 2, ctm, rounding, quantised=True), "qdq")
    repeats = nearest_source(ctm, rounding, 6, 2) == [i // 2 for i in range(12)]
    if repeats:
        d = lower(Loaded(m, "qdq", "resize", None))
        assert any(type(la).__name__ == "Upsample" for la in d.layers)
    else:
        with pytest.raises(GenError, match="does not repeat each pixel"):
            lower(Loaded(m, "qdq", "resize", None))
