"""Float element-wise ops between quantisers (Relu, LeakyRelu, BatchNormalization, Add/Sub/Mul/Div by a
constant) fold into the symbolic chain of the value; Add of two quantised tensors is an exact integer `Add`.
"""

from __future__ import annotations

import numpy as np

from ...errors import node_error
from ...ir.elementwise import Affine, Arith, LeakyRelu, Relu, frac, frac_sqrt
from ...ir.layers import Add
from ..common import node_attrs
from ..values import Const, Lin, QConst, Raw


class ElementwiseOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Relu(self, node):
        v = self.values.get(node.input[0])
        if isinstance(v, Raw):
            self.values[node.output[0]] = Raw(v.index, v.ir_shape, v.ops + [Relu()])
            return
        self.values[node.output[0]] = self.lin_in(node).with_ops([Relu()])

    def op_LeakyRelu(self, node):
        alpha = node_attrs(node).get("alpha", 0.01)
        if alpha <= 0:
            raise node_error(node, "LeakyRelu with alpha <= 0 is not monotonic")
        self.values[node.output[0]] = self.lin_in(node).with_ops([LeakyRelu(alpha)])

    def op_BatchNormalization(self, node):
        lin = self.lin_in(node)
        C = self.t(lin.tensor).channels
        eps = frac(np.float32(node_attrs(node).get("epsilon", 1e-5)))
        # BatchNorm parameters run along ONNX axis 1 (the channel): shape them (C, 1, 1) to broadcast
        pshape = (-1,) + (1,) * (lin.index.ndim - 1)
        gamma, beta, mean, var = (self.chan_const(node, self.const(node, i).astype(np.float32).reshape(pshape),
                                                  lin.index, C) for i in (1, 2, 3, 4))
        a, b = [], []
        for c in range(C):
            g_, b_, m_, v_ = (frac(x[c if x.size > 1 else 0]) for x in (gamma, beta, mean, var))
            s = g_ / frac_sqrt(v_ + eps)
            a.append(s)
            b.append(b_ - m_ * s)
        self.values[node.output[0]] = lin.with_ops([Affine(a, b)])

    def _binary(self, node, kind):
        a, b = (self.values.get(i) for i in node.input[:2])
        if isinstance(b, (Const, QConst)) and isinstance(a, (Lin, Raw)):
            c = b.value if isinstance(b, Const) else b.real
            x, first = a, False
        elif isinstance(a, (Const, QConst)) and isinstance(b, (Lin, Raw)):
            c = a.value if isinstance(a, Const) else a.real
            x, first = b, True
        elif isinstance(a, Lin) and isinstance(b, Lin) and kind == "add":
            return self.residual_add(node, a, b)
        else:
            raise node_error(node, f"{node.op_type} of two activations is not supported (only by a constant, "
                                   "or Add of two quantised tensors)")
        c = np.asarray(c, dtype=np.float32)
        if isinstance(x, Raw):
            chans = x.ir_shape[2]
        else:
            chans = self.t(x.tensor).channels
        cc = self.chan_const(node, c, x.index, chans)
        if first and kind == "sub":
            ops = [Arith("mul", np.float32(-1)), Arith("add", cc)]
        elif first and kind == "div":
            raise node_error(node, "constant divided by an activation is not supported")
        else:
            ops = [Arith(kind, cc)]
        if isinstance(x, Raw):
            self.values[node.output[0]] = Raw(x.index, x.ir_shape, x.ops + ops)
        else:
            self.values[node.output[0]] = x.with_ops(ops)

    def op_Mul(self, node):
        self._binary(node, "mul")

    def op_Div(self, node):
        self._binary(node, "div")

    def op_Sub(self, node):
        self._binary(node, "sub")

    def op_Add(self, node):
        self._binary(node, "add")

    def residual_add(self, node, x: Lin, y: Lin):
        tx, ty = self.t(x.tensor), self.t(y.tensor)
        if tx.shape != ty.shape or not np.array_equal(x.index, y.index):
            raise node_error(node, f"Add of tensors with different shapes/layouts {tx.shape} vs {ty.shape}")
        C = tx.channels
        (ax, bx), (ay, by) = self.exact_affine(node, x), self.exact_affine(node, y)
        ka, kb, unit = [], [], []
        for c in range(C):
            r = ax[c] / ay[c]
            p, q = r.numerator, r.denominator
            if q < 0:
                p, q = -p, -q
            ka.append(p)
            kb.append(q)
            unit.append(ay[c] / q)
        # the sum is exact in integers: ka * x + kb * y (unit ay / kb); the following requantiser thresholds the
        # wide sum, so only its range limits this (int64 in the golden model)
        xm, ym = max(abs(tx.lo), abs(tx.hi)), max(abs(ty.lo), abs(ty.hi))
        if max(abs(a) * xm + abs(b) * ym for a, b in zip(ka, kb)) >= (1 << 62):
            raise node_error(node, "the two operands' scales have no exact integer ratio within 62 bits",
                             "Use scales whose ratio is a simpler fraction (e.g. powers of two)")
        ka_a, kb_a = np.array(ka, dtype=np.int64), np.array(kb, dtype=np.int64)
        lo = int(np.min(np.minimum(ka_a * tx.lo, ka_a * tx.hi) + np.minimum(kb_a * ty.lo, kb_a * ty.hi)))
        hi = int(np.max(np.maximum(ka_a * tx.lo, ka_a * tx.hi) + np.maximum(kb_a * ty.lo, kb_a * ty.hi)))
        out = self.new_tensor("add", tx.shape, lo, hi)
        self.design.add_layer(Add(name=self.fresh("add"), inputs=(tx.name, ty.name), output=out.name, ka=ka_a,
                                  kb=kb_a, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, x.index, [Affine(unit, [bx[c] + by[c] for c in range(C)])])
