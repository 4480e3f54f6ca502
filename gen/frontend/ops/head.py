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

RANK_VALUES = 4096   # (class, code) pairs up to which the class unit compares exact ranks ...
RANK_MAX = 256       # ... when they hold at most this many distinct real values (thresholds per class)


class OutputOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Softmax(self, node):
        self._label(node, k=1)

    def op_ArgMax(self, node):
        at = node_attrs(node)
        if at.get("select_last_index", 0):
            raise node_error(node, "ArgMax with select_last_index=1 is not supported",
                             "export with select_last_index=0 (the first of equal maxima, ONNX's default)")
        self._label(node, k=1)

    def op_TopK(self, node):
        at = node_attrs(node)
        if not at.get("largest", 1):
            raise node_error(node, "TopK with largest=0 (the k smallest) is not supported", "use largest=1")
        if not at.get("sorted", 1):
            raise node_error(node, "TopK with sorted=0 is not supported: its order is unspecified",
                             "use sorted=1 (largest first, ties to the lower index)")
        if node.output[0] in self.consumers or node.output[0] in {o.name for o in self.graph.output}:
            raise node_error(node, "TopK's Values output is used; only its Indices can be the model's output",
                             "take the values from the scores, or end the model with the Indices")
        k = int(self.const(node, 1).ravel()[0])
        self._label(node, k=k, out=1)

    def _label(self, node, k, out=0):
        """The class head at the model's output over the class axis: an arg-max / top-k unit (LabelSelect)."""
        graph_outs = {o.name for o in self.graph.output}
        follow = node.output[out]
        while follow not in graph_outs:
            nxt = self.consumers.get(follow, [])
            if len(nxt) != 1 or nxt[0].op_type != "Identity":
                raise node_error(node, f"{node.op_type} is only supported at the output of the model")
            follow = nxt[0].output[0]
        lin = self.lin_in(node)
        shape = lin.index.shape  # the ONNX input's shape without the batch axis
        axis = int(node_attrs(node).get("axis", {"ArgMax": 0, "TopK": -1}.get(node.op_type, self._softmax_axis())))
        axis = axis + len(shape) + 1 if axis < 0 else axis
        # Softmax before opset 13 normalises over all axes from `axis` on (the input seen as 2-D)
        coerced = node.op_type == "Softmax" and self._opset() < 13
        others = [d for i, d in enumerate(shape) if (i < axis - 1 if coerced else i != axis - 1)]
        if axis == 0 or axis > len(shape) or any(d != 1 for d in others):
            raise node_error(node, f"{node.op_type} over axis {axis} of a {(1,) + tuple(shape)} tensor is not "
                                   "supported: gen selects a class over one axis holding all the elements",
                             "flatten the scores to (N, classes) before the head")
        if not 1 <= k <= lin.index.size:
            raise node_error(node, f"TopK with k={k} over {lin.index.size} elements", "use 1 <= k <= classes")
        self.scores_value = (node.input[0], lin)
        self.label = (node, k)
        self.values[node.output[out]] = ("label", node)

    def _opset(self) -> int:
        return next((int(o.version) for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 13)

    def _softmax_axis(self) -> int:
        return -1 if self._opset() >= 13 else 1

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
        """The class unit must compare the real scores. It compares the codes themselves when one increasing map
        dequantises every class; otherwise it compares integers ordered exactly as the real values (equal real
        values give equal integers, so ties still go to the lower index, as ONNX ArgMax / TopK break them):
        the rank of every (class, code) when the codes are few (bipolar, narrow codes; any signs of the
        per-class scales), else M_c * code + B_c in a multiplier-only Requant."""
        t = self.t(lin.tensor)
        C = t.channels
        ab = affine_of(lin.ops, C)
        if ab is None:
            dirs = {chain_direction(lin.ops, c) for c in range(C)}
            if C == 1 or (dirs == {1} and all(not isinstance(o, (Affine, Arith)) or (
                              np.asarray(getattr(o, "c", 0)).size == 1 and len(getattr(o, "a", [0])) <= 1)
                              for o in lin.ops)):
                return  # one monotone-increasing map shared by every channel: arg-max of the codes
            raise node_error(self.label[0], "the class head needs scores that are one affine map of the stream "
                                            "(or one increasing map shared by every class)",
                             "end the scores with a quantiser, or move the non-linear float op before it")
        a, b = ab
        if len(set(a)) == 1 and len(set(b)) == 1 and a[0] > 0:
            return
        if t.elements != C:
            raise node_error(self.label[0], f"a class over the spatial tensor '{lin.tensor}' needs one positive "
                                            "scale for all channels", "flatten and quantise the scores first")
        codes = [-1, 1] if t.bipolar else list(range(int(t.lo), int(t.hi) + 1))
        if C * len(codes) <= RANK_VALUES and self._label_ranks(lin, a, b, codes):
            return
        self._label_rescale(lin, a, b)

    def _label_ranks(self, lin: Lin, a, b, codes) -> bool:
        """Per class, a threshold Requant from the code to the rank of its real value a_c * code + b_c among all
        classes' values (exact Fractions). False when there are more than RANK_MAX distinct values."""
        t = self.t(lin.tensor)
        C = t.channels
        real = [[a[c] * v + b[c] for v in codes] for c in range(C)]
        levels = sorted({x for row in real for x in row})
        n = len(levels)
        if n > RANK_MAX:
            return False
        rank = {x: i for i, x in enumerate(levels)}
        never = {False: max(codes) + 1, True: -min(codes) + 1}  # past every code on the sign-corrected axis
        th = np.zeros((C, max(1, n - 1)), dtype=np.int64)
        neg = np.array([x < 0 for x in a], dtype=bool)
        for c in range(C):
            r = [rank[x] for x in real[c]]
            for j in range(1, n):   # threshold j: the first code (on the sign-corrected axis) of rank >= j
                reach = [(-v if neg[c] else v) for v, rv in zip(codes, r) if rv >= j]
                th[c, j - 1] = min(reach) if reach else never[bool(neg[c])]
            th[c] = np.sort(th[c])
        if n == 1:
            th[:, 0] = [never[bool(x)] for x in neg]  # one value for every class: rank 0, class 0 wins
        out = self.new_tensor("label_scores", t.shape, 0, max(1, n - 1))
        self.design.add_layer(Requant(
            name="label_rank", inputs=(lin.tensor,), output=out.name, thresholds=th, negate=neg, out_lo=0,
            out_hi=max(1, n - 1), onnx_nodes=()))
        self.label_input = out.name
        self.design.notes.append(f"arg-max compares exact ranks: per-class thresholds (layer 'label_rank', {n} "
                                 f"distinct real scores) after '{lin.tensor}'")
        return True

    def _label_rescale(self, lin: Lin, a, b):
        t = self.t(lin.tensor)
        C = t.channels
        if all(x == 0 for x in a + b):
            a = [Fraction(1)] * C  # every class scores 0: any one map keeps the ties (class 0 wins)
        # unit u = gcd of all a_c and b_c; integer M_c = a_c / u, B_c = b_c / u (signs kept: a negative scale
        # reverses its class's order); the arg-max then compares the exact integers M_c * acc_c + B_c, computed
        # by a multiplier-only Requant after the scores (the scores themselves stay the small accumulators, sent
        # to the host and dequantised there as the reference does)
        vals = [x for x in a + b if x != 0]
        den = math.lcm(*(x.denominator for x in vals))
        num = math.gcd(*(x.numerator * (den // x.denominator) for x in vals))
        u = Fraction(num, den)
        M = [int(x / u) for x in a]
        B = [int(x / u) for x in b]
        note = ""
        if self._label_range(M, B, t) >= 1 << 62 and any(a):
            # the biases are finer than the scales: round them down to a grid 2^-48 of the score range. The
            # arg-max can then differ from the exact one only where two classes' scores are within that step,
            # far inside float32 rounding (a proven near-tie against any float32 reference)
            da = math.lcm(*(y.denominator for y in a if y != 0))
            ua = Fraction(math.gcd(*(x.numerator * (da // x.denominator) for x in a if x != 0)), da)
            k = 0
            while self._label_range([int(x / ua) << (k + 1) for x in a], [math.floor(x / ua * 2 ** (k + 1))
                                                                         for x in b], t) < 1 << 48:
                k += 1
            ua = ua / 2 ** k
            M = [int(x / ua) for x in a]
            B = [math.floor(x / ua) for x in b]
            note = f"; biases rounded down to multiples of 2^{math.log2(ua):.0f}"
        if self._label_range(M, B, t) >= 1 << 62:
            raise node_error(self.label[0], f"the per-class scales of '{lin.tensor}' need more than 62-bit exact "
                                            f"scores (scales {float(min(a)):.3g}..{float(max(a)):.3g})",
                             "use one scale for all classes, or fewer score bits")
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
