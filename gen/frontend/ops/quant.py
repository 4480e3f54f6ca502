"""Quantisers: QONNX Quant / BipolarQuant / Trunc, QDQ QuantizeLinear / DequantizeLinear, and Clip (which
narrows integer codes, as Brevitas QCDQ writes 2- and 4-bit tensors). Each becomes the input layer or a
`Requant` with exact thresholds; constants are quantised here exactly as the reference does.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...errors import node_error
from ...ir.elementwise import Arith, Clip, Round, Sign
from ...ir.layers import Requant
from ...ir.tensor import TensorInfo
from ..common import MAX_BITS, attr_str, node_attrs
from ..values import Const, Lin, QConst, Raw


class OnnxArith(Arith):
    """An Arith whose constant still has its ONNX shape (Arith keeps a flat vector): `_chan_op` maps it to one
    value per IR channel through the tensor's index map, and only plain Arith ops reach the IR."""

    def __init__(self, kind: str, c):
        super().__init__(kind, c)
        self.onnx_c = np.asarray(c, dtype=np.float32)


class QuantOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def op_Quant(self, node):
        a = node_attrs(node)
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        mode = attr_str(a.get("rounding_mode", "ROUND"))
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
            code_ops = [OnnxArith("div", scale), OnnxArith("add", zp), Sign()]
        else:
            from qonnx.custom_op.general.intquant import max_int, min_int
            lo, hi = int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits))
            code_ops = [OnnxArith("div", scale), OnnxArith("add", zp), Clip(lo, hi), Round(mode)]
        self._emit_quant(node, v, code_ops, lo, hi, bipolar, scale, izp,
                         [OnnxArith("sub", zp), OnnxArith("mul", scale)])

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
        """An op of the ONNX graph as an IR op: an ONNX-broadcast constant becomes one value per IR channel."""
        if isinstance(op, OnnxArith):
            c = op.onnx_c if op.onnx_c.size > 1 else op.c
            return Arith(op.kind, self.chan_const(node, c, index, channels) if c.size > 1 else c)
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
        self._emit_quant(node, v, [Sign()], -1, 1, True, scale, 0, [OnnxArith("mul", scale)])

    def op_Trunc(self, node):
        a = node_attrs(node)
        mode = attr_str(a.get("rounding_mode", "FLOOR"))
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
            code_ops = [OnnxArith("div", scale), OnnxArith("add", zp), Round("ROUND"),
                        OnnxArith("div", np.float32(trunc)), Clip(lo, hi), Round(mode)]
            out_zp = zp / np.float32(trunc)
            deq = [OnnxArith("sub", out_zp), OnnxArith("mul", out_scale)]
            deq_scale = out_scale
        else:
            out_bits = int(self.const(node, 4))
            trunc = float(2.0 ** (in_bits - out_bits))
            code_ops = [OnnxArith("div", scale), OnnxArith("add", zp), Round("ROUND"),
                        OnnxArith("div", np.float32(trunc)), Round(mode)]
            lo, hi = -(1 << 40), 1 << 40  # no clip in Trunc v1: the reachable range decides
            deq = [OnnxArith("sub", zp), OnnxArith("mul", scale)]
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
        a = node_attrs(node)
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
        if np.unique(zp).size != 1:   # a per-axis zero point vector of one value is one zero point
            raise node_error(node, "per-channel zero points on activations are not supported")
        izp = int(zp.ravel()[0])
        if scale.size > 1 and isinstance(v, (Raw, Lin)):   # a 1-D per-axis scale: give it the tensor's rank
            scale = self._axis_shape(scale, axis, v.index.ndim + 1)
        code_ops = [OnnxArith("div", scale), Round("ROUND"), OnnxArith("add", np.float32(izp)), Clip(lo, hi)]
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
        rank = lin.index.ndim + 1   # a 1-D per-axis scale / zero point: give it the tensor's rank first
        zp, scale = (self._axis_shape(a, axis, rank) if a.size > 1 else a for a in (zp.astype(np.float32), scale))
        self.values[node.output[0]] = Lin(lin.tensor, lin.index,
                                          [Arith("sub", self.chan_const(node, zp, lin.index, C)),
                                           Arith("mul", self.chan_const(node, scale, lin.index, C))])

    def op_Clip(self, node):
        v = self.values.get(node.input[0])
        a = node_attrs(node)
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

    def _sole_use(self, node, tensor: str) -> bool:
        """True when `node` is the only use of the IR tensor: every ONNX consumer of a value that maps to it is
        `node` or a layout op already lowered onto the same tensor, and no layer reads it yet. Only then may a
        narrowing Clip be fused into the tensor's own requantiser (another use must keep the wide codes)."""
        if any(tensor in la.inputs for la in self.design.layers):
            return False
        for name, v in list(self.values.items()):
            if not (isinstance(v, Lin) and v.tensor == tensor):
                continue
            for n in self.consumers.get(name, []):
                if n is node:
                    continue
                outs = [self.values.get(o) for o in n.output if o]
                if not outs or not all(isinstance(o, Lin) and o.tensor == tensor and not o.ops for o in outs):
                    return False
        return True

    def _narrow(self, node, lin, lo, hi):
        t = self.t(lin.tensor)
        prod = self.design.producer(lin.tensor)
        nlo, nhi = max(lo, t.lo), min(hi, t.hi)
        if isinstance(prod, Requant) and self._sole_use(node, t.name):
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
