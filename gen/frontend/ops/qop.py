"""ONNX QOperator ops (QLinearConv, QLinearMatMul, QGemm, MatMulInteger/ConvInteger, QLinearAdd, pools, ...).

These graphs are integer programs with float32 requantisation, so the IR reproduces onnxruntime bit for bit
(DESIGN.md "What exact means"): accumulators are exact integers (zero points folded into an integer bias),
and every requantiser is the float32 expression onnxruntime's MLAS kernels evaluate, turned into thresholds
by bisection (gen/ir/requant.py thresholds_f32):
  MlasRequantizeOutput: code = clamp(round_half_even(float(acc) * scale) + zp), scale = (sx * sw) / sy in f32.
Ops whose float32 arithmetic is not a function of one integer per element (QLinearAdd's two operands) are
tabulated by running the node itself in onnxruntime over every input pair, then verified to be a monotone
function of the exact integer sum; a model where that fails is refused with a clear error, never approximated.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx

from ...errors import node_error
from ...golden import ops as gops
from ...ir.elementwise import Arith, Clip, LeakyRelu, Round
from ...ir.layers import Add, AvgPool, Conv, Dense, Requant
from ..common import node_attrs
from ..thirdparty import third_party
from ..values import Const, Lin, canonical_index

F32 = np.float32
_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=F32)


class QOperatorOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    # -- helpers -------------------------------------------------------------------------------------------
    def _codes_in(self, node, i) -> Lin:
        lin = self.lin_in(node, i)
        if lin.ops:
            raise node_error(node, f"input {i} must be an integer tensor (a QuantizeLinear or QLinear* output)")
        return lin

    def _zp(self, node, i, what) -> tuple[np.ndarray, tuple[int, int]]:
        """Zero point (int64 array) and the code range its dtype implies (uint8 when absent)."""
        if len(node.input) <= i or not node.input[i]:
            return np.zeros(1, dtype=np.int64), (0, 255)
        v = self.const(node, i, f"constant {what} zero point")
        if v.dtype not in _RANGES:
            raise node_error(node, f"{what} zero point of type {v.dtype}: only int8/uint8 are supported")
        return v.astype(np.int64).reshape(-1), _RANGES[v.dtype]

    def _scalar_zp(self, node, i, what) -> tuple[int, tuple[int, int]]:
        zp, rng = self._zp(node, i, what)
        if np.unique(zp).size != 1:
            raise node_error(node, f"per-channel {what} zero points are not supported")
        return int(zp[0]), rng

    def _scale(self, node, i, what) -> np.ndarray:
        return self.const(node, i, f"constant {what} scale").astype(F32).reshape(-1)

    def _int_weights(self, node, i) -> np.ndarray:
        v = self.values.get(node.input[i])
        if not isinstance(v, Const) or v.value.dtype not in _RANGES:
            raise node_error(node, "weights must be a constant int8/uint8 tensor")
        return v.value.astype(np.int64)

    def _requant_out(self, node, acc: Lin, scale: np.ndarray, y_zp: int, rng: tuple[int, int]):
        """MlasRequantizeOutput: clamp(round_half_even(float(acc) * scale) + zp); the output is a code tensor."""
        C = self.t(acc.tensor).channels
        lin = Lin(acc.tensor, acc.index, [Arith("mul", np.broadcast_to(_f32(scale), (C,)).copy())])
        t = self.requant(node, lin, [Round("ROUND"), Arith("add", F32(y_zp)), Clip(*rng)], rng[0], rng[1],
                         zp=y_zp, onnx_name=node.output[0], mode="f32")
        self.values[node.output[0]] = Lin(t.name, acc.index, [])

    def _acc_range(self, w_ir: np.ndarray, t, bias: np.ndarray) -> tuple[int, int]:
        wr = w_ir.reshape(w_ir.shape[0], -1)
        lo = np.minimum(wr * t.lo, wr * t.hi).sum(1) + bias
        hi = np.maximum(wr * t.lo, wr * t.hi).sum(1) + bias
        return int(lo.min()), int(hi.max())

    def _int_conv(self, node, lin: Lin, w: np.ndarray, w_zp: np.ndarray, x_zp: int, bias) -> Lin:
        """Exact integer convolution sum((x - x_zp) * (w - w_zp)) + bias, padding with x_zp (contributes 0)."""
        lin = self._conv_input(node, lin)
        t = self.t(lin.tensor)
        oc = w.shape[0]
        wz = np.broadcast_to(w_zp.reshape((-1,) + (1,) * (w.ndim - 1)) if w_zp.size > 1 else w_zp.reshape(()),
                             w.shape)
        w_ir = np.ascontiguousarray((w - wz).transpose(0, 2, 3, 1)).astype(np.int64)
        kw = self._conv_attrs(node, w.shape, t.shape[:2])
        if w.shape[1] * kw["groups"] != t.channels:
            raise node_error(node, f"weights expect {w.shape[1] * kw['groups']} input channels, input has "
                                   f"{t.channels}")
        b = np.zeros(oc, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
        b = b - x_zp * w_ir.reshape(oc, -1).sum(1)
        k, s, p, d = kw["kernel"], kw["stride"], kw["pads"], kw["dilation"]
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2], d[0])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3], d[1])
        if oh <= 0 or ow <= 0:
            raise node_error(node, "kernel larger than the padded input")
        lo, hi = self._acc_range(w_ir, t, b)
        out = self.new_tensor("acc", (oh, ow, oc), lo, hi)
        self.design.add_layer(Conv(name=self.fresh("conv"), inputs=(t.name,), output=out.name, weight=w_ir,
                                   kernel=k, stride=s, pads=p, dilation=d, groups=kw["groups"], pad_value=x_zp,
                                   bias=b, onnx_nodes=(node.name,)))
        return Lin(out.name, canonical_index(out.shape, 3), [])

    def _int_dense(self, node, lin: Lin, w: np.ndarray, w_zp: np.ndarray, x_zp: int, bias) -> Lin:
        """Exact sum_k (x_k - x_zp) * (w_km - w_zp_m) + bias_m for (K, M) weights."""
        if w.ndim != 2:
            raise node_error(node, "weights must be 2-D")
        wz = np.broadcast_to(w_zp.reshape(1, -1) if w_zp.size > 1 else w_zp.reshape(()), w.shape)
        w_ir = self._dense_weights(node, lin, w - wz)
        t = self.t(lin.tensor)
        m = w.shape[1]
        b = np.zeros(m, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
        b = b - x_zp * w_ir.sum(1)
        lo, hi = self._acc_range(w_ir, t, b)
        out = self.new_tensor("acc", (1, 1, m), lo, hi)
        self.design.add_layer(Dense(name=self.fresh("dense"), inputs=(t.name,), output=out.name, weight=w_ir,
                                    bias=b, onnx_nodes=(node.name,)))
        return Lin(out.name, canonical_index((1, 1, m), 1), [])

    def _bias_int(self, node, i):
        if len(node.input) <= i or not node.input[i]:
            return None
        return self.const(node, i, "constant int32 bias").astype(np.int64)

    # -- matrix ops ----------------------------------------------------------------------------------------
    def _qlinear_xw(self, node):
        """The first six inputs of QLinearConv / QLinearMatMul / QGemm: x, x_scale, x_zp, w, w_scale, w_zp."""
        x = self._codes_in(node, 0)
        xs = self._scale(node, 1, "input")
        x_zp, _ = self._scalar_zp(node, 2, "input")
        w = self._int_weights(node, 3)
        ws = self._scale(node, 4, "weight")
        w_zp, _ = self._zp(node, 5, "weight")
        return x, xs, x_zp, w, ws, w_zp

    def _qlinear_args(self, node):
        """QLinearConv / QLinearMatMul inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp."""
        x, xs, x_zp, w, ws, w_zp = self._qlinear_xw(node)
        ys = self._scale(node, 6, "output")
        y_zp, rng = self._scalar_zp(node, 7, "output")
        return x, x_zp, w, w_zp, (xs[0] * ws) / ys[0], y_zp, rng

    def op_QLinearConv(self, node):
        x, x_zp, w, w_zp, scale, y_zp, rng = self._qlinear_args(node)
        acc = self._int_conv(node, x, w, w_zp, x_zp, self._bias_int(node, 8))
        self._requant_out(node, acc, scale, y_zp, rng)

    def op_QLinearMatMul(self, node):
        x, x_zp, w, w_zp, scale, y_zp, rng = self._qlinear_args(node)
        self._requant_out(node, self._int_dense(node, x, w, w_zp, x_zp, None), scale, y_zp, rng)

    def op_QGemm(self, node):
        """com.microsoft QGemm: A, a_scale, a_zp, B, b_scale, b_zp, [C int32], [y_scale, y_zp]; alpha, transB."""
        at = node_attrs(node)
        if at.get("transA", 0):
            raise node_error(node, "QGemm with transA=1 is not supported")
        alpha = F32(at.get("alpha", 1.0))
        x, xs, x_zp, w, ws, w_zp = self._qlinear_xw(node)
        if at.get("transB", 0):
            w = w.T
        acc = self._int_dense(node, x, w, w_zp, x_zp, self._bias_int(node, 6))
        scale = (alpha * xs[0]) * ws
        if len(node.input) > 7 and node.input[7]:
            ys = self._scale(node, 7, "output")
            y_zp, rng = self._scalar_zp(node, 8, "output")
            self._requant_out(node, acc, scale / ys[0], y_zp, rng)
        else:  # float output: float(acc) * scale, then whatever float ops follow (DequantizeLinear-free)
            C = self.t(acc.tensor).channels
            self.values[node.output[0]] = Lin(acc.tensor, acc.index,
                                              [Arith("mul", np.broadcast_to(_f32(scale), (C,)).copy())])

    def op_MatMulInteger(self, node):
        x = self._codes_in(node, 0)
        w = self._int_weights(node, 1)
        x_zp, _ = self._scalar_zp(node, 2, "input")
        w_zp, _ = self._zp(node, 3, "weight")
        self.values[node.output[0]] = self._int_dense(node, x, w, w_zp, x_zp, None)

    def op_ConvInteger(self, node):
        x = self._codes_in(node, 0)
        w = self._int_weights(node, 1)
        x_zp, _ = self._scalar_zp(node, 2, "input")
        w_zp, _ = self._zp(node, 3, "weight")
        self.values[node.output[0]] = self._int_conv(node, x, w, w_zp, x_zp, None)

    # -- element-wise, 8-bit in -> 8-bit out: the lookup table onnxruntime builds ---------------------------
    def _lut_chain(self, node, x: Lin, xs, x_zp, ys, y_zp, rng, fn_ops=(), onnx_name=""):
        """QlinearBuildLookupTable: quantize(fn(dequantize(x))) in float32, per element."""
        lin = Lin(x.tensor, x.index, [Arith("sub", F32(x_zp)), Arith("mul", F32(xs)), *fn_ops])
        t = self.requant(node, lin, [Arith("div", F32(ys)), Round("ROUND"), Arith("add", F32(y_zp)), Clip(*rng)],
                         rng[0], rng[1], zp=y_zp, onnx_name=node.output[0] if onnx_name == "" else onnx_name,
                         mode="f32")
        return Lin(t.name, x.index, [])

    def op_QLinearLeakyRelu(self, node):
        alpha = F32(node_attrs(node).get("alpha", 0.01))
        x = self._codes_in(node, 0)
        x_zp, _ = self._scalar_zp(node, 2, "input")
        y_zp, rng = self._scalar_zp(node, 4, "output")
        self.values[node.output[0]] = self._lut_chain(node, x, self._scale(node, 1, "input")[0], x_zp,
                                                      self._scale(node, 3, "output")[0], y_zp, rng,
                                                      [LeakyRelu(alpha)])

    def op_QLinearConcat(self, node):
        """Y_scale, Y_zp, then (X, X_scale, X_zp) per input; each input is requantised to Y's grid."""
        ys = self._scale(node, 0, "output")[0]
        y_zp, rng = self._scalar_zp(node, 1, "output")
        n = (len(node.input) - 2) // 3
        parts = []
        for j in range(n):
            x = self._codes_in(node, 2 + 3 * j)
            xs = self._scale(node, 3 + 3 * j, "input")[0]
            x_zp, _ = self._scalar_zp(node, 4 + 3 * j, "input")
            if xs == ys and x_zp == y_zp:
                parts.append(x)  # onnxruntime copies such inputs unchanged
            else:
                parts.append(self._lut_chain(node, x, xs, x_zp, ys, y_zp, rng, onnx_name=None))
        # reuse the plain Concat lowering on the requantised inputs
        names = [f"{node.output[0]}__in{j}" for j in range(n)]
        for nm, p in zip(names, parts):
            self.values[nm] = p
        cat = onnx.helper.make_node("Concat", names, list(node.output), name=node.name,
                                    axis=node_attrs(node).get("axis", 1))
        self.op_Concat(cat)

    # -- pools ---------------------------------------------------------------------------------------------
    def op_QLinearGlobalAveragePool(self, node):
        """MLAS (x86): requantize(float(sum(x) - x_zp * N) * (x_scale / N / y_scale)) over each channel's image
        (MlasQLinearGlobalAveragePool; ARM builds use a fixed-point variant of the same scale)."""
        if node_attrs(node).get("channels_last", 0):
            raise node_error(node, "channels_last=1 is not supported")
        x = self._conv_input(node, self._codes_in(node, 0))
        t = self.t(x.tensor)
        h, w, c = t.shape
        n = h * w
        xs, ys = self._scale(node, 1, "input")[0], self._scale(node, 3, "output")[0]
        x_zp, _ = self._scalar_zp(node, 2, "input")
        y_zp, rng = self._scalar_zp(node, 4, "output")
        s = self.new_tensor("poolsum", (1, 1, c), t.lo * n, t.hi * n)
        self.design.add_layer(AvgPool(name=self.fresh("avgpool"), inputs=(t.name,), output=s.name, kernel=(h, w),
                                      stride=(1, 1), pads=(0, 0, 0, 0), pad_value=x_zp, onnx_nodes=(node.name,)))
        scale = F32(F32(xs / F32(n)) / ys)
        lin = Lin(s.name, canonical_index((1, 1, c), 3), [Arith("sub", F32(x_zp * n)), Arith("mul", scale)])
        out = self.requant(node, lin, [Round("ROUND"), Arith("add", F32(y_zp)), Clip(*rng)], rng[0], rng[1],
                           zp=y_zp, onnx_name=node.output[0], mode="f32")
        self.values[node.output[0]] = Lin(out.name, lin.index, [])

    def op_QLinearAveragePool(self, node):
        """Averages dequantised float32 values: float-defined, lowered in ops/pool.py."""
        self.qlinear_average_pool(node)

    # -- residual add ------------------------------------------------------------------------------------------
    def op_QLinearAdd(self, node):
        """Tabulate onnxruntime's QLinearAdd over every pair of codes; it must be a monotone function of the exact
        sum ka * a + kb * b (ka / kb = a_scale / b_scale), which becomes an integer Add and thresholds."""
        if isinstance(self.values.get(node.input[3]), Const) or isinstance(self.values.get(node.input[0]), Const):
            return self._qlinear_add_const(node)
        a = self._codes_in(node, 0)
        b = self._codes_in(node, 3)
        ta, tb = self.t(a.tensor), self.t(b.tensor)
        if ta.shape != tb.shape or not np.array_equal(a.index, b.index):
            raise node_error(node, f"QLinearAdd of tensors with different shapes/layouts {ta.shape} vs {tb.shape}")
        sa, sb = self._scale(node, 1, "A")[0], self._scale(node, 4, "B")[0]
        if sa <= 0 or sb <= 0:
            raise node_error(node, "scales must be positive")
        r = Fraction(float(sa)) / Fraction(float(sb))
        ka, kb = r.numerator, r.denominator
        table = _ort_table(node, self.values, np.arange(ta.lo, ta.hi + 1), np.arange(tb.lo, tb.hi + 1))
        av = np.arange(ta.lo, ta.hi + 1, dtype=np.int64)
        bv = np.arange(tb.lo, tb.hi + 1, dtype=np.int64)
        S = (ka * av[:, None] + kb * bv[None, :]).ravel()
        codes = table.ravel()
        order = np.argsort(S, kind="stable")
        S, codes = S[order], codes[order]
        same = S[1:] == S[:-1]
        if (np.diff(codes) < 0).any() or (same & (codes[1:] != codes[:-1])).any():
            raise node_error(node, "onnxruntime's float32 rounding of this QLinearAdd is not a monotone function "
                                   "of the exact sum, so no integer datapath reproduces it bit for bit",
                             "Use scales whose ratio is a power of two")
        lo_c, hi_c = int(codes[0]), int(codes[-1])
        if hi_c == lo_c:
            hi_c = lo_c + 1
        ks = np.arange(lo_c + 1, hi_c + 1)
        first = np.searchsorted(codes, ks, side="left")        # first sorted index reaching code k
        smax = int(S[-1])
        T = np.where(first < S.size, S[np.minimum(first, S.size - 1)], smax + 1).astype(np.int64)
        C = ta.channels
        add_lo = int(ka * ta.lo + kb * tb.lo)
        add_hi = int(ka * ta.hi + kb * tb.hi)
        s = self.new_tensor("add", ta.shape, add_lo, add_hi)
        self.design.add_layer(Add(name=self.fresh("add"), inputs=(ta.name, tb.name), output=s.name,
                                  ka=np.full(C, ka, dtype=np.int64), kb=np.full(C, kb, dtype=np.int64),
                                  onnx_nodes=(node.name,)))
        y_zp, rng = self._scalar_zp(node, 7, "output")
        out = self.new_tensor(node.output[0], ta.shape, lo_c, hi_c, zp=y_zp, onnx_name=node.output[0],
                              index=a.index)
        self.design.add_layer(Requant(name=self.fresh("requant"), inputs=(s.name,), output=out.name,
                                      thresholds=np.repeat(T[None, :], C, 0), negate=np.zeros(C, dtype=bool),
                                      out_lo=lo_c, out_hi=hi_c, exact_f32=True, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, a.index, [])


    def _qlinear_add_const(self, node):
        """QLinearAdd with one constant operand (a bias): per channel, a table of the variable operand's codes."""
        j = 0 if isinstance(self.values.get(node.input[3]), Const) else 3
        x = self._codes_in(node, j)
        t = self.t(x.tensor)
        cv = self.values[node.input[3 - j]].value.astype(np.int64)
        cidx = np.broadcast_to(cv.reshape((1,) * (x.index.ndim + 1 - cv.ndim) + cv.shape)[0], x.index.shape)
        # the constant code each stream channel sees (it must not vary along the spatial axes)
        per_ch = {}
        for pos, idx in np.ndenumerate(x.index):
            per_ch.setdefault(int(idx) % t.channels, set()).add(int(cidx[pos]))
        if any(len(v) != 1 for v in per_ch.values()):
            raise node_error(node, "a constant operand must be per-channel (the same along height and width)")
        cc = np.array([next(iter(per_ch[c])) for c in range(t.channels)])
        xv = np.arange(t.lo, t.hi + 1)
        uniq = np.unique(cc)
        table = (_ort_table(node, self.values, xv, uniq) if j == 0 else _ort_table(node, self.values, uniq, xv).T)
        codes = table[:, np.searchsorted(uniq, cc)].T               # (C, nx): code per channel and input code
        if (np.diff(codes, axis=1) < 0).any():
            raise node_error(node, "onnxruntime's QLinearAdd is not monotone in its input here")
        y_zp, _ = self._scalar_zp(node, 7, "output")
        lo_c, hi_c = int(codes.min()), int(codes.max())
        hi_c = max(hi_c, lo_c + 1)
        ks = np.arange(lo_c + 1, hi_c + 1)
        T = np.stack([np.where((codes[c][None, :] >= ks[:, None]).any(1),
                               xv[np.argmax(codes[c][None, :] >= ks[:, None], axis=1)], t.hi + 1)
                      for c in range(t.channels)]).astype(np.int64)
        out = self.new_tensor(node.output[0], t.shape, lo_c, hi_c, zp=y_zp, onnx_name=node.output[0],
                              index=x.index)
        self.design.add_layer(Requant(name=self.fresh("requant"), inputs=(t.name,), output=out.name, thresholds=T,
                                      negate=np.zeros(t.channels, dtype=bool), out_lo=lo_c, out_hi=hi_c,
                                      exact_f32=True, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, x.index, [])


def _ort_table(node, values, av: np.ndarray, bv: np.ndarray) -> np.ndarray:
    """Run the QLinearAdd node alone in onnxruntime on every (a, b) code pair; returns codes (na, nb)."""
    import onnxruntime as ort

    def dtype_of(zp_name):  # an operand's type is its zero point's (uint8 when absent)
        return values[zp_name].value.dtype if zp_name and zp_name in values else np.dtype(np.uint8)

    A = np.repeat(av, bv.size).astype(dtype_of(node.input[2])).reshape(1, -1)
    B = np.tile(bv, av.size).astype(dtype_of(node.input[5] if len(node.input) > 5 else "")).reshape(1, -1)
    y_type = dtype_of(node.input[7] if len(node.input) > 7 else "")
    inits, ins = [], []
    for j, name in enumerate(node.input):
        if j in (0, 3) or not name:
            continue
        if name not in values or not isinstance(values[name], Const):
            raise node_error(node, f"input {j} ('{name}') must be a constant")
        inits.append(onnx.numpy_helper.from_array(np.asarray(values[name].value), name))
    for j, arr in ((0, A), (3, B)):
        ins.append(onnx.helper.make_tensor_value_info(node.input[j], onnx.helper.np_dtype_to_tensor_dtype(arr.dtype),
                                                      arr.shape))
    y = node.output[0]
    out = onnx.helper.make_tensor_value_info(y, onnx.helper.np_dtype_to_tensor_dtype(y_type), None)
    g = onnx.helper.make_graph([node], "table", ins, [out], inits)
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13),
                                                 onnx.helper.make_opsetid("com.microsoft", 1)])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with third_party("onnxruntime session creation (tabulating the node)", node):
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with third_party("onnxruntime run (tabulating the node)", node):
        out = sess.run(None, {node.input[0]: A, node.input[3]: B})[0]
    return out.astype(np.int64).reshape(av.size, bv.size)

