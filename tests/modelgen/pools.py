"""Random models whose average pools / means the reference computes in float32 (issue 14, family 1).

PyTorch heads such as `x.mean((2, 3))`, `F.adaptive_avg_pool2d(x, 1)` or `nn.AvgPool2d` export to ReduceMean /
GlobalAveragePool / AveragePool; onnxruntime's quantize_static leaves ReduceMean as a float op between
DequantizeLinear and QuantizeLinear in both QDQ and QOperator graphs. Kinds:
- QDQ / QOperator "reducemean": Conv [-> Relu | Clip] (1-2 convs) -> ReduceMean -> [Flatten] -> Gemm | MatMul.
  ReduceMean: axes (2, 3) in any order / sign, sometimes one spatial axis, keepdims 0 / 1, axes as an attribute
  (opset 13) or as an input (opset 18).
- QOperator "floatpool": the same net with AveragePool or GlobalAveragePool kept in float by quantize_static's
  nodes_to_exclude (DequantizeLinear -> pool -> QuantizeLinear between QLinear ops).
- QONNX "reducemean": Quant -> Conv [-> BatchNorm] -> act -> Quant (2..8 bits) -> ReduceMean -> Quant
  (2..8 bits) -> [Flatten] -> Gemm | MatMul, opset 13 (axes attribute) or 18 (axes input).
"""

from __future__ import annotations

import numpy as np

ORT_POOL_KINDS = {"qdq": ["reducemean"], "qop": ["reducemean", "floatpool"]}


def _axes(rng) -> list[int]:
    """Spatial axes of N,C,H,W in a random spelling: both (any order, +-), or one of them (rarely)."""
    if rng.random() < 0.2:
        return [int(rng.choice([2, 3, -1, -2]))]
    a = [int(rng.choice([2, -2])), int(rng.choice([3, -1]))]
    return a[::-1] if rng.random() < 0.5 else a


def reduce_mean(b, x, rng, log) -> str:
    """A ReduceMean over spatial axes of x with random axes spelling and keepdims, per the builder's opset."""
    axes = _axes(rng)
    keepdims = int(rng.integers(0, 2))
    if b.opset >= 18:
        y = b.op("ReduceMean", [x, b.const(np.array(axes, np.int64), "axes", np.int64)], keepdims=keepdims)
    else:
        y = b.op("ReduceMean", [x], axes=axes, keepdims=keepdims)
    log("ReduceMean", f"axes {axes} keepdims {keepdims} opset {b.opset}")
    return y


def _head(f, y):
    """[Flatten] -> Gemm | MatMul (the classifier after a pooled feature map)."""
    if len(f.shape(y)) != 1:
        y = f.flatten(y)
    return f.dense(y, f.rint(2, 10), style=f.pick(["gemm", "matmul"]), act=None)


def ort_pool_model(kind: str, rng: np.random.Generator, fmt: str):
    """A random QDQ ("qdq") or QOperator ("qop") model of a kind in ORT_POOL_KINDS[fmt]."""
    from .ort_models import _FNet, _quantize

    if kind not in ORT_POOL_KINDS[fmt]:
        raise ValueError(f"unknown {fmt} pool kind {kind!r}; one of {ORT_POOL_KINDS[fmt]}")
    opset = 18 if rng.random() < 0.5 else 13
    f = _FNet(kind, rng, fmt, opset=opset, ir_version=8 if opset == 13 else 9)
    # H, W >= 5: gen reads a C,H,W input with W <= 4 < C as N,H,W,C (a QKeras-style image)
    c = f.rint(1, 16)
    x = f.input((c, f.rint(5, 12), f.rint(5, 12)))
    for i in range(n := f.rint(1, 2)):
        # QOperator keeps an activation in float before a float pool; a Clip there that does not clamp on the
        # code grid is refused (tested in tests/test_export_avgpool.py), so the last one is a Relu or nothing
        acts = ["relu", "relu", None] if fmt == "qop" and i == n - 1 else ["relu", "clip", None]
        x = f.conv(x, act=f.pick(acts))
    exclude = []
    if kind == "reducemean":
        y = reduce_mean(f.b, x, rng, f.log)
    elif f.rbool(0.5) and min(f.shape(x)[1:]) >= 2:
        y = f.avgpool(x)
        exclude = [f.b.nodes[-1].name]
    else:
        y = f.gap(x)
        exclude = [f.b.nodes[-1].name]
    y = _head(f, y)
    return _quantize(f, y, fmt, nodes_to_exclude=exclude)


def qonnx_reducemean(n):
    """QONNX "reducemean" kind (see the module docstring); n is a qonnx_models._Net before any node."""

    if n.rbool(0.5):  # axes as an input (opset 18); qonnx runs standard ops through onnxruntime
        n.b.opset = 18
        n.b.opsets[""] = 18
        n.b.ir_version = 9
    x = n.input_quant((n.rint(1, 16), n.rint(5, 12), n.rint(5, 12)))   # H, W >= 5: see ort_pool_model
    for _ in range(n.rint(1, 2)):
        x = n.conv(x, bn=n.rbool(0.3), act=n.pick(["relu", "relu", None]))
    signed = n.qinfo.get(x, {}).get("signed", True)
    y = reduce_mean(n.b, x, n.rng, n.log)
    y = n.quant(y, n.act_bits(), signed, zp_prob=0.3)
    if len(n.shape(y)) != 1:
        y = n.flatten(y)
    return n.dense(y, n.rint(2, 10), style=n.pick(["gemm", "matmul"]), act=None, quant=n.rbool(0.5))
