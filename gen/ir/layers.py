"""Layers of the integer dataflow IR: frozen dataclasses holding exact integer parameters.

Every layer reads integer streams (`inputs`, tensor names) and writes one (`output`). The arithmetic each
performs is defined once, in gen/golden/ops.py; the fields here are exactly that function's arguments,
named as the hardware kernels' parameters are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .elementwise import op_from_json

Pads = tuple[int, int, int, int]  # (top, left, bottom, right)


@dataclass(frozen=True, eq=False)
class Layer:
    name: str
    inputs: tuple[str, ...]
    output: str
    onnx_nodes: tuple[str, ...] = field(default=(), kw_only=True)  # the ONNX nodes this layer came from

    op = "Layer"

    def to_json(self) -> dict:
        d = {"op": self.op}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                v = {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.ravel().tolist()}
            elif isinstance(v, tuple):
                v = [x.to_json() if hasattr(x, "to_json") else x for x in v]
            d[f.name] = v
        return d


@dataclass(frozen=True, eq=False)
class Input(Layer):
    """The graph input: float values -> integer codes, at the boundary (outside the hardware).

    `chain` replays, in float32 and in the reference's order, the pre-processing and the first quantiser
    (gen/ir/elementwise.py ops, channel axis last); `layout` is the ONNX input layout ("NCHW" or "NHWC").
    """

    chain: tuple = ()
    layout: str = "NCHW"
    graph_layout: dict = field(default_factory=dict)  # {perm, shape}: graph input = IR codes.transpose(perm)
    op = "Input"


@dataclass(frozen=True, eq=False)
class Conv(Layer):
    """Integer convolution producing accumulators. weight: (OFM_CH, K_H, K_W, IFM_CH // GROUPS)."""

    weight: np.ndarray = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: Pads = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    pad_value: int = 0
    bias: np.ndarray | None = None
    op = "Conv"

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.weight.shape[3] == 1 and self.groups == self.weight.shape[0]


@dataclass(frozen=True, eq=False)
class Dense(Layer):
    """Fully connected layer on the whole (H, W, C) input taken in HWC order. weight: (OFM_CH, H*W*C)."""

    weight: np.ndarray = None
    bias: np.ndarray | None = None
    op = "Dense"


@dataclass(frozen=True, eq=False)
class Requant(Layer):
    """Monotonic per-channel map from integers to output codes, held exactly as thresholds.

    code = out_lo + #{k : s_c * x >= thresholds[c, k]} with s_c = -1 where negate[c] (FINN's multithreshold).
    `mult`/`offset`/`shift`, when set, reproduce the same function over the input's whole range
    (checked at compile time): code = clamp((x * mult[c] + offset[c]) >> shift, out_lo, out_hi).
    A multiplier-only Requant (thresholds None) is an exact wide integer rescale, e.g. of the scores that an
    arg-max compares when the classes have different scales.
    `boundaries` are the exact real-valued transition points (thresholds before rounding to integers) and
    `chain` the element-wise ops they were derived from; the checker uses both to prove near-ties.
    """

    thresholds: np.ndarray = None
    negate: np.ndarray = None
    out_lo: int = 0
    out_hi: int = 0
    mult: np.ndarray | None = None
    offset: np.ndarray | None = None
    shift: int = 0
    boundaries: np.ndarray | None = None
    chain: tuple = ()   # the element-wise ops the thresholds came from (gen/ir/elementwise.py)
    exact_f32: bool = False  # thresholds reproduce a float32 expression (QOperator): no near-ties allowed
    op = "Requant"

    @property
    def uses_multshift(self) -> bool:
        return self.mult is not None


@dataclass(frozen=True, eq=False)
class MaxPool(Layer):
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: Pads = (0, 0, 0, 0)
    op = "MaxPool"


@dataclass(frozen=True, eq=False)
class AvgPool(Layer):
    """Window sums (global when kernel == input size); the division sits in the following Requant."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    pads: Pads = (0, 0, 0, 0)
    pad_value: int = 0
    op = "AvgPool"


@dataclass(frozen=True, eq=False)
class Add(Layer):
    """acc = ka[c] * a + kb[c] * b (a, b: the two input streams); a Requant follows."""

    ka: np.ndarray = None
    kb: np.ndarray = None
    op = "Add"


@dataclass(frozen=True, eq=False)
class Concat(Layer):
    """Channel concatenation of streams of the same height and width."""

    op = "Concat"


@dataclass(frozen=True, eq=False)
class Upsample(Layer):
    factor: tuple[int, int] = (2, 2)
    op = "Upsample"


@dataclass(frozen=True, eq=False)
class LabelSelect(Layer):
    """Arg-max / top-k over the whole frame; outputs k indices (largest first, ties to the lower index)."""

    k: int = 1
    op = "LabelSelect"


LAYER_TYPES = {cls.op: cls for cls in (Input, Conv, Dense, Requant, MaxPool, AvgPool, Add, Concat, Upsample,
                                        LabelSelect)}


def layer_from_json(d: dict) -> Layer:
    cls = LAYER_TYPES[d["op"]]
    kw = {}
    for f in fields(cls):
        v = d.get(f.name)
        if isinstance(v, dict) and "dtype" in v and "data" in v:
            v = np.array(v["data"], dtype=v["dtype"]).reshape(v["shape"])
        elif isinstance(v, list):
            v = tuple(op_from_json(x) if isinstance(x, dict) and "op" in x else x for x in v)
        kw[f.name] = v
    return cls(**kw)
