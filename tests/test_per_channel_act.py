"""Per-channel activation quantisers on a conv output (C != W): a QONNX Quant / BipolarQuant with a (1, C, 1, 1)
scale, and a QDQ QuantizeLinear / DequantizeLinear with a 1-D per-axis scale (axis 1). The constants must follow
the channel axis of the tensor's index map (they once met the last axis, W, and failed or read the wrong axis)."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from gen.frontend import Loaded, lower, prepare
from gen.golden.check import check

C, H, W = 3, 5, 4


def _conv(nodes, inits, x, y, rng, flavour):
    """A Conv with quantised integer weights (QONNX Quant, or int8 + DequantizeLinear)."""
    w = rng.integers(-3, 4, size=(C, 2, 3, 3))
    if flavour == "qonnx":
        inits += [numpy_helper.from_array(w.astype(np.float32), "w"), numpy_helper.from_array(np.float32(1), "ws"),
                  numpy_helper.from_array(np.float32(0), "wz"), numpy_helper.from_array(np.float32(4), "wb")]
        nodes.append(helper.make_node("Quant", ["w", "ws", "wz", "wb"], ["wq"], domain="qonnx.custom_op.general",
                                      signed=1, narrow=0))
    else:
        inits += [numpy_helper.from_array(w.astype(np.int8), "w"), numpy_helper.from_array(np.float32(1), "ws"),
                  numpy_helper.from_array(np.int8(0), "wz")]
        nodes.append(helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wq"]))
    nodes.append(helper.make_node("Conv", [x, "wq"], [y], pads=[1, 1, 1, 1]))


def _qonnx(bipolar: bool, rng):
    q = "qonnx.custom_op.general"
    c = lambda n, v: numpy_helper.from_array(np.asarray(v, np.float32), n)   # noqa: E731
    inits = [c("s_in", 0.25), c("z", 0.0), c("b8", 8.0), c("b4", 4.0),
             c("s_ch", rng.uniform(0.2, 2.0, size=(1, C, 1, 1)))]
    nodes = [helper.make_node("Quant", ["x", "s_in", "z", "b8"], ["xq"], domain=q, signed=1, narrow=0)]
    _conv(nodes, inits, "xq", "acc", rng, "qonnx")
    if bipolar:
        nodes.append(helper.make_node("BipolarQuant", ["acc", "s_ch"], ["y"], domain=q))
    else:
        nodes.append(helper.make_node("Quant", ["acc", "s_ch", "z", "b4"], ["y"], domain=q, signed=1, narrow=0))
    g = helper.make_graph(nodes, "pc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, H, W])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(q, 1)])


def _qdq(rng):
    inits = [numpy_helper.from_array(np.float32(0.25), "s_in"), numpy_helper.from_array(np.int8(0), "z"),
             numpy_helper.from_array(rng.uniform(0.5, 4.0, size=C).astype(np.float32), "s_ch"),
             numpy_helper.from_array(np.zeros(C, np.int8), "z_ch"), numpy_helper.from_array(np.float32(2.0), "s_out")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_in", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s_in", "z"], ["xd"])]
    _conv(nodes, inits, "xd", "acc", rng, "qdq")
    nodes += [helper.make_node("QuantizeLinear", ["acc", "s_ch", "z_ch"], ["aq"], axis=1),
              helper.make_node("DequantizeLinear", ["aq", "s_ch", "z_ch"], ["ad"], axis=1),
              helper.make_node("Relu", ["ad"], ["r"]),
              helper.make_node("QuantizeLinear", ["r", "s_out", "z"], ["y"])]
    g = helper.make_graph(nodes, "pc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, [1, C, H, W])], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("case", ["quant", "bipolar", "qdq"])
def test_per_channel_activation_quantiser(case):
    rng = np.random.default_rng(7)
    flavour = "qdq" if case == "qdq" else "qonnx"
    model = _qdq(rng) if case == "qdq" else _qonnx(case == "bipolar", rng)
    m = prepare(model, flavour)
    d = lower(Loaded(m, flavour, case, None))
    x = (rng.integers(-128, 128, size=(8, 2, H, W)) * 0.25).astype(np.float32)
    rep = check(d, m, x)
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()}
    assert sum(s.compared for s in rep.layers.values()) >= 8 * C * H * W
