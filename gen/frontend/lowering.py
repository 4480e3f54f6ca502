"""Lowering: walk an ONNX graph once, giving every tensor a symbolic value, and emit the integer IR.

One pass serves all three flavours. Quantisers (QONNX Quant/BipolarQuant/Trunc, QuantizeLinear, the
requantisation inside QLinear* ops) become `Requant` layers whose thresholds come from the exact element-wise
chain (QONNX, QDQ: `mode="exact"`) or from the float32 expression onnxruntime evaluates (QOperator:
`mode="f32"`). Convolutions and matrix products become integer `Conv`/`Dense` layers; BatchNorm and scalar
float ops fold into the chains; layout ops only move the index maps.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import GenError, UnsupportedError, node_error
from ..golden import ops as gops
from ..ir.design import Design
from ..ir.elementwise import (Affine, Arith, Clip, LeakyRelu, Relu, Round, Sign, chain_direction, chain_exact,
                              frac, frac_sqrt)
from ..ir.layers import (Add, AvgPool, Concat, Conv, Dense, Input, LabelSelect, MaxPool, Requant, Upsample)
from ..ir.requant import thresholds_exact, thresholds_f32
from ..ir.tensor import TensorInfo
from .qop import QOperatorOps
from .thirdparty import third_party
from .values import Const, Lin, QConst, Raw, affine_of, canonical_index, layout_of

MAX_BITS = 8
SUPPORTED = {
    "qonnx": "Quant, BipolarQuant, Trunc, Conv, MatMul, Gemm, BatchNormalization, Relu, LeakyRelu, Clip, MaxPool, "
             "AveragePool, GlobalAveragePool, Add, Sub, Mul, Div, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, "
             "Concat, Resize/Upsample (nearest), Identity, Softmax/ArgMax (at the output)",
    "qdq": "QuantizeLinear, DequantizeLinear, Clip, Conv, MatMul, Gemm, Relu, MaxPool, AveragePool, "
           "GlobalAveragePool, Add, Concat, Flatten, Reshape, Transpose, Resize, Softmax/ArgMax (at the output)",
    "qop": "QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger, Cast, Mul, Add, "
           "QGemm, QLinearAdd, QLinearGlobalAveragePool, QLinearConcat, MaxPool, Flatten, Reshape, Transpose",
}
LAYOUT_OPS = {"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout"}


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _dec(v):
    return v.decode() if isinstance(v, bytes) else v


class Lowering(QOperatorOps):
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
        mode = mode or self.mode
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
            to_nchw = any(n.op_type == "Transpose" and list(_attrs(n).get("perm", [])) == [0, 3, 1, 2]
                          for n in first)
            nhwc = to_nchw or (body[2] <= 4 < body[0] and body[1] > 4)
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
        if op not in ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear") and ins and all(
                isinstance(v, Const) or v is None for v in ins):
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
        from onnx.reference import ReferenceEvaluator
        feeds = {i: self.values[i].value for i in node.input if i}
        g = onnx.helper.make_graph(
            [node], "fold",
            [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(feeds[i].dtype),
                                                feeds[i].shape) for i in feeds],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
        m = onnx.helper.make_model(g, opset_imports=self.model.opset_import)
        with third_party("constant folding (onnx ReferenceEvaluator)", node):
            outs = ReferenceEvaluator(m).run(None, feeds)
        for o, v in zip(node.output, outs):
            self.values[o] = Const(np.asarray(v))

    # ------------------------------------------------------------------ layout ops
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
            raise node_error(node, "layout op on an unsupported value")
        return v.index

    def op_Identity(self, node):
        self.values[node.output[0]] = self.values[node.input[0]]

    op_Dropout = op_Identity

    def op_Cast(self, node):
        to = _attrs(node)["to"]
        v = self.values.get(node.input[0])
        if isinstance(v, Lin) and to in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT32):
            self.values[node.output[0]] = v  # the chain's float32 replay casts first
            return
        raise node_error(node, f"Cast to {onnx.TensorProto.DataType.Name(to)} is not supported here")

    def op_Transpose(self, node):
        idx = self._index(node)
        perm = _attrs(node).get("perm", list(range(idx.ndim + 1))[::-1])
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
        idx = self._index(node)
        self._set_layout(node, self._reshape_to(node, idx, self.const(node, 1, "constant shape")))

    def op_Flatten(self, node):
        idx = self._index(node)
        if _attrs(node).get("axis", 1) != 1:
            raise node_error(node, "Flatten is only supported with axis=1")
        self._set_layout(node, idx.reshape(-1))

    def op_Squeeze(self, node):
        idx = self._index(node)
        axes = _attrs(node).get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.const(node, 1).tolist()
        axes = [a if a >= 0 else a + idx.ndim + 1 for a in (axes or [])]
        if 0 in axes:
            axes.remove(0)
        body = [s for i, s in enumerate(idx.shape) if not ((i + 1) in axes or (not axes and s == 1))]
        self._set_layout(node, idx.reshape(body))

    def op_Unsqueeze(self, node):
        idx = self._index(node)
        axes = _attrs(node).get("axes")
        if axes is None:
            axes = self.const(node, 1).tolist()
        shape = [None] + list(idx.shape)
        for a in sorted(a if a >= 0 else a + len(shape) + 1 for a in axes):
            if a == 0:
                raise node_error(node, "unsqueezing the batch axis is not supported")
            shape.insert(a, 1)
        self._set_layout(node, idx.reshape(shape[1:]))

    # ------------------------------------------------------------------ QONNX quantisers
    def op_Quant(self, node):
        a = _attrs(node)
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        mode = _dec(a.get("rounding_mode", "ROUND"))
        scale = self.const(node, 1, "constant scale").astype(np.float32)
        zp = self.const(node, 2, "constant zero point").astype(np.float32)
        bits = self.const(node, 3, "constant bit width")
        if np.asarray(bits).size != 1 or float(bits) != int(bits):
            raise node_error(node, "bit width must be a constant integer")
        bits = int(bits)
        bipolar = bits == 1 and signed
        v = self.values.get(node.input[0])
        if isinstance(v, Const):
            x = v.value.astype(np.float32)
            codes = self._quant_codes(x, scale, zp, bits, signed, narrow, mode)
            real = ((codes.astype(np.float32) - zp) * scale).astype(np.float32)
            self.values[node.output[0]] = QConst(codes=np.asarray(codes, dtype=np.int64),
                                                 scale=np.broadcast_to(scale, x.shape) if scale.size > 1 else scale,
                                                 zero_point=zp, real=real, bits=bits, bipolar=bipolar)
            return
        if bits > MAX_BITS:
            raise node_error(node, f"{bits}-bit activations: gen supports at most {MAX_BITS} bits",
                             "Quantise activations to 8 bits or fewer")
        if zp.size != 1 or float(zp) != round(float(zp)):
            raise node_error(node, "activation zero point must be one integer")
        izp = int(round(float(zp)))
        if bipolar:
            lo, hi = -1, 1
            code_ops = [Arith("div", scale), Arith("add", zp), Sign()]
        else:
            from qonnx.custom_op.general.intquant import max_int, min_int
            lo, hi = int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits))
            code_ops = [Arith("div", scale), Arith("add", zp), Clip(lo, hi), Round(mode)]
        self._emit_quant(node, v, code_ops, lo, hi, bipolar, scale, izp, [Arith("sub", zp), Arith("mul", scale)])

    @staticmethod
    def _quant_codes(x, scale, zp, bits, signed, narrow, mode):
        """Integer codes of a constant, computed in float32 exactly as qonnx's int_quant does."""
        from qonnx.custom_op.general.intquant import max_int, min_int
        y = (x / scale).astype(np.float32) + zp
        if bits == 1 and signed:
            return np.where(y >= 0, 1, -1).astype(np.int64)
        y = np.clip(y, min_int(signed, narrow, bits), max_int(signed, narrow, bits)).astype(np.float32)
        return np.asarray(Round(mode).f32(y), dtype=np.int64)

    def _emit_quant(self, node, v, code_ops, lo, hi, bipolar, scale, izp, deq_ops):
        out_name = node.output[0]
        if isinstance(v, Raw):
            sc = self.chan_const(node, scale, v.index, v.ir_shape[2])
            code_ops = [self._chan_op(node, op, v.index, v.ir_shape[2]) for op in code_ops]
            t = self.make_input_layer(node, v, code_ops, lo, hi, bipolar=bipolar, scale=sc, zp=izp, onnx_name=out_name)
            idx = v.index
        else:
            lin = self.lin_in(node)
            C = self.t(lin.tensor).channels
            sc = self.chan_const(node, scale, lin.index, C)
            code_ops = [self._chan_op(node, op, lin.index, C) for op in code_ops]
            t = self.requant(node, lin, code_ops, lo, hi, bipolar=bipolar, scale=sc, zp=izp, onnx_name=out_name)
            idx = lin.index
        deq = [self._chan_op(node, op, idx, t.channels) for op in deq_ops]
        self.values[out_name] = Lin(t.name, idx, deq)

    def _chan_op(self, node, op, index, channels):
        if isinstance(op, Arith) and op.c.size > 1:
            return Arith(op.kind, self.chan_const(node, op.c, index, channels))
        return op

    def op_BipolarQuant(self, node):
        scale = self.const(node, 1, "constant scale").astype(np.float32)
        v = self.values.get(node.input[0])
        if isinstance(v, Const):
            x = v.value.astype(np.float32)
            codes = np.where(x >= 0, 1, -1).astype(np.int64)
            self.values[node.output[0]] = QConst(codes=codes, scale=scale, zero_point=np.zeros(1, np.float32),
                                                 real=(codes * scale).astype(np.float32), bits=1, bipolar=True)
            return
        self._emit_quant(node, v, [Sign()], -1, 1, True, scale, 0, [Arith("mul", scale)])

    def op_Trunc(self, node):
        a = _attrs(node)
        mode = _dec(a.get("rounding_mode", "FLOOR"))
        scale = self.const(node, 1).astype(np.float32)
        zp = self.const(node, 2).astype(np.float32)
        in_bits = int(self.const(node, 3))
        if self.trunc_version == 2:
            out_scale = self.const(node, 4).astype(np.float32)
            out_bits = int(self.const(node, 5))
            trunc = float(2 ** np.round(np.log2(out_scale / scale)).item())
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            from qonnx.custom_op.general.intquant import max_int, min_int
            lo, hi = int(min_int(signed, narrow, out_bits)), int(max_int(signed, narrow, out_bits))
            code_ops = [Arith("div", scale), Arith("add", zp), Round("ROUND"), Arith("div", np.float32(trunc)),
                        Clip(lo, hi), Round(mode)]
            out_zp = zp / np.float32(trunc)
            deq = [Arith("sub", out_zp), Arith("mul", out_scale)]
            deq_scale = out_scale
        else:
            out_bits = int(self.const(node, 4))
            trunc = float(2.0 ** (in_bits - out_bits))
            code_ops = [Arith("div", scale), Arith("add", zp), Round("ROUND"), Arith("div", np.float32(trunc)),
                        Round(mode)]
            lo, hi = -(1 << 40), 1 << 40  # no clip in Trunc v1: the reachable range decides
            deq = [Arith("sub", zp), Arith("mul", scale)]
            deq_scale = scale
        if out_bits > MAX_BITS:
            raise node_error(node, f"{out_bits}-bit output: gen supports at most {MAX_BITS} bits")
        v = self.lin_in(node)
        C = self.t(v.tensor).channels
        t = self.requant(node, v, [self._chan_op(node, o, v.index, C) for o in code_ops], lo, hi,
                         scale=self.chan_const(node, deq_scale, v.index, C),
                         zp=int(round(float(np.asarray(deq[0].c).ravel()[0]))), onnx_name=node.output[0])
        if t.hi - t.lo >= (1 << MAX_BITS):
            raise node_error(node, f"Trunc output spans {t.hi - t.lo + 1} codes (more than {MAX_BITS} bits)")
        self.values[node.output[0]] = Lin(t.name, v.index, [self._chan_op(node, o, v.index, C) for o in deq])

    # ------------------------------------------------------------------ ONNX QDQ quantisers
    def _qparams(self, node, x_rank_index=None):
        scale = self.const(node, 1, "constant scale").astype(np.float32)
        zpv = self.const(node, 2) if len(node.input) > 2 and node.input[2] else None
        if zpv is None:
            zdtype = np.uint8
            zp = np.zeros_like(scale, dtype=np.int64)
        else:
            zdtype = zpv.dtype
            zp = zpv.astype(np.int64)
        a = _attrs(node)
        out_dtype = a.get("output_dtype", 0)
        dt = {np.dtype(np.uint8): (0, 255, 8), np.dtype(np.int8): (-128, 127, 8),
              np.dtype(np.uint16): (0, 65535, 16), np.dtype(np.int16): (-32768, 32767, 16),
              np.dtype(np.int32): (-(1 << 31), (1 << 31) - 1, 32)}
        name = str(zdtype)
        if name in ("int4", "uint4") or "int4" in name:
            lo, hi, bits = ((-8, 7, 4) if name == "int4" else (0, 15, 4))
        elif out_dtype:
            lo, hi, bits = {onnx.TensorProto.UINT8: (0, 255, 8), onnx.TensorProto.INT8: (-128, 127, 8),
                            onnx.TensorProto.INT4: (-8, 7, 4), onnx.TensorProto.UINT4: (0, 15, 4)}[out_dtype]
        else:
            lo, hi, bits = dt[np.dtype(zdtype)]
        return scale, zp, lo, hi, bits, a.get("axis", 1)

    def _axis_shape(self, arr, axis, ndim):
        arr = np.asarray(arr)
        if arr.size == 1 or ndim == 0:
            return arr.reshape(())
        shape = [1] * ndim
        shape[axis] = arr.size
        return arr.reshape(shape)

    def op_QuantizeLinear(self, node):
        scale, zp, lo, hi, bits, axis = self._qparams(node)
        v = self.values.get(node.input[0])
        if isinstance(v, Const):
            x = v.value.astype(np.float32)
            s = self._axis_shape(scale, axis, x.ndim)
            z = self._axis_shape(zp, axis, x.ndim)
            codes = np.clip(np.round(x / s) + z, lo, hi).astype(np.int64)
            self.values[node.output[0]] = QConst(codes=codes, scale=s, zero_point=z,
                                                 real=((codes - z) * s).astype(np.float32), bits=bits)
            return
        if bits > MAX_BITS:
            raise node_error(node, f"{bits}-bit activations: gen supports at most {MAX_BITS} bits")
        if zp.size != 1:
            raise node_error(node, "per-channel zero points on activations are not supported")
        izp = int(zp.ravel()[0])
        code_ops = [Arith("div", scale), Round("ROUND"), Arith("add", np.float32(izp)), Clip(lo, hi)]
        if isinstance(v, Raw):
            sc = self.chan_const(node, scale, v.index, v.ir_shape[2])
            t = self.make_input_layer(node, v, [self._chan_op(node, o, v.index, v.ir_shape[2]) for o in code_ops],
                                      lo, hi, scale=sc, zp=izp, onnx_name=node.output[0])
            self.values[node.output[0]] = Lin(t.name, v.index, [])
            return
        lin = self.lin_in(node)
        C = self.t(lin.tensor).channels
        sc = self.chan_const(node, scale, lin.index, C)
        t = self.requant(node, lin, [self._chan_op(node, o, lin.index, C) for o in code_ops], lo, hi, scale=sc,
                         zp=izp, onnx_name=node.output[0])
        self.values[node.output[0]] = Lin(t.name, lin.index, [])  # an integer ONNX tensor: its value is the code

    def op_DequantizeLinear(self, node):
        scale, zp, lo, hi, bits, axis = self._qparams(node)
        v = self.values.get(node.input[0])
        if isinstance(v, Const):
            x = v.value.astype(np.int64)
            s = self._axis_shape(scale, axis, x.ndim)
            z = self._axis_shape(zp, axis, x.ndim)
            real = ((x - z).astype(np.float32) * s).astype(np.float32)
            self.values[node.output[0]] = QConst(codes=x, scale=s, zero_point=z, real=real, bits=bits)
            return
        if isinstance(v, QConst):  # Q -> DQ on a float constant (weights quantised in the graph)
            self.values[node.output[0]] = v
            return
        lin = self.lin_in(node)
        if lin.ops:
            raise node_error(node, "DequantizeLinear of a value that is not an integer tensor")
        C = self.t(lin.tensor).channels
        self.values[node.output[0]] = Lin(lin.tensor, lin.index,
                                          [Arith("sub", self.chan_const(node, zp.astype(np.float32), lin.index, C)),
                                           Arith("mul", self.chan_const(node, scale, lin.index, C))])

    def op_Clip(self, node):
        v = self.values.get(node.input[0])
        a = _attrs(node)
        lo = a.get("min")
        hi = a.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self.const(node, 1).item()
        if len(node.input) > 2 and node.input[2]:
            hi = self.const(node, 2).item()
        if isinstance(v, Raw):
            self.values[node.output[0]] = Raw(v.index, v.ir_shape, v.ops + [Clip(lo, hi)])
            return
        if isinstance(v, QConst):
            codes = np.clip(v.codes, lo, hi)
            self.values[node.output[0]] = QConst(codes, v.scale, v.zero_point, v.real, v.bits)
            return
        lin = self.lin_in(node)
        if not lin.ops:
            # clip of an integer (code) tensor, as Brevitas QCDQ narrows 8-bit codes to 2/4 bits
            self.values[node.output[0]] = self._narrow(node, lin, int(lo), int(hi))
            return
        self.values[node.output[0]] = lin.with_ops([Clip(lo, hi)])

    def _narrow(self, node, lin, lo, hi):
        t = self.t(lin.tensor)
        prod = self.design.producer(lin.tensor)
        nlo, nhi = max(lo, t.lo), min(hi, t.hi)
        if isinstance(prod, Requant) and len(self.consumers.get(node.input[0], [])) == 1:
            k0, k1 = nlo - prod.out_lo, nhi - prod.out_lo
            new_t = TensorInfo(**{**t.__dict__, "lo": nlo, "hi": nhi, "onnx_name": node.output[0]})
            self.design.tensors[t.name] = new_t
            i = self.design.layers.index(prod)
            chain = tuple(prod.chain) + (Clip(nlo, nhi),)
            self.design.layers[i] = Requant(
                name=prod.name, inputs=prod.inputs, output=prod.output, thresholds=prod.thresholds[:, k0:k1],
                negate=prod.negate, out_lo=nlo, out_hi=nhi,
                boundaries=None if prod.boundaries is None else prod.boundaries[:, k0:k1], chain=chain,
                exact_f32=prod.exact_f32, onnx_nodes=prod.onnx_nodes + (node.name,))
            return Lin(t.name, lin.index, [])
        out = self.requant(node, lin, [Clip(lo, hi)], nlo, nhi, scale=t.scale, zp=t.zero_point,
                           onnx_name=node.output[0])
        return Lin(out.name, lin.index, [])

    # ------------------------------------------------------------------ float element-wise ops
    def op_Relu(self, node):
        v = self.values.get(node.input[0])
        if isinstance(v, Raw):
            self.values[node.output[0]] = Raw(v.index, v.ir_shape, v.ops + [Relu()])
            return
        self.values[node.output[0]] = self.lin_in(node).with_ops([Relu()])

    def op_LeakyRelu(self, node):
        alpha = _attrs(node).get("alpha", 0.01)
        if alpha <= 0:
            raise node_error(node, "LeakyRelu with alpha <= 0 is not monotonic")
        self.values[node.output[0]] = self.lin_in(node).with_ops([LeakyRelu(alpha)])

    def op_BatchNormalization(self, node):
        lin = self.lin_in(node)
        C = self.t(lin.tensor).channels
        eps = frac(np.float32(_attrs(node).get("epsilon", 1e-5)))
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

    # ------------------------------------------------------------------ matrix ops
    def _weights(self, node, i, what="weights") -> QConst:
        v = self.values.get(node.input[i])
        if isinstance(v, QConst):
            return v
        if isinstance(v, Const):
            if np.issubdtype(v.value.dtype, np.integer):
                return QConst(v.value.astype(np.int64), np.float32(1), np.int64(0),
                              v.value.astype(np.float32), 32)
            raise node_error(node, f"float (unquantised) {what}", "Quantise the weights (Quant or "
                             "QuantizeLinear/DequantizeLinear) - gen only builds integer hardware")
        raise node_error(node, f"{what} must be constant")

    def _per_oc(self, node, arr, oc_axis, shape):
        arr = np.broadcast_to(np.asarray(arr), shape)
        moved = np.moveaxis(arr, oc_axis, 0).reshape(shape[oc_axis], -1)
        if not (moved == moved[:, :1]).all():
            raise node_error(node, "weight scale/zero point must be per-tensor or per-output-channel")
        return moved[:, 0]

    def _bias_exact(self, node, i, oc) -> list[Fraction]:
        if len(node.input) <= i or not node.input[i]:
            return [Fraction(0)] * oc
        v = self.values.get(node.input[i])
        b = v.real if isinstance(v, QConst) else v.value if isinstance(v, Const) else None
        if b is None:
            raise node_error(node, "bias must be constant")
        b = np.broadcast_to(np.asarray(b, dtype=np.float32).reshape(-1), (oc,))
        return [frac(x) for x in b]

    def _emit_matrix(self, node, lin, w_ir, w_scale, bias_real, conv_kw=None, ifm_index_map=None):
        """Shared by Conv and Dense: integer layer + the exact affine of its accumulator."""
        t = self.t(lin.tensor)
        C = t.channels
        (a_in, b_in) = self.exact_affine(node, lin)
        if len(set(a_in)) != 1:
            raise node_error(node, "input has per-channel scales; gen needs one scale per activation tensor")
        a = a_in[0]
        if a == 0:
            raise node_error(node, "input scale is zero")
        zp = [-b / a for b in b_in]
        oc = w_ir.shape[0]
        if conv_kw is not None:
            pads = conv_kw["pads"]
            if any(pads) and any(z.denominator != 1 for z in zp):
                raise node_error(node, "padding needs an integer zero point on its input")
            pad_value = [int(z) if z.denominator == 1 else 0 for z in zp]
            pad_value = pad_value[0] if len(set(pad_value)) == 1 else np.array(pad_value)
            groups = conv_kw["groups"]
            icg = w_ir.shape[3]
            # b contribution: sum over taps and input channels of w * b_ic (zero where b_ic = 0)
            bsum = []
            for o in range(oc):
                g = o // (oc // groups)
                chans = range(g * icg, (g + 1) * icg)
                bsum.append(sum((b_in[c] * int(w_ir[o, :, :, j].sum()) for j, c in enumerate(chans)
                                 if b_in[c] != 0), Fraction(0)))
        else:
            bflat = [b_in[i % C] for i in range(t.elements)]
            bsum = []
            for o in range(oc):
                bsum.append(sum((bflat[i] * int(w_ir[o, i]) for i in np.nonzero(w_ir[o])[0] if bflat[i] != 0),
                                Fraction(0)))
        ws = [frac(s) for s in np.broadcast_to(np.asarray(w_scale, dtype=np.float32).reshape(-1), (oc,))]
        alpha = [a * ws[o] for o in range(oc)]
        beta = [ws[o] * bsum[o] + bias_real[o] for o in range(oc)]
        # accumulator range
        wmax = np.maximum(w_ir * t.lo, w_ir * t.hi).reshape(oc, -1).sum(1)
        wmin = np.minimum(w_ir * t.lo, w_ir * t.hi).reshape(oc, -1).sum(1)
        if conv_kw is not None:
            kh, kw = conv_kw["kernel"]
            oh = gops.out_size(t.shape[0], kh, conv_kw["stride"][0], pads[0], pads[2], conv_kw["dilation"][0])
            ow = gops.out_size(t.shape[1], kw, conv_kw["stride"][1], pads[1], pads[3], conv_kw["dilation"][1])
            if oh <= 0 or ow <= 0:
                raise node_error(node, "kernel larger than the padded input")
            shape = (oh, ow, oc)
        else:
            shape = (1, 1, oc)
        out = self.new_tensor("acc", shape, int(wmin.min()), int(wmax.max()))
        if conv_kw is not None:
            layer = Conv(name=self.fresh("conv"), inputs=(t.name,), output=out.name, weight=w_ir,
                         kernel=conv_kw["kernel"], stride=conv_kw["stride"], pads=pads,
                         dilation=conv_kw["dilation"], groups=conv_kw["groups"], pad_value=pad_value,
                         onnx_nodes=(node.name,))
            index = canonical_index(shape, 3)
        else:
            layer = Dense(name=self.fresh("dense"), inputs=(t.name,), output=out.name, weight=w_ir,
                          onnx_nodes=(node.name,))
            index = canonical_index(shape, 1)
        self.design.add_layer(layer)
        return out, index, alpha, beta

    def _conv_attrs(self, node, w_shape, in_hw):
        at = _attrs(node)
        k = tuple(at.get("kernel_shape", w_shape[2:]))
        if len(k) != 2:
            raise node_error(node, "only 2-D convolutions are supported")
        stride = tuple(at.get("strides", (1, 1)))
        dil = tuple(at.get("dilations", (1, 1)))
        groups = at.get("group", 1)
        pads = at.get("pads", (0, 0, 0, 0))
        ap = _dec(at.get("auto_pad", "NOTSET"))
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for i in range(2):
                o = -(-in_hw[i] // stride[i])
                total = max(0, (o - 1) * stride[i] + dil[i] * (k[i] - 1) + 1 - in_hw[i])
                lo = total // 2 if ap == "SAME_UPPER" else total - total // 2
                pads.append((lo, total - lo))
            pads = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
        pads = (pads[0], pads[1], pads[2], pads[3])  # ONNX: (top, left, bottom, right)
        return {"kernel": k, "stride": stride, "dilation": dil, "groups": groups, "pads": pads}

    def _conv_input(self, node, lin):
        """Reinterpret the input as an NCHW view of an IR tensor (raise if the layout does not allow it)."""
        t = self.t(lin.tensor)
        if lin.index.ndim != 3:
            raise node_error(node, f"Conv input has rank {lin.index.ndim + 1}; expected N,C,H,W")
        c, h, w = lin.index.shape
        if not np.array_equal(lin.index, canonical_index((h, w, c), 3)):
            raise node_error(node, "Conv input layout is not a plain NCHW view of the stream",
                             "Remove the Transpose/Reshape in front of this Conv")
        if t.shape != (h, w, c):
            t2 = TensorInfo(**{**t.__dict__, "shape": (h, w, c)})
            self.design.tensors[t.name] = t2
        return lin

    def op_Conv(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        wq = self._weights(node, 1)
        self._check_weight_bits(node, wq)
        w = wq.codes - np.broadcast_to(wq.zero_point, wq.codes.shape).astype(np.int64)
        w_ir = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).astype(np.int64)
        t = self.t(lin.tensor)
        kw = self._conv_attrs(node, w.shape, t.shape[:2])
        if w.shape[1] * kw["groups"] != t.channels:
            raise node_error(node, f"weights expect {w.shape[1] * kw['groups']} input channels, input has {t.channels}")
        scale = self._per_oc(node, wq.scale, 0, w.shape)
        out, index, alpha, beta = self._emit_matrix(node, lin, w_ir, scale, self._bias_exact(node, 2, w.shape[0]), kw)
        self.values[node.output[0]] = Lin(out.name, index, [Affine(alpha, beta)])

    def _check_weight_bits(self, node, wq: QConst):
        if wq.bits > MAX_BITS:
            raise node_error(node, f"{wq.bits}-bit weights: gen supports at most {MAX_BITS} bits",
                             "Quantise weights to 8 bits or fewer")

    def _dense_weights(self, node, lin, w_onnx: np.ndarray) -> np.ndarray:
        """Reorder (K, OC) ONNX weights to (OC, H*W*C) in the IR stream's HWC order."""
        t = self.t(lin.tensor)
        idx = lin.index.reshape(-1)
        if idx.size != w_onnx.shape[0]:
            raise node_error(node, f"MatMul inner size {w_onnx.shape[0]} != input size {idx.size}")
        w_ir = np.zeros((w_onnx.shape[1], t.elements), dtype=np.int64)
        w_ir[:, idx] = w_onnx.T
        return w_ir

    def op_MatMul(self, node):
        lin = self.lin_in(node)
        wq = self._weights(node, 1)
        self._check_weight_bits(node, wq)
        if wq.codes.ndim != 2:
            raise node_error(node, "MatMul weights must be 2-D")
        w = wq.codes - np.broadcast_to(wq.zero_point, wq.codes.shape).astype(np.int64)
        scale = self._per_oc(node, wq.scale, 1, w.shape)
        w_ir = self._dense_weights(node, lin, w)
        out, index, alpha, beta = self._emit_matrix(node, lin, w_ir, scale, [Fraction(0)] * w.shape[1])
        self.values[node.output[0]] = Lin(out.name, index, [Affine(alpha, beta)])

    def op_Gemm(self, node):
        at = _attrs(node)
        if at.get("transA", 0) or at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
            raise node_error(node, "Gemm with transA, alpha or beta != 1 is not supported")
        lin = self.lin_in(node)
        wq = self._weights(node, 1)
        self._check_weight_bits(node, wq)
        w = wq.codes - np.broadcast_to(wq.zero_point, wq.codes.shape).astype(np.int64)
        oc_axis = 0 if at.get("transB", 0) else 1
        scale = self._per_oc(node, wq.scale, oc_axis, w.shape)
        if oc_axis == 0:
            w = w.T
        w_ir = self._dense_weights(node, lin, w)
        out, index, alpha, beta = self._emit_matrix(node, lin, w_ir, scale, self._bias_exact(node, 2, w.shape[1]))
        self.values[node.output[0]] = Lin(out.name, index, [Affine(alpha, beta)])

    # ------------------------------------------------------------------ pooling and friends
    def _pool_attrs(self, node, t):
        at = _attrs(node)
        if at.get("ceil_mode", 0):
            raise node_error(node, "ceil_mode=1 is not supported")
        if any(d != 1 for d in at.get("dilations", (1, 1))):
            raise node_error(node, "dilated pooling is not supported")
        k = tuple(at["kernel_shape"])
        stride = tuple(at.get("strides", (1, 1)))
        pads = tuple(at.get("pads", (0, 0, 0, 0)))
        if _dec(at.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise node_error(node, "auto_pad SAME is not supported for pooling")
        return k, stride, pads

    def op_MaxPool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        if any(chain_direction(lin.ops, c) < 0 for c in range(t.channels)):
            raise node_error(node, "MaxPool of a decreasing function of the stream is not supported")
        if len(node.output) > 1 and node.output[1]:
            raise node_error(node, "MaxPool indices output is not supported")
        k, s, p = self._pool_attrs(node, t)
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3])
        out = self.new_tensor("maxpool", (oh, ow, t.channels), t.lo, t.hi, bipolar=t.bipolar, scale=t.scale,
                              zp=t.zero_point)
        self.design.add_layer(MaxPool(name=self.fresh("maxpool"), inputs=(t.name,), output=out.name, kernel=k,
                                      stride=s, pads=p, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(out.shape, 3), list(lin.ops))

    def _avg(self, node, lin, k, s, p, count_include_pad):
        t = self.t(lin.tensor)
        a, b = self.exact_affine(node, lin)
        zp = [-bb / aa for aa, bb in zip(a, b)]
        if any(p):
            if not count_include_pad:
                raise node_error(node, "AveragePool with padding and count_include_pad=0 is not supported")
            if any(z.denominator != 1 for z in zp):
                raise node_error(node, "padding needs an integer zero point on its input")
        pad_value = int(zp[0]) if zp[0].denominator == 1 else 0
        if len(set(zp)) > 1 and any(p):
            raise node_error(node, "padding needs one zero point for all channels")
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3])
        n = k[0] * k[1]
        out = self.new_tensor("poolsum", (oh, ow, t.channels), t.lo * n, t.hi * n)
        self.design.add_layer(AvgPool(name=self.fresh("avgpool"), inputs=(t.name,), output=out.name, kernel=k,
                                      stride=s, pads=p, pad_value=pad_value, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(out.shape, 3),
                                          [Affine([x / n for x in a], b)])

    def op_AveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        k, s, p = self._pool_attrs(node, self.t(lin.tensor))
        self._avg(node, lin, k, s, p, _attrs(node).get("count_include_pad", 0))

    def op_GlobalAveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        h, w, _ = self.t(lin.tensor).shape
        self._avg(node, lin, (h, w), (1, 1), (0, 0, 0, 0), 0)

    def op_Concat(self, node):
        axis = _attrs(node).get("axis", 1)
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

    def op_Resize(self, node):
        at = _attrs(node)
        if _dec(at.get("mode", "nearest")) != "nearest":
            raise node_error(node, "only nearest-neighbour Resize is supported")
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        scales = self.const(node, 2) if len(node.input) > 2 and node.input[2] else None
        sizes = self.const(node, 3) if len(node.input) > 3 and node.input[3] else None
        if scales is not None and np.asarray(scales).size == 4:
            f = (float(scales[2]), float(scales[3]))
        elif sizes is not None and np.asarray(sizes).size == 4:
            f = (sizes[2] / t.shape[0], sizes[3] / t.shape[1])
        else:
            raise node_error(node, "Resize needs constant scales or sizes")
        if any(x != int(x) or x < 1 for x in f):
            raise node_error(node, f"Resize by {f}: only integer upsampling factors are supported")
        f = (int(f[0]), int(f[1]))
        self._upsample(node, lin, t, f)

    def op_Upsample(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        sc = self.const(node, 1)
        self._upsample(node, lin, t, (int(sc[2]), int(sc[3])))

    def _upsample(self, node, lin, t, f):
        shape = (t.shape[0] * f[0], t.shape[1] * f[1], t.channels)
        out = self.new_tensor("upsample", shape, t.lo, t.hi, bipolar=t.bipolar, scale=t.scale, zp=t.zero_point)
        self.design.add_layer(Upsample(name=self.fresh("upsample"), inputs=(t.name,), output=out.name, factor=f,
                                       onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(shape, 3), list(lin.ops))

    # ------------------------------------------------------------------ output
    def op_Softmax(self, node):
        self._label(node, k=1)

    def op_ArgMax(self, node):
        at = _attrs(node)
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
                                 f"'label_scale', up to {max(hi, -lo).bit_length() + 1} bits) after '{lin.tensor}'{note}")

    @staticmethod
    def _label_range(M, B, t) -> int:
        return max(abs(m) * max(abs(t.lo), abs(t.hi)) + abs(bb) for m, bb in zip(M, B))
