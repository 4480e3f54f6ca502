"""Layout ops (Identity, Dropout, Cast, Shape, Transpose, Reshape, Flatten, Squeeze, Unsqueeze): they move the
index map that says where each ONNX element lives in the IR stream; no layer is emitted.

On a quantised constant (weights quantised in the graph, e.g. Brevitas QCDQ's DequantizeLinear -> Transpose
-> MatMul of a Linear without bias) they move the codes, scales and zero points themselves.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...errors import node_error
from ..common import node_attrs
from ..values import Const, Lin, QConst, Raw


class LayoutOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def _set_layout(self, node, index):
        v = self.values[node.input[0]]
        if isinstance(v, Lin):
            self.values[node.output[0]] = Lin(v.tensor, index, list(v.ops))
        elif isinstance(v, Raw):
            self.values[node.output[0]] = Raw(index, v.ir_shape, list(v.ops))
        else:
            raise node_error(node, "unsupported input")

    def _index(self, node):
        v = self.values.get(node.input[0])
        if not isinstance(v, (Lin, Raw)):
            raise node_error(node, f"its input '{node.input[0]}' is neither an activation nor a constant (its "
                                   "producer is not supported)")
        return v.index

    def _moved_qconst(self, node) -> bool:
        """Apply the layout op to a quantised constant; False if the input is not one.

        The op runs (onnx reference evaluator) on the codes, the float values and the scales / zero points
        broadcast to the codes' shape, so per-channel parameters follow their channel whatever the op does.
        """
        v = self.values.get(node.input[0])
        if not isinstance(v, QConst):
            return False
        rest = {}
        for i, name in enumerate(node.input[1:], 1):
            if name:
                rest[name] = np.asarray(self.const(node, i, "constant (shape or axes)"))

        def move(a):
            return np.asarray(self.eval_constant(node, {node.input[0]: np.ascontiguousarray(a), **rest})[0])

        def move_param(a):
            a = np.asarray(a)
            return move(np.broadcast_to(a, v.codes.shape)) if a.size > 1 else a

        self.values[node.output[0]] = QConst(codes=move(v.codes), scale=move_param(v.scale),
                                             zero_point=move_param(v.zero_point), real=move(v.real), bits=v.bits,
                                             bipolar=v.bipolar)
        return True

    def op_Identity(self, node):
        self.values[node.output[0]] = self.values[node.input[0]]

    op_Dropout = op_Identity

    def op_Cast(self, node):
        to = node_attrs(node)["to"]
        v = self.values.get(node.input[0])
        if isinstance(v, Lin) and to in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT32):
            self.values[node.output[0]] = v  # the chain's float32 replay casts first
            return
        raise node_error(node, f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported here")

    def op_Shape(self, node):
        """The shape of an activation as a constant, batch axis 1: gen streams one frame at a time, and the
        exporters read it only to rebuild the batch axis (TorchScript's x.view(x.size(0), -1) with a dynamic batch:
        Shape -> Gather -> Unsqueeze -> Concat -> Reshape, folded as constants from here on)."""
        v = self.values.get(node.input[0])
        shape = list(v.codes.shape) if isinstance(v, QConst) else [1] + list(self._index(node).shape)
        a = node_attrs(node)
        self.values[node.output[0]] = Const(np.array(shape[slice(a.get("start", 0), a.get("end"))], np.int64))

    def op_Transpose(self, node):
        if self._moved_qconst(node):
            return
        idx = self._index(node)
        perm = node_attrs(node).get("perm", list(range(idx.ndim + 1))[::-1])
        if perm[0] != 0:
            raise node_error(node, "transposing the batch axis is not supported")
        self._set_layout(node, idx.transpose([p - 1 for p in perm[1:]]))

    def _reshape_to(self, node, idx, target):
        target = list(int(s) for s in target)
        if len(target) == 0:
            raise node_error(node, "reshape to a scalar")
        body = target[1:]
        if target[0] not in (-1, 0, 1) or (target[0] == -1 and -1 in body):
            if target[0] * int(np.prod([b for b in body if b > 0])) == idx.size and -1 not in body:
                raise node_error(node, "reshape merges the batch axis into the data; export with a batch axis")
        body = [idx.shape[i] if s == 0 and i < idx.ndim else s for i, s in enumerate(body)]
        try:
            return idx.reshape(body)
        except ValueError:
            raise node_error(node, f"cannot reshape {idx.shape} to {target}") from None

    def op_Reshape(self, node):
        if self._moved_qconst(node):
            return
        idx = self._index(node)
        self._set_layout(node, self._reshape_to(node, idx, self.const(node, 1, "constant shape")))

    def op_Flatten(self, node):
        if self._moved_qconst(node):
            return
        idx = self._index(node)
        if node_attrs(node).get("axis", 1) != 1:
            raise node_error(node, "Flatten is only supported with axis=1")
        self._set_layout(node, idx.reshape(-1))

    def op_Squeeze(self, node):
        if self._moved_qconst(node):
            return
        idx = self._index(node)
        axes = node_attrs(node).get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.const(node, 1).tolist()
        axes = [a if a >= 0 else a + idx.ndim + 1 for a in (axes or [])]
        if 0 in axes:
            axes.remove(0)
        body = [s for i, s in enumerate(idx.shape) if not ((i + 1) in axes or (not axes and s == 1))]
        self._set_layout(node, idx.reshape(body))

    def op_Unsqueeze(self, node):
        if self._moved_qconst(node):
            return
        idx = self._index(node)
        axes = node_attrs(node).get("axes")
        if axes is None:
            axes = self.const(node, 1).tolist()
        shape = [None] + list(idx.shape)
        for a in sorted(a if a >= 0 else a + len(shape) + 1 for a in axes):
            if a == 0:
                raise node_error(node, "unsqueezing the batch axis is not supported")
            shape.insert(a, 1)
        self._set_layout(node, idx.reshape(shape[1:]))
