"""Pooling and resampling (MaxPool, AveragePool, GlobalAveragePool, ReduceMean over H, W, QOperator's
QLinearAveragePool, Resize / Upsample nearest). Averages become the integer window sum (IR AvgPool) and an exact
requantiser of the mean."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ...errors import node_error
from ...golden import ops as gops
from ...ir.elementwise import Affine, Arith, Clip, Relu, Round, chain_direction
from ...ir.layers import AvgPool, MaxPool, Upsample
from ..common import attr_str, node_attrs
from ..values import Lin, affine_of, canonical_index


class Mean(Affine):
    """The exact mean of a window of dequantised values: value = a * sum + b. Float-defined in every flavour (the
    reference sums float32 values in an order of its choosing), so a requantiser whose chain holds one is exact
    with near-ties (mode "exact"), also in QOperator graphs (gen/frontend/lowering.py requant)."""

    float_defined = True


class PoolOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def _pool_attrs(self, node, t):
        at = node_attrs(node)
        if at.get("ceil_mode", 0):
            raise node_error(node, "ceil_mode=1 is not supported")
        if any(d != 1 for d in at.get("dilations", (1, 1))):
            raise node_error(node, "dilated pooling is not supported")
        k = tuple(at["kernel_shape"])
        stride = tuple(at.get("strides", (1, 1)))
        pads = tuple(at.get("pads", (0, 0, 0, 0)))
        if attr_str(at.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
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

    def _avg(self, node, lin, k, s, p, count_include_pad) -> Lin:
        """The integer window sum (IR AvgPool) and the exact mean on top of it, as a `Mean` op for the next
        requantiser. The reference averages dequantised float32 values; _mean_zeros keeps its float32 error
        provable (gen/golden/check.py near_tie)."""
        lin = self._clamp_codes(node, lin)
        t = self.t(lin.tensor)
        a, b = self.exact_affine(node, lin)
        zp = self._mean_zeros(node, lin, a, b)
        if any(p):
            if not count_include_pad:
                raise node_error(node, "AveragePool with padding and count_include_pad=0 is not supported",
                                 "Export with count_include_pad=1 or without padding")
            if any(z.denominator != 1 for z in zp):
                raise node_error(node, "padding needs an integer zero point on its input")
        pad_value = int(zp[0]) if zp[0].denominator == 1 else 0
        if len(set(zp)) > 1 and any(p):
            raise node_error(node, "padding needs one zero point for all channels")
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3])
        if oh <= 0 or ow <= 0:
            raise node_error(node, "pool kernel larger than the padded input")
        n = k[0] * k[1]
        out = self.new_tensor("poolsum", (oh, ow, t.channels), t.lo * n, t.hi * n)
        self.design.add_layer(AvgPool(name=self.fresh("avgpool"), inputs=(t.name,), output=out.name, kernel=k,
                                      stride=s, pads=p, pad_value=pad_value, onnx_nodes=(node.name,)))
        return Lin(out.name, canonical_index(out.shape, 3), [Mean([x / n for x in a], b)])

    def _clamp_codes(self, node, lin) -> Lin:
        """A float Relu / Clip between a dequantiser and the pool (QOperator graphs keep the activation in float
        when its output is not quantised): clamping the real value at a point of the code grid is clamping the
        codes, so it becomes an integer Requant (a clamp of the codes) and the mean stays a plain dequantiser's."""
        ops = list(lin.ops)
        tail = []
        while ops and isinstance(ops[-1], (Relu, Clip)):
            tail.insert(0, ops.pop())
        t = self.t(lin.tensor)
        ab = affine_of(ops, t.channels) if tail else None
        if ab is None:
            return lin
        a, b = ab
        lo, hi = t.lo, t.hi
        for op in tail:
            for bound, lower in ((0.0 if isinstance(op, Relu) else op.lo, True),
                                 (None if isinstance(op, Relu) else op.hi, False)):
                if bound is None:
                    continue
                codes = {(Fraction(bound) - bb) / aa if aa > 0 else None for aa, bb in zip(a, b)}
                if None not in codes and all(c <= t.lo if lower else c >= t.hi for c in codes):
                    continue  # never reached
                if None in codes or len(codes) != 1 or next(iter(codes)).denominator != 1:
                    raise node_error(node, f"{type(op).__name__} before the pool clamps at {bound}, which is not a "
                                           "code of its input's grid (or differs per channel)",
                                     "Quantise the activation's output before the pool")
                k = int(next(iter(codes)))
                lo, hi = (max(lo, k), hi) if lower else (lo, min(hi, k))
        if lo >= hi:
            raise node_error(node, "the activation before the pool makes its input constant")
        if (lo, hi) == (t.lo, t.hi):
            return Lin(lin.tensor, lin.index, ops)   # it never clamps a reachable code
        out = self.requant(node, Lin(lin.tensor, lin.index, []), [Clip(lo, hi)], lo, hi, scale=t.scale,
                           zp=t.zero_point, mode="exact")
        return Lin(out.name, lin.index, ops)

    def _mean_zeros(self, node, lin, a, b) -> list[Fraction]:
        """Per channel, the input code z where the averaged value is 0 (value = a * (x - z)).

        The reference rounds each element's float ops before summing; the near-tie proof bounds those errors by
        u * sum |x_i - z| (in input units), which holds only if every rounded intermediate is proportional to
        (x - z): a dequantiser (x - zp) * s, not e.g. a BatchNorm's offset added after the scale."""
        if any(aa == 0 for aa in a):
            raise node_error(node, "its input is a constant (zero scale)")
        zeros = [-bb / aa for aa, bb in zip(a, b)]
        C = self.t(lin.tensor).channels
        for i in range(1, len(lin.ops) + 1):
            pa, pb = affine_of(lin.ops[:i], C)
            exact = all(abs(x) == 1 and y.denominator == 1 for x, y in zip(pa, pb))   # integer +- integer
            if not exact and any(x == 0 or -y / x != z for x, y, z in zip(pa, pb, zeros)):
                raise node_error(node, "averaging a value computed with float ops other than a dequantiser "
                                       "(x - zero_point) * scale is not supported (its float32 error cannot be "
                                       "bounded)", "Quantise the pool's input right before it")
        return zeros

    def op_AveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        k, s, p = self._pool_attrs(node, self.t(lin.tensor))
        self.values[node.output[0]] = self._avg(node, lin, k, s, p, node_attrs(node).get("count_include_pad", 0))

    def op_GlobalAveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        h, w, _ = self.t(lin.tensor).shape
        self.values[node.output[0]] = self._avg(node, lin, (h, w), (1, 1), (0, 0, 0, 0), 0)

    def op_ReduceMean(self, node):
        """x.mean((2, 3)) and friends: a global (or one-axis) average pool over the spatial axes of N,C,H,W."""
        lin = self.lin_in(node)
        if lin.index.ndim != 3:
            raise node_error(node, f"ReduceMean of a rank-{lin.index.ndim + 1} tensor is not supported",
                             "Only the spatial axes (2, 3) of an N,C,H,W tensor can be averaged")
        at = node_attrs(node)
        axes = at.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.const(node, 1, "constant axes").reshape(-1).tolist()
        if not axes:
            if at.get("noop_with_empty_axes", 0):
                self.values[node.output[0]] = lin
                return
            axes = [0, 1, 2, 3]
        axes = sorted({int(a) + 4 if int(a) < 0 else int(a) for a in axes})
        if not set(axes) <= {2, 3}:
            raise node_error(node, f"ReduceMean over axes {axes} is not supported",
                             "Only the spatial axes (2, 3) of an N,C,H,W tensor can be averaged (global "
                             "average pooling)")
        lin = self._conv_input(node, lin)
        h, w, _ = self.t(lin.tensor).shape
        k = (h if 2 in axes else 1, w if 3 in axes else 1)
        out = self._avg(node, lin, k, k, (0, 0, 0, 0), 0)
        if not at.get("keepdims", 1):
            # the ONNX rank drops: the index map loses the reduced axes (N,C,H,W -> N,C or N,C,W or N,C,H)
            keep = [d for i, d in enumerate(out.index.shape) if i + 1 not in axes]
            out = Lin(out.tensor, out.index.reshape(keep), out.ops)
        self.values[node.output[0]] = out

    def _refuse_reduction(self, node):
        raise node_error(node, f"{node.op_type} is not supported (only ReduceMean over the spatial axes, i.e. "
                               "global average pooling, is)", "Use ReduceMean / GlobalAveragePool")

    op_ReduceSum = op_ReduceMax = op_ReduceMin = op_ReduceProd = op_ReduceL1 = op_ReduceL2 = _refuse_reduction
    op_ReduceLogSum = op_ReduceLogSumExp = op_ReduceSumSquare = _refuse_reduction

    def qlinear_average_pool(self, node):
        """com.microsoft QLinearAveragePool: onnxruntime dequantises (x_scale * (x - x_zp), float32), sums and
        divides in float32, then y = clamp(nearbyint(avg / y_scale + y_zp)) (qlinear_pool.cc quantize_value).
        That is float-defined real arithmetic: the integer window sum and an exact requantiser, compared by the
        near-tie rule like QDQ pools."""
        at = node_attrs(node)
        if at.get("channels_last", 0):
            raise node_error(node, "channels_last=1 is not supported")
        x = self._conv_input(node, self._codes_in(node, 0))
        xs, ys = self._scale(node, 1, "input")[0], self._scale(node, 3, "output")[0]
        x_zp, _ = self._scalar_zp(node, 2, "input")
        y_zp, rng = self._scalar_zp(node, 4, "output")
        k, s, p = self._pool_attrs(node, self.t(x.tensor))
        deq = Lin(x.tensor, x.index, [Arith("sub", np.float32(x_zp)), Arith("mul", np.float32(xs))])
        mean = self._avg(node, deq, k, s, p, at.get("count_include_pad", 0))
        out = self.requant(node, mean, [Arith("div", np.float32(ys)), Arith("add", np.float32(y_zp)),
                                        Round("ROUND"), Clip(*rng)], rng[0], rng[1], zp=y_zp,
                           onnx_name=node.output[0], mode="exact")
        self.values[node.output[0]] = Lin(out.name, mean.index, [])

    def op_Resize(self, node):
        at = node_attrs(node)
        if attr_str(at.get("mode", "nearest")) != "nearest":
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
        if scales is not None and (float(scales[0]) != 1 or float(scales[1]) != 1):
            raise node_error(node, "Resize of the batch or channel axis is not supported")
        f = (int(f[0]), int(f[1]))
        ctm = attr_str(at.get("coordinate_transformation_mode", "half_pixel"))
        rounding = attr_str(at.get("nearest_mode", "round_prefer_floor"))
        for n_in, k in zip(t.shape[:2], f):
            src = nearest_source(ctm, rounding, n_in, k)
            if src is None or src != [i // k for i in range(n_in * k)]:
                raise node_error(node, f"nearest Resize with coordinate_transformation_mode={ctm} and "
                                       f"nearest_mode={rounding} does not repeat each pixel {k} times",
                                 "Export with mode nearest, nearest_mode floor and coordinate_transformation_mode "
                                 "asymmetric (or the defaults)")
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


def nearest_source(ctm: str, rounding: str, n_in: int, k: int) -> list[int] | None:
    """The input index ONNX's nearest Resize reads for each output index (upsampling by the integer k), in exact
    arithmetic, as the ONNX operator definition gives it; None for a mode gen does not know (refused)."""
    n_out = n_in * k
    out = []
    for i in range(n_out):
        if ctm in ("half_pixel", "half_pixel_symmetric"):   # symmetric == half_pixel when n_out = n_in * k
            x = Fraction(2 * i + 1, 2 * k) - Fraction(1, 2)
        elif ctm == "pytorch_half_pixel":
            x = Fraction(2 * i + 1, 2 * k) - Fraction(1, 2) if n_out > 1 else Fraction(0)
        elif ctm == "align_corners":
            x = Fraction(i * (n_in - 1), n_out - 1) if n_out > 1 else Fraction(0)
        elif ctm == "tf_half_pixel_for_nn":   # Resize-11 only
            x = Fraction(2 * i + 1, 2 * k)
        elif ctm == "asymmetric":
            x = Fraction(i, k)
        else:
            return None
        fl = math.floor(x)
        half = x - fl == Fraction(1, 2)
        if rounding == "floor":
            j = fl
        elif rounding == "ceil":
            j = math.ceil(x)
        elif rounding == "round_prefer_floor":
            j = fl if half else round(x)
        elif rounding == "round_prefer_ceil":
            j = fl + 1 if half else round(x)
        else:
            return None
        out.append(min(max(int(j), 0), n_in - 1))
    return out
