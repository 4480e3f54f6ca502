"""Random small ONNX QDQ and QOperator models (the onnxruntime quantisation flavours).

Most kinds build a small float model with onnx.helper (random He-scaled weights) and quantise it with
`onnxruntime.quantization.quantize_static` (QuantFormat.QDQ or QuantFormat.QOperator; random activation type
QUInt8/QInt8, weight type QInt8/QUInt8, per-channel or per-tensor, sometimes reduce_range, symmetric
activations, asymmetric weights, kept Relu/Clip) with a CalibrationDataReader over random data.
Hand-built kinds:
- QDQ "qcdq": Brevitas `export_onnx_qcdq` style, opset 13: QuantizeLinear -> Clip(int range of 2..8 bits)
  -> DequantizeLinear on activations and weights (weights as float -> Q -> Clip -> DQ or int8 -> DQ).
- QDQ "int4": quantize_static with weight_type QInt4 / QUInt4 at opset 21 (works in ORT 1.32).
- QOperator "convinteger" / "matmulinteger": QuantizeLinear -> ConvInteger / MatMulInteger(x_q, w_q, x_zp,
  w_zp) -> Cast(float) -> Mul(x_scale * w_scale) [-> Add bias] [-> Relu] -> QuantizeLinear ... ->
  DequantizeLinear, with static scales chosen from calibration values.

The model input is float and goes straight into a QuantizeLinear; `GenModel.sample` draws codes of that
quantiser and returns (code - zp) * scale in float32.

Usage: `qdq_model(kind, rng)`, `QDQ_KINDS`, `qdq_models()`; `qop_model(kind, rng)`, `QOP_KINDS`, `qop_models()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from .common import (
    GenModel,
    GraphBuilder,
    InputGrid,
    conv_geometry,
    divisors,
    f32,
    pool_geometry,
    rand_channel_scales,
    rand_scale,
)

CALIB_N = 16

QDQ_KINDS = [
    "conv",  # Conv [-> Relu | Clip] chains, random groups / kernel / stride / pads
    "depthwise",  # depthwise (+ pointwise) conv
    "matmul",  # Flatten | 2-D input -> MatMul [+ Add bias]
    "gemm",  # Gemm transB=1 with bias
    "maxpool",
    "avgpool",  # AveragePool
    "globalavgpool",
    "residual",  # Add of two quantised branches
    "concat",
    "flatten",  # conv -> Flatten | Reshape -> MatMul | Gemm
    "mixed",
    "int4",  # 4-bit weights (QInt4 / QUInt4) at opset 21
    "qcdq",  # Brevitas QCDQ: QuantizeLinear -> Clip -> DequantizeLinear, opset 13
    "qcdq_layout",  # Brevitas QCDQ layout patterns: moved Q/C/DQ weights, classifier flattening (qcdq.py)
    "reducemean",  # float ReduceMean (spatial axes) between DQ and Q -> Gemm | MatMul (tests/modelgen/pools.py)
]

QOP_KINDS = [
    "conv",  # QLinearConv
    "depthwise",  # QLinearConv with group = channels
    "matmul",  # QLinearMatMul
    "gemm",  # com.microsoft QGemm
    "maxpool",  # MaxPool on (u)int8
    "avgpool",  # com.microsoft QLinearAveragePool
    "globalavgpool",  # com.microsoft QLinearGlobalAveragePool
    "residual",  # com.microsoft QLinearAdd
    "concat",  # com.microsoft QLinearConcat
    "leakyrelu",  # com.microsoft QLinearLeakyRelu
    "mixed",
    "convinteger",  # hand-built ConvInteger -> Cast -> Mul graphs
    "matmulinteger",  # hand-built MatMulInteger -> Cast -> Mul graphs
    "reducemean",  # float ReduceMean between DequantizeLinear and QuantizeLinear (tests/modelgen/pools.py)
    "floatpool",  # float AveragePool / GlobalAveragePool between DQ and Q (nodes_to_exclude; pools.py)
]


@contextlib.contextmanager
def _quiet_logging():
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(old)


# ----------------------------------------------------------------------------------------------------------------
# float model builder (for quantize_static)
# ----------------------------------------------------------------------------------------------------------------
class _FNet:
    def __init__(self, kind: str, rng: np.random.Generator, flavour: str, opset=13, ir_version=8):
        self.kind = kind
        self.flavour = flavour
        self.rng = rng
        self.b = GraphBuilder(rng, opset=opset, ir_version=ir_version, name=f"{flavour}_{kind}")
        self.input_name = "input" if rng.random() < 0.5 else "x"
        self.input_shape: tuple = ()
        self.info: dict = {"layers": []}
        self.calib_kind = "normal" if rng.random() < 0.6 else "image"

    def log(self, *what):
        self.info["layers"].append(" ".join(str(w) for w in what))

    def rbool(self, p=0.5) -> bool:
        return bool(self.rng.random() < p)

    def rint(self, lo, hi) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def shape(self, x):
        return self.b.shape(x)

    def calib_data(self, n, shape):
        if self.calib_kind == "normal":
            return self.rng.normal(0, 1, size=(n, *shape)).astype(np.float32)
        return self.rng.uniform(0, 1, size=(n, *shape)).astype(np.float32)

    def input(self, shape):
        self.input_shape = (1, *shape)
        return self.b.add_input(self.input_name, self.calib_data(CALIB_N, shape))

    def input_chw(self, cmax=16):
        c = self.rint(1, cmax)
        h = self.rint(4, 12)
        w = h if self.rbool(0.7) else self.rint(4, 12)
        return self.input((c, h, w))

    def act(self, y, act):
        if act == "relu":
            return self.b.op("Relu", [y])
        if act == "clip":
            m = 6.0 if self.rbool() else float(np.quantile(np.abs(self.b.value(y)), 0.8)) or 1.0
            return self.b.op("Clip", [y, self.b.const(f32(0), "min"), self.b.const(f32(m), "max")])
        if act == "leakyrelu":
            return self.b.op("LeakyRelu", [y], alpha=float(self.pick([0.01, 0.1, 0.2])))
        if act is None:
            return y
        raise ValueError(act)

    def conv(self, x, cout=None, k=None, s=None, p=None, groups=None, depthwise=False, bias=None, act="relu",
             same=False):
        rng = self.rng
        c, h, w = self.shape(x)
        if same:
            k = k or self.pick([1, 3, 3, 5])
            s, p = 1, k // 2
        if k is None or s is None or p is None:
            k, s, p = conv_geometry(rng, h, w)
        if depthwise:
            groups = c
            cout = c
        else:
            if groups is None:
                groups = self.pick(divisors(c)) if self.rbool(0.3) else 1
            cout = cout or groups * self.rint(1, max(1, 16 // groups))
            cout = max(groups, (cout // groups) * groups)
        fan_in = (c // groups) * k * k
        wt = rng.normal(0, np.sqrt(2.0 / fan_in), size=(cout, c // groups, k, k)).astype(np.float32)
        ins = [x, self.b.const(wt, "w")]
        if bias is None:
            bias = self.rbool(0.7)
        if bias:
            ins.append(self.b.const(rng.normal(0, 0.2, cout).astype(np.float32), "b"))
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p] * 4)
        if groups != 1:
            attrs["group"] = groups
        y = self.b.op("Conv", ins, **attrs)
        self.log("Conv", f"{c}->{cout} k{k} s{s} p{p} g{groups}", act)
        return self.act(y, act)

    def dense(self, x, nout=None, style=None, bias=None, act="relu"):
        rng = self.rng
        (kin,) = self.shape(x)
        nout = nout or self.rint(2, 16)
        style = style or self.pick(["matmul", "gemm"])
        bias = (style == "gemm" or self.rbool(0.5)) if bias is None else bias
        bv = rng.normal(0, 0.2, nout).astype(np.float32)
        if style == "gemm":
            wt = rng.normal(0, np.sqrt(2.0 / kin), size=(nout, kin)).astype(np.float32)
            ins = [x, self.b.const(wt, "w")] + ([self.b.const(bv, "b")] if bias else [])
            y = self.b.op("Gemm", ins, transB=1)
        else:
            wt = rng.normal(0, np.sqrt(2.0 / kin), size=(kin, nout)).astype(np.float32)
            y = self.b.op("MatMul", [x, self.b.const(wt, "w")])
            if bias:
                y = self.b.op("Add", [y, self.b.const(bv, "b")])
        self.log(style, f"{kin}->{nout}", "bias" if bias else "", act)
        return self.act(y, act)

    def flatten(self, x, style=None):
        style = style or self.pick(["flatten", "reshape0", "reshape-1"])
        n = int(np.prod(self.shape(x)))
        if style == "flatten":
            y = self.b.op("Flatten", [x], axis=1)
        elif style == "reshape0":
            y = self.b.op("Reshape", [x, self.b.const(np.array([0, -1], np.int64), "shape", np.int64)])
        else:
            y = self.b.op("Reshape", [x, self.b.const(np.array([-1, n], np.int64), "shape", np.int64)])
        self.log(style)
        return y

    def maxpool(self, x, k=None, s=None, p=None):
        c, h, w = self.shape(x)
        if k is None:
            k, s, p = pool_geometry(self.rng, h, w)
        attrs = dict(kernel_shape=[k, k], strides=[s, s])
        if p:
            attrs["pads"] = [p] * 4
        self.log("MaxPool", f"k{k} s{s} p{p}")
        return self.b.op("MaxPool", [x], **attrs)

    def avgpool(self, x):
        c, h, w = self.shape(x)
        k, s, p = pool_geometry(self.rng, h, w)
        attrs = dict(kernel_shape=[k, k], strides=[s, s])
        if p:
            attrs["pads"] = [p] * 4
            attrs["count_include_pad"] = 1
        self.log("AveragePool", f"k{k} s{s} p{p}")
        return self.b.op("AveragePool", [x], **attrs)

    def gap(self, x):
        self.log("GlobalAveragePool")
        return self.b.op("GlobalAveragePool", [x])

    def residual(self, x):
        c, h, w = self.shape(x)
        a = self.conv(x, cout=c, groups=1, same=True, act="relu")
        if self.rbool(0.5):
            a = self.conv(a, cout=c, groups=1, same=True, act=None)
        bb = x if self.rbool(0.6) else self.conv(x, cout=c, groups=1, same=True, k=1, act=None)
        y = self.b.op("Add", [a, bb] if self.rbool() else [bb, a])
        self.log("Add")
        return self.act(y, self.pick(["relu", None]))

    def concat(self, x):
        a = self.conv(x, same=True, cout=self.rint(1, 8), act="relu")
        r = self.rng.random()
        if r < 0.4:
            bb = self.conv(x, same=True, cout=self.rint(1, 8), act=self.pick(["relu", None]))
        elif r < 0.7:
            bb = self.maxpool(x, 3, 1, 1)
        else:
            bb = x
        self.log("Concat")
        return self.b.op("Concat", [a, bb] if self.rbool() else [bb, a], axis=1)

    def head(self, x, ncls=None, style=None):
        if len(self.shape(x)) == 3:
            if self.rbool(0.4):
                x = self.gap(x)
            x = self.flatten(x)
        return self.dense(x, ncls or self.rint(2, 10), style=style, act=None)

    def float_model(self, y):
        self.b.add_output(y)
        return self.b.build()


class _Reader:
    def __init__(self, name, batches):
        self.name = name
        self.it = iter(batches)

    def get_next(self):
        b = next(self.it, None)
        return None if b is None else {self.name: b}

    def rewind(self):  # pragma: no cover - not used by quantize_static
        pass


def _quantize(fnet: _FNet, y, fmt: str, w_types=None, nodes_to_exclude=()) -> GenModel:
    """quantize_static the float model built in fnet with random options; returns the GenModel."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = fnet.rng
    fmodel = fnet.float_model(y)
    act_type = QuantType.QUInt8 if rng.random() < 0.6 else QuantType.QInt8
    if w_types is not None:
        w_type = w_types[int(rng.integers(len(w_types)))]
    elif act_type == QuantType.QInt8:
        w_type = QuantType.QInt8  # quantize_static rejects activation QInt8 with weight QUInt8
    else:
        w_type = QuantType.QInt8 if rng.random() < 0.6 else QuantType.QUInt8
    per_channel = bool(rng.random() < 0.5)
    reduce_range = bool(rng.random() < 0.15) and w_types is None
    extra = {}
    first = next(nd for nd in fmodel.graph.node if fnet.input_name in nd.input)
    if first.op_type in ("Flatten", "Reshape", "MaxPool", "Transpose"):
        # latent ops on the float input are left unquantised unless forced: keep the first node a quantiser
        extra["ForceQuantizeNoInputCheck"] = True
    if rng.random() < 0.3:
        extra["ActivationSymmetric"] = True
    if rng.random() < 0.2:
        extra["WeightSymmetric"] = False
    if fmt == "qdq":
        if rng.random() < 0.3:
            extra["QDQKeepRemovableActivations"] = True
        if per_channel and rng.random() < 0.5:
            extra["QDQOpTypePerChannelSupportToAxis"] = {"MatMul": 1}
    fnet.info.update(
        activation_type=str(act_type), weight_type=str(w_type), per_channel=per_channel,
        reduce_range=reduce_range, extra_options=dict(extra), calib=fnet.calib_kind,
    )
    shape = fnet.input_shape[1:]
    batches = [fnet.calib_data(4, shape) for _ in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.r = _Reader(fnet.input_name, batches)

        def get_next(self):
            return self.r.get_next()

    with tempfile.TemporaryDirectory() as d, _quiet_logging():
        src = os.path.join(d, "float.onnx")
        dst = os.path.join(d, "quant.onnx")
        onnx.save(fmodel, src)
        quantize_static(
            src, dst, Reader(),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            activation_type=act_type, weight_type=w_type, per_channel=per_channel, reduce_range=reduce_range,
            extra_options=extra, nodes_to_exclude=list(nodes_to_exclude),
        )
        qmodel = onnx.load(dst)
    qmodel.producer_name = "tests.modelgen+onnxruntime.quantization"
    grid = _grid_from_first_q(qmodel, fnet.input_name)
    return GenModel(
        model=qmodel, flavour=fmt, kind=fnet.kind, input_name=fnet.input_name,
        input_shape=tuple(fnet.input_shape), grid=grid, info=fnet.info,
    )


_QRANGE = {
    TensorProto.UINT8: (0, 255),
    TensorProto.INT8: (-128, 127),
    TensorProto.UINT16: (0, 65535),
    TensorProto.INT16: (-32768, 32767),
    TensorProto.UINT4: (0, 15),
    TensorProto.INT4: (-8, 7),
}


def _grid_from_first_q(model: onnx.ModelProto, input_name: str) -> InputGrid:
    """InputGrid of the QuantizeLinear that consumes the graph input (and of a Clip right after it)."""
    inits = {t.name: t for t in model.graph.initializer}
    q = next(nd for nd in model.graph.node if nd.op_type == "QuantizeLinear" and nd.input[0] == input_name)
    scale = float(numpy_helper.to_array(inits[q.input[1]]).reshape(-1)[0])
    zpt = inits[q.input[2]]
    zp = int(numpy_helper.to_array(zpt).reshape(-1)[0])
    qmin, qmax = _QRANGE[zpt.data_type]
    clip = next((nd for nd in model.graph.node if nd.op_type == "Clip" and nd.input[0] == q.output[0]), None)
    if clip is not None:
        qmin = max(qmin, int(numpy_helper.to_array(inits[clip.input[1]])))
        qmax = min(qmax, int(numpy_helper.to_array(inits[clip.input[2]])))
    return InputGrid(scale=scale, zero_point=zp, qmin=qmin, qmax=qmax)


# ----------------------------------------------------------------------------------------------------------------
# float nets shared by the QDQ and QOperator kinds
# ----------------------------------------------------------------------------------------------------------------
def _f_conv(f: _FNet):
    x = f.input_chw()
    for _ in range(f.rint(1, 3)):
        x = f.conv(x, act=f.pick(["relu", "relu", "clip", None]))
    return x


def _f_depthwise(f: _FNet):
    x = f.input_chw()
    x = f.conv(x, depthwise=True, act=f.pick(["relu", "clip"]))
    if f.rbool(0.6):
        x = f.conv(x, k=1, s=1, p=0, groups=1, act="relu")
    return x


def _f_2d_input(f: _FNet):
    # QOperator: ORT leaves a Flatten / Reshape on the float graph input unquantised even with
    # ForceQuantizeNoInputCheck, so QOperator models take a 2-D input here
    if f.flavour == "qop" or f.rbool(0.5):
        return f.input((f.rint(2, 64),))
    return f.flatten(f.input_chw(8))


def _f_matmul(f: _FNet):
    x = _f_2d_input(f)
    n = f.rint(1, 3)
    for i in range(n):
        x = f.dense(x, style="matmul", act="relu" if i < n - 1 else None)
    return x


def _f_gemm(f: _FNet):
    x = _f_2d_input(f)
    n = f.rint(1, 3)
    for i in range(n):
        x = f.dense(x, style="gemm", bias=True, act="relu" if i < n - 1 else None)
    return x


def _f_maxpool(f: _FNet):
    x = f.input_chw()
    for _ in range(f.rint(1, 2)):
        x = f.conv(x, act="relu")
        x = f.maxpool(x)
    return x


def _f_avgpool(f: _FNet):
    x = f.input_chw()
    x = f.conv(x, act="relu")
    x = f.avgpool(x)
    if f.rbool(0.4):
        x = f.conv(x, act="relu")
    return x


def _f_gap(f: _FNet):
    x = f.input_chw()
    x = f.conv(x, act="relu")
    x = f.gap(x)
    if f.rbool(0.6):
        x = f.dense(f.flatten(x), style=f.pick(["gemm", "matmul"]), act=None)
    return x


def _f_residual(f: _FNet):
    x = f.input_chw()
    if f.rbool(0.6):
        x = f.conv(x, act="relu")
    x = f.residual(x)
    if f.rbool(0.3):
        x = f.residual(x)
    return x


def _f_concat(f: _FNet):
    x = f.input_chw(8)
    if f.rbool(0.5):
        x = f.conv(x, act="relu")
    x = f.concat(x)
    if f.rbool(0.4):
        x = f.conv(x, act="relu")
    return x


def _f_flatten(f: _FNet):
    x = f.input_chw(8)
    x = f.conv(x, act="relu")
    if f.rbool(0.3):
        x = f.maxpool(x)
    return f.dense(f.flatten(x), style=f.pick(["matmul", "gemm"]), act=None)


def _f_leakyrelu(f: _FNet):
    x = f.input_chw()
    for _ in range(f.rint(1, 2)):
        x = f.conv(x, act="leakyrelu")
    return x


def _f_mixed(f: _FNet):
    x = f.input_chw(8)
    for i in range(f.rint(2, 4)):
        c, h, w = f.shape(x)
        # the first block must quantise its input (QDQ leaves a MaxPool on a float input unquantised)
        blk = f.pick(["conv", "depthwise", "maxpool", "avgpool", "residual", "concat"]) if i else "conv"
        if blk in ("maxpool", "avgpool") and min(h, w) < 2:
            blk = "conv"
        if blk == "conv":
            x = f.conv(x, act=f.pick(["relu", "clip", "leakyrelu"]) if f.flavour == "qop" else f.pick(["relu", "clip"]))
        elif blk == "depthwise":
            x = f.conv(x, depthwise=True, act="relu")
        elif blk == "maxpool":
            x = f.maxpool(x)
        elif blk == "avgpool":
            x = f.avgpool(x)
        elif blk == "residual":
            x = f.residual(x)
        else:
            x = f.concat(x)
    if f.rbool(0.6):
        x = f.head(x)
    return x


def _f_int4(f: _FNet):
    return f.pick([_f_conv, _f_gemm, _f_matmul, _f_flatten])(f)


_FLOAT_KINDS = {
    "conv": _f_conv,
    "depthwise": _f_depthwise,
    "matmul": _f_matmul,
    "gemm": _f_gemm,
    "maxpool": _f_maxpool,
    "avgpool": _f_avgpool,
    "globalavgpool": _f_gap,
    "residual": _f_residual,
    "concat": _f_concat,
    "flatten": _f_flatten,
    "leakyrelu": _f_leakyrelu,
    "mixed": _f_mixed,
}


# ----------------------------------------------------------------------------------------------------------------
# hand-built graphs
# ----------------------------------------------------------------------------------------------------------------
def _qparams(v: np.ndarray, rng, dtype, symmetric: bool, qlo=None, qhi=None):
    """Activation scale / zero point for values v into dtype's range (or [qlo, qhi])."""
    lo_t, hi_t = (0, 255) if dtype == np.uint8 else (-128, 127)
    qlo = lo_t if qlo is None else qlo
    qhi = hi_t if qhi is None else qhi
    v = v.astype(np.float64)
    q = rng.uniform(0.97, 1.0)
    if symmetric or dtype == np.int8 and qlo < 0 and rng.random() < 0.5:
        if dtype == np.uint8:
            scale = rand_scale(rng, np.quantile(np.maximum(v, 0), q), qhi)
            return scale, 0
        scale = rand_scale(rng, np.quantile(np.abs(v), q), qhi)
        return scale, 0
    lo = min(float(np.quantile(v, 1 - q)), 0.0)
    hi = max(float(np.quantile(v, q)), 0.0)
    scale = rand_scale(rng, max(hi - lo, 1e-6), qhi - qlo, pow2_prob=0.2)
    zp = int(np.clip(np.round(qlo - lo / scale), qlo, qhi))
    return scale, zp


class _HNet:
    """Hand-built QDQ / integer-op graphs on a GraphBuilder."""

    def __init__(self, kind, rng, flavour, opset=13):
        self.kind = kind
        self.flavour = flavour
        self.rng = rng
        self.b = GraphBuilder(rng, opset=opset, ir_version=8, name=f"{flavour}_{kind}")
        self.input_name = "input" if rng.random() < 0.5 else "x"
        self.input_shape = ()
        self.info = {"layers": []}
        self.grid = None

    rbool = _FNet.rbool
    rint = _FNet.rint
    pick = _FNet.pick
    log = _FNet.log

    def shape(self, x):
        return self.b.shape(x)

    def finish(self, y) -> GenModel:
        self.b.add_output(y)
        return GenModel(
            model=self.b.build(), flavour=self.flavour, kind=self.kind, input_name=self.input_name,
            input_shape=tuple(self.input_shape), grid=self.grid, info=self.info,
        )

    def input(self, shape, scale, zp, qmin, qmax):
        self.input_shape = (1, *shape)
        self.grid = InputGrid(scale=float(scale), zero_point=int(zp), qmin=int(qmin), qmax=int(qmax))
        calib = self.grid.to_float(self.grid.sample_codes((CALIB_N, *shape), self.rng))
        return self.b.add_input(self.input_name, calib)


# -- Brevitas QCDQ -------------------------------------------------------------------------------------------------
def _int_range(bits, signed, narrow):
    if signed:
        return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _qcdq_act(h: _HNet, x, bits, signed, narrow=False, scale=None):
    """QuantizeLinear -> [Clip] -> DequantizeLinear with zero point 0 (Brevitas QCDQ activation)."""
    b = h.b
    dt = np.int8 if signed else np.uint8
    lo, hi = _int_range(bits, signed, narrow)
    if scale is None:
        v = b.value(x).astype(np.float64)
        q = h.rng.uniform(0.97, 1.0)
        amax = np.quantile(np.abs(v) if signed else np.maximum(v, 0), q)
        scale = rand_scale(h.rng, amax, hi)
    s = b.const(f32(scale), "scale")
    z = b.const(np.zeros((), dt), "zero_point", dt)
    y = b.op("QuantizeLinear", [x, s, z])
    if bits < 8 or narrow:
        y = b.op("Clip", [y, b.const(np.array(lo, dt), "min", dt), b.const(np.array(hi, dt), "max", dt)])
    return b.op("DequantizeLinear", [y, s, z])


def _qcdq_weight(h: _HNet, w, bits, per_channel, narrow, axis=0):
    b, rng = h.b, h.rng
    lo, hi = _int_range(bits, True, narrow)
    if per_channel:
        red = tuple(i for i in range(w.ndim) if i != axis)
        sc = rand_channel_scales(rng, np.abs(w).max(axis=red), hi)
        bshape = [1] * w.ndim
        bshape[axis] = w.shape[axis]
        sc_b = sc.reshape(bshape)
        zp = np.zeros(sc.shape, np.int8)
        attrs = {"axis": axis}
    else:
        sc = rand_scale(rng, np.abs(w).max(), hi)
        sc_b = sc
        zp = np.zeros((), np.int8)
        attrs = {}
    s = b.const(sc, "wscale")
    z = b.const(zp, "wzero_point", np.int8)
    if h.rbool(0.5):  # float weight -> Q -> Clip -> DQ
        q = b.op("QuantizeLinear", [b.const(w, "w"), s, z], **attrs)
        if bits < 8 or narrow:
            q = b.op("Clip", [q, b.const(np.array(lo, np.int8), "min", np.int8),
                              b.const(np.array(hi, np.int8), "max", np.int8)])
    else:  # integer weight initializer -> DQ
        codes = np.clip(np.round(w / sc_b), lo, hi).astype(np.int8)
        q = b.const(codes, "w_int", np.int8)
    return b.op("DequantizeLinear", [q, s, z], **attrs), sc


def _qcdq_bias(h: _HNet, bv, in_scale, w_scale):
    """Bias as float initializer or as int32 -> DequantizeLinear(scale = in_scale * w_scale)."""
    b = h.b
    if h.rbool(0.5):
        return b.const(bv.astype(np.float32), "bias")
    bs = (np.float32(in_scale) * np.asarray(w_scale, np.float32)).astype(np.float32).reshape(-1)
    if bs.size == 1:
        bs = np.full(bv.shape, bs[0], np.float32)
    codes = np.round(bv / bs).astype(np.int32)
    return b.op("DequantizeLinear", [b.const(codes, "bias_int", np.int32), b.const(bs, "bias_scale"),
                                     b.const(np.zeros(bs.shape, np.int32), "bias_zp", np.int32)], axis=0)


def _qdq_qcdq(rng) -> GenModel:
    h = _HNet("qcdq", rng, "qdq", opset=13)
    b = h.b
    c, hh = h.rint(1, 8), h.rint(4, 12)
    ww = hh if h.rbool(0.7) else h.rint(4, 12)
    in_bits = h.pick([2, 4, 8, 8, 3, 5, 6, 7])
    in_signed = h.rbool(0.6)
    in_narrow = in_signed and h.rbool(0.3)
    lo, hi = _int_range(in_bits, in_signed, in_narrow)
    in_scale = rand_scale(rng, rng.uniform(0.5, 3.0), hi)
    x = h.input((c, hh, ww), in_scale, 0, lo, hi)
    x = _qcdq_act(h, x, in_bits, in_signed, in_narrow, scale=in_scale)
    h.log("input", (c, hh, ww), f"{in_bits}-bit", "signed" if in_signed else "unsigned")
    act_scale = in_scale
    nconv = h.rint(1, 3)
    for i in range(nconv):
        c, hh, ww = h.shape(x)
        k, s, p = conv_geometry(rng, hh, ww)
        groups = h.pick(divisors(c)) if h.rbool(0.3) else 1
        cout = groups * h.rint(1, max(1, 16 // groups))
        wbits = h.pick([2, 4, 4, 8, 3, 5, 6, 7])
        narrow = h.rbool(0.7)
        w = rng.normal(0, 1, (cout, c // groups, k, k)).astype(np.float32)
        wdq, wsc = _qcdq_weight(h, w, wbits, h.rbool(0.5), narrow)
        ins = [x, wdq]
        if h.rbool(0.6):
            ins.append(_qcdq_bias(h, rng.normal(0, 1, cout) * act_scale * 2 ** (in_bits - 1), act_scale, wsc))
        y = b.op("Conv", ins, kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, group=groups)
        relu = h.rbool(0.7)
        if relu:
            y = b.op("Relu", [y])
        abits = h.pick([2, 4, 4, 8, 3, 5, 6, 7])
        x = _qcdq_act(h, y, abits, signed=not relu, narrow=(not relu) and h.rbool(0.3))
        act_scale = float(b.value(x).std() or 1.0)
        h.log("Conv", f"{c}->{cout} k{k} s{s} p{p} g{groups}", f"w{wbits} a{abits}", "relu" if relu else "")
        if i == 0 and h.rbool(0.3) and min(h.shape(x)[1:]) >= 2:
            x = b.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
            h.log("MaxPool 2")
    if h.rbool(0.5):
        if h.rbool(0.5):
            x = b.op("GlobalAveragePool", [x])
            x = _qcdq_act(h, x, h.pick([4, 8]), signed=bool(b.value(x).min() < 0))
        x = b.op("Flatten", [x], axis=1)
        (kin,) = h.shape(x)
        ncls = h.rint(2, 10)
        wdq, wsc = _qcdq_weight(h, rng.normal(0, 1, (ncls, kin)).astype(np.float32), h.pick([2, 4, 8]),
                                h.rbool(0.5), h.rbool(0.7))
        bias = b.const(rng.normal(0, 1, ncls).astype(np.float32), "bias")
        x = b.op("Gemm", [x, wdq, bias], transB=1)
        h.log("Gemm", f"{kin}->{ncls}")
    return h.finish(x)


# -- integer ops (QOperator) ----------------------------------------------------------------------------------------
def _int_requant(h: _HNet, acc, in_scale, w_scale, bias, relu, axis_shape, last=False):
    """int32 acc -> Cast -> Mul(in_scale * w_scale) [-> Add bias] [-> Relu] -> QuantizeLinear (uint8)."""
    b, rng = h.b, h.rng
    y = b.op("Cast", [acc], to=TensorProto.FLOAT)
    ms = (np.float32(in_scale) * np.asarray(w_scale, np.float32)).astype(np.float32)
    ms = ms.reshape(axis_shape) if ms.size > 1 else np.float32(ms.reshape(-1)[0])
    y = b.op("Mul", [y, b.const(ms, "mul_scale")])
    if bias is not None:
        y = b.op("Add", [y, b.const(bias.astype(np.float32).reshape(axis_shape), "bias")])
    if relu:
        y = b.op("Relu", [y])
    if last:
        return y, None, None
    dt = np.uint8 if relu or h.rbool(0.7) else np.int8
    scale, zp = _qparams(b.value(y), rng, dt, symmetric=relu and dt == np.uint8)
    q = b.op("QuantizeLinear", [y, b.const(scale, "y_scale"), b.const(np.array(zp, dt), "y_zero_point", dt)])
    return q, scale, (zp, dt)


def _int_weight(h: _HNet, w, axis, per_channel_zp: bool):
    """Integer weight codes: int8 symmetric (zp 0) or uint8 with zero point; scale per channel or tensor."""
    rng = h.rng
    per_channel = h.rbool(0.5)
    if h.rbool(0.6):
        dt, lo, hi = np.int8, -127, 127
    else:
        dt, lo, hi = np.uint8, 0, 255
    red = tuple(i for i in range(w.ndim) if i != axis)
    if per_channel:
        sc = rand_channel_scales(rng, np.abs(w).max(axis=red), 127)
        shp = [1] * w.ndim
        shp[axis] = w.shape[axis]
        scb = sc.reshape(shp)
    else:
        sc = rand_scale(rng, np.abs(w).max(), 127)
        scb = sc
    if dt == np.int8:
        zp = np.zeros((w.shape[axis],) if per_channel_zp and h.rbool(0.3) else (), np.int8)
    elif per_channel_zp and h.rbool(0.5):
        zp = rng.integers(100, 156, size=(w.shape[axis],)).astype(np.uint8)
    else:
        zp = np.array(int(rng.integers(100, 156)), np.uint8)
    zpb = zp.reshape([1] * w.ndim if zp.ndim == 0 else [-1 if i == axis else 1 for i in range(w.ndim)])
    codes = np.clip(np.round(w / scb) + zpb.astype(np.int64), lo, hi).astype(dt)
    return codes, zp, sc


def _qop_integer(kind, rng) -> GenModel:
    h = _HNet(kind, rng, "qop", opset=13)
    b = h.b
    conv = kind == "convinteger"
    # input quantiser (uint8; MatMulInteger also takes int8)
    x_dt = np.uint8 if conv or h.rbool(0.7) else np.int8
    if conv or h.rbool(0.4):
        c, hh = h.rint(1, 8), h.rint(4, 12)
        ww = hh if h.rbool(0.7) else h.rint(4, 12)
        shape = (c, hh, ww)
    else:
        shape = (h.rint(2, 64),)
    if x_dt == np.uint8:
        zp = int(rng.integers(0, 256)) if h.rbool(0.5) else 0
        qlo, qhi = 0, 255
    else:
        zp, qlo, qhi = 0, -128, 127
    in_scale = rand_scale(rng, rng.uniform(0.5, 3.0), 127)
    x = h.input(shape, in_scale, zp, qlo, qhi)
    xq = b.op("QuantizeLinear", [x, b.const(in_scale, "x_scale"), b.const(np.array(zp, x_dt), "x_zero_point", x_dt)])
    h.log("input", shape, np.dtype(x_dt).name, "zp", zp)
    q_scale, q_zp, q_dt = in_scale, zp, x_dt
    if conv:
        for _ in range(h.rint(1, 3)):
            c, hh, ww = h.shape(xq)
            k, s, p = conv_geometry(rng, hh, ww)
            groups = h.pick(divisors(c)) if h.rbool(0.3) else 1
            cout = groups * h.rint(1, max(1, 16 // groups))
            w = rng.normal(0, 1, (cout, c // groups, k, k))
            codes, wzp, wsc = _int_weight(h, w, 0, per_channel_zp=False)
            acc = b.op(
                "ConvInteger",
                [xq, b.const(codes, "w_q", codes.dtype), b.const(np.array(q_zp, q_dt), "x_zp", q_dt),
                 b.const(wzp, "w_zp", wzp.dtype)],
                kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, group=groups,
            )
            bias = rng.normal(0, 1, cout) * float(np.abs(b.value(acc)).mean() + 1) * float(
                np.mean(np.float32(q_scale) * np.asarray(wsc))) if h.rbool(0.6) else None
            relu = h.rbool(0.7)
            xq, q_scale, zpdt = _int_requant(h, acc, q_scale, wsc, bias, relu, (1, cout, 1, 1))
            q_zp, q_dt = zpdt
            h.log("ConvInteger", f"{c}->{cout} k{k} s{s} p{p} g{groups}", "w", codes.dtype.name, "relu" if relu else "")
            if q_dt == np.uint8 and h.rbool(0.2) and min(h.shape(xq)[1:]) >= 2:
                xq = b.op("MaxPool", [xq], kernel_shape=[2, 2], strides=[2, 2])
                h.log("MaxPool uint8")
        if h.rbool(0.5):
            xq = b.op("Flatten", [xq], axis=1)
            h.log("Flatten")
    else:
        if len(shape) == 3:
            xq = b.op("Flatten", [xq], axis=1)
    nd = len(h.shape(xq))
    if nd == 1:
        layers = h.rint(1, 3) if not conv else 1
        for i in range(layers):
            (kin,) = h.shape(xq)
            nout = h.rint(2, 16)
            w = rng.normal(0, 1, (kin, nout))
            codes, wzp, wsc = _int_weight(h, w, 1, per_channel_zp=True)
            acc = b.op(
                "MatMulInteger",
                [xq, b.const(codes, "w_q", codes.dtype), b.const(np.array(q_zp, q_dt), "a_zp", q_dt),
                 b.const(wzp, "b_zp", wzp.dtype)],
            )
            bias = rng.normal(0, 1, nout) * float(np.abs(b.value(acc)).mean() + 1) * float(
                np.mean(np.float32(q_scale) * np.asarray(wsc))) if h.rbool(0.6) else None
            last = i == layers - 1
            relu = (not last) and h.rbool(0.7)
            last_float = last and h.rbool(0.3)
            xq, sc, zpdt = _int_requant(h, acc, q_scale, wsc, bias, relu, (1, nout), last=last_float)
            h.log("MatMulInteger", f"{kin}->{nout}", "w", codes.dtype.name, "relu" if relu else "")
            if last_float:
                return h.finish(xq)
            q_scale, (q_zp, q_dt) = sc, zpdt
    y = b.op("DequantizeLinear", [xq, b.const(np.float32(q_scale), "out_scale"),
                                  b.const(np.array(q_zp, q_dt), "out_zero_point", q_dt)])
    return h.finish(y)


# ----------------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------------
def qdq_model(kind: str, rng: np.random.Generator) -> GenModel:
    """A random small ONNX QDQ model of the given kind (see QDQ_KINDS)."""
    from onnxruntime.quantization import QuantType

    if kind not in QDQ_KINDS:
        raise ValueError(f"unknown QDQ kind {kind!r}; one of {QDQ_KINDS}")
    if kind == "qcdq_layout":
        from .qcdq import qcdq_layout
        return qcdq_layout(rng)
    if kind == "qcdq":
        return _qdq_qcdq(rng)
    if kind in ("reducemean",):
        from .pools import ort_pool_model
        return ort_pool_model(kind, rng, "qdq")
    if kind == "int4":
        f = _FNet(kind, rng, "qdq", opset=21, ir_version=10)
        y = _f_int4(f)
        return _quantize(f, y, "qdq", w_types=[QuantType.QInt4, QuantType.QUInt4])
    f = _FNet(kind, rng, "qdq")
    y = _FLOAT_KINDS[kind](f)
    return _quantize(f, y, "qdq")


def qop_model(kind: str, rng: np.random.Generator) -> GenModel:
    """A random small ONNX QOperator model of the given kind (see QOP_KINDS)."""
    if kind not in QOP_KINDS:
        raise ValueError(f"unknown QOperator kind {kind!r}; one of {QOP_KINDS}")
    if kind in ("convinteger", "matmulinteger"):
        return _qop_integer(kind, rng)
    if kind in ("reducemean", "floatpool"):
        from .pools import ort_pool_model
        return ort_pool_model(kind, rng, "qop")
    f = _FNet(kind, rng, "qop")
    y = _FLOAT_KINDS[kind](f)
    return _quantize(f, y, "qop")


def qdq_models(kinds=None):
    """Hypothesis strategy over QDQ_KINDS (or `kinds`) and seeds."""
    from hypothesis import strategies as st

    return st.builds(
        lambda kind, seed: qdq_model(kind, np.random.default_rng(seed)),
        st.sampled_from(list(kinds or QDQ_KINDS)),
        st.integers(0, 2**32 - 1),
    )


def qop_models(kinds=None):
    """Hypothesis strategy over QOP_KINDS (or `kinds`) and seeds."""
    from hypothesis import strategies as st

    return st.builds(
        lambda kind, seed: qop_model(kind, np.random.default_rng(seed)),
        st.sampled_from(list(kinds or QOP_KINDS)),
        st.integers(0, 2**32 - 1),
    )
