"""FINN's CIFAR-10 CNV topology as a QONNX model with random weights (onnx.helper, no training).

3x32x32 input (8-bit, /255) -> conv3x3 64, 64, maxpool2 -> 128, 128, maxpool2 -> 256, 256 (no padding)
-> FC 512, 512, 10. W1A1: bipolar weights and activations (BipolarQuant); W2A2: 2-bit signed narrow weights and
activations (Quant). Each conv / FC is followed by BatchNormalization and the activation quantiser; the first
conv sees the 8-bit image, the last FC gives float scores. BatchNorm statistics are set from the fan-in so that
every activation's thresholds fall inside its accumulator's range (as after training).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DOMAIN = "qonnx.custom_op.general"
CONVS = [64, 64, "pool", 128, 128, "pool", 256, 256]
FCS = [512, 512, 10]


def cnv_model(w_bits: int = 1, a_bits: int = 1, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    cnt = [0]

    def name(h):
        cnt[0] += 1
        return f"{h}_{cnt[0]}"

    def const(arr, h):
        n = name(h)
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), n))
        return n

    def op(t, ins, h, domain="", **attrs):
        o = name(h)
        nodes.append(helper.make_node(t, ins, [o], name=name("n_" + t), domain=domain, **attrs))
        return o

    def quant(x, bits, signed, narrow, scale):
        if bits == 1:
            return op("BipolarQuant", [x, const(scale, "s")], "bq", DOMAIN)
        return op("Quant", [x, const(scale, "s"), const(0.0, "z"), const(bits, "b")], "q", DOMAIN, signed=int(signed),
                  narrow=int(narrow), rounding_mode="ROUND")

    def weight(shape):
        if w_bits == 1:
            w = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        else:
            w = rng.integers(-1, 2, size=shape).astype(np.float32)  # narrow 2-bit: {-1, 0, 1}
        return quant(const(w, "w"), w_bits, True, True, 1.0), w

    def bn(x, c, mean, std):
        return op("BatchNormalization", [x, const(np.ones(c), "g"), const(np.zeros(c), "beta"), const(mean, "m"),
                                         const(std ** 2, "v")], "bn", epsilon=0.0)

    def act(x):
        return quant(x, a_bits, True, True, 1.0)

    x = "input"
    y = quant(x, 8, False, False, 1.0 / 255)
    c = 3
    first = True
    for spec in CONVS:
        if spec == "pool":
            y = op("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
            continue
        wq, w = weight((spec, c, 3, 3))
        y = op("Conv", [y, wq], "conv", kernel_shape=[3, 3], strides=[1, 1], pads=[0, 0, 0, 0])
        fan = c * 9
        if first:  # input in [0, 1]: mean 0.5 * sum(w), var ~ fan * E[w^2] / 12
            mean = 0.5 * w.reshape(spec, -1).sum(1)
            std = np.sqrt(fan * np.mean(w ** 2) / 12.0) + 1e-3
        else:
            mean = np.zeros(spec)
            std = np.sqrt(fan * np.mean(w ** 2) * (1.0 if a_bits == 1 else 0.66)) + 1e-3
        y = act(bn(y, spec, mean * (1 + 0.1 * rng.standard_normal(spec)), std))
        c = spec
        first = False
    y = op("Flatten", [y], "flat", axis=1)
    for i, n in enumerate(FCS):
        wq, w = weight((c, n))
        y = op("MatMul", [y, wq], "fc")
        if i < len(FCS) - 1:
            std = np.sqrt(c * np.mean(w ** 2) * (1.0 if a_bits == 1 else 0.66)) + 1e-3
            y = act(bn(y, n, np.zeros(n), std))
        c = n
    graph = helper.make_graph(nodes, f"cnv_w{w_bits}a{a_bits}",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOMAIN, 1)],
                          producer_name="gen-bench")
    m.ir_version = 8
    return m


# FINN's published folding for CNV on the XC7Z020 (finn test_end2end_bnn_pynq fold_cnv_large): (PE, SIMD) per
# MatrixVectorActivation in order (6 convs, 3 FCs); the sliding window generators take the SIMD of their MVAU.
FINN_CNV_FOLD = [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (5, 1)]
# and for TFC (fold_tfc): 784 -> 64 -> 64 -> 64 -> 10
FINN_TFC_FOLD = [(16, 49), (8, 8), (8, 8), (10, 8)]


if __name__ == "__main__":
    import sys
    for wb, ab in ((1, 1), (2, 2)):
        onnx.save(cnv_model(wb, ab), f"{sys.argv[1] if len(sys.argv) > 1 else '.'}/cnv_w{wb}a{ab}.onnx")
