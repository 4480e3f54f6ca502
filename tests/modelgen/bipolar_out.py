"""Random models whose output is a binarised or otherwise non-standard score encoding, with and without a class
head (issue 14, family 6). Kept out of QONNX_KINDS / QDQ_KINDS / QOP_KINDS so that the derandomised hypothesis
draws over those lists stay what they were.

QONNX (`bipolar_out_model("qonnx", kind, rng)`):
  bipolar_out      FINN TFC / CNV style net (BipolarQuant weights) whose output IS a BipolarQuant (scale 1, a
                   random scalar or positive per-class scales); no head. Output (1, C) or (1, C, H, W).
  bipolar_argmax   the same, then ArgMax (axis 1 | -1, keepdims 0 | 1) or Softmax.
  bipolar_topk     the same, then TopK (k random, sorted, largest) with its Indices as the model output.
  coded_head       scores from a narrow / signed / unsigned-with-zero-point Quant of 2..4 bits, then a float tail
                   (Mul by a negative scalar, a per-class Mul with mixed signs and zeros, a BatchNormalization
                   with negative gammas, or nothing), then ArgMax / TopK / Softmax.
QDQ / QOperator (`bipolar_out_model("qdq" | "qop", "coded_head", rng)`): a quantize_static Gemm / MatMul
classifier, then the same float tail after the last DequantizeLinear, then ArgMax / TopK.
QDQ narrow_head: Brevitas QCDQ style (QuantizeLinear -> Clip -> DequantizeLinear) Gemm classifier whose scores
are 2..4-bit narrow signed codes (e.g. -7..7), then the float tail and ArgMax / TopK.

Every kind duplicates some classes of the last layer (identical weight rows and biases), so exact ties between
class scores are common: the class must break them as the reference does (lowest index first).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from .common import GenModel, InputGrid, f32, rand_scale

BIPOLAR_OUT_KINDS = {"qonnx": ["bipolar_out", "bipolar_argmax", "bipolar_topk", "coded_head"],
                     "qdq": ["coded_head", "narrow_head"], "qop": ["coded_head"]}


def _dup_rows(rng, w: np.ndarray) -> np.ndarray:
    """Copy some rows of a (classes, K) weight onto others: those classes score exactly alike."""
    w = w.copy()
    n = w.shape[0]
    for _ in range(int(rng.integers(1, max(2, n // 2) + 1))):
        i, j = rng.integers(0, n, 2)
        w[j] = w[i]
    return w


def _q_last_dense(n, x, ncls, bipolar_w):
    """MatMul(x, Transpose(Quant(W[ncls, K]))) with duplicated class rows (FINN TFC layout)."""
    (kin,) = n.shape(x)
    w = _dup_rows(n.rng, n.rng.normal(0, 1, (ncls, kin)))
    wq = n.weight(w, axis=0, bipolar=bipolar_w, per_channel=False if not bipolar_w else None)
    wt = n.b.op("Transpose", [wq], perm=[1, 0])
    n.log("last dense", f"{kin}->{ncls}", "duplicated classes")
    return n.b.op("MatMul", [x, wt])


def _bn_same_for_dups(n, y):
    """BatchNormalization over classes; duplicated classes keep equal statistics (so their codes stay tied)."""
    v = n.b.value(y).astype(np.float64)
    axes = (0,) + tuple(range(2, v.ndim))
    c = v.shape[1]
    mean = v.mean(axis=axes)
    std = v.std(axis=axes) + 1e-3
    flat = v.reshape(v.shape[0], c, -1)
    key = {}
    first = np.array([key.setdefault(flat[:, i].tobytes(), i) for i in range(c)])
    rng = n.rng
    gamma = (rng.uniform(0.5, 2.0, c) * np.where(rng.random(c) < 0.2, -1.0, 1.0))[first]
    beta = (rng.normal(0, 0.3, c) * std)[first]
    mean, var = mean[first], (std ** 2)[first]
    ins = [y] + [n.b.const(a.astype(np.float32), h) for a, h in
                 [(gamma, "bn_gamma"), (beta, "bn_beta"), (mean, "bn_mean"), (var, "bn_var")]]
    n.log("BatchNormalization", c)
    return n.b.op("BatchNormalization", ins, epsilon=1e-5)


def _bipolar_body(n):
    """Input image -> bipolar MLP (TFC) or conv (CNV) -> the pre-activation of the last layer."""
    b = n.b
    c = 1 if n.rbool(0.6) else 2
    h = n.rint(3, 7)
    n.grid = InputGrid(divisor=255.0, qmin=0, qmax=255)
    x = n.add_input((c, h, h))
    ncls = n.rint(2, 12)
    if n.rbool(0.3) and h >= 3:  # CNV end: a bipolar conv map as the output (no class head on a spatial map)
        x = n.quant(x, 8, False, scale=f32(1 / 255))
        y = n.conv(x, cout=ncls, k=3, s=1, p=0, groups=1, bias=False, bipolar_w=True, act=None, quant=False)
        n.log("CNV output map")
        return y, True
    x = n.flatten(x)
    y = b.op("Mul", [x, b.const(f32(2), "two")])
    y = b.op("Sub", [y, b.const(np.array([1], np.float32), "one")])
    x = n.bipolar(y, scale=1.0)
    for _ in range(n.rint(0, 2)):
        y = n.dense(x, n.rint(4, 24), style="matmul_t", bias=False, bipolar_w=True, act=None, quant=False)
        x = n.bipolar(n.batchnorm(y))
    return _q_last_dense(n, x, ncls, bipolar_w=True), False


def _bipolar_scores(n, y):
    """[BatchNorm] -> BipolarQuant with scale 1, a random scalar or positive per-class scales."""
    if n.rbool(0.6):
        y = _bn_same_for_dups(n, y)
    c = n.shape(y)[0]
    r = n.rng.random()
    if r < 0.4:
        scale = f32(1.0)
    elif r < 0.7:
        scale = f32(rand_scale(n.rng, n.rng.uniform(0.1, 2.0), 1))
    else:  # per class (broadcast over the class axis)
        scale = n.rng.uniform(0.1, 2.0, c).astype(np.float32).reshape((1, c) + (1,) * (len(n.shape(y)) - 1))
    s = n.b.const(scale, "scale")
    out = n.b.op("BipolarQuant", [y, s], hint="bquant", domain=n.domain)
    n.log("BipolarQuant output", "scale", np.asarray(scale).ravel()[:3])
    return out


def _head(n, y, head):
    b = n.b
    if head == "argmax":
        return b.op("ArgMax", [y], axis=int(n.pick([1, -1])), keepdims=int(n.rbool()))
    if head == "softmax":
        return b.op("Softmax", [y], axis=int(n.pick([1, -1])))
    c = n.shape(y)[0]
    k = n.rint(1, c)
    _, idx = b.op("TopK", [y, b.const(np.array([k], np.int64), "k", np.int64)], n_out=2, axis=-1,
                  largest=1, sorted=1)
    n.log("TopK", k)
    return idx


def _float_tail(n, y, kind):
    """A float map of the scores before the head: the non-standard encodings the class must see through."""
    b = n.b
    c = n.shape(y)[0]
    if kind == "neg":
        g = -float(n.rng.uniform(0.1, 3.0))
        n.log("Mul", g)
        return b.op("Mul", [y, b.const(f32(g), "neg")])
    if kind == "perclass":
        g = n.rng.uniform(0.1, 3.0, c) * n.rng.choice([-1.0, 1.0, 1.0, 0.0], c)
        n.log("Mul per class", np.round(g, 2).tolist())
        y = b.op("Mul", [y, b.const(g.astype(np.float32).reshape(1, c), "gain")])
        if n.rbool():
            y = b.op("Add", [y, b.const(n.rng.normal(0, 0.5, c).astype(np.float32).reshape(1, c), "off")])
        return y
    if kind == "bn":
        return _bn_same_for_dups(n, y)
    return y


def _qonnx(kind: str, rng) -> GenModel:
    from .qonnx_models import _Net

    n = _Net(kind, rng)
    if kind == "coded_head":
        x = n.input_quant((n.rint(4, 32),))
        x = n.dense(x, n.rint(4, 16), act="relu", bits=n.rint(2, 4))
        y = _q_last_dense(n, x, n.rint(2, 12), bipolar_w=False)
        enc = n.pick(["narrow", "signed", "zp"])
        y = n.quant(y, n.rint(2, 4), enc != "zp", narrow=enc == "narrow", zp_prob=1.0 if enc == "zp" else 0.0)
        n.log("scores Quant", enc)
        y = _float_tail(n, y, n.pick(["neg", "perclass", "bn", "none"]))
        return n.finish(_head(n, y, n.pick(["argmax", "topk", "softmax"])))
    y, spatial = _bipolar_body(n)
    y = _bipolar_scores(n, y)
    if kind == "bipolar_out" or spatial:
        return n.finish(y)
    return n.finish(_head(n, y, "topk" if kind == "bipolar_topk" else n.pick(["argmax", "argmax", "softmax"])))


def _ort(flavour: str, rng) -> GenModel:
    """quantize_static classifier with duplicated classes, then a float tail and ArgMax / TopK appended."""
    from .ort_models import _FNet, _quantize

    f = _FNet("coded_head", rng, flavour)
    x = f.input((f.rint(4, 24),))
    x = f.dense(x, f.rint(4, 16), act="relu") if f.rbool() else x
    (kin,) = f.shape(x)
    ncls = f.rint(2, 10)
    w = _dup_rows(rng, rng.normal(0, 1, (ncls, kin))).astype(np.float32)
    bias = rng.normal(0, 0.3, ncls).astype(np.float32)
    # duplicated classes share their bias too (the first row equal to theirs)
    bias = np.array([bias[int(np.argmax((w == w[i]).all(1)))] for i in range(ncls)], np.float32)
    y = f.b.op("Gemm", [x, f.b.const(w, "w"), f.b.const(bias, "b")], transB=1)
    gm = _quantize(f, y, flavour)
    return _append_tail(gm, rng)


def _qcdq_narrow(rng) -> GenModel:
    from .ort_models import _HNet, _int_range, _qcdq_act, _qcdq_weight

    h = _HNet("narrow_head", rng, "qdq", opset=13)
    n_in = h.rint(4, 24)
    lo, hi = _int_range(8, True, True)
    scale = rand_scale(rng, rng.uniform(0.5, 3.0), hi)
    x = _qcdq_act(h, h.input((n_in,), scale, 0, lo, hi), 8, True, True, scale=scale)
    ncls = h.rint(2, 10)
    w = _dup_rows(rng, rng.normal(0, 1, (ncls, n_in))).astype(np.float32)
    wdq, _ = _qcdq_weight(h, w, h.pick([2, 4, 8]), False, True)
    y = h.b.op("Gemm", [x, wdq], transB=1)
    bits = h.rint(2, 4)
    y = _qcdq_act(h, y, bits, True, True)
    h.log("Gemm", f"{n_in}->{ncls}", f"scores {bits}-bit narrow")
    return h.finish(y)


def _append_tail(gm: GenModel, rng) -> GenModel:
    """Append [Mul (negative | per-class)] -> ArgMax | TopK(indices) to a quantised model's float output."""
    m = gm.model
    g = m.graph
    out = g.output[0]
    c = out.type.tensor_type.shape.dim[-1].dim_value
    y = out.name
    nodes, inits = [], []
    tail = rng.choice(["neg", "perclass", "none"])
    if tail != "none":
        gain = (np.full(1, -rng.uniform(0.1, 3.0)) if tail == "neg"
                else rng.uniform(0.1, 3.0, c) * rng.choice([-1.0, 1.0, 1.0, 0.0], c)).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(gain.reshape((1, -1)), "tail_gain"))
        nodes.append(helper.make_node("Mul", [y, "tail_gain"], ["tail_y"], name="tail_mul"))
        y = "tail_y"
    head = rng.choice(["argmax", "topk"])
    if head == "argmax":
        kd = int(rng.integers(0, 2))
        nodes.append(helper.make_node("ArgMax", [y], ["cls"], name="tail_argmax", axis=1, keepdims=kd))
        oshape = ["N", 1] if kd else ["N"]
    else:
        k = int(rng.integers(1, c + 1))
        inits.append(onnx.numpy_helper.from_array(np.array([k], np.int64), "tail_k"))
        nodes.append(helper.make_node("TopK", [y, "tail_k"], ["tail_vals", "cls"], name="tail_topk", axis=-1))
        oshape = ["N", k]
    g.node.extend(nodes)
    g.initializer.extend(inits)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("cls", onnx.TensorProto.INT64, oshape))
    gm.info.update(tail=str(tail), head=str(head))
    onnx.checker.check_model(m)
    return gm


def bipolar_out_model(flavour: str, kind: str, rng: np.random.Generator) -> GenModel:
    """A random model of this family (see BIPOLAR_OUT_KINDS)."""
    if kind not in BIPOLAR_OUT_KINDS.get(flavour, []):
        raise ValueError(f"unknown {flavour} kind {kind!r}; one of {BIPOLAR_OUT_KINDS}")
    if flavour == "qonnx":
        return _qonnx(kind, rng)
    return _append_tail(_qcdq_narrow(rng), rng) if kind == "narrow_head" else _ort(flavour, rng)
