"""Element-wise monotonic maps between an integer stream and a real value, with two exact semantics.

A chain of these ops describes what a quantised model does to one integer tensor (an accumulator or
codes) before the next quantiser. Each op knows
  * `pre(c, half)`: the exact preimage of a half-line {v >= y} / {v > y} / {v <= y} / {v < y} at channel c,
    in exact rational arithmetic (used for QONNX and QDQ graphs, which are defined in real numbers), and
  * `f32(x)`: the float32 computation the reference executor performs (used for QOperator graphs, whose
    reference is that float32 arithmetic, and for replaying float outputs at the boundary).
Thresholds for a requantiser are the preimages of {code >= k}; see gen/ir/requant.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

F32 = np.float32


def frac(v) -> Fraction:
    """Exact rational value of a float (float32 values are exactly representable as float64)."""
    return Fraction(float(v))


def frac_sqrt(q: Fraction, bits: int = 120) -> Fraction:
    """sqrt(q) to within 2**-bits relative (BatchNorm's sqrt is irrational; this error is far below float32's)."""
    if q <= 0:
        raise ValueError("sqrt of a non-positive value")
    scale = 1 << (2 * bits)
    return Fraction(math.isqrt(q.numerator * scale // q.denominator), 1 << bits)


@dataclass(frozen=True)
class Half:
    """A half-line of reals: kind in 'ge', 'gt', 'le', 'lt' (relative to v), or 'all', 'none'."""

    kind: str
    v: Fraction = Fraction(0)

    def complement(self) -> Half:
        return Half({"ge": "lt", "gt": "le", "le": "gt", "lt": "ge", "all": "none", "none": "all"}[self.kind], self.v)

    @property
    def upper(self) -> bool:
        return self.kind in ("ge", "gt")

    def contains(self, x) -> bool:
        k, v = self.kind, self.v
        return {"all": True, "none": False, "ge": x >= v, "gt": x > v, "le": x <= v, "lt": x < v}[k]


def _const(c, ch: int):
    c = np.asarray(c)
    return c.item() if c.size == 1 else c.reshape(-1)[ch]


def _bcast(c, x: np.ndarray, axis: int = -1):
    """Shape a per-channel constant to broadcast along `axis` of x (scalars stay scalars)."""
    c = np.asarray(c, dtype=F32)
    if c.size == 1:
        return c.reshape(())
    shape = [1] * x.ndim
    shape[axis] = c.size
    return c.reshape(shape)


class Op:
    """Base: a monotone element-wise op. Subclasses define `pre_upper` (and `pre` for decreasing ones)."""

    name = "op"

    def pre(self, ch: int, h: Half) -> Half:
        if h.kind in ("all", "none"):
            return h
        if h.upper:
            return self.pre_upper(ch, h.v, h.kind == "gt")
        # {f <= y} is the complement of {f > y}; {f < y} of {f >= y} (f non-decreasing).
        return self.pre_upper(ch, h.v, h.kind == "le").complement()

    def pre_upper(self, ch: int, y: Fraction, strict: bool) -> Half:
        raise NotImplementedError

    def direction(self, ch: int) -> int:
        """+1 non-decreasing, -1 non-increasing, 0 constant."""
        return 1

    def exact(self, ch: int, x: Fraction) -> Fraction:
        raise NotImplementedError

    def f32(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        raise NotImplementedError

    def to_json(self) -> dict:
        d = {"op": self.name}
        d.update({k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()})
        return d


class Affine(Op):
    """v = a * x + b with exact rational per-channel a, b (lists of Fractions). f32: x * a + b in float32."""

    name = "affine"

    def __init__(self, a, b):
        self.a = [Fraction(v) for v in a]
        self.b = [Fraction(v) for v in b]

    def _ab(self, ch):
        a = self.a[ch] if len(self.a) > 1 else self.a[0]
        b = self.b[ch] if len(self.b) > 1 else self.b[0]
        return a, b

    def direction(self, ch):
        a, _ = self._ab(ch)
        return (a > 0) - (a < 0)

    def exact(self, ch, x):
        a, b = self._ab(ch)
        return a * x + b

    def pre(self, ch, h):
        if h.kind in ("all", "none"):
            return h
        a, b = self._ab(ch)
        if a == 0:
            return Half("all") if h.contains(b) else Half("none")
        t = (h.v - b) / a
        if a > 0:
            return Half(h.kind, t)
        return Half({"ge": "le", "gt": "lt", "le": "ge", "lt": "gt"}[h.kind], t)

    def f32(self, x, axis=-1):
        a = _bcast([float(v) for v in self.a], x, axis)
        b = _bcast([float(v) for v in self.b], x, axis)
        return (x.astype(F32) * a + b).astype(F32)

    def to_json(self):
        return {"op": self.name, "a": [str(v) for v in self.a], "b": [str(v) for v in self.b]}


class Arith(Op):
    """One float op with a float32 constant, as the ONNX node does it: mul, div, add or sub (x op c)."""

    name = "arith"

    def __init__(self, kind: str, c):
        self.kind = kind
        self.c = np.asarray(c, dtype=F32).reshape(-1)

    def _affine(self, ch) -> tuple[Fraction, Fraction]:
        c = frac(_const(self.c, ch))
        if self.kind == "mul":
            return c, Fraction(0)
        if self.kind == "div":
            return 1 / c, Fraction(0)
        return Fraction(1), (c if self.kind == "add" else -c)

    def direction(self, ch):
        a, _ = self._affine(ch)
        return (a > 0) - (a < 0)

    def exact(self, ch, x):
        a, b = self._affine(ch)
        return a * x + b

    def pre(self, ch, h):
        a, b = self._affine(ch)
        return Affine([a], [b]).pre(0, h)

    def f32(self, x, axis=-1):
        c = _bcast(self.c, x, axis)
        x = x.astype(F32)
        return {"mul": np.multiply, "div": np.divide, "add": np.add, "sub": np.subtract}[self.kind](x, c).astype(F32)

    def to_json(self):
        return {"op": self.kind, "c": self.c.tolist()}


class Relu(Op):
    name = "relu"

    def exact(self, ch, x):
        return max(x, Fraction(0))

    def pre_upper(self, ch, y, strict):
        if (y < 0) or (y == 0 and not strict):
            return Half("all")
        return Half("gt" if strict else "ge", y)

    def f32(self, x, axis=-1):
        return np.maximum(x.astype(F32), F32(0))


class LeakyRelu(Op):
    name = "leakyrelu"

    def __init__(self, alpha: float):
        if not alpha > 0:
            raise ValueError("LeakyRelu with alpha <= 0 is not monotone-increasing")
        self.alpha = float(np.float32(alpha))

    def exact(self, ch, x):
        return x if x >= 0 else frac(self.alpha) * x

    def pre_upper(self, ch, y, strict):
        t = y if y >= 0 else y / frac(self.alpha)
        return Half("gt" if strict else "ge", t)

    def f32(self, x, axis=-1):
        x = x.astype(F32)
        return np.where(x >= 0, x, x * F32(self.alpha)).astype(F32)


class Clip(Op):
    name = "clip"

    def __init__(self, lo, hi):
        self.lo = None if lo is None else float(np.float32(lo))
        self.hi = None if hi is None else float(np.float32(hi))

    def exact(self, ch, x):
        if self.lo is not None:
            x = max(x, frac(self.lo))
        if self.hi is not None:
            x = min(x, frac(self.hi))
        return x

    def pre_upper(self, ch, y, strict):
        lo = None if self.lo is None else frac(self.lo)
        hi = None if self.hi is None else frac(self.hi)
        if lo is not None and (y < lo or (y == lo and not strict)):
            return Half("all")
        if hi is not None and (y > hi or (y == hi and strict)):
            return Half("none")
        return Half("gt" if strict else "ge", y)

    def f32(self, x, axis=-1):
        x = x.astype(F32)
        if self.lo is not None:
            x = np.where(x < F32(self.lo), F32(self.lo), x)
        if self.hi is not None:
            x = np.where(x > F32(self.hi), F32(self.hi), x)
        return x.astype(F32)


ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


class Round(Op):
    """Rounding to an integer, in qonnx's modes (ROUND = HALF_EVEN, as numpy and onnxruntime round)."""

    name = "round"

    def __init__(self, mode: str = "ROUND"):
        mode = mode.upper()
        if mode not in ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {mode}")
        self.mode = "ROUND" if mode == "HALF_EVEN" else mode

    def exact(self, ch, x):
        m = self.mode
        fl, ce = math.floor(x), math.ceil(x)
        if m == "FLOOR":
            return Fraction(fl)
        if m == "CEIL":
            return Fraction(ce)
        if m == "DOWN":
            return Fraction(fl if x >= 0 else ce)
        if m == "UP":
            return Fraction(ce if x >= 0 else fl)
        if x - fl != Fraction(1, 2):
            return Fraction(round(x))  # not a tie: nearest
        if m == "ROUND":
            return Fraction(fl if fl % 2 == 0 else ce)
        if m == "HALF_UP":
            return Fraction(ce if x > 0 else fl)
        return Fraction(fl if x > 0 else ce)  # HALF_DOWN

    def pre_upper(self, ch, y, strict):
        # smallest integer c in the set {v >= y} (or {v > y})
        c = (math.floor(y) + 1) if strict else math.ceil(y)
        m = self.mode
        if m == "FLOOR":
            return Half("ge", Fraction(c))
        if m == "CEIL":
            return Half("gt", Fraction(c - 1))
        if m == "DOWN":
            return Half("ge", Fraction(c)) if c > 0 else Half("gt", Fraction(c - 1))
        if m == "UP":
            return Half("gt", Fraction(c - 1)) if c > 0 else Half("ge", Fraction(c))
        t = Fraction(c) - Fraction(1, 2)
        tie_goes_up = {"ROUND": c % 2 == 0, "HALF_UP": t > 0, "HALF_DOWN": t < 0}[m]
        return Half("ge" if tie_goes_up else "gt", t)

    def f32(self, x, axis=-1):
        x = x.astype(F32)
        m = self.mode
        if m == "ROUND":
            return np.round(x)
        if m == "FLOOR":
            return np.floor(x)
        if m == "CEIL":
            return np.ceil(x)
        if m == "DOWN":
            return np.fix(x)
        if m == "UP":
            return (np.sign(x) * np.ceil(np.abs(x))).astype(F32)
        if m == "HALF_UP":
            return (np.sign(x) * np.floor(np.abs(x) + F32(0.5))).astype(F32)
        return (np.sign(x) * np.ceil(np.abs(x) - F32(0.5))).astype(F32)


class Sign(Op):
    """Bipolar quantisation: +1 where x >= 0, else -1."""

    name = "sign"

    def exact(self, ch, x):
        return Fraction(1 if x >= 0 else -1)

    def pre_upper(self, ch, y, strict):
        if y < -1 or (y == -1 and not strict):
            return Half("all")
        if y > 1 or (y == 1 and strict):
            return Half("none")
        return Half("ge", Fraction(0))

    def f32(self, x, axis=-1):
        x = x.astype(F32)
        return np.where(x >= 0, F32(1), F32(-1)).astype(F32)


def chain_exact(ops: list[Op], ch: int, x) -> Fraction:
    v = Fraction(x)
    for op in ops:
        v = op.exact(ch, v)
    return v


def chain_pre(ops: list[Op], ch: int, h: Half) -> Half:
    for op in reversed(ops):
        h = op.pre(ch, h)
        if h.kind in ("all", "none"):
            return h
    return h


def chain_f32(ops: list[Op], x: np.ndarray, axis: int = -1) -> np.ndarray:
    v = x.astype(F32)
    for op in ops:
        v = op.f32(v, axis)
    return v


def chain_direction(ops: list[Op], ch: int) -> int:
    d = 1
    for op in ops:
        d *= op.direction(ch)
    return d


def op_from_json(d: dict) -> Op:
    """Rebuild an op from its `to_json` form (design.json)."""
    k = d["op"]
    if k in ("mul", "div", "add", "sub"):
        return Arith(k, d["c"])
    if k == "affine":
        return Affine([Fraction(v) for v in d["a"]], [Fraction(v) for v in d["b"]])
    if k == "relu":
        return Relu()
    if k == "leakyrelu":
        return LeakyRelu(d["alpha"])
    if k == "clip":
        return Clip(d["lo"], d["hi"])
    if k == "round":
        return Round(d["mode"])
    if k == "sign":
        return Sign()
    raise ValueError(f"unknown element-wise op {k}")
