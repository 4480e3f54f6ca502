"""Symbolic values the lowering pass gives each ONNX tensor while it walks the graph.

* `Const`   - a constant array (initialiser, Constant node, or folded sub-graph).
* `QConst`  - a quantised constant: integer codes with scale and zero point (weights, biases).
* `Raw`     - the float graph input before its first quantiser, with the float ops applied to it so far.
* `Lin`     - an IR integer tensor and the element-wise chain mapping it to the ONNX tensor's real value.

`index` is the layout map: an integer array of the ONNX tensor's shape (without the batch axis) whose entries
are flat indices into the IR tensor (H, W, C). Transpose, Reshape and Flatten only rearrange `index`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..ir.elementwise import Affine, Arith, Op


@dataclass
class Const:
    value: np.ndarray


@dataclass
class QConst:
    codes: np.ndarray          # integer codes (ONNX layout of the constant)
    scale: np.ndarray          # broadcastable to codes
    zero_point: np.ndarray     # broadcastable to codes
    real: np.ndarray           # the float32 value the reference computes ((codes - zp) * scale)
    bits: int
    bipolar: bool = False


@dataclass
class Raw:
    index: np.ndarray
    ir_shape: tuple[int, int, int]
    ops: list[Op] = field(default_factory=list)


@dataclass
class Lin:
    tensor: str
    index: np.ndarray
    ops: list[Op] = field(default_factory=list)

    def with_ops(self, more: list[Op]) -> Lin:
        return Lin(self.tensor, self.index, self.ops + list(more))


def canonical_index(ir_shape: tuple[int, int, int], onnx_rank: int) -> np.ndarray:
    """Index map of an IR (H, W, C) tensor seen as ONNX (C, H, W) (rank 3) or (C,) (rank 1, H = W = 1)."""
    h, w, c = ir_shape
    idx = np.arange(h * w * c).reshape(h, w, c)
    if onnx_rank == 1:
        return idx.reshape(-1)
    return idx.transpose(2, 0, 1)


def affine_of(ops: list[Op], channels: int) -> tuple[list[Fraction], list[Fraction]] | None:
    """Compose a chain of affine ops into exact per-channel (a, b); None if the chain is not affine."""
    a = [Fraction(1)] * channels
    b = [Fraction(0)] * channels
    for op in ops:
        if not isinstance(op, (Affine, Arith)):
            return None
        for c in range(channels):
            a[c] = op.exact(c, a[c]) - op.exact(c, Fraction(0))
            b[c] = op.exact(c, b[c])
    return a, b


def layout_of(index: np.ndarray, ir_shape) -> dict:
    """Compact form {perm, shape} of an index map when it is a transpose + reshape of the IR tensor."""
    base = np.arange(int(np.prod(ir_shape))).reshape(ir_shape)
    for perm in ((2, 0, 1), (0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 1, 0)):
        t = base.transpose(perm)
        if t.size == index.size and np.array_equal(t.reshape(index.shape), index):
            return {"perm": list(perm), "shape": list(index.shape)}
    return {}
