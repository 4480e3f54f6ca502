"""Random small QONNX models (Quant / BipolarQuant / Trunc custom ops around standard opset-13 ops).

Graphs look like Brevitas / QKeras / FINN exports: float weights as initializers going through a weight Quant
(per-tensor or per-output-channel scale), float biases, activations quantised by Quant nodes after
[BatchNormalization] -> [Relu | LeakyRelu | Clip]. The custom-op domain is random per model:
qonnx.custom_op.general (60 %), onnx.brevitas (20 %, old Brevitas) or finn.custom_op.general (20 %, old FINN).

Usage: `qonnx_model(kind, rng) -> GenModel`, `QONNX_KINDS`, hypothesis strategy `qonnx_models()`.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from .common import (
    BREVITAS_DOMAIN,
    FINN_DOMAIN,
    QONNX_DOMAIN,
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
from .pools import qonnx_reducemean

CALIB_N = 16  # calibration batch used to choose scales and BatchNorm statistics

QONNX_KINDS = [
    "conv",  # 1-3 convs, random groups (incl. depthwise), kernel, stride, pads
    "depthwise",  # depthwise conv (+ pointwise)
    "matmul",  # 2-D MatMul layers (weights Quant, optional Quant -> Transpose like FINN TFC), Add bias
    "gemm",  # Gemm transB=1 with float bias
    "batchnorm",  # Conv/MatMul -> BatchNormalization -> act -> Quant
    "relu",
    "leakyrelu",
    "clip",  # Clip(0, m) (ReLU6-like) or Clip(-m, m) (hard tanh)
    "maxpool",
    "avgpool",  # AveragePool -> Quant
    "truncavgpool",  # Brevitas TruncAvgPool2d: AveragePool -> Mul(k*k) -> Trunc(FLOOR)
    "globalavgpool",
    "residual",  # two branches quantised with different scales -> Add -> [Relu] -> Quant
    "preprocess",  # image k/255 -> Mul/Sub/Div/Add by scalars -> first Quant
    "flatten",  # conv -> Flatten | Reshape -> MatMul | Gemm
    "nhwc",  # QKeras style: NHWC input -> Transpose -> Conv ... -> Transpose -> Reshape -> MatMul
    "concat",  # channel concat of two quantised branches -> Quant
    "resize",  # nearest upsample x2 (Resize opset 13 with scales)
    "softmax",  # ... -> Gemm -> Softmax
    "argmax",  # ... -> Gemm -> ArgMax
    "bipolar",  # 1-bit BipolarQuant weights and activations (FINN TFC / CNV style)
    "mixed",  # several of the above chained at random
    "reducemean",  # ReduceMean over H, W (axes attribute or input, keepdims 0/1) -> Quant (tests/modelgen/pools.py)
]

# Graph inputs annotated with a QONNX datatype (quantization_annotation 'finn_datatype', as FINN and the QONNX
# model zoo write it); qonnx's executor rejects inputs off that grid. Kept out of QONNX_KINDS so that the
# hypothesis draws over QONNX_KINDS (derandomised) stay what they were; qonnx_model accepts both lists.
QONNX_INPUT_KINDS = [
    "bipolar_input",  # input annotated BIPOLAR ({-1, +1}) -> BipolarQuant or 2-bit narrow Quant -> TFC MLP / conv
    "scaled_input",  # input annotated INTn / UINTn / FIXED<n,i>: scale * integers in range -> scaled Quant -> MLP
]


def _min_int(signed, narrow, bits):
    if signed and bits == 1:
        return -1
    if signed:
        return -(2 ** (bits - 1)) + int(narrow)
    return 0


def _max_int(signed, narrow, bits):
    if signed and bits == 1:
        return 1
    if signed:
        return 2 ** (bits - 1) - 1
    return 2**bits - 1 - int(narrow)


class _Net:
    """One QONNX model under construction: a GraphBuilder plus the quantiser bookkeeping."""

    def __init__(self, kind: str, rng: np.random.Generator):
        self.kind = kind
        self.rng = rng
        self.b = GraphBuilder(rng, opset=13, ir_version=8, name=f"qonnx_{kind}")
        r = rng.random()
        self.domain = QONNX_DOMAIN if r < 0.6 else (BREVITAS_DOMAIN if r < 0.8 else FINN_DOMAIN)
        self.qinfo: dict = {}  # quantised tensor -> dict(scale, zp, bits, signed, narrow)
        self.grid: InputGrid | None = None
        self.input_name = "global_in" if rng.random() < 0.3 else "x"
        self.input_shape: tuple = ()
        self.info: dict = {"domain": self.domain, "layers": []}
        self.input_datatype: str | None = None  # QONNX datatype annotated on the graph input (finish writes it)

    # -- helpers -------------------------------------------------------------------------------------------
    def log(self, *what):
        self.info["layers"].append(" ".join(str(w) for w in what))

    def rbool(self, p=0.5) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options):
        """Random element of a list (as the Python object, None allowed)."""
        return options[int(self.rng.integers(len(options)))]

    def rint(self, lo, hi) -> int:
        """Random int in [lo, hi] inclusive."""
        return int(self.rng.integers(lo, hi + 1))

    def shape(self, x):
        return self.b.shape(x)

    # -- quantisers ----------------------------------------------------------------------------------------
    def quant(self, x, bits, signed, narrow=False, scale=None, zp=None, zp_prob=0.0):
        """Activation Quant. scale / zero point from the calibration values unless given."""
        rng = self.rng
        v = self.b.value(x).astype(np.float64)
        narrow = bool(narrow) and bits > 1
        qmin, qmax = _min_int(signed, narrow, bits), _max_int(signed, narrow, bits)
        if scale is None:
            q = rng.uniform(0.97, 1.0)
            if signed:
                amax = np.quantile(np.abs(v), q)
                scale = rand_scale(rng, amax, qmax)
                zp = 0
            elif zp is None and rng.random() < zp_prob and v.min() < 0:
                lo, hi = np.quantile(v, 1 - q), np.quantile(v, q)
                scale = rand_scale(rng, max(hi - lo, 1e-6), qmax - qmin, pow2_prob=0.2)
                zp = int(np.clip(np.round(-lo / scale), 1, qmax))
            else:
                amax = np.quantile(np.maximum(v, 0), q)
                scale = rand_scale(rng, amax, qmax)
        zp = 0 if zp is None else zp
        s = self.b.const(f32(scale), "scale")
        z = self.b.const(f32(zp), "zeropt")
        bw = self.b.const(f32(bits), "bitwidth")
        y = self.b.op(
            "Quant", [x, s, z, bw], hint="quant", domain=self.domain,
            signed=int(signed), narrow=int(narrow), rounding_mode="ROUND",
        )
        self.qinfo[y] = dict(scale=f32(scale), zp=int(zp), bits=int(bits), signed=bool(signed), narrow=narrow)
        return y

    def bipolar(self, x, scale=None):
        if scale is None:
            scale = 1.0 if self.rbool(0.6) else rand_scale(self.rng, self.rng.uniform(0.1, 2.0), 1)
        s = self.b.const(f32(scale), "scale")
        y = self.b.op("BipolarQuant", [x, s], hint="bquant", domain=self.domain)
        self.qinfo[y] = dict(scale=f32(scale), zp=0, bits=1, signed=True, narrow=False, bipolar=True)
        return y

    def weight(self, w, axis=0, bits=None, per_channel=None, narrow=None, bipolar=False, hint="w"):
        """Float weight initializer -> Quant (per-tensor or per-channel along `axis`) or BipolarQuant."""
        rng = self.rng
        w = np.asarray(w, dtype=np.float32)
        wc = self.b.const(w, hint)
        if bipolar:
            return self.bipolar(wc, scale=1.0 if self.rbool(0.7) else None)
        if bits is None:
            bits = self.rint(1, 8) if self.rbool(0.85) else self.rint(1, 3)
        if per_channel is None:
            per_channel = self.rbool(0.5)
        if narrow is None:
            narrow = self.rbool(0.5)
        narrow = narrow and bits > 1
        qmax = _max_int(True, narrow, bits)
        if per_channel:
            red = tuple(i for i in range(w.ndim) if i != axis)
            amax = np.abs(w).max(axis=red)
            sc = rand_channel_scales(rng, amax, qmax)
            shape = [1] * w.ndim
            shape[axis] = w.shape[axis]
            sc = sc.reshape(shape)
        else:
            sc = rand_scale(rng, np.abs(w).max(), qmax)
        s = self.b.const(sc, "wscale")
        z = self.b.const(f32(0), "wzeropt")
        bw = self.b.const(f32(bits), "wbits")
        return self.b.op(
            "Quant", [wc, s, z, bw], hint="wquant", domain=self.domain,
            signed=1, narrow=int(narrow), rounding_mode="ROUND",
        )

    def act_bits(self):
        return self.rint(2, 8) if self.rbool(0.9) else 1

    # -- input ---------------------------------------------------------------------------------------------
    def rand_chw(self, cmax=16):
        c = self.rint(1, cmax)
        h = self.rint(4, 12)
        w = h if self.rbool(0.7) else self.rint(4, 12)
        return c, h, w

    def input_quant(self, shape, bits=None, signed=None):
        """Graph input (shape without batch) on the grid of an input Quant; returns the Quant output."""
        rng = self.rng
        bits = bits or self.rint(2, 8)
        signed = self.rbool(0.5) if signed is None else signed
        narrow = signed and self.rbool(0.3)
        qmin, qmax = _min_int(signed, narrow, bits), _max_int(signed, narrow, bits)
        scale = rand_scale(rng, rng.uniform(0.25, 4.0), qmax)
        zp = 0
        if not signed and self.rbool(0.25):
            zp = self.rint(1, qmax)
        self.grid = InputGrid(scale=float(scale), zero_point=zp, qmin=qmin, qmax=qmax)
        x = self.add_input(shape)
        self.log("input", shape, f"Quant{bits}{'s' if signed else 'u'}", "zp", zp)
        return self.quant(x, bits, signed, narrow, scale=scale, zp=zp)

    def add_input(self, shape):
        self.input_shape = (1, *shape)
        calib = self.grid.to_float(self.grid.sample_codes((CALIB_N, *shape), self.rng))
        return self.b.add_input(self.input_name, calib)

    # -- layers --------------------------------------------------------------------------------------------
    def act_quant(self, y, act="relu", quant=True, bits=None):
        """[act] -> Quant. act: relu | leakyrelu | clip | None."""
        rng = self.rng
        signed = True
        if act == "relu":
            y = self.b.op("Relu", [y])
            signed = False
        elif act == "leakyrelu":
            y = self.b.op("LeakyRelu", [y], alpha=float(rng.choice([0.01, 0.1, 0.2, rng.uniform(0.01, 0.3)])))
        elif act == "clip":
            v = self.b.value(y)
            m = float(np.quantile(np.abs(v), rng.uniform(0.5, 0.95))) or 1.0
            if rng.random() < 0.3:
                m = 6.0 * 2.0 ** np.round(np.log2(m / 6.0))  # ReLU6-like, scaled
            if rng.random() < 0.7:
                lo, signed = 0.0, False
            else:
                lo = -m
            y = self.b.op("Clip", [y, self.b.const(f32(lo), "min"), self.b.const(f32(m), "max")])
        elif act is None:
            signed = self.rbool(0.7)
        else:
            raise ValueError(act)
        if not quant:
            return y
        bits = bits or self.act_bits()
        narrow = signed and self.rbool(0.2)
        return self.quant(y, bits, signed, narrow, zp_prob=0.5 if act is None else 0.0)

    def batchnorm(self, y):
        rng = self.rng
        v = self.b.value(y).astype(np.float64)
        axes = (0,) + tuple(range(2, v.ndim))
        c = v.shape[1]
        mean = v.mean(axis=axes)
        std = v.std(axis=axes) + 1e-3
        mean = mean + rng.normal(0, 0.2, c) * std
        var = (std * rng.uniform(0.7, 1.5, c)) ** 2
        gamma = rng.uniform(0.5, 2.0, c) * np.where(rng.random(c) < 0.1, -1.0, 1.0)
        beta = rng.normal(0, 0.5, c)
        ins = [y] + [self.b.const(a.astype(np.float32), h) for a, h in
                     [(gamma, "bn_gamma"), (beta, "bn_beta"), (mean, "bn_mean"), (var, "bn_var")]]
        self.log("BatchNormalization", c)
        return self.b.op("BatchNormalization", ins, epsilon=1e-5)

    def conv(self, x, cout=None, k=None, s=None, p=None, groups=None, depthwise=False, bias=None, bn=False,
             act="relu", quant=True, bits=None, wbits=None, bipolar_w=False, same=False):
        rng = self.rng
        c, h, w = self.shape(x)
        if same:
            k = k or int(rng.choice([1, 3, 3, 5]))
            s, p = 1, k // 2
            k = min(k, 2 * p + min(h, w))
        if k is None or s is None or p is None:
            k, s, p = conv_geometry(rng, h, w)
        if depthwise:
            groups = c
            cout = c * (1 if rng.random() < 0.8 else 2)
        else:
            if groups is None:
                groups = int(rng.choice(divisors(c))) if rng.random() < 0.3 else 1
            if cout is None:
                cout = groups * self.rint(1, max(1, 16 // groups))
            else:
                cout = max(groups, (cout // groups) * groups)
        wt = rng.normal(0, 1, size=(cout, c // groups, k, k))
        wq = self.weight(wt, axis=0, bits=wbits, bipolar=bipolar_w)
        ins = [x, wq]
        if bias is None:
            bias = self.rbool(0.6)
        if bias:
            # about 0.4 x the std of the conv output (weights ~ N(0, 1), inputs of rms `rms`)
            rms = float(np.sqrt(np.mean(self.b.value(x).astype(np.float64) ** 2))) or 1.0
            bias_v = rng.normal(0, 0.4 * rms * np.sqrt(k * k * c / groups), cout)
            ins.append(self.b.const(bias_v.astype(np.float32), "bias"))
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
        if groups != 1 or self.rbool(0.5):
            attrs["group"] = groups
        if self.rbool(0.5):
            attrs["dilations"] = [1, 1]
        y = self.b.op("Conv", ins, **attrs)
        self.log("Conv", f"{c}->{cout}", f"k{k} s{s} p{p} g{groups}", "bias" if bias else "")
        if bn:
            y = self.batchnorm(y)
        return self.act_quant(y, act, quant, bits)

    def dense(self, x, nout=None, style=None, bias=None, bn=False, act="relu", quant=True, bits=None, wbits=None,
              bipolar_w=False):
        """2-D layer. style: matmul (W[K,N]) | matmul_t (Quant(W[N,K]) -> Transpose, FINN TFC) | gemm (transB=1)."""
        rng = self.rng
        (kin,) = self.shape(x)
        nout = nout or self.rint(2, 16)
        style = style or self.pick(["matmul", "matmul_t", "gemm"])
        if bias is None:
            bias = style == "gemm" or self.rbool(0.5)
        rms = float(np.sqrt(np.mean(self.b.value(x).astype(np.float64) ** 2))) or 1.0
        bias_v = rng.normal(0, 0.4 * rms * np.sqrt(kin), nout).astype(np.float32)
        if style == "gemm":
            wq = self.weight(rng.normal(0, 1, (nout, kin)), axis=0, bits=wbits, bipolar=bipolar_w)
            ins = [x, wq] + ([self.b.const(bias_v, "bias")] if bias else [])
            y = self.b.op("Gemm", ins, transB=1, **({"alpha": 1.0, "beta": 1.0} if self.rbool(0.3) else {}))
        else:
            if style == "matmul":
                wq = self.weight(rng.normal(0, 1, (kin, nout)), axis=1, bits=wbits, bipolar=bipolar_w)
            else:
                wq = self.weight(rng.normal(0, 1, (nout, kin)), axis=0, bits=wbits, bipolar=bipolar_w)
                wq = self.b.op("Transpose", [wq], perm=[1, 0])
            y = self.b.op("MatMul", [x, wq])
            if bias:
                y = self.b.op("Add", [y, self.b.const(bias_v, "bias")])
        self.log(style, f"{kin}->{nout}", "bias" if bias else "")
        if bn:
            y = self.batchnorm(y)
        if act is None and not quant:
            return y
        return self.act_quant(y, act, quant, bits)

    def flatten(self, x, style=None):
        style = style or self.pick(["flatten", "reshape0", "reshape-1"])
        n = int(np.prod(self.shape(x)))
        if style == "flatten":
            y = self.b.op("Flatten", [x], axis=1)
        elif style == "reshape0":
            y = self.b.op("Reshape", [x, self.b.const(np.array([0, -1], np.int64), "shape", np.int64)])
        else:
            y = self.b.op("Reshape", [x, self.b.const(np.array([-1, n], np.int64), "shape", np.int64)])
        if x in self.qinfo:
            self.qinfo[y] = self.qinfo[x]
        self.log(style, n)
        return y

    def maxpool(self, x, k=None, s=None, p=None):
        c, h, w = self.shape(x)
        if k is None:
            k, s, p = pool_geometry(self.rng, h, w)
        attrs = dict(kernel_shape=[k, k], strides=[s, s])
        if p or self.rbool(0.3):
            attrs["pads"] = [p, p, p, p]
        y = self.b.op("MaxPool", [x], **attrs)
        if x in self.qinfo:
            self.qinfo[y] = self.qinfo[x]
        self.log("MaxPool", f"k{k} s{s} p{p}")
        return y

    def avgpool(self, x, quant=True):
        """Plain AveragePool [-> Quant]."""
        c, h, w = self.shape(x)
        k, s, p = pool_geometry(self.rng, h, w)
        attrs = dict(kernel_shape=[k, k], strides=[s, s])
        if p:
            attrs["pads"] = [p, p, p, p]
            attrs["count_include_pad"] = 1
        y = self.b.op("AveragePool", [x], **attrs)
        self.log("AveragePool", f"k{k} s{s} p{p}")
        if not quant:
            return y
        qi = self.qinfo.get(x, {})
        signed = qi.get("signed", True)
        return self.quant(y, self.act_bits() if self.rbool(0.5) else qi.get("bits", 8), signed,
                          narrow=qi.get("narrow", False))

    def truncavgpool(self, x):
        """Brevitas TruncAvgPool2d export: AveragePool -> Mul(k*k) -> Trunc(scale, 0, in_bits, out_bits, FLOOR)."""
        qi = self.qinfo.get(x)
        if qi is None or qi.get("zp", 0) != 0 or qi.get("bipolar"):
            return self.avgpool(x)
        c, h, w = self.shape(x)
        k, s, _ = pool_geometry(self.rng, h, w, allow_pad=False)
        if k == 1:
            k = min(2, h, w)
        y = self.b.op("AveragePool", [x], kernel_shape=[k, k], strides=[s, s])
        y = self.b.op("Mul", [y, self.b.const(f32(k * k), "kk")])
        in_bits = qi["bits"] + int(math.ceil(math.log2(k * k)))
        out_bits = qi["bits"] if self.rbool(0.7) else min(in_bits, qi["bits"] + 1)
        ins = [
            y,
            self.b.const(qi["scale"], "scale"),
            self.b.const(f32(0), "zeropt"),
            self.b.const(f32(in_bits), "in_bits"),
            self.b.const(f32(out_bits), "out_bits"),
        ]
        y = self.b.op("Trunc", ins, hint="trunc", domain=self.domain, rounding_mode="FLOOR")
        self.qinfo[y] = dict(qi, bits=out_bits)
        self.log("TruncAvgPool", f"k{k} s{s}", f"bits {in_bits}->{out_bits}")
        return y

    def gap(self, x, quant=True):
        y = self.b.op("GlobalAveragePool", [x])
        self.log("GlobalAveragePool")
        if not quant:
            return y
        qi = self.qinfo.get(x, {})
        return self.quant(y, self.act_bits(), qi.get("signed", True))

    def residual(self, x):
        """y = Quant([Relu](Quant_a(conv(x)) + Quant_b(x or conv(x))))."""
        c, h, w = self.shape(x)
        a = self.conv(x, cout=c, same=True, groups=1, bn=self.rbool(0.5), act="relu")
        if self.rbool(0.5):
            a = self.conv(a, cout=c, same=True, groups=1, act=None)
        r = self.rng.random()
        if r < 0.4:
            bb = x  # identity skip, quantised with the input's scale
        elif r < 0.7:
            qi = self.qinfo.get(x, {"bits": 8, "signed": True})
            bb = self.quant(x, self.act_bits(), qi["signed"])  # re-quantised skip
        else:
            bb = self.conv(x, cout=c, same=True, k=1, act=None)
        y = self.b.op("Add", [a, bb] if self.rbool() else [bb, a])
        self.log("Add residual")
        return self.act_quant(y, "relu" if self.rbool(0.6) else None)

    def concat(self, x):
        c, h, w = self.shape(x)
        a = self.conv(x, same=True, cout=self.rint(1, 8), act="relu")
        r = self.rng.random()
        if r < 0.4:
            bb = self.conv(x, same=True, cout=self.rint(1, 8), act=self.pick(["relu", "leakyrelu"]))
        elif r < 0.7:
            bb = self.maxpool(x, 3, 1, 1) if min(h, w) >= 1 else x
        else:
            bb = x
        y = self.b.op("Concat", [a, bb] if self.rbool() else [bb, a], axis=1)
        self.log("Concat")
        signed = any(self.qinfo.get(t, {}).get("signed", True) for t in (a, bb))
        return self.quant(y, self.act_bits(), signed) if self.rbool(0.8) else y

    def resize(self, x):
        attrs = dict(mode="nearest")
        if self.rbool(0.7):
            attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        roi = self.b.const(np.zeros((0,), np.float32), "roi")
        sc = self.b.const(np.array([1, 1, 2, 2], np.float32), "scales")
        y = self.b.op("Resize", [x, roi, sc], **attrs)
        if x in self.qinfo:
            self.qinfo[y] = self.qinfo[x]
        self.log("Resize x2")
        return y

    def head(self, x, ncls=None, style=None, out=None):
        """[GAP | flatten] -> dense -> [Softmax | ArgMax]."""
        rng = self.rng
        if len(self.shape(x)) == 3:
            if self.rbool(0.4):
                x = self.gap(x)
            x = self.flatten(x)
        ncls = ncls or self.rint(2, 10)
        y = self.dense(x, ncls, style=style, act=None, quant=self.rbool(0.3))
        if out == "softmax":
            y = self.b.op("Softmax", [y], axis=int(rng.choice([1, -1])))
        elif out == "argmax":
            y = self.b.op("ArgMax", [y], axis=1, keepdims=int(rng.integers(0, 2)))
        return y

    def finish(self, y) -> GenModel:
        self.b.add_output(y)
        model = self.b.build()
        if self.input_datatype is not None:
            ann = onnx.TensorAnnotation(tensor_name=self.input_name)
            ann.quant_parameter_tensor_names.append(onnx.StringStringEntryProto(key="finn_datatype",
                                                                                value=self.input_datatype))
            model.graph.quantization_annotation.append(ann)
        return GenModel(
            model=model, flavour="qonnx", kind=self.kind, input_name=self.input_name,
            input_shape=tuple(self.input_shape), grid=self.grid, info=self.info,
        )


# ----------------------------------------------------------------------------------------------------------------
# kinds
# ----------------------------------------------------------------------------------------------------------------
def _std_input(n: _Net, cmax=16):
    return n.input_quant(n.rand_chw(cmax))


def _k_conv(n: _Net):
    x = _std_input(n)
    for _ in range(n.rint(1, 3)):
        x = n.conv(x, depthwise=n.rbool(0.2), act=n.pick(["relu", "relu", None]), quant=True)
    return x


def _k_depthwise(n: _Net):
    x = _std_input(n)
    x = n.conv(x, depthwise=True, bn=n.rbool(0.5))
    if n.rbool(0.6):
        x = n.conv(x, k=1, s=1, p=0, groups=1)
    return x


def _k_matmul(n: _Net):
    if n.rbool(0.5):
        x = n.input_quant((n.rint(2, 64),))
    else:
        x = n.flatten(_std_input(n, 8))
    layers = n.rint(1, 3)
    for i in range(layers):
        last = i == layers - 1
        x = n.dense(x, style=n.pick(["matmul", "matmul_t"]), act=None if last else "relu",
                    quant=not last or n.rbool(0.5))
    return x


def _k_gemm(n: _Net):
    if n.rbool(0.5):
        x = n.input_quant((n.rint(2, 64),))
    else:
        x = n.flatten(_std_input(n, 8))
    layers = n.rint(1, 3)
    for i in range(layers):
        last = i == layers - 1
        x = n.dense(x, style="gemm", bias=True, act=None if last else "relu", quant=not last or n.rbool(0.5))
    return x


def _k_batchnorm(n: _Net):
    if n.rbool(0.3):  # TFC-like 2-D
        x = n.input_quant((n.rint(4, 64),))
        for _ in range(n.rint(1, 2)):
            x = n.dense(x, style=n.pick(["matmul", "matmul_t", "gemm"]), bn=True,
                        act=n.pick(["relu", None]))
        return x
    x = _std_input(n)
    for _ in range(n.rint(1, 3)):
        x = n.conv(x, bn=True, bias=n.rbool(0.3), act=n.pick(["relu", "relu", "leakyrelu", None]))
    return x


def _k_act(act):
    def f(n: _Net):
        x = _std_input(n)
        for _ in range(n.rint(1, 3)):
            x = n.conv(x, bn=n.rbool(0.4), act=act)
        if n.rbool(0.3):
            x = n.head(x, style="gemm")
        return x

    return f


def _k_maxpool(n: _Net):
    x = _std_input(n)
    for _ in range(n.rint(1, 2)):
        x = n.conv(x, act="relu")
        x = n.maxpool(x)
    return x


def _k_avgpool(n: _Net):
    x = _std_input(n)
    x = n.conv(x, act=n.pick(["relu", None]))
    x = n.avgpool(x)
    if n.rbool(0.4):
        x = n.conv(x)
    return x


def _k_truncavgpool(n: _Net):
    x = _std_input(n)
    x = n.conv(x, act="relu")
    if n.qinfo[x]["zp"] != 0:
        x = n.quant(x, n.act_bits(), False)
    x = n.truncavgpool(x)
    if n.rbool(0.4):
        x = n.conv(x)
    return x


def _k_gap(n: _Net):
    x = _std_input(n)
    x = n.conv(x, bn=n.rbool(0.5), act="relu")
    x = n.gap(x)
    x = n.flatten(x)
    return n.dense(x, style=n.pick(["gemm", "matmul"]), act=None, quant=n.rbool(0.5))


def _k_residual(n: _Net):
    x = _std_input(n)
    if n.rbool(0.5):
        x = n.conv(x, act="relu")
    x = n.residual(x)
    if n.rbool(0.3):
        x = n.residual(x)
    return x


def _k_preprocess(n: _Net):
    rng = n.rng
    c, h, w = n.rand_chw(4)
    variant = n.pick(["mul255", "2x-1", "norm", "affine", "raw"])
    b = n.b
    def gain(y, a):  # y * a, written as Mul(a) or Div(1/a)
        if n.rbool():
            return b.op("Mul", [y, b.const(f32(a), "gain")])
        return b.op("Div", [y, b.const(f32(1 / a), "inv_gain")])

    def offset(y, c):  # y + c, written as Add(c) or Sub(-c)
        if n.rbool():
            return b.op("Sub", [y, b.const(f32(-c), "offset")])
        return b.op("Add", [y, b.const(f32(c), "offset")])

    if variant == "raw":  # integer pixels 0..255 -> /255 -> Quant(1/255)
        n.grid = InputGrid(divisor=1.0, qmin=0, qmax=255)
        x = n.add_input((c, h, w))
        y = b.op("Div", [x, b.const(f32(255), "c255")])
        q = n.quant(y, 8, False, scale=f32(1 / 255))
    elif variant == "mul255":
        n.grid = InputGrid(divisor=255.0, qmin=0, qmax=255)
        x = n.add_input((c, h, w))
        y = gain(x, 255.0)
        q = n.quant(y, 8, False, scale=f32(1.0))
    elif variant == "2x-1":
        n.grid = InputGrid(divisor=255.0, qmin=64, qmax=191)  # 2k-255 in [-127, 127]
        x = n.add_input((c, h, w))
        y = offset(gain(x, 2.0), -1.0)
        q = n.quant(y, 8, True, narrow=n.rbool(), scale=f32(1 / 255))
    elif variant == "norm":  # (x - m/255) / sd, like ImageNet normalisation
        m = n.rint(0, 255)
        sd = float(n.pick([0.229, 0.224, 0.225, 0.5, float(rng.uniform(0.1, 1.0))]))
        n.grid = InputGrid(divisor=255.0, qmin=max(0, m - 127), qmax=min(255, m + 127))
        x = n.add_input((c, h, w))
        y = b.op("Sub", [x, b.const(f32(m / 255), "mean")])
        y = b.op("Div", [y, b.const(f32(sd), "std")])
        q = n.quant(y, 8, True, narrow=n.rbool(), scale=f32(1 / (255 * sd)))
    else:  # affine: (x + j/255) * a
        j = n.rint(0, 64)
        a = float(n.pick([2.0, 0.5, float(rng.uniform(0.2, 3.0))]))
        n.grid = InputGrid(divisor=255.0, qmin=0, qmax=255 - j)
        x = n.add_input((c, h, w))
        y = gain(offset(x, j / 255), a)
        q = n.quant(y, 8, False, scale=f32(a / 255))
    n.log("preprocess", variant)
    x = n.conv(q, act="relu")
    if n.rbool(0.4):
        x = n.maxpool(x)
    return x


def _k_flatten(n: _Net):
    x = _std_input(n, 8)
    x = n.conv(x, act="relu")
    if n.rbool(0.3):
        x = n.maxpool(x)
    x = n.flatten(x)
    return n.dense(x, style=n.pick(["matmul", "gemm", "matmul_t"]), act=None, quant=n.rbool(0.5))


def _k_nhwc(n: _Net):
    """QKeras-converted style: NHWC input, Transpose to NCHW, conv with quantised bias, back to NHWC, flatten."""
    rng, b = n.rng, n.b
    c, h, w = n.rand_chw(4)
    bits = n.rint(2, 8)
    signed = n.rbool(0.5)
    narrow = signed and n.rbool(0.5)
    qmin, qmax = _min_int(signed, narrow, bits), _max_int(signed, narrow, bits)
    scale = rand_scale(rng, rng.uniform(0.5, 2.0), qmax)
    n.grid = InputGrid(scale=float(scale), qmin=qmin, qmax=qmax)
    x = n.add_input((h, w, c))
    if n.rbool():
        x = n.quant(x, bits, signed, narrow, scale=scale)
        x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
    else:
        x = b.op("Transpose", [x], perm=[0, 3, 1, 2])
        x = n.quant(x, bits, signed, narrow, scale=scale)
    n.log("nhwc input", (h, w, c))
    for _ in range(n.rint(1, 2)):
        c, h, w = n.shape(x)
        k, s, p = conv_geometry(rng, h, w, kmax=3)
        cout = n.rint(1, 8)
        wq = n.weight(rng.normal(0, 1, (cout, c, k, k)), axis=0, per_channel=False, narrow=True)
        bq = n.weight(rng.normal(0, 1, cout) * 0.5, bits=n.rint(4, 8), per_channel=False, narrow=True, hint="bias")
        y = b.op("Conv", [x, wq, bq], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, dilations=[1, 1], group=1)
        n.log("Conv", f"{c}->{cout} k{k} s{s} p{p}", "quantised bias")
        x = n.act_quant(y, "relu")
    x = b.op("Transpose", [x], perm=[0, 2, 3, 1])
    x = n.flatten(x, n.pick(["reshape0", "reshape-1"]))
    (kin,) = n.shape(x)
    ncls = n.rint(2, 10)
    wq = n.weight(rng.normal(0, 1, (kin, ncls)), axis=1, per_channel=False, narrow=True)
    bq = n.weight(rng.normal(0, 1, ncls), bits=8, per_channel=False, narrow=True, hint="bias")
    y = b.op("MatMul", [x, wq])
    y = b.op("Add", [y, bq])
    if n.rbool(0.5):
        y = b.op("Softmax", [y], axis=1)
    return y


def _k_concat(n: _Net):
    x = _std_input(n, 8)
    x = n.concat(x)
    if n.rbool(0.4):
        x = n.conv(x)
    return x


def _k_resize(n: _Net):
    x = _std_input(n, 8)
    if n.rbool(0.5):
        x = n.conv(x, act="relu")
    x = n.resize(x)
    if n.rbool(0.3):
        qi = n.qinfo.get(x, {"signed": True})
        x = n.quant(x, n.act_bits(), qi["signed"])
    return n.conv(x, act="relu")


def _k_softmax(n: _Net):
    x = _std_input(n, 8)
    x = n.conv(x, act="relu")
    return n.head(x, out="softmax")


def _k_argmax(n: _Net):
    x = _std_input(n, 8)
    x = n.conv(x, act="relu")
    if n.rbool(0.5):
        x = n.maxpool(x)
    return n.head(x, out="argmax")


def _k_bipolar(n: _Net):
    """FINN TFC (MLP) or CNV (conv) with 1-bit BipolarQuant weights and bipolar or 2-bit activations."""
    b = n.b
    c = 1 if n.rbool(0.6) else 3
    h = n.rint(4, 10)
    n.grid = InputGrid(divisor=255.0, qmin=0, qmax=255)
    x = n.add_input((c, h, h))
    act_bipolar = n.rbool(0.7)

    def act(y):
        if act_bipolar:
            return n.bipolar(y)
        return n.quant(y, 2, True, narrow=True)

    if n.rbool(0.6):  # TFC
        x = n.flatten(x)
        y = b.op("Mul", [x, b.const(f32(2), "two")])
        y = b.op("Sub", [y, b.const(np.array([1], np.float32), "one")])
        x = n.bipolar(y, scale=1.0)
        n.log("TFC", "bipolar acts" if act_bipolar else "2-bit acts")
        layers = n.rint(1, 3)
        for i in range(layers):
            y = n.dense(x, n.rint(4, 32) if i < layers - 1 else n.rint(2, 10), style="matmul_t", bias=False,
                        bipolar_w=True, act=None, quant=False)
            if i < layers - 1:
                x = act(n.batchnorm(y))
            else:
                x = n.batchnorm(y) if n.rbool(0.5) else y
        return x
    # CNV: 8-bit input quant, bipolar-weight convs
    x = n.quant(x, 8, False, scale=f32(1 / 255))
    n.log("CNV", "bipolar acts" if act_bipolar else "2-bit acts")
    for _ in range(n.rint(1, 2)):
        cc, hh, ww = n.shape(x)
        k = 3 if min(hh, ww) >= 3 else 1
        y = n.conv(x, k=k, s=1, p=0, groups=1, bias=False, bipolar_w=True, act=None, quant=False)
        x = act(n.batchnorm(y))
    if min(n.shape(x)[1:]) >= 2 and n.rbool(0.5):
        x = n.maxpool(x, 2, 2, 0)
    x = n.flatten(x)
    return n.dense(x, n.rint(2, 10), style="matmul_t", bias=False, bipolar_w=True, act=None, quant=False)


def _k_mixed(n: _Net):
    x = _std_input(n, 8) if n.rbool(0.8) else _k_preprocess_input(n)
    blocks = ["conv", "convbn", "maxpool", "avgpool", "truncavgpool", "residual", "concat", "resize", "depthwise"]
    nblocks = n.rint(2, 4)
    for _ in range(nblocks):
        blk = n.pick(blocks)
        c, h, w = n.shape(x)
        if blk in ("maxpool", "avgpool", "truncavgpool") and min(h, w) < 2:
            blk = "conv"
        if blk == "resize" and max(h, w) > 8:
            blk = "convbn"
        if blk == "conv":
            x = n.conv(x, act=n.pick(["relu", "leakyrelu", "clip"]))
        elif blk == "convbn":
            x = n.conv(x, bn=True)
        elif blk == "depthwise":
            x = n.conv(x, depthwise=True, bn=n.rbool())
        elif blk == "maxpool":
            x = n.maxpool(x)
        elif blk == "avgpool":
            x = n.avgpool(x)
        elif blk == "truncavgpool":
            x = n.truncavgpool(x)
        elif blk == "residual":
            x = n.residual(x)
        elif blk == "concat":
            x = n.concat(x)
            if x not in n.qinfo:
                x = n.quant(x, n.act_bits(), True)
        elif blk == "resize":
            x = n.resize(x)
    if n.rbool(0.7):
        x = n.head(x, out=n.pick(["softmax", "argmax", "none"]))
    return x


def _k_preprocess_input(n: _Net):
    c, h, w = n.rand_chw(4)
    n.grid = InputGrid(divisor=255.0, qmin=64, qmax=191)
    x = n.add_input((c, h, w))
    y = n.b.op("Mul", [x, n.b.const(f32(2), "two")])
    y = n.b.op("Sub", [y, n.b.const(f32(1), "one")])
    n.log("preprocess 2x-1")
    return n.quant(y, 8, True, scale=f32(1 / 255))


def _mlp_or_cnv(n: _Net, x, bipolar_w: bool):
    """A few dense layers (flattened input) or a conv then a dense head, activations quantised."""
    if len(n.shape(x)) == 3 and n.rbool(0.5):
        x = n.conv(x, k=1 if min(n.shape(x)[1:]) < 3 else 3, s=1, p=0, groups=1, bias=False, bipolar_w=bipolar_w,
                   bn=True, act=None)
    if len(n.shape(x)) == 3:
        x = n.flatten(x)
    layers = n.rint(1, 3)
    for i in range(layers):
        last = i == layers - 1
        x = n.dense(x, n.rint(2, 10) if last else n.rint(4, 24), style=n.pick(["matmul", "matmul_t", "gemm"]),
                    bipolar_w=bipolar_w, bn=not last and n.rbool(0.5), act=None if last else "relu",
                    quant=not last)
    return x


def _k_bipolar_input(n: _Net):
    """Graph input annotated BIPOLAR (a binarised image or feature vector, FINN BNN style): inputs are -1 / +1."""
    shape = (n.rint(4, 48),) if n.rbool(0.5) else (n.rint(1, 3), n.rint(3, 8), n.rint(3, 8))
    n.grid = InputGrid(scale=1.0, codes=(-1, 1))
    n.input_datatype = "BIPOLAR"
    x = n.add_input(shape)
    first = n.pick(["bipolar", "bipolar_scaled", "quant2", "affine"])
    if first == "quant2":    # a 2-bit signed narrow Quant of scale 1 also maps -1 / +1 to themselves
        x = n.quant(x, 2, True, narrow=True, scale=f32(1.0))
    elif first == "affine":  # float pre-processing g*x + c (g > 0, |c| < g) keeps the sign: FINN TFC's 2x - 1
        g = float(n.rng.uniform(0.5, 3.0))
        c = float(n.rng.uniform(-0.9, 0.9)) * g
        y = n.b.op("Mul", [x, n.b.const(f32(g), "gain")])
        x = n.bipolar(n.b.op("Add", [y, n.b.const(f32(c), "offset")]), scale=1.0)
    else:
        x = n.bipolar(x, scale=1.0 if first == "bipolar" else None)
    n.log("input BIPOLAR", shape, first)
    return _mlp_or_cnv(n, x, bipolar_w=n.rbool(0.5))


def _k_scaled_input(n: _Net):
    """Graph input annotated with a signed or scaled integer grid, the input quantiser on that grid (QONNX model
    zoo MLPs): INTn / UINTn integers, optionally scaled by a float Mul before the Quant, or FIXED<n,i> values
    k * 2^-(n-i)."""
    bits = n.rint(2, 8)
    kind = n.pick(["int", "uint", "fixed"])
    signed = kind != "uint"
    qmin, qmax = _min_int(signed, False, bits), _max_int(signed, False, bits)
    shape = (n.rint(2, 48),) if n.rbool(0.6) else (n.rint(1, 3), n.rint(3, 8), n.rint(3, 8))
    if kind == "fixed":
        frac = n.rint(1, bits - 1)
        step = 2.0 ** -frac
        n.input_datatype = f"FIXED<{bits},{bits - frac}>"
    else:
        step = 1.0
        n.input_datatype = f"{'INT' if signed else 'UINT'}{bits}"
    n.grid = InputGrid(scale=step, qmin=qmin, qmax=qmax)
    x = n.add_input(shape)
    scale = step
    if kind != "fixed" and n.rbool(0.5):   # x * s onto the quantiser's grid of scale s
        scale = float(rand_scale(n.rng, n.rng.uniform(0.25, 4.0), qmax))
        x = n.b.op("Mul", [x, n.b.const(f32(scale), "inscale")])
    # the quantiser may keep the grid or be narrower (fewer bits: the input is clipped)
    qbits = bits if n.rbool(0.7) else n.rint(max(2, bits - 2), bits)
    x = n.quant(x, qbits, signed, scale=f32(scale))
    n.log("input", n.input_datatype, shape, f"Quant{qbits}{'s' if signed else 'u'}", "scale", scale)
    return _mlp_or_cnv(n, x, bipolar_w=False)


_KINDS = {
    "conv": _k_conv,
    "depthwise": _k_depthwise,
    "matmul": _k_matmul,
    "gemm": _k_gemm,
    "batchnorm": _k_batchnorm,
    "relu": _k_act("relu"),
    "leakyrelu": _k_act("leakyrelu"),
    "clip": _k_act("clip"),
    "maxpool": _k_maxpool,
    "avgpool": _k_avgpool,
    "truncavgpool": _k_truncavgpool,
    "globalavgpool": _k_gap,
    "residual": _k_residual,
    "preprocess": _k_preprocess,
    "flatten": _k_flatten,
    "nhwc": _k_nhwc,
    "concat": _k_concat,
    "resize": _k_resize,
    "softmax": _k_softmax,
    "argmax": _k_argmax,
    "bipolar": _k_bipolar,
    "mixed": _k_mixed,
    "reducemean": qonnx_reducemean,
}
assert list(_KINDS) == QONNX_KINDS
_INPUT_KINDS = {"bipolar_input": _k_bipolar_input, "scaled_input": _k_scaled_input}
assert list(_INPUT_KINDS) == QONNX_INPUT_KINDS


def qonnx_model(kind: str, rng: np.random.Generator) -> GenModel:
    """A random small QONNX model of the given kind (see QONNX_KINDS and QONNX_INPUT_KINDS)."""
    make = _KINDS.get(kind) or _INPUT_KINDS.get(kind)
    if make is None:
        raise ValueError(f"unknown QONNX kind {kind!r}; one of {QONNX_KINDS + QONNX_INPUT_KINDS}")
    n = _Net(kind, rng)
    y = make(n)
    return n.finish(y)


def qonnx_models(kinds=None):
    """Hypothesis strategy: GenModel of a random kind (or one of `kinds`) from a random seed."""
    from hypothesis import strategies as st

    return st.builds(
        lambda kind, seed: qonnx_model(kind, np.random.default_rng(seed)),
        st.sampled_from(list(kinds or QONNX_KINDS)),
        st.integers(0, 2**32 - 1),
    )
