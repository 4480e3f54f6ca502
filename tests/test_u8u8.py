"""gen/golden/u8u8.py: the U8U8 form of mixed-signedness integer ops computes the ONNX integer program exactly in
onnxruntime, whatever the CPU (MLAS saturates u8 x s8 product pairs to int16 on AVX2 without VNNI)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gen.golden.u8u8 import u8u8


def _run(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def _matmul_integer(a_type, b, b_zp=None):
    """y = MatMulInteger(a, b[, a_zp, b_zp]) with a constant b: the textbook case of pair saturation."""
    a_dtype = np.uint8 if a_type == TensorProto.UINT8 else np.int8
    inits = [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(0, a_dtype), "a_zp")]
    inputs = ["a", "b", "a_zp"]
    if b_zp is not None:
        inits.append(numpy_helper.from_array(np.array(b_zp, b.dtype), "b_zp"))
        inputs.append("b_zp")
    g = helper.make_graph([helper.make_node("MatMulInteger", inputs, ["y"], name="mm")], "g",
                          [helper.make_tensor_value_info("a", a_type, [1, b.shape[0]])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, b.shape[1]])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("b_zp", [None, -3])
def test_u8s8_matmul_exact(b_zp):
    rng = np.random.default_rng(0)
    b = np.concatenate([np.full((64, 2), 127, np.int8), rng.integers(-128, 128, (64, 6)).astype(np.int8)], axis=1)
    a = np.concatenate([np.full((1, 32), 255, np.uint8), rng.integers(0, 256, (1, 32)).astype(np.uint8)], axis=1)
    exact = a.astype(np.int64) @ (b.astype(np.int64) - (b_zp or 0))
    m = _matmul_integer(TensorProto.UINT8, b, b_zp)
    got = _run(u8u8(m), {"a": a})
    np.testing.assert_array_equal(got, exact)   # 255 * 127 * 64 = 2,072,640: far past any int16 pair
    onnx.checker.check_model(u8u8(m))


def test_s8u8_activation_shifted_by_nodes():
    rng = np.random.default_rng(1)
    b = rng.integers(0, 256, (16, 4)).astype(np.uint8)
    a = np.full((1, 16), -128, np.int8)
    m = _matmul_integer(TensorProto.INT8, b)
    r = u8u8(m)
    assert [n.op_type for n in r.graph.node] == ["Cast", "Add", "Cast", "MatMulInteger"]
    np.testing.assert_array_equal(_run(r, {"a": a}), a.astype(np.int64) @ b.astype(np.int64))


def test_same_signedness_untouched():
    b = np.ones((4, 2), np.uint8)
    m = _matmul_integer(TensorProto.UINT8, b)
    assert u8u8(m).SerializeToString() == m.SerializeToString()
    b8 = np.ones((4, 2), np.int8)
    m8 = _matmul_integer(TensorProto.INT8, b8)
    assert u8u8(m8).SerializeToString() == m8.SerializeToString()
