"""Concat of 2-5 differently quantised tensors (issue 14, family 5), in the three flavours.

Each branch gets its own quantiser: random scale (random ratios, not only powers of two), zero point, bit width
(2-8) and signedness. The concat then feeds one of:
  conv   - a Conv directly (no quantiser between: the per-channel scales reach the Conv)
  quant  - a quantiser (Quant / QuantizeLinear / QLinearConcat's own output grid)
  maxpool- a MaxPool, then a quantiser or the output
  output - the model output (a float tensor with per-channel scales)
  argmax - an ArgMax over the channels of a 1x1 concat at the output (per-class scales and zero points)

    concat_model("qonnx", "conv", rng)    # kinds: CONCAT_KINDS; flavours: qonnx, qdq, qop
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .common import GenModel, f32, rand_scale
from .ort_models import _HNet
from .qonnx_models import _Net

CONCAT_KINDS = ("conv", "quant", "maxpool", "output", "argmax")


def _branch_params(rng, i):
    """Quantiser of branch i: bits 2-8, signedness, scale jitter (random ratio), zero point (unsigned only)."""
    bits = int(rng.integers(2, 9))
    signed = bool(rng.random() < 0.4)
    return bits, signed


# -- QONNX ------------------------------------------------------------------------------------------------------
def _qonnx(kind, rng) -> GenModel:
    n = _Net(f"concat_{kind}", rng)
    c, h, w = n.rint(1, 4), n.rint(3, 7), n.rint(3, 7)
    if kind == "argmax":
        h = w = 1
    x = n.input_quant((c, h, w))
    parts = []
    for i in range(n.rint(2, 5)):
        bits, signed = _branch_params(rng, i)
        r = rng.random()
        if r < 0.7 or i == 0:
            y = n.conv(x, same=True, cout=n.rint(1, 4), act="relu" if not signed else None, quant=False)
        else:
            y = n.b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        zp = None
        if not signed and n.rbool(0.4):
            zp = n.rint(1, (1 << bits) - 1) if bits > 1 else 0
            v = n.b.value(y).astype(np.float64)
            scale = rand_scale(rng, max(float(np.quantile(np.abs(v), 0.98)), 1e-3) * 2, (1 << bits) - 1,
                               pow2_prob=0.1)
            y = n.quant(y, bits, signed, scale=scale, zp=zp)
        else:
            y = n.quant(y, bits, signed)
        n.log("branch", i, f"{bits}{'s' if signed else 'u'}", "zp", zp or 0)
        parts.append(y)
    y = n.b.op("Concat", parts, axis=1)
    n.log("Concat", len(parts))
    y = _qonnx_tail(n, kind, y)
    return n.finish(y)


def _qonnx_tail(n, kind, y):
    if kind == "conv":
        y = n.conv(y, same=n.rbool(0.7), act=n.pick(["relu", None]), quant=True)
        if n.rbool(0.5):
            y = n.head(y, out=n.pick([None, "argmax"]))
    elif kind == "quant":
        signed = n.rbool(0.5)
        y = n.quant(y, n.rint(2, 8), signed, zp_prob=0.3)
        if n.rbool(0.5):
            y = n.conv(y, same=True, act="relu", quant=True)
    elif kind == "maxpool":
        y = n.maxpool(y, 2, 2, 0) if min(n.shape(y)[1:]) >= 2 else y
        if n.rbool(0.5):
            y = n.quant(y, n.rint(2, 8), n.rbool(0.5))
    elif kind == "argmax":
        y = n.b.op("ArgMax", [y], axis=1, keepdims=n.pick([0, 1]))
    return y


# -- QDQ -----------------------------------------------------------------------------------------------------------
def _qdq_act(h: _HNet, x, bits, signed, zp_ok=True):
    """QuantizeLinear (random scale, zero point) -> [Clip to `bits`] -> DequantizeLinear."""
    b, rng = h.b, h.rng
    dt = np.int8 if signed else np.uint8
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = b.value(x).astype(np.float64)
    zp = 0
    if not signed and zp_ok and h.rbool(0.5):
        zp = h.rint(0, hi // 2)
    amax = max(float(np.quantile(np.abs(v), 0.98)), 1e-3)
    scale = rand_scale(rng, amax * (1 if signed else 1.3), hi - zp if not signed else hi, pow2_prob=0.1)
    s = b.const(f32(scale), "scale")
    z = b.const(np.array(zp, dt), "zero_point", dt)
    q = b.op("QuantizeLinear", [x, s, z])
    if bits < 8:
        q = b.op("Clip", [q, b.const(np.array(lo, dt), "min", dt), b.const(np.array(hi, dt), "max", dt)])
    return b.op("DequantizeLinear", [q, s, z]), (scale, zp, lo, hi)


def _qdq_conv(h: _HNet, x, cout, relu, same=True):
    from .ort_models import _qcdq_weight
    b, rng = h.b, h.rng
    c = h.shape(x)[0]
    k = h.pick([1, 3]) if same else 3
    w = rng.normal(0, 1, (cout, c, k, k)).astype(np.float32)
    wdq, _ = _qcdq_weight(h, w, h.pick([4, 8, 3, 6]), h.rbool(0.5), h.rbool(0.5))
    ins = [x, wdq]
    if h.rbool(0.5):
        rms = float(np.sqrt(np.mean(b.value(x).astype(np.float64) ** 2))) or 1.0
        ins.append(b.const((rng.normal(0, 0.4, cout) * rms * np.sqrt(k * k * c)).astype(np.float32), "bias"))
    y = b.op("Conv", ins, kernel_shape=[k, k], strides=[1, 1], pads=[k // 2] * 4 if same else [0] * 4)
    return b.op("Relu", [y]) if relu else y


def _qdq(kind, rng) -> GenModel:
    h = _HNet(f"concat_{kind}", rng, "qdq", opset=13)
    c, hh, ww = h.rint(1, 4), h.rint(3, 7), h.rint(3, 7)
    if kind == "argmax":
        hh = ww = 1
    in_scale = rand_scale(rng, rng.uniform(0.5, 3.0), 255)
    in_zp = h.rint(0, 128)
    x = h.input((c, hh, ww), in_scale, in_zp, 0, 255)
    s, z = h.b.const(f32(in_scale), "scale"), h.b.const(np.array(in_zp, np.uint8), "zero_point", np.uint8)
    x = h.b.op("DequantizeLinear", [h.b.op("QuantizeLinear", [x, s, z]), s, z])
    parts = []
    for i in range(h.rint(2, 5)):
        bits, signed = _branch_params(rng, i)
        if rng.random() < 0.7 or i == 0:
            y = _qdq_conv(h, x, h.rint(1, 4), relu=not signed)
        else:
            y = h.b.op("MaxPool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        y, qp = _qdq_act(h, y, bits, signed)
        h.log("branch", i, f"{bits}{'s' if signed else 'u'}", "scale", qp[0], "zp", qp[1])
        parts.append(y)
    y = h.b.op("Concat", parts, axis=1)
    h.log("Concat", len(parts))
    if kind == "conv":
        y = _qdq_conv(h, y, h.rint(1, 6), relu=h.rbool(0.5), same=h.rbool(0.7))
        y, _ = _qdq_act(h, y, h.rint(2, 8), h.rbool(0.5))
    elif kind == "quant":
        y, _ = _qdq_act(h, y, h.rint(2, 8), h.rbool(0.5))
        if h.rbool(0.5):
            y, _ = _qdq_act(h, _qdq_conv(h, y, h.rint(1, 6), relu=True), h.rint(2, 8), False)
    elif kind == "maxpool":
        if min(h.shape(y)[1:]) >= 2:
            y = h.b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
        if h.rbool(0.5):
            y, _ = _qdq_act(h, y, h.rint(2, 8), h.rbool(0.5))
    elif kind == "argmax":
        y = h.b.op("ArgMax", [y], axis=1, keepdims=h.pick([0, 1]))
    return h.finish(y)


# -- QOperator: QLinearConv branches -> com.microsoft QLinearConcat ---------------------------------------------------
def _qop_conv(h: _HNet, x, xq, cout, out_dt):
    """QLinearConv with random int8 weights (per-tensor or per-channel scale) and a random output grid."""
    b, rng = h.b, h.rng
    xs, xz = xq
    c = h.shape(x)[0]
    k = h.pick([1, 3])
    w = rng.integers(-127, 128, size=(cout, c, k, k)).astype(np.int8)
    ws = (rng.uniform(0.5, 1.5, cout if h.rbool(0.5) else 1) / 127).astype(np.float32)
    ins = [x, b.const(f32(xs), "x_scale"), b.const(np.array(xz, np.uint8), "x_zp", np.uint8),
           b.const(w, "w", np.int8), b.const(ws, "w_scale"), b.const(np.zeros(ws.shape, np.int8), "w_zp", np.int8)]
    # output grid from the float values this conv produces on the calibration batch
    xf = (b.value(x).astype(np.float32) - xz) * xs
    acc_rms = float(np.sqrt(np.mean(xf.astype(np.float64) ** 2))) * float(np.abs(ws).max() * 127) * np.sqrt(c * k * k)
    hi = 127 if out_dt == np.int8 else 255
    ys = rand_scale(rng, acc_rms * rng.uniform(1.0, 3.0), hi, pow2_prob=0.1)
    yz = 0 if out_dt == np.int8 else h.rint(0, 128)
    ins += [b.const(f32(ys), "y_scale"), b.const(np.array(yz, out_dt), "y_zp", out_dt)]
    if h.rbool(0.5):
        ins.append(b.const(rng.integers(-200, 200, cout).astype(np.int32), "bias", np.int32))
    y = b.op("QLinearConv", ins, kernel_shape=[k, k], pads=[k // 2] * 4)
    return y, (ys, yz)


def _qop(kind, rng) -> GenModel:
    h = _HNet(f"concat_{kind}", rng, "qop", opset=13)
    b = h.b
    c, hh, ww = h.rint(1, 4), h.rint(3, 7), h.rint(3, 7)
    if kind == "argmax":
        hh = ww = 1
    in_scale, in_zp = rand_scale(rng, rng.uniform(0.5, 3.0), 255), h.rint(0, 128)
    x = h.input((c, hh, ww), in_scale, in_zp, 0, 255)
    x = b.op("QuantizeLinear", [x, b.const(f32(in_scale), "scale"), b.const(np.array(in_zp, np.uint8), "zp",
                                                                           np.uint8)])
    # QLinearConcat needs one element type for all inputs and the output: uint8 (activations after ReLU-free
    # convs with a zero point) - the widths differ through the ranges each grid reaches
    parts, qps = [], []
    for i in range(h.rint(2, 5)):
        if rng.random() < 0.8 or i == 0:
            y, qp = _qop_conv(h, x, (in_scale, in_zp), h.rint(1, 4), np.uint8)
        else:
            y, qp = x, (in_scale, in_zp)
        parts.append(y)
        qps.append(qp)
        h.log("branch", i, "scale", qp[0], "zp", qp[1])
    ys = rand_scale(rng, max(q[0] for q in qps) * 255 * rng.uniform(0.5, 1.2), 255, pow2_prob=0.1)
    yz = h.rint(0, 128)
    b.use_domain("com.microsoft", 1)
    ins = [b.const(f32(ys), "y_scale"), b.const(np.array(yz, np.uint8), "y_zp", np.uint8)]
    for p, (s, z) in zip(parts, qps):
        ins += [p, b.const(f32(s), "x_scale"), b.const(np.array(z, np.uint8), "x_zp", np.uint8)]
    y = _qlinear_concat(b, ins, parts)
    h.log("QLinearConcat", len(parts))
    yq = (ys, yz)
    if kind == "conv":
        y, yq = _qop_conv(h, y, yq, h.rint(1, 6), np.uint8)
    elif kind == "maxpool" and min(h.shape(y)[1:]) >= 2:
        y = b.op("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.op("DequantizeLinear", [y, b.const(f32(yq[0]), "out_scale"),
                                  b.const(np.array(yq[1], np.uint8), "out_zp", np.uint8)])
    if kind == "argmax":
        y = b.op("ArgMax", [y], axis=1, keepdims=h.pick([0, 1]))
    return h.finish(y)


def _qlinear_concat(b, ins, parts):
    """Add a com.microsoft QLinearConcat and run it in onnxruntime (onnx has no schema to infer its output)."""
    import onnxruntime as ort
    from onnx import helper

    out = b.fresh("qlinearconcat")
    node = helper.make_node("QLinearConcat", ins, [out], name=b.fresh("n_QLinearConcat"), domain="com.microsoft",
                            axis=1)
    b.nodes.append(node)
    shape = list(b.values[parts[0]].shape)
    shape[1] = sum(b.values[p].shape[1] for p in parts)
    g = helper.make_graph([node], "eager",
                          [helper.make_tensor_value_info(p, TensorProto.UINT8, list(b.values[p].shape))
                           for p in dict.fromkeys(parts)],
                          [helper.make_tensor_value_info(out, TensorProto.UINT8, shape)],
                          [i for i in b.inits if i.name in ins])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in b.opsets.items()],
                          ir_version=b.ir_version)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    b.values[out] = sess.run(None, {p: b.values[p] for p in dict.fromkeys(parts)})[0]
    return out


_MAKERS = {"qonnx": _qonnx, "qdq": _qdq, "qop": _qop}


def concat_model(flavour: str, kind: str, rng: np.random.Generator) -> GenModel:
    """A random model of CONCAT_KINDS `kind` in `flavour` (qonnx | qdq | qop)."""
    if kind not in CONCAT_KINDS:
        raise ValueError(f"unknown concat kind {kind!r}; one of {CONCAT_KINDS}")
    return _MAKERS[flavour](kind, rng)


def concat_models(flavour: str, kinds=None):
    """Hypothesis strategy: a concat model of a random kind from a random seed."""
    from hypothesis import strategies as st

    return st.builds(lambda kind, seed: concat_model(flavour, kind, np.random.default_rng(seed)),
                     st.sampled_from(list(kinds or CONCAT_KINDS)), st.integers(0, 2**32 - 1))

