"""Concat along channels: one IR `Concat` and one chain for the concatenated channels.

Inputs may be quantised differently (DenseNet blocks, Brevitas without a shared quantiser before the cat):
each keeps its own codes, and the concatenated value carries a per-channel chain (scale, zero point) made of
the inputs' chains. Where that per-channel map is resolved is decided per consumer, by hardware cost:
  * a quantiser after the concat: per-channel thresholds on the integer codes (exact as they stand); gen/hw.py
    moves it in front of the concat, one per input, where that turns it into per-input lookup tables,
  * a Conv / MatMul / Gemm reading the concat directly: the exact scale ratios become integer factors of its
    weights (MatrixOps._fold_input_scales) - there is no common grid to requantise the inputs to,
  * MaxPool: the per-channel map is increasing, so the pool runs on the codes and the chain passes through,
  * the model output: the chain is the output boundary (an arg-max head folds per-class scales exactly).
"""

from __future__ import annotations

import numpy as np

from ...errors import node_error
from ...ir.elementwise import Affine, Arith, Clip
from ...ir.layers import Concat
from ..common import attr_str, node_attrs
from ..values import Lin, affine_of, canonical_index


class ConcatOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Concat(self, node):
        axis = node_attrs(node).get("axis", 1)
        vals = [self.lin_in(node, i) for i in range(len(node.input))]
        if len(vals) == 1:
            self.values[node.output[0]] = vals[0]
            return
        if any(v.index.ndim != 3 for v in vals) or axis not in (1, -3):
            raise node_error(node, "Concat is only supported along the channel axis of N,C,H,W tensors")
        ts = [self.t(self._conv_input(node, v).tensor) for v in vals]
        if len({t.shape[:2] for t in ts}) != 1:
            raise node_error(node, "Concat inputs differ in height/width")
        if self._needs_one_zero_point(node):
            vals = self._align_zero_points(node, vals, ts)
            ts = [self.t(v.tensor) for v in vals]
        ops = self._merge_chains(node, vals, ts)
        C = sum(t.channels for t in ts)
        shape = (ts[0].shape[0], ts[0].shape[1], C)
        # one (per-channel) scale and one zero point describe the codes only when the zero points agree; else
        # the value is known through the chain alone
        scale = None
        if all(t.scale is not None for t in ts) and len({t.zero_point for t in ts}) == 1:
            scale = sum((tuple(np.broadcast_to(t.scale, (t.channels,))) for t in ts), ())
        out = self.new_tensor("concat", shape, min(t.lo for t in ts), max(t.hi for t in ts),
                              bipolar=all(t.bipolar for t in ts), scale=scale, zp=ts[0].zero_point)
        self.design.add_layer(Concat(name=self.fresh("concat"), inputs=tuple(t.name for t in ts), output=out.name,
                                     onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(shape, 3), ops)

    def _merge_chains(self, node, vals, ts):
        """One chain for the concatenated channels: same op sequence, per-channel constants concatenated."""
        kinds = [[type(o).__name__ + getattr(o, "kind", "") for o in v.ops] for v in vals]
        if any(k != kinds[0] for k in kinds):
            return self._merge_affine(node, vals, ts)
        merged = []
        for j, op in enumerate(vals[0].ops):
            group = [v.ops[j] for v in vals]
            if isinstance(op, Arith):
                c = np.concatenate([np.broadcast_to(g.c, (t.channels,)) for g, t in zip(group, ts)])
                merged.append(Arith(op.kind, c))
            elif isinstance(op, Affine):
                a = [x for g, t in zip(group, ts) for x in ([g.a[0]] * t.channels if len(g.a) == 1 else g.a)]
                b = [x for g, t in zip(group, ts) for x in ([g.b[0]] * t.channels if len(g.b) == 1 else g.b)]
                merged.append(Affine(a, b))
            else:
                if any(vars(g) != vars(op) for g in group):
                    raise node_error(node, "Concat inputs have different activation functions",
                                     "Quantise each input right before the Concat")
                merged.append(op)
        return merged

    def _merge_affine(self, node, vals, ts):
        """Inputs whose chains differ in form (e.g. DequantizeLinear codes beside a Quant output, or one input
        still on its integer codes): exact per-channel a * x + b, when every chain is affine. QOperator's
        reference evaluates the chains in float32 op by op, so it needs the same op sequence."""
        abs_ = [affine_of(v.ops, t.channels) for v, t in zip(vals, ts)]
        if self.mode != "exact" or any(ab is None for ab in abs_):
            raise node_error(node, "Concat inputs are quantised differently and not all of them are plain "
                                   "quantised tensors", "Quantise each input right before the Concat")
        return [Affine([x for ab in abs_ for x in ab[0]], [x for ab in abs_ for x in ab[1]])]

    def _needs_one_zero_point(self, node) -> bool:
        """Does a consumer pad the concatenated tensor with its zero point (a padded Conv)? The sliding-window
        unit pads with one code for all channels."""
        for c in self.consumers.get(node.output[0], []):
            at = node_attrs(c)
            if c.op_type == "Conv" and (any(at.get("pads", ())) or attr_str(at.get("auto_pad", "NOTSET")) in (
                    "SAME_UPPER", "SAME_LOWER")):
                return True
        return False

    def _align_zero_points(self, node, vals, ts):
        """Re-encode inputs whose zero point differs from the most common one (by channels), code + (Z - zp):
        an exact integer shift, one small Requant per such input (a lookup table in hardware) - cheaper than a
        per-channel padding value in every sliding-window unit that reads the concat."""
        zps = []
        for v, t in zip(vals, ts):
            ab = affine_of(v.ops, t.channels)
            z = None if ab is None else {-b / a for a, b in zip(*ab)}
            zps.append(next(iter(z)) if z and len(z) == 1 and next(iter(z)).denominator == 1 else None)
        if None in zps or len(set(zps)) == 1:
            return vals  # nothing to align, or the Conv reports what it cannot pad
        weight = {}
        for z, t in zip(zps, ts):
            weight[z] = weight.get(z, 0) + t.channels
        Z = max(weight, key=lambda z: (weight[z], -abs(z)))
        out = []
        for v, t, z in zip(vals, ts, zps):
            shift = int(Z - z)
            if shift == 0:
                out.append(v)
                continue
            code = Lin(v.tensor, v.index, [])
            nt = self.requant(node, code, [Affine([1], [shift]), Clip(t.lo + shift, t.hi + shift)], t.lo + shift,
                              t.hi + shift, scale=t.scale, zp=int(Z))
            out.append(Lin(nt.name, v.index, [Affine([1], [-shift])] + list(v.ops)))
        return out
