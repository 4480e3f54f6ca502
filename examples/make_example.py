#!/usr/bin/env python3
"""Write examples/example_cnn.onnx: a small deterministic QONNX CNN shaped like a wafer-map classifier.

    python examples/make_example.py            # writes examples/example_cnn.onnx next to this script
    python examples/make_example.py --check    # ... and runs it in qonnx on synthetic wafer maps

Graph (opset 13, ir_version 8, Quant in domain qonnx.custom_op.general, dynamic batch "N"):

    x (N,1,32,32) float image k/255
    Quant 8-bit unsigned (scale 1/255, zero point 0)
    Conv 3x3 -> 8,  pad 1, 4-bit weights (per-channel scale) -> BatchNormalization -> Relu -> Quant 4-bit unsigned
    MaxPool 2
    Conv 3x3 -> 16, pad 1, 4-bit weights -> BatchNormalization -> Relu -> Quant 4-bit unsigned
    MaxPool 2
    Conv 3x3 -> 16, pad 1, 4-bit weights -> BatchNormalization -> Relu -> Quant 4-bit unsigned
    GlobalAveragePool -> Quant 8-bit unsigned -> Flatten
    Gemm -> 9 classes (4-bit weights, per-channel scale, float bias, transB=1)
    Softmax

The weights are random (seeded), not trained. BatchNorm statistics, activation scales and the classifier bias
are calibrated on synthetic wafer maps (0 = outside the wafer, 128/255 = good die, 1 = failing die, with
centre / ring / scratch / random defect patterns) so that every channel has a spread of codes and the classes
are not degenerate. The script is deterministic: the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import os
import warnings

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QDOMAIN = "qonnx.custom_op.general"
H = W = 32
NCLS = 9


def wafer_maps(n: int, rng: np.random.Generator) -> np.ndarray:
    """n synthetic 32x32 wafer maps as float32 images k/255 (k in {0, 128, 255}), shape (n, 1, 32, 32)."""
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(yy - (H - 1) / 2, xx - (W - 1) / 2)
    wafer = r <= H / 2 - 1
    out = np.zeros((n, 1, H, W), np.float32)
    for i in range(n):
        kind = int(rng.integers(0, 6))
        fail = rng.random((H, W)) < rng.uniform(0.0, 0.08)  # random background failures
        if kind == 1:  # centre blob
            fail |= r < rng.uniform(3, 8)
        elif kind == 2:  # edge ring
            fail |= r > H / 2 - 1 - rng.uniform(2, 5)
        elif kind == 3:  # scratch (a line)
            a, b = rng.uniform(-1, 1), rng.uniform(0, H)
            fail |= np.abs(yy - (a * xx + b)) < 1.0
        elif kind == 4:  # local cluster
            cy, cx = rng.uniform(6, H - 6, 2)
            fail |= np.hypot(yy - cy, xx - cx) < rng.uniform(2, 5)
        elif kind == 5:  # dense random
            fail |= rng.random((H, W)) < rng.uniform(0.2, 0.5)
        k = np.where(wafer, np.where(fail, 255, 128), 0)
        out[i, 0] = (k.astype(np.float32) / np.float32(255)).astype(np.float32)
    return out


class _Builder:
    """Graph under construction; calibrates by running the partial graph in qonnx."""

    def __init__(self, calib: np.ndarray):
        self.nodes, self.inits = [], []
        self.calib = calib
        self.n = 0

    def name(self, hint):
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, arr, hint):
        nm = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, op_type, inputs, hint=None, domain="", out=None, **attrs):
        out = out or self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name("n_" + op_type), domain=domain,
                                           **attrs))
        return out

    def quant(self, x, scale, bits, signed, narrow=False):
        ins = [x, self.const(np.float32(scale) if np.ndim(scale) == 0 else np.asarray(scale, np.float32), "scale"),
               self.const(np.float32(0), "zeropt"), self.const(np.float32(bits), "bitwidth")]
        return self.op("Quant", ins, "quant", QDOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def model(self, output, batch="N", out_shape=None):
        inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, H, W])
        outp = helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, *out_shape])
        g = helper.make_graph(list(self.nodes), "example_cnn", [inp], [outp], list(self.inits))
        return helper.make_model(
            g, ir_version=8, producer_name="gen examples/make_example.py",
            opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOMAIN, 1)],
        )

    def run(self, output, rank=4) -> np.ndarray:
        """Value of tensor `output` (of the given rank) on the calibration batch (qonnx cleanup + execute_onnx)."""
        return run_qonnx(self.model(output, batch=1, out_shape=[f"d{i}" for i in range(1, rank)]), self.calib)


def run_qonnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mw = cleanup_model(ModelWrapper(copy.deepcopy(model)), override_inpsize=x.shape[0])
        out = execute_onnx(mw, {mw.graph.input[0].name: x})
    return out[mw.graph.output[0].name]


def build(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    calib = wafer_maps(64, rng)
    b = _Builder(calib)
    x = b.quant("x", np.float32(1 / 255), 8, signed=False)

    def conv_block(x, cin, cout):
        w = rng.normal(0, np.sqrt(2.0 / (cin * 9)), size=(cout, cin, 3, 3)).astype(np.float32)
        ws = (np.abs(w).max(axis=(1, 2, 3)) / 7).astype(np.float32).reshape(cout, 1, 1, 1)  # 4-bit narrow: +-7
        wq = b.quant(b.const(w, "w"), ws, 4, signed=True, narrow=True)
        y = b.op("Conv", [x, wq], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        v = b.run(y).astype(np.float64)
        mean = v.mean(axis=(0, 2, 3))
        var = v.var(axis=(0, 2, 3)) + 1e-4
        gamma = rng.uniform(0.8, 1.25, cout)
        beta = rng.uniform(-0.1, 0.6, cout)
        bn = [b.const(a.astype(np.float32), h) for a, h in
              [(gamma, "bn_weight"), (beta, "bn_bias"), (mean, "bn_running_mean"), (var, "bn_running_var")]]
        y = b.op("BatchNormalization", [y, *bn], epsilon=1e-5)
        y = b.op("Relu", [y])
        v = b.run(y)
        scale = np.float32(np.quantile(v, 0.99) / 15)  # 4-bit unsigned: 0..15
        return b.quant(y, scale, 4, signed=False)

    x = conv_block(x, 1, 8)
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = conv_block(x, 8, 16)
    x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = conv_block(x, 16, 16)
    x = b.op("GlobalAveragePool", [x])
    v = b.run(x)
    x = b.quant(x, np.float32(np.max(v) / 255), 8, signed=False)
    x = b.op("Flatten", [x], axis=1)
    wg = rng.normal(0, np.sqrt(2.0 / 16), size=(NCLS, 16)).astype(np.float32)
    wgs = (np.abs(wg).max(axis=1) / 7).astype(np.float32).reshape(NCLS, 1)
    wgq = b.quant(b.const(wg, "fc_w"), wgs, 4, signed=True, narrow=True)
    # classifier bias: centre the logits over the calibration set so that no class dominates
    zero_bias = b.const(np.zeros(NCLS, np.float32), "fc_b_tmp")
    b.nodes.append(helper.make_node("Gemm", [x, wgq, zero_bias], ["logits_tmp"], transB=1))
    logits = b.run("logits_tmp", rank=2).astype(np.float64)
    b.nodes.pop()
    b.inits.pop()
    bias = (-logits.mean(axis=0) + rng.normal(0, 0.1, NCLS) * logits.std()).astype(np.float32)
    y = b.op("Gemm", [x, wgq, b.const(bias, "fc_b")], "logits", transB=1)
    y = b.op("Softmax", [y], out="probs", axis=1)
    m = b.model(y, out_shape=[NCLS])
    onnx.checker.check_model(m)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                          "example_cnn.onnx"))
    ap.add_argument("--check", action="store_true", help="run the written model in qonnx and print a summary")
    args = ap.parse_args()
    m = build(args.seed)
    onnx.save(m, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")
    if args.check:
        x = wafer_maps(32, np.random.default_rng(12345))
        y = run_qonnx(m, x)
        assert y.shape == (32, NCLS) and np.all(np.isfinite(y))
        print("output", y.shape, "sum=1:", np.allclose(y.sum(1), 1, atol=1e-5),
              "arg-max histogram:", np.bincount(y.argmax(1), minlength=NCLS).tolist())


if __name__ == "__main__":
    main()
