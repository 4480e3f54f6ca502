"""Matrix ops (Conv, MatMul, Gemm): integer `Conv` / `Dense` layers on the codes plus the exact affine map of
the accumulator (input zero point and bias folded in as rationals).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ...errors import node_error
from ...golden import ops as gops
from ...ir.elementwise import Affine, frac
from ...ir.layers import Conv, Dense
from ...ir.tensor import TensorInfo
from ..common import MAX_BITS, attr_str, node_attrs
from ..values import Const, Lin, QConst, canonical_index


class MatrixOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

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
        if any(x == 0 for x in a_in):
            raise node_error(node, "input scale is zero")
        zp = [-b / a for a, b in zip(a_in, b_in)]
        oc = w_ir.shape[0]
        a, w_acc = self._fold_input_scales(node, lin, a_in, w_ir, conv_kw)
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
        wmax = np.maximum(w_acc * t.lo, w_acc * t.hi).reshape(oc, -1).sum(1)
        wmin = np.minimum(w_acc * t.lo, w_acc * t.hi).reshape(oc, -1).sum(1)
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
            layer = Conv(name=self.fresh("conv"), inputs=(t.name,), output=out.name, weight=w_acc,
                         kernel=conv_kw["kernel"], stride=conv_kw["stride"], pads=pads,
                         dilation=conv_kw["dilation"], groups=conv_kw["groups"], pad_value=pad_value,
                         onnx_nodes=(node.name,))
            index = canonical_index(shape, 3)
        else:
            layer = Dense(name=self.fresh("dense"), inputs=(t.name,), output=out.name, weight=w_acc,
                          onnx_nodes=(node.name,))
            index = canonical_index(shape, 1)
        self.design.add_layer(layer)
        return out, index, alpha, beta

    def _fold_input_scales(self, node, lin, a_in, w_ir, conv_kw):
        """One unit u for the accumulator when the input channels have different scales a_c (a Concat of
        differently quantised tensors feeding this layer directly): a_c = k_c * u with integer k_c, and k_c
        multiplies the weights of channel c, so acc * u is the exact real sum.

        Why here and not a Requant per Concat input: with no quantiser after the concat there is no common grid
        that holds every input exactly, short of widening the concatenated codes by the same k_c - which costs
        the concat, the sliding-window buffer and every multiplier input the bits that here only the weights
        (stored once, read per MAC) pay. Returns (u, weights)."""
        if len(set(a_in)) == 1:
            return a_in[0], w_ir
        den = math.lcm(*(x.denominator for x in a_in))
        u = Fraction(math.gcd(*(x.numerator * (den // x.denominator) for x in a_in)), den)
        k = np.array([int(x / u) for x in a_in], dtype=object)
        t = self.t(lin.tensor)
        if conv_kw is not None:
            oc, icg = w_ir.shape[0], w_ir.shape[3]
            groups = conv_kw["groups"]
            kk = np.stack([k[(o // (oc // groups)) * icg:(o // (oc // groups) + 1) * icg] for o in range(oc)])
            w = w_ir.astype(object) * kk[:, None, None, :]
        else:
            w = w_ir.astype(object) * np.array([k[i % t.channels] for i in range(t.elements)], dtype=object)[None]
        xm = max(abs(t.lo), abs(t.hi))
        if int(np.abs(w).reshape(w.shape[0], -1).sum(1).max()) * xm >= (1 << 62):
            raise node_error(node, "its input channels' scales (a Concat of differently quantised tensors) have "
                                   "no exact integer ratio that keeps the accumulator within 62 bits",
                             "Quantise the Concat output (a Quant/QuantizeLinear after it), or use scales with "
                             "simpler ratios (e.g. powers of two)")
        w = w.astype(np.int64)
        wb = max(int(np.abs(w).max()).bit_length() + 1, 2)
        self.design.notes.append(f"{node.name}: input channels with {len(set(a_in))} different scales - the exact "
                                 f"scale ratios (up to {max(k)}) are folded into its integer weights "
                                 f"({wb}-bit weights)")
        return u, w

    def _conv_attrs(self, node, w_shape, in_hw):
        at = node_attrs(node)
        k = tuple(at.get("kernel_shape", w_shape[2:]))
        if len(k) != 2:
            raise node_error(node, "only 2-D convolutions are supported")
        stride = tuple(at.get("strides", (1, 1)))
        dil = tuple(at.get("dilations", (1, 1)))
        groups = at.get("group", 1)
        pads = at.get("pads", (0, 0, 0, 0))
        ap = attr_str(at.get("auto_pad", "NOTSET"))
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
        at = node_attrs(node)
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
