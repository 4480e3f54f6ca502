"""Fused requantisation (thresholds or multiplier/shift), shared by mvu, pool, add and the requant kernel.

The hardware reproduces gen/golden/ops.py exactly:
  thresholds: code = out_lo + #{k : s_c * acc >= T[c, k]}  (binary search, one pipelined compare per output bit)
  multshift:  code = clamp((acc * M_c + B_c) >> shift, out_lo, out_hi)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..golden import ops
from .common import bits_for, clog2, pack_words, sbits


@dataclass
class RequantSpec:
    mode: str = "none"                   # "none" | "thresholds" | "multshift"
    thresholds: np.ndarray | None = None  # (C, K) or (1, K), ascending per channel
    negate: np.ndarray | None = None      # (C,) bool
    out_lo: int = 0
    out_hi: int | None = None
    mult: np.ndarray | None = None        # (C,)
    offset: np.ndarray | None = None      # (C,)
    shift: int = 0
    o_bits: int | None = None             # output code width (default: the cheapest for the code range)
    o_bipolar: bool = False               # codes {-1, +1} encoded as one bit (1 = +1)

    @classmethod
    def from_layer(cls, layer, use_multshift: bool | None = None, o_bits: int | None = None) -> RequantSpec:
        """From a gen.ir Requant layer (thresholds, or its checked multiplier/shift form)."""
        ms = layer.mult is not None if use_multshift is None else use_multshift
        if ms:
            return cls("multshift", out_lo=int(layer.out_lo), out_hi=int(layer.out_hi), mult=layer.mult,
                       offset=layer.offset, shift=int(layer.shift), o_bits=o_bits)
        return cls("thresholds", thresholds=layer.thresholds, negate=layer.negate, out_lo=int(layer.out_lo),
                   o_bits=o_bits)

    # -- reference semantics ---------------------------------------------------------------------------------
    def golden(self, acc: np.ndarray) -> np.ndarray:
        if self.mode == "none":
            return acc
        if self.mode == "thresholds":
            c = acc.shape[-1]
            neg = np.zeros(c, bool) if self.negate is None else np.asarray(self.negate, bool)
            return ops.requant_thresholds(acc, np.asarray(self.thresholds), neg, self.out_lo)
        return ops.requant_multshift(acc, np.asarray(self.mult), self.shift, np.asarray(self.offset), self.out_lo,
                                     self.out_hi)

    def code_range(self) -> tuple[int, int]:
        if self.mode == "thresholds":
            return self.out_lo, self.out_lo + np.asarray(self.thresholds).shape[1]
        return self.out_lo, self.out_hi


def requant_ctx(spec: RequantSpec, channels: int, lanes: int, in_lo: int, in_hi: int, ib: int,
                din: str, din_valid: str, din_idx: str, din_last: str) -> dict:
    """Template context for _lib.requant(). Lane l of fold idx is channel idx*lanes + l."""
    assert channels % lanes == 0, (channels, lanes)
    nidx = channels // lanes
    r = dict(mode=spec.mode, lanes=lanes, ib=ib, din=din, din_valid=din_valid, din_idx=din_idx, din_last=din_last,
             idxw=clog2(nidx))
    if spec.mode == "none":
        r.update(ob=ib, o_signed=True, lat=0, o_bipolar=False)
        return r
    if spec.mode == "thresholds":
        T = np.asarray(spec.thresholds, dtype=np.int64)
        if T.ndim == 1:
            T = T[None, :]
        if T.shape[0] == 1:
            T = np.repeat(T, channels, axis=0)
        assert T.shape[0] == channels, (T.shape, channels)
        neg = np.zeros(channels, bool) if spec.negate is None else np.asarray(spec.negate, bool).reshape(-1)
        if neg.size == 1:
            neg = np.repeat(neg, channels)
        out_lo = int(spec.out_lo)
        if spec.o_bipolar:
            if not (out_lo == -1 and T.shape[1] == 2 and np.all(T[:, 0] == T[:, 1])):
                raise ValueError("bipolar output needs out_lo=-1 and two equal thresholds per channel")
            T, out_lo = T[:, :1], 0
        K = T.shape[1]
        vlo = min(in_lo, -in_hi) if neg.any() else in_lo
        vhi = max(in_hi, -in_lo) if neg.any() else in_hi
        if neg.all():
            vlo, vhi = -in_hi, -in_lo
        if K == 0:  # constant output: one unreachable threshold
            T = np.full((channels, 1), vhi + 1, dtype=np.int64)
            K = 1
        T = np.clip(T, vlo, vhi + 1)
        B = max(1, clog2(K + 1))
        Tp = np.full((channels, (1 << B) - 1), vhi + 1, dtype=np.int64)
        Tp[:, :K] = T
        vb = max(sbits(vlo, vhi + 1), ib + (1 if neg.any() else 0))
        tables = []
        for s in range(B):
            per_lane = []
            for lane in range(lanes):
                ent = []
                for idx in range(nidx):
                    c = idx * lanes + lane
                    for p in range(1 << s):
                        ent.append(int(Tp[c, p * (1 << (B - s)) + (1 << (B - 1 - s)) - 1]))
                per_lane.append(ent)
            tables.append(per_lane)
        hi = out_lo + K
        ob, osg = bits_for(out_lo, hi)
        if spec.o_bits is not None and not spec.o_bipolar:
            assert spec.o_bits >= ob, f"o_bits={spec.o_bits} cannot hold codes {out_lo}..{hi}"
            ob = spec.o_bits
        neg_mode = "all" if neg.all() else ("rom" if neg.any() else "none")
        neg_words = pack_words(neg.reshape(nidx, lanes).astype(np.int64), 1) if neg_mode == "rom" else []
        r.update(ob=ob, o_signed=osg, lat=B + 1, stages=B, vb=vb, nthr=K, out_lo=out_lo, stage_tables=tables,
                 neg_mode=neg_mode, neg_words=neg_words, o_bipolar=spec.o_bipolar)
        return r
    if spec.mode == "multshift":
        M = np.broadcast_to(np.asarray(spec.mult, dtype=np.int64).reshape(-1), (channels,))
        Bo = np.broadcast_to(np.asarray(spec.offset, dtype=np.int64).reshape(-1), (channels,))
        mb = sbits(min(int(M.min()), 0), max(int(M.max()), 0))
        bb = sbits(min(int(Bo.min()), 0), max(int(Bo.max()), 0))
        pb = ib + mb
        sb = max(pb, bb) + 1
        out_lo, out_hi = int(spec.out_lo), int(spec.out_hi)
        ob, osg = bits_for(out_lo, out_hi)
        if spec.o_bits is not None:
            assert spec.o_bits >= ob
            ob = spec.o_bits
        assert sb > ob
        r.update(ob=ob, o_signed=osg, lat=4, mb=mb, bb=bb, pb=pb, sb=sb, shift=int(spec.shift), out_lo=out_lo,
                 out_hi=out_hi, o_bipolar=False,
                 mult_words=pack_words(M.reshape(nidx, lanes), mb), offs_words=pack_words(Bo.reshape(nidx, lanes), bb))
        return r
    raise ValueError(f"unknown requant mode {spec.mode!r}")
