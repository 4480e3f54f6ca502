"""Exact requantisation: thresholds from an element-wise chain, and a checked multiplier/shift form.

`code(x) = out_lo + #{k : s*x >= T[k]}` (s = -1 for decreasing maps) is the canonical form. It is derived
either exactly (rational preimages of {code >= k} through the chain: QONNX and QDQ) or from the float32
expression the reference evaluates (bisection over the integer input range: QOperator). A per-channel
multiplier/shift is offered only when it reproduces the thresholds for every reachable input.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .elementwise import Half, Op, chain_f32, chain_pre


def _threshold_of(h: Half) -> tuple[str, int | None, Fraction | None]:
    """Integer threshold for an exact preimage: ('up', T) means x >= T, ('down', T) means -x >= T."""
    k, v = h.kind, h.v
    if k == "ge":
        return "up", math.ceil(v), v
    if k == "gt":
        return "up", math.floor(v) + 1, v
    if k == "le":
        return "down", -math.floor(v), -v
    if k == "lt":
        return "down", 1 - math.ceil(v), -v
    return k, None, None  # 'all' / 'none'


def thresholds_exact(ops: list[Op], channels: int, code_lo: int, code_hi: int, x_lo: int, x_hi: int):
    """Thresholds (C, K), negate (C,), boundaries (C, K) for code = Round-chain(x) clipped to [code_lo, code_hi]."""
    nk = code_hi - code_lo
    T = np.zeros((channels, nk), dtype=np.int64)
    B = np.zeros((channels, nk), dtype=np.float64)
    neg = np.zeros(channels, dtype=bool)
    for c in range(channels):
        res = [_threshold_of(chain_pre(ops, c, Half("ge", Fraction(code_lo + 1 + i)))) for i in range(nk)]
        dirs = {r[0] for r in res} & {"up", "down"}
        if len(dirs) > 1:
            raise ValueError(f"channel {c}: the element-wise map is not monotonic")
        down = dirs == {"down"}
        neg[c] = down
        lo, hi = (-x_hi, -x_lo) if down else (x_lo, x_hi)
        for i, (kind, t, v) in enumerate(res):
            if kind == "all":
                t, v = lo, lo
            elif kind == "none":
                t, v = hi + 1, hi + 1
            T[c, i] = min(max(t, lo), hi + 1)
            B[c, i] = float(v)
    return T, neg, B


def thresholds_f32(ops: list[Op], channels: int, code_lo: int, code_hi: int, x_lo: int, x_hi: int,
                   code_fn=None):
    """Thresholds reproducing the float32 expression `code_fn(chain_f32(ops, x))` exactly on [x_lo, x_hi].

    The expression must be monotone in x per channel (it is: float32 rounding is monotone); we find, for
    every code k, the first x reaching it by vectorised bisection, then verify monotonicity on the ends.
    """
    code_fn = code_fn or (lambda v: v)
    nk = code_hi - code_lo

    def codes(x):  # x: (C, M) int64 -> codes (C, M)
        v = chain_f32(ops, x.T.astype(np.float64), axis=-1).T  # channel axis last for the ops
        return np.asarray(code_fn(v)).astype(np.int64)

    ends = codes(np.array([[x_lo, x_hi]] * channels, dtype=np.int64))
    neg = ends[:, 0] > ends[:, 1]
    s = np.where(neg, -1, 1)
    lo = np.where(neg, -x_hi, x_lo).astype(np.int64)
    hi = np.where(neg, -x_lo, x_hi).astype(np.int64)
    ks = np.arange(code_lo + 1, code_hi + 1)
    a = np.repeat(lo[:, None], nk, 1)           # invariant: answer in [a, b]; b = hi + 1 means "never"
    b = np.repeat(hi[:, None] + 1, nk, 1)
    while True:
        active = a < b
        if not active.any():
            break
        m = (a + b) // 2
        got = codes(np.where(active, m, a) * s[:, None])
        reach = got >= ks[None, :]
        b = np.where(active & reach, m, b)
        a = np.where(active & ~reach, m + 1, a)
    return a, neg


def requant_fn(thresholds, negate, out_lo):
    from ..golden.ops import requant_thresholds
    return lambda x: requant_thresholds(x, thresholds, negate, out_lo)


def find_multshift(T: np.ndarray, negate: np.ndarray, out_lo: int, x_lo: int, x_hi: int, max_shift: int = 40):
    """Per-channel (mult, offset) and one shift with clamp(floor((x*M + B) / 2**S)) == thresholds on [x_lo, x_hi].

    Transition k of floor((x*M+B)/2**S) >= k is at x >= ceil((k*2**S - B)/M); matching T[c,k-1] means
    M*(T-1) < k*2**S - B <= M*T for every threshold strictly inside the range. Returns None if no small
    solution exists. Negated channels use M < 0.
    """
    C, K = T.shape
    if K == 0:
        return None
    for S in range(0, max_shift + 1):
        mults, offs, ok = [], [], True
        for c in range(C):
            lo, hi = (-x_hi, -x_lo) if negate[c] else (x_lo, x_hi)
            t = T[c]
            ks = np.arange(1, K + 1)
            inner = (t > lo) & (t <= hi)
            sol = None
            if not inner.any():
                # constant over the range: M = 0, offset gives the code count of thresholds <= lo
                n = int((t <= lo).sum())
                sol = (0, n << S)
            else:
                ti, ki = t[inner].astype(object), ks[inner]
                span_t = int(t[inner][-1] - t[inner][0])
                span_k = int(ki[-1] - ki[0])
                est = (span_k << S) / span_t if span_t else float(1 << S)
                for M in sorted({max(1, int(est) + d) for d in range(-2, 3)}):
                    # B range from inner thresholds
                    bmax = min(int(k) * (1 << S) - M * (int(tt) - 1) - 1 for k, tt in zip(ki, ti))
                    bmin = max(int(k) * (1 << S) - M * int(tt) for k, tt in zip(ki, ti))
                    if bmin > bmax:
                        continue
                    Bv = bmin
                    # thresholds at the range ends must stay outside: check by evaluating the ends
                    n_lo = int((t <= lo).sum())
                    n_hi = int((t <= hi).sum())
                    if min(max((lo * M + Bv) >> S, 0), K) == n_lo and min(max((hi * M + Bv) >> S, 0), K) == n_hi:
                        sol = (M, Bv)
                        break
            if sol is None:
                ok = False
                break
            m, o = sol
            mults.append(-m if negate[c] else m)
            offs.append(o + (out_lo << S))
        if ok:
            return np.array(mults, dtype=np.int64), np.array(offs, dtype=np.int64), S
    return None
