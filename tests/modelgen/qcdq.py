"""Random Brevitas-QCDQ-style QDQ models with the layout patterns real exports hold (kind "qcdq_layout").

What `brevitas.export.export_onnx_qcdq` writes (tests/exports/make_brevitas.py makes real ones) beyond the plain
"qcdq" kind of ort_models.py:
- weights quantised in the graph and then moved: float weight -> QuantizeLinear -> [Clip] -> DequantizeLinear
  -> Transpose (TorchScript's Linear without bias: MatMul(x, Transpose(W))), or a weight stored in another layout
  (per-channel axis following it) and brought to OIHW / (K, N) by Transpose or Reshape after the DequantizeLinear;
- the classifier input as Flatten, Reshape([0, -1]) / Reshape([-1, K]) (torch.flatten / x.view in the dynamo
  and TorchScript exporters; x.view(x.size(0), -1) with a dynamic batch as Shape -> Gather -> Unsqueeze -> Concat
  -> Reshape), a channels-last Transpose(0, 2, 3, 1) before the flattening Reshape, Squeeze of a
  global pool; the Flatten sometimes between QuantizeLinear and Clip / DequantizeLinear (on the codes);
- between two Linear layers, Reshape / Unsqueeze / Squeeze / Flatten round trips of the 1-D activation.
Random shapes, 2..8-bit weights and activations, per-tensor or per-channel weight scales, float or Int32 bias.
"""

from __future__ import annotations

import numpy as np

from .common import GenModel, conv_geometry, rand_scale
from .ort_models import _HNet, _int_range, _qcdq_act, _qcdq_bias, _qcdq_weight

BITS = [2, 3, 4, 4, 5, 6, 7, 8, 8]


def _moved_weight(h: _HNet, w: np.ndarray, bits: int, per_channel: bool, narrow: bool, oc_axis: int = 0):
    """Q/C/DQ of `w` stored in another layout, moved back by Transpose or Reshape after the DequantizeLinear."""
    b = h.b
    style = h.pick(["plain", "transpose", "reshape"])
    if style == "transpose":
        perm = [int(p) for p in h.rng.permutation(w.ndim)]  # stored = w.transpose(perm)
        inv = [int(i) for i in np.argsort(perm)]
        dq, sc = _qcdq_weight(h, np.ascontiguousarray(w.transpose(perm)), bits, per_channel, narrow,
                              axis=perm.index(oc_axis))
        return b.op("Transpose", [dq], perm=inv), sc, f"T{perm}"
    if style == "reshape" and oc_axis == 0 and w.ndim > 2:
        dq, sc = _qcdq_weight(h, w.reshape(w.shape[0], -1), bits, per_channel, narrow, axis=0)
        shape = b.const(np.array(w.shape, np.int64), "wshape", np.int64)
        return b.op("Reshape", [dq, shape]), sc, "R"
    dq, sc = _qcdq_weight(h, w, bits, per_channel, narrow, axis=oc_axis)
    return dq, sc, ""


def _conv(h: _HNet, x, act_scale, in_bits):
    b, rng = h.b, h.rng
    c, hh, ww = h.shape(x)
    k, s, p = conv_geometry(rng, hh, ww)
    cout = h.rint(1, 12)
    wbits = h.pick(BITS)
    w = rng.normal(0, 1, (cout, c, k, k)).astype(np.float32)
    wdq, wsc, how = _moved_weight(h, w, wbits, h.rbool(0.5), h.rbool(0.7))
    ins = [x, wdq]
    if h.rbool(0.6):
        ins.append(_qcdq_bias(h, rng.normal(0, 1, cout) * act_scale * 2 ** (in_bits - 1), act_scale, wsc))
    y = b.op("Relu", [b.op("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)])
    abits = h.pick(BITS)
    h.log("Conv", f"{c}->{cout} k{k} s{s} p{p}", f"w{wbits}{how} a{abits}")
    return _qcdq_act(h, y, abits, signed=False), abits


def _flat_act(h: _HNet, y, bits: int, signed: bool):
    """QCDQ activation whose Flatten sits on the integer codes (after QuantizeLinear or after Clip)."""
    b = h.b
    dt = np.int8 if signed else np.uint8
    lo, hi = _int_range(bits, signed, False)
    v = b.value(y).astype(np.float64)
    amax = np.quantile(np.abs(v) if signed else np.maximum(v, 0), 0.99)
    s = b.const(np.float32(rand_scale(h.rng, amax, hi)), "scale")
    z = b.const(np.zeros((), dt), "zero_point", dt)
    q = b.op("QuantizeLinear", [y, s, z])
    where = h.pick(["q", "clip"]) if bits < 8 else "q"
    if where == "q":
        q = b.op("Flatten", [q], axis=1)
    if bits < 8:
        q = b.op("Clip", [q, b.const(np.array(lo, dt), "min", dt), b.const(np.array(hi, dt), "max", dt)])
    if where == "clip":
        q = b.op("Flatten", [q], axis=1)
    h.log("Flatten on codes", f"after {where}")
    return b.op("DequantizeLinear", [q, s, z])


def _flatten(h: _HNet, x):
    """The classifier input: one of the ways the exporters write torch.flatten / x.view."""
    b = h.b
    if h.rbool(0.3):
        x = b.op("GlobalAveragePool", [x])
        abits = h.pick([4, 8])
        if h.rbool(0.5):
            h.log("GlobalAveragePool", "Squeeze")
            x = _qcdq_act(h, x, abits, signed=False)
            return b.op("Squeeze", [x, b.const(np.array([2, 3], np.int64), "axes", np.int64)])
        return _flat_act(h, x, abits, signed=False)
    style = h.pick(["flatten", "reshape0", "reshape_k", "channels_last", "view"])
    h.log("classifier input", style)
    if style == "flatten":
        return b.op("Flatten", [x], axis=1)
    if style == "view":  # TorchScript's x.view(x.size(0), -1) with a dynamic batch axis
        n = b.op("Gather", [b.op("Shape", [x]), b.const(np.array(0, np.int64), "zero", np.int64)], axis=0)
        n = b.op("Unsqueeze", [n, b.const(np.array([0], np.int64), "axes", np.int64)])
        target = b.op("Concat", [n, b.const(np.array([-1], np.int64), "minus_one", np.int64)], axis=0)
        return b.op("Reshape", [x, target])
    if style == "channels_last":
        x = b.op("Transpose", [x], perm=[0, 2, 3, 1])
    # [-1, K] is what the exporters write for a fixed batch of 1 ([1, K]) with the batch left free
    target = [0, -1] if style == "reshape0" else [-1, int(np.prod(h.shape(x)))]
    return b.op("Reshape", [x, b.const(np.array(target, np.int64), "shape", np.int64)])


def _linear(h: _HNet, x, nout: int, act_scale: float, in_bits: int):
    """Gemm(transB=1) or MatMul(x, Transpose(W)) (TorchScript, Linear without bias) or MatMul of a (K, N) weight."""
    b, rng = h.b, h.rng
    (kin,) = h.shape(x)
    wbits, per_channel, narrow = h.pick(BITS), h.rbool(0.5), h.rbool(0.7)
    style = h.pick(["gemm", "matmul_t", "matmul"])
    w = rng.normal(0, 1, (nout, kin)).astype(np.float32)
    h.log("Linear", f"{kin}->{nout}", style, f"w{wbits}")
    if style == "gemm":
        wdq, wsc = _qcdq_weight(h, w, wbits, per_channel, narrow, axis=0)
        bias = _qcdq_bias(h, rng.normal(0, 1, nout) * act_scale * 2 ** (in_bits - 1), act_scale, wsc)
        return b.op("Gemm", [x, wdq, bias], transB=1)
    if style == "matmul_t":
        wdq, _ = _qcdq_weight(h, w, wbits, per_channel, narrow, axis=0)
        return b.op("MatMul", [x, b.op("Transpose", [wdq], perm=[1, 0])])
    wdq, _, _ = _moved_weight(h, np.ascontiguousarray(w.T), wbits, per_channel, narrow, oc_axis=1)
    return b.op("MatMul", [x, wdq])


def _between(h: _HNet, x):
    """Layout round trips Brevitas' graphs leave between two Linear layers (1-D activation back to 1-D)."""
    b = h.b
    (n,) = h.shape(x)
    style = h.pick(["none", "reshape4", "unsqueeze"])
    h.log("between", style)
    if style == "reshape4":
        x = b.op("Reshape", [x, b.const(np.array([-1, n, 1, 1], np.int64), "shape", np.int64)])
        return b.op("Flatten", [x], axis=1)
    if style == "unsqueeze":
        x = b.op("Unsqueeze", [x, b.const(np.array([2, 3], np.int64), "axes", np.int64)])
        return b.op("Squeeze", [x, b.const(np.array([3, 2], np.int64), "axes", np.int64)])
    return x


def qcdq_layout(rng: np.random.Generator) -> GenModel:
    h = _HNet("qcdq_layout", rng, "qdq", opset=13)
    c, hh = h.rint(1, 6), h.rint(4, 10)
    ww = hh if h.rbool(0.7) else h.rint(4, 10)
    in_bits, in_signed = h.pick([4, 8, 8]), h.rbool(0.6)
    lo, hi = _int_range(in_bits, in_signed, False)
    in_scale = rand_scale(rng, rng.uniform(0.5, 3.0), hi)
    x = h.input((c, hh, ww), in_scale, 0, lo, hi)
    x = _qcdq_act(h, x, in_bits, in_signed, scale=in_scale)
    h.log("input", (c, hh, ww), f"{in_bits}-bit", "signed" if in_signed else "unsigned")
    act_scale, bits = float(in_scale), in_bits
    for _ in range(h.rint(1, 2)):
        x, bits = _conv(h, x, act_scale, bits)
        act_scale = float(h.b.value(x).std() or 1.0)
    x = _flatten(h, x)
    if h.rbool(0.6):
        x = h.b.op("Relu", [_linear(h, x, h.rint(2, 12), act_scale, bits)])
        bits = h.pick(BITS)
        x = _qcdq_act(h, x, bits, signed=False)
        act_scale = float(h.b.value(x).std() or 1.0)
        x = _between(h, x)
    return h.finish(_linear(h, x, h.rint(2, 10), act_scale, bits))
