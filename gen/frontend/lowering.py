"""Lowering: walk an ONNX graph once, giving every tensor a symbolic value, and emit the integer IR.

One pass serves all three flavours. Quantisers (QONNX Quant/BipolarQuant/Trunc, QuantizeLinear, the
requantisation inside QLinear* ops) become `Requant` layers whose thresholds come from the exact element-wise
chain (QONNX, QDQ: `mode="exact"`) or from the float32 expression onnxruntime evaluates (QOperator:
`mode="f32"`). Convolutions and matrix products become integer `Conv`/`Dense` layers; BatchNorm and scalar
float ops fold into the chains; layout ops only move the index maps.

This module holds the walk itself and the helpers every op uses; the ops live in gen/frontend/ops/, one
module per family (layout, quant, elementwise, matrix, pool, concat, head for the output, qop for
QOperator's integer ops), mixed into `Lowering`. A handler is found by name: `op_<OpType>`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import GenError, node_error
from ..ir.design import Design
from ..ir.elementwise import Arith, Clip, Round, chain_exact
from ..ir.layers import Input, Requant
from ..ir.requant import thresholds_exact, thresholds_f32
from ..ir.tensor import TensorInfo
from .common import node_attrs
from .ops.concat import ConcatOps
from .ops.elementwise import ElementwiseOps
from .ops.head import OutputOps
from .ops.layout import LayoutOps
from .ops.matrix import MatrixOps
from .ops.pool import PoolOps
from .ops.qop import QOperatorOps
from .ops.quant import QuantOps
from .thirdparty import third_party
from .values import Const, Lin, QConst, Raw, affine_of, canonical_index, layout_of

SUPPORTED = {
    "qonnx": "Quant, BipolarQuant, Trunc, Conv, MatMul, Gemm, BatchNormalization, Relu, LeakyRelu, Clip, MaxPool, "
             "AveragePool, GlobalAveragePool, ReduceMean (spatial axes), Add, Sub, Mul, Div, Flatten, Reshape, "
             "Transpose, Squeeze, Unsqueeze, Concat, Resize/Upsample (nearest), Identity, "
             "Softmax/ArgMax (at the output)",
    "qdq": "QuantizeLinear, DequantizeLinear, Clip, Conv, MatMul, Gemm, Relu, MaxPool, AveragePool, "
           "GlobalAveragePool, ReduceMean (spatial axes), Add, Concat, Flatten, Reshape, Transpose, Resize, "
           "Softmax/ArgMax (at the output)",
    "qop": "QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger, Cast, Mul, Add, "
           "QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, MaxPool, AveragePool, "
           "GlobalAveragePool, ReduceMean (spatial axes), Flatten, Reshape, Transpose",
}


class Lowering(LayoutOps, QuantOps, ElementwiseOps, MatrixOps, PoolOps, ConcatOps, OutputOps, QOperatorOps):
    def __init__(self, model: onnx.ModelProto, flavour: str, name: str):
        self.model = model
        self.graph = model.graph
        self.flavour = flavour
        self.mode = "f32" if flavour == "qop" else "exact"
        self.design = Design(name=name, flavour=flavour)
        self.values: dict[str, object] = {}
        self.counter = 0
        self.consumers: dict[str, list] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.trunc_version = 1
        for imp in model.opset_import:
            if imp.domain in ("qonnx.custom_op.general",) and imp.version >= 2:
                self.trunc_version = 2
        self.label = None

    # ------------------------------------------------------------------ helpers
    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def new_tensor(self, base, shape, lo, hi, *, bipolar=False, scale=None, zp=0, onnx_name=None, index=None):
        name = self.fresh(base)
        layout = layout_of(index, shape) if index is not None else {}
        return self.design.add_tensor(TensorInfo(
            name=name, shape=tuple(int(s) for s in shape), lo=int(lo), hi=int(hi), bipolar=bipolar,
            scale=None if scale is None else tuple(float(s) for s in np.atleast_1d(scale)), zero_point=int(zp),
            onnx_name=onnx_name, onnx_layout=layout))

    def t(self, name) -> TensorInfo:
        return self.design.tensors[name]

    def const(self, node, i, what="constant") -> np.ndarray:
        if i >= len(node.input) or node.input[i] == "":
            return None
        v = self.values.get(node.input[i])
        if isinstance(v, Const):
            return v.value
        if isinstance(v, QConst):
            return v.real
        raise node_error(node, f"input {i} ({node.input[i]}) must be a {what}")

    def chan_const(self, node, c: np.ndarray, lin_index: np.ndarray, channels: int) -> np.ndarray:
        """An ONNX-broadcast constant as one value per IR channel (or a scalar); error if it varies otherwise."""
        c = np.asarray(c)
        if c.size == 1:
            return c.reshape(1)
        full = np.broadcast_to(c, (1,) + lin_index.shape)[0] if c.ndim <= lin_index.ndim + 1 else None
        if full is None:
            raise node_error(node, f"constant of shape {c.shape} does not broadcast to {lin_index.shape}")
        per = np.zeros(channels, dtype=c.dtype)
        seen = np.zeros(channels, dtype=bool)
        ch = (lin_index % channels).ravel()
        fv = full.ravel()
        per[ch] = fv
        seen[ch] = True
        if not np.array_equal(per[ch], fv):
            raise node_error(node, "constant varies within a channel; only per-tensor or per-channel constants "
                                   "are supported")
        return per

    def lin_in(self, node, i=0) -> Lin:
        v = self.values.get(node.input[i])
        if isinstance(v, Lin):
            return v
        if isinstance(v, Raw):
            return self.implicit_input(node, v)
        if isinstance(v, (Const, QConst)):
            raise node_error(node, "constant activations are not supported")
        raise node_error(node, f"input '{node.input[i]}' has no value (unsupported producer)")

    def implicit_input(self, node, raw: Raw) -> Lin:
        """A float input reaching a layer without a quantiser: take it as an 8-bit image, x = p / 255."""
        if self.design.input:
            raise node_error(node, "the float input reaches a second layer without a quantiser")
        if any(not isinstance(o, Arith) for o in raw.ops):
            raise node_error(node, "non-affine float pre-processing of an unquantised input",
                             "Add an input quantiser")
        t = self.make_input_layer(node, Raw(raw.index, raw.ir_shape, []),
                                  [Arith("mul", np.float32(255)), Round("ROUND"), Clip(0, 255)], 0, 255,
                                  scale=np.float32(1 / 255), zp=0)
        self.design.notes.append("the model input has no quantiser: it is taken as an 8-bit image (uint8 codes "
                                 "p, value p/255) - feed images scaled to [0, 1] in steps of 1/255")
        lin = Lin(t.name, raw.index, [Arith("div", np.float32(255))] + list(raw.ops))
        self.values[node.input[0]] = lin
        return lin

    def exact_affine(self, node, lin: Lin):
        ch = self.t(lin.tensor).channels
        ab = affine_of(lin.ops, ch)
        if ab is None:
            raise node_error(node, "its input is not a plain quantised tensor (an activation such as Relu/Clip sits "
                                   "between the quantiser and this op)", "Add a Quant/QuantizeLinear before it")
        return ab

    # ------------------------------------------------------------------ requantisers
    def requant(self, node, lin: Lin, code_ops, code_lo, code_hi, *, bipolar=False, scale=None, zp=0,
                onnx_name=None, mode=None) -> TensorInfo:
        """Emit Requant(lin.tensor): codes = code_ops(lin.ops(x)), exact thresholds over x's reachable range."""
        # a chain holding a float-defined op (a mean) is real arithmetic in every flavour (ops/pool.py Mean)
        mode = mode or ("exact" if any(getattr(o, "float_defined", False) for o in lin.ops) else self.mode)
        src = self.t(lin.tensor)
        chain = list(lin.ops) + list(code_ops)
        C = src.channels
        # the reachable output range, from the chain at the input's extremes (the chain is monotone)
        if mode == "exact":
            ends = [int(chain_exact(chain, c, v)) for c in range(C) for v in (src.lo, src.hi)]
        else:
            from ..ir.elementwise import chain_f32
            ends = chain_f32(chain, np.array([[src.lo] * C, [src.hi] * C], dtype=np.float64)).astype(np.int64)
            ends = [int(v) for v in ends.ravel()]
        lo = max(code_lo, min(ends))
        hi = min(code_hi, max(ends))
        if hi == lo:
            hi = lo + 1 if lo < code_hi else hi
            lo = min(lo, hi - 1) if hi > code_lo else lo
        try:
            if mode == "exact":
                T, neg, B = thresholds_exact(chain, C, lo, hi, src.lo, src.hi)
            else:
                T, neg = thresholds_f32(chain, C, lo, hi, src.lo, src.hi)
                B = None
        except ValueError as e:
            raise node_error(node, str(e)) from None
        if bipolar:
            lo, hi = -1, 1
            # a bipolar code has one threshold: the count is 0 or 1, mapped to -1 / +1 by out_lo = -1, step 2
        out = self.new_tensor(onnx_name or "q", src.shape, lo, hi, bipolar=bipolar, scale=scale, zp=zp,
                              onnx_name=onnx_name, index=lin.index)
        self.design.add_layer(Requant(
            name=self.fresh("requant"), inputs=(src.name,), output=out.name, thresholds=T, negate=neg,
            out_lo=lo, out_hi=hi, boundaries=B, chain=tuple(chain), exact_f32=(mode == "f32"),
            onnx_nodes=(node.name,)))
        return out

    # ------------------------------------------------------------------ main loop
    def run(self) -> Design:
        g = self.graph
        init = {i.name for i in g.initializer}
        for i in g.initializer:
            self.values[i.name] = Const(numpy_helper.to_array(i))
        inputs = [i for i in g.input if i.name not in init]
        if len(inputs) != 1:
            raise GenError(f"the model has {len(inputs)} inputs; gen supports exactly one image input")
        self.setup_input(inputs[0])
        for node in g.node:
            self.lower_node(node)
        self.finish()
        return self.design

    def setup_input(self, vi):
        dims = vi.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(shape) == 0 or any(s is None or s <= 0 for s in shape[1:]):
            raise GenError(f"input '{vi.name}': shape {shape} needs fixed sizes (only the batch axis may be dynamic)")
        body = shape[1:]
        self.input_name = vi.name
        self.input_shape = tuple(body)
        if len(body) == 3:
            # NCHW, unless the model transposes it to NCHW first or the last axis is the small one (NHWC,
            # e.g. QKeras/TF exports)
            first = self.consumers.get(vi.name, [])
            to_nchw = any(n.op_type == "Transpose" and list(node_attrs(n).get("perm", [])) == [0, 3, 1, 2]
                          for n in first)
            nhwc = to_nchw or (body[2] <= 4 < body[0] and body[1] > 4 and not self._reaches_nchw_op(vi.name))
            if nhwc:
                ir = (body[0], body[1], body[2])
                index = np.arange(np.prod(ir)).reshape(ir)
                self.input_layout = "NHWC"
            else:
                ir = (body[1], body[2], body[0])
                index = canonical_index(ir, 3)
                self.input_layout = "NCHW"
        elif len(body) == 1:
            ir = (1, 1, body[0])
            index = np.arange(body[0])
            self.input_layout = "NC"
        elif len(body) == 2:
            ir = (1, body[0], body[1])  # treat as (H=1, W, C) rows
            index = np.arange(np.prod(body)).reshape(body)
            self.input_layout = "NWC"
        else:
            raise GenError(f"input '{vi.name}': rank {len(shape)} is not supported (use N,C,H,W or N,H,W,C)")
        self.graph_input_index = index
        self.values[vi.name] = Raw(index=index, ir_shape=ir)

    # ops that keep the input's layout (quantisers, element-wise float ops) and ops that read it as N,C,H,W
    _LAYOUT_KEEPING = {"Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear", "Clip", "Relu", "Mul", "Add",
                       "Sub", "Div", "Identity", "Cast", "BatchNormalization", "LeakyRelu"}
    _NCHW_READERS = {"Conv", "QLinearConv", "ConvInteger", "MaxPool", "AveragePool", "GlobalAveragePool",
                     "QLinearAveragePool", "QLinearGlobalAveragePool", "Resize", "Upsample"}

    def _reaches_nchw_op(self, name: str) -> bool:
        """True when the input reaches a convolution or pool with no Transpose on the way: ONNX defines those
        on N,C,H,W, so the input is N,C,H,W whatever its sizes (the small-last-axis guess is for NHWC exports
        that transpose first, or have no spatial op at all)."""
        todo, seen = [name], set()
        while todo:
            for n in self.consumers.get(todo.pop(), []):
                if n.op_type in self._NCHW_READERS:
                    return True
                if n.op_type in self._LAYOUT_KEEPING and n.name not in seen:
                    seen.add(n.name)
                    todo.extend(o for o in n.output if o)
        return False

    def make_input_layer(self, node, raw: Raw, code_ops, lo, hi, *, bipolar=False, scale=None, zp=0, onnx_name=None):
        out = self.new_tensor("input", raw.ir_shape, lo, hi, bipolar=bipolar, scale=scale, zp=zp,
                              onnx_name=onnx_name, index=raw.index)
        graph_layout = layout_of(self.graph_input_index, raw.ir_shape)
        if not graph_layout:
            raise node_error(node, "the input's layout cannot be mapped to an image stream")
        self.design.add_layer(Input(name="input", inputs=(), output=out.name, chain=tuple(raw.ops + list(code_ops)),
                                    layout=self.input_layout, graph_layout=graph_layout, onnx_nodes=(node.name,)))
        self.design.input = out.name
        self.input_index = raw.index
        return out

    def lower_node(self, node):
        op = node.op_type
        ins = [self.values.get(i) if i else None for i in node.input]
        # constant folding: any node whose inputs are all constants (shape arithmetic, weight transposes, ...)
        # (a Constant node has no inputs: torch.onnx writes opset-18 ReduceMean axes as one)
        if op not in ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear") and (
                ins or op == "Constant") and all(isinstance(v, Const) or v is None for v in ins):
            self.fold_constant(node)
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise node_error(node, f"op {op} is not supported for {self.flavour} models",
                             f"Supported: {SUPPORTED[self.flavour]}")
        try:
            handler(node)
        except (ValueError, IndexError, KeyError, TypeError, ArithmeticError) as e:
            # the door (validate.py) cannot foresee every inconsistent combination of shapes and attributes a
            # file may hold; whatever is left fails while this node is interpreted - name the node, not a line
            raise node_error(node, f"cannot lower this node ({type(e).__name__}: {e})",
                             "Check its inputs' shapes, constants and attributes") from None

    def fold_constant(self, node):
        outs = self.eval_constant(node, {i: self.values[i].value for i in node.input if i})
        for o, v in zip(node.output, outs):
            self.values[o] = Const(np.asarray(v))

    def eval_constant(self, node, feeds: dict) -> list:
        """The node's outputs on constant inputs, as onnx's reference evaluator computes them."""
        from onnx.reference import ReferenceEvaluator
        g = onnx.helper.make_graph(
            [node], "fold",
            [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(feeds[i].dtype),
                                                feeds[i].shape) for i in feeds],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
        m = onnx.helper.make_model(g, opset_imports=self.model.opset_import)
        with third_party("constant folding (onnx ReferenceEvaluator)", node):
            return ReferenceEvaluator(m).run(None, feeds)
