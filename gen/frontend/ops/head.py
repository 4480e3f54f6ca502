"""The model's output: Softmax / ArgMax / TopK at the end become a `LabelSelect` (arg-max unit) over exact
integer scores; `finish` fixes the scores tensor and the output boundary the golden check compares.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ...errors import GenError, node_error
from ...ir.elementwise import Affine, Arith, chain_direction
from ...ir.layers import LabelSelect, Requant
from ...ir.tensor import TensorInfo
from ..common import node_attrs
from ..values import Lin, affine_of, layout_of


class OutputOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Softmax(self, node):
        self._label(node, k=1)

    def op_ArgMax(self, node):
        at = node_attrs(node)
        if at.get("select_last_index", 0):
            raise node_error(node, "ArgMax with select_last_index=1 is not supported")
        self._label(node, k=1)

    def op_TopK(self, node):
        k = int(self.const(node, 1).ravel()[0])
        self._label(node, k=k)

    def _label(self, node, k):
        graph_outs = {o.name for o in self.graph.output}
        follow = node.output[0]
        while follow not in graph_outs:
            nxt = self.consumers.get(follow, [])
            if len(nxt) != 1 or nxt[0].op_type != "Identity":
                raise node_error(node, f"{node.op_type} is only supported at the output of the model")
            follow = nxt[0].output[0]
        lin = self.lin_in(node)
        self.scores_value = (node.input[0], lin)
        self.label = (node, k)
        self.values[node.output[0]] = ("label", node)

    def finish(self):
        outs = list(self.graph.output)
        if len(outs) != 1:
            raise GenError(f"the model has {len(outs)} outputs; gen supports one")
        out_name = outs[0].name
        v = self.values.get(out_name)
        des = self.design
        if self.label is not None:
            onnx_scores, lin = self.scores_value
            note = f"{self.label[0].op_type} at the output replaced by an arg-max unit (LabelSelect, k={self.label[1]})"
            des.notes.append(note)
        elif isinstance(v, Lin):
            onnx_scores, lin = out_name, v
        else:
            raise GenError(f"output '{out_name}' is not computed from the input by supported ops")
        t = self.t(lin.tensor)
        if t.onnx_name is None:
            self.design.tensors[t.name] = TensorInfo(**{**t.__dict__, "onnx_name": onnx_scores,
                                                         "onnx_layout": layout_of(lin.index, t.shape)})
        des.scores = lin.tensor
        des.output_boundary = {"onnx_name": onnx_scores, "layout": layout_of(lin.index, t.shape),
                               "chain": [o.to_json() for o in lin.ops], "kind": self.label[0].op_type
                               if self.label else "tensor"}
        self.scores_ops = list(lin.ops)
        if self.label is not None:
            self.label_input = des.scores
            self._fold_label_affine(lin)
            lab = self.new_tensor("label", (1, 1, self.label[1]), 0, self.t(des.scores).elements - 1)
            des.add_layer(LabelSelect(name="label_select", inputs=(self.label_input,), output=lab.name,
                                      k=self.label[1],
                                      onnx_nodes=(self.label[0].name,)))
            des.output = lab.name
        else:
            des.output = des.scores
        if t.bits > 32 and des.output == des.scores:
            des.notes.append(f"output accumulator is {t.bits} bits wide")

    def _fold_label_affine(self, lin: Lin):
        """Arg-max must compare real values: make them one positive scale times integers (exactly)."""
        t = self.t(lin.tensor)
        C = t.channels
        ab = affine_of(lin.ops, C)
        if ab is None:
            dirs = {chain_direction(lin.ops, c) for c in range(C)}
            if C == 1 or (dirs == {1} and all(not isinstance(o, (Affine, Arith)) or (
                              np.asarray(getattr(o, "c", 0)).size == 1 and len(getattr(o, "a", [0])) <= 1)
                              for o in lin.ops)):
                return  # one monotone-increasing map shared by every channel: arg-max of the codes
            raise GenError("arg-max at the output needs scores that are one affine map of the stream")
        a, b = ab
        if t.elements != C:
            if len(set(a)) == 1 and len(set(b)) == 1 and a[0] > 0:
                return
            raise GenError("arg-max over a spatial tensor needs one scale for all channels")
        if len(set(a)) == 1 and len(set(b)) == 1 and a[0] > 0:
            return
        if any(x <= 0 for x in a):
            raise GenError("arg-max at the output: a channel has a non-positive scale")
        # unit u = gcd of all a_c and b_c; integer M_c = a_c / u, B_c = b_c / u; the arg-max then compares the
        # exact integers M_c * acc_c + B_c, computed by a multiplier-only Requant after the scores (the scores
        # themselves stay the small accumulators, sent to the host and dequantised there as the reference does)
        vals = [x for x in a + b if x != 0]
        den = math.lcm(*(x.denominator for x in vals))
        num = math.gcd(*(x.numerator * (den // x.denominator) for x in vals))
        u = Fraction(num, den)
        M = [int(x / u) for x in a]
        B = [int(x / u) for x in b]
        note = ""
        if self._label_range(M, B, t) >= 1 << 62:
            # the biases are finer than the scales: round them down to a grid 2^-48 of the score range. The
            # arg-max can then differ from the exact one only where two classes' scores are within that step,
            # far inside float32 rounding (a proven near-tie against any float32 reference)
            da = math.lcm(*(y.denominator for y in a))
            ua = Fraction(math.gcd(*(x.numerator * (da // x.denominator) for x in a)), da)
            k = 0
            while self._label_range([int(x / ua) << (k + 1) for x in a], [math.floor(x / ua * 2 ** (k + 1))
                                                                         for x in b], t) < 1 << 48:
                k += 1
            ua = ua / 2 ** k
            M = [int(x / ua) for x in a]
            B = [math.floor(x / ua) for x in b]
            note = f"; biases rounded down to multiples of 2^{math.log2(ua):.0f}"
        if self._label_range(M, B, t) >= 1 << 62:
            raise GenError(f"arg-max at the output: the per-class scales of '{lin.tensor}' need more than "
                           f"62-bit exact scores (scales {float(min(a)):.3g}..{float(max(a)):.3g}); "
                           "use one scale for all classes")
        ext = [m * v + bb for m, bb in zip(M, B) for v in (t.lo, t.hi)]
        lo, hi = min(ext), max(ext)
        out = self.new_tensor("label_scores", t.shape, lo, hi)
        self.design.add_layer(Requant(
            name="label_scale", inputs=(lin.tensor,), output=out.name, thresholds=None,
            negate=np.zeros(C, dtype=bool), out_lo=lo, out_hi=hi, mult=np.array(M, dtype=np.int64),
            offset=np.array(B, dtype=np.int64), shift=0, onnx_nodes=()))
        self.label_input = out.name
        self.design.notes.append(f"arg-max compares exact integers: per-class multiplier/offset (layer "
                                 f"'label_scale', up to {max(hi, -lo).bit_length() + 1} bits) after "
                                 f"'{lin.tensor}'{note}")

    @staticmethod
    def _label_range(M, B, t) -> int:
        return max(abs(m) * max(abs(t.lo), abs(t.hi)) + abs(bb) for m, bb in zip(M, B))
