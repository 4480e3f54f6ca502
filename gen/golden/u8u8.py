"""QOperator models in the U8U8 form that onnxruntime computes exactly on every x86 CPU.

onnxruntime's MLAS kernels for integer convolutions and matrix products of a uint8 and an int8 operand
(QLinearConv, QLinearMatMul, QGemm, ConvInteger, MatMulInteger; U8S8, and S8U8 where the op allows it) use
VPMADDUBSW on AVX2 / AVX-512 CPUs without VNNI, which adds two u8 x s8 products and saturates the pair to int16 \
(onnxruntime's
"Quantize ONNX models" guide: they "might suffer from saturation issues"; 255 * 127 * 2 = 64,770 > 32,767). The
reference's answer then depends on the machine, and on such machines it is not the integer program the ONNX
spec defines. The U8U8 kernels widen to 16 bits before multiplying and never saturate.

The rewrite is exact: the int8 operand v with zero point z becomes the uint8 operand v + 128 with zero point
z + 128, so every difference (v - z), every accumulator and the float32 requantisation after it are unchanged.
Constant operands are rewritten in place; an int8 activation goes through Cast(int32), Add(128), Cast(uint8)
nodes inserted before its first consumer (new tensor names; the graph's own tensors keep theirs, so layer-by-layer
comparison is unaffected). Models without such ops are returned as they are.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# op -> ((activation, its zero point), (weight, its zero point)) input indices
_SLOTS = {"QLinearConv": ((0, 2), (3, 5)), "QLinearMatMul": ((0, 2), (3, 5)), "QGemm": ((0, 2), (3, 5)),
          "ConvInteger": ((0, 2), (1, 3)), "MatMulInteger": ((0, 2), (1, 3))}


def _constants(model: onnx.ModelProto) -> dict[str, TensorProto]:
    """Tensor name -> its constant TensorProto (initializers and Constant nodes' `value`), editable in place."""
    found = {t.name: t for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    found[n.output[0]] = a.t
    return found


def _input(node, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _shifted_copy(t: TensorProto) -> TensorProto:
    return numpy_helper.from_array((numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8), t.name)


class _Rewriter:
    def __init__(self, m: onnx.ModelProto):
        self.m = m
        self.consts = _constants(m)
        self.done: dict[str, str] = {}   # int8 tensor -> the name of its uint8 form
        self.new_nodes: list = []        # Cast/Add nodes for the node being visited

    def operand_is_int8(self, node, vi: int, zi: int) -> bool | None:
        """Whether operand vi is int8 (its own type if constant, else its zero point's; none = uint8);
        None when that cannot be told (a zero point computed at run time)."""
        v, z = self.consts.get(_input(node, vi)), _input(node, zi)
        if v is not None:
            return v.data_type == TensorProto.INT8
        if not z:
            return False
        zt = self.consts.get(z)
        return None if zt is None else zt.data_type == TensorProto.INT8

    def value(self, node, vi: int) -> None:
        name = node.input[vi]
        if name not in self.done:
            if name in self.consts:
                self.consts[name].CopyFrom(_shifted_copy(self.consts[name]))
                self.done[name] = name
            else:
                base = f"{name}__u8u8"
                self.m.graph.initializer.append(numpy_helper.from_array(np.array(128, np.int32), f"{base}_128"))
                self.new_nodes += [
                    helper.make_node("Cast", [name], [f"{base}_i32"], to=TensorProto.INT32),
                    helper.make_node("Add", [f"{base}_i32", f"{base}_128"], [f"{base}_sum"]),
                    helper.make_node("Cast", [f"{base}_sum"], [base], to=TensorProto.UINT8)]
                self.done[name] = base
        node.input[vi] = self.done[name]

    def zero_point(self, node, zi: int) -> None:
        z = _input(node, zi)
        if not z:   # absent = 0 (ConvInteger / MatMulInteger): an explicit uint8 128
            z = f"{node.output[0]}__u8u8_zp"
            self.m.graph.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), z))
            while len(node.input) <= zi:
                node.input.append("")
            node.input[zi] = z
            self.done[z] = z
        elif z not in self.done:
            self.consts[z].CopyFrom(_shifted_copy(self.consts[z]))
            self.done[z] = z

    def visit(self, node) -> None:
        signed = [self.operand_is_int8(node, vi, zi) for vi, zi in _SLOTS[node.op_type]]
        if sorted(signed, key=str) != [False, True]:
            return   # U8U8 already; S8S8 (exact in every test here) or unknown: leave it
        for (vi, zi), s in zip(_SLOTS[node.op_type], signed):
            if s:
                self.value(node, vi)
                self.zero_point(node, zi)


def u8u8(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose integer convolutions / matrix products read only uint8 operands (see above)."""
    if not any(n.op_type in _SLOTS for n in model.graph.node):
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    rw = _Rewriter(m)
    order = []
    for n in m.graph.node:
        if n.op_type in _SLOTS:
            rw.visit(n)
            order += rw.new_nodes   # before their consumer: the graph stays topologically sorted
            rw.new_nodes = []
        order.append(n)
    order = [_copy(n) for n in order]   # own copies: clearing the repeated field below would take them along
    del m.graph.node[:]
    m.graph.node.extend(order)
    return m


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    c = onnx.NodeProto()
    c.CopyFrom(node)
    return c
