"""Concat along channels: one IR `Concat` and one chain for the concatenated channels."""

from __future__ import annotations

import numpy as np

from ...errors import node_error
from ...ir.elementwise import Affine, Arith
from ...ir.layers import Concat
from ..common import node_attrs
from ..values import Lin, canonical_index


class ConcatOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Concat(self, node):
        axis = node_attrs(node).get("axis", 1)
        vals = [self.lin_in(node, i) for i in range(len(node.input))]
        if any(v.index.ndim != 3 for v in vals) or axis not in (1, -3):
            raise node_error(node, "Concat is only supported along the channel axis of N,C,H,W tensors")
        ts = [self.t(self._conv_input(node, v).tensor) for v in vals]
        if len({t.shape[:2] for t in ts}) != 1:
            raise node_error(node, "Concat inputs differ in height/width")
        ops = self._merge_chains(node, vals, ts)
        C = sum(t.channels for t in ts)
        shape = (ts[0].shape[0], ts[0].shape[1], C)
        scale = None
        if all(t.scale is not None for t in ts):
            scale = sum((tuple(np.broadcast_to(t.scale, (t.channels,))) for t in ts), ())
        out = self.new_tensor("concat", shape, min(t.lo for t in ts), max(t.hi for t in ts),
                              bipolar=all(t.bipolar for t in ts), scale=scale,
                              zp=ts[0].zero_point if len({t.zero_point for t in ts}) == 1 else 0)
        self.design.add_layer(Concat(name=self.fresh("concat"), inputs=tuple(t.name for t in ts), output=out.name,
                                     onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(shape, 3), ops)

    def _merge_chains(self, node, vals, ts):
        """One chain for the concatenated channels: same op sequence, per-channel constants concatenated."""
        kinds = [[type(o).__name__ + getattr(o, "kind", "") for o in v.ops] for v in vals]
        if any(k != kinds[0] for k in kinds):
            raise node_error(node, "Concat inputs are quantised differently", "Quantise each input the same way")
        merged = []
        for j, op in enumerate(vals[0].ops):
            group = [v.ops[j] for v in vals]
            if isinstance(op, Arith):
                c = np.concatenate([np.broadcast_to(g.c, (t.channels,)) for g, t in zip(group, ts)])
                merged.append(Arith(op.kind, c))
            elif isinstance(op, Affine):
                a = sum(([g.a[0]] * t.channels if len(g.a) == 1 else g.a for g, t in zip(group, ts)), [])
                b = sum(([g.b[0]] * t.channels if len(g.b) == 1 else g.b for g, t in zip(group, ts)), [])
                merged.append(Affine(a, b))
            else:
                if any(vars(g) != vars(op) for g in group):
                    raise node_error(node, "Concat inputs have different activation functions")
                merged.append(op)
        return merged
