"""`gen check`: the golden model against the reference executor, layer by layer and end to end.

The reference semantics (DESIGN.md "What exact means"): QOperator graphs' integer programs must match bit for
bit. QONNX and QDQ graphs (and the float pools / means inside QOperator graphs) are defined in real numbers
and executed by the references in float32, in an order of their choosing; so each layer is fed the reference's
own input codes, and every mismatch must be a *proven near-tie*: walking the element-wise chain in exact
arithmetic, some rounding step's exact input lies within the float32 error bound of that step's boundary.
Anything else is an unexplained mismatch, i.e. a bug. Which rule applies is decided per requantiser
(_float_defined), not per design.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import GenError
from ..frontend.thirdparty import third_party
from ..ir import layers as L
from ..ir.design import Design
from ..ir.elementwise import Affine, Arith, Clip, LeakyRelu, Relu, Round, Sign, chain_f32, op_from_json
from . import ops
from .model import encode_input, from_ir_layout, run_layer, to_ir_layout

U = 2.0 ** -24  # float32 unit round-off


@dataclass
class Stat:
    name: str
    op: str
    compared: int = 0
    exact: int = 0
    near_ties: int = 0
    unexplained: int = 0
    examples: list = field(default_factory=list)
    tie_frames: set = field(default_factory=set)

    def add(self, other: Stat):
        self.compared += other.compared
        self.exact += other.exact
        self.near_ties += other.near_ties
        self.unexplained += other.unexplained
        self.examples = (self.examples + other.examples)[:5]
        self.tie_frames |= other.tie_frames


@dataclass
class Report:
    layers: dict[str, Stat]
    end_to_end: Stat
    argmax_agree: int = 0
    argmax_total: int = 0
    frames: int = 0

    @property
    def unexplained(self) -> int:
        return sum(s.unexplained for s in self.layers.values()) + self.end_to_end.unexplained + \
            self.argmax_unexplained

    argmax_unexplained: int = 0

    def add(self, other: Report) -> None:
        """Fold in the report of the next batch of frames (its frame numbers already offset by `frame0`)."""
        for name, st in other.layers.items():
            self.layers.setdefault(name, Stat(st.name, st.op)).add(st)
        self.end_to_end.op = other.end_to_end.op
        self.end_to_end.add(other.end_to_end)
        self.argmax_agree += other.argmax_agree
        self.argmax_total += other.argmax_total
        self.argmax_unexplained += other.argmax_unexplained
        self.frames += other.frames


# ----------------------------------------------------------------------------- reference executors
def reference_run(model, flavour: str, x: np.ndarray) -> list[dict[str, np.ndarray]]:
    """All intermediate tensors of the reference, one dict per frame (batch axis kept, size 1)."""
    if flavour == "qonnx":
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        iname = model.graph.input[0].name
        res = []
        with warnings.catch_warnings(), third_party("qonnx execution (the reference)"):
            warnings.simplefilter("ignore")
            mw = ModelWrapper(model)
            for i in range(x.shape[0]):
                res.append(execute_onnx(mw, {iname: x[i:i + 1]}, return_full_exec_context=True))
        return res
    import onnx
    import onnxruntime as ort

    from .u8u8 import u8u8
    m = onnx.ModelProto()
    m.CopyFrom(u8u8(model))  # the same integer program, without onnxruntime's int16 saturation on AVX2
    have = {o.name for o in m.graph.output}
    inits = {i.name for i in m.graph.initializer}
    for n in m.graph.node:
        for o in n.output:
            if o and o not in have and o not in inits:
                m.graph.output.append(onnx.ValueInfoProto(name=o))
                have.add(o)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    with third_party("onnxruntime session creation (the reference)"):
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        iname = sess.get_inputs()[0].name
    res = []
    with third_party("onnxruntime run (the reference)"):
        for i in range(x.shape[0]):
            outs = sess.run(None, {iname: x[i:i + 1]})
            res.append(dict(zip(names, outs)))
    return res


def _stack(per_frame, name):
    return np.concatenate([np.asarray(d[name]) for d in per_frame], axis=0)


# ----------------------------------------------------------------------------- near-tie proof
def near_tie(chain, ch: int, x: int, s_abs: float, fan_in: int) -> bool:
    """True if float32 evaluation of `chain` at x may round differently from the exact value.

    The reference computes the pre-activation (a sum of `fan_in` products) with absolute error at most
    gamma * s_abs (in units of x), gamma = (n + 16) u / (1 - (n + 16) u), then applies each element-wise op
    with relative error u. We carry that bound through the chain; a rounding op whose exact input is within
    the bound of its boundary may go either way.
    """
    m = fan_in + 16
    err = m * U / (1 - m * U) * (s_abs + abs(x))
    v = Fraction(x)
    for op in chain:
        if isinstance(op, (Affine, Arith)):
            slope = abs(op.exact(ch, Fraction(1)) - op.exact(ch, Fraction(0)))
            v = op.exact(ch, v)
            err = float(slope) * err + 2 * U * abs(float(v)) + 1e-300
        elif isinstance(op, (Relu, Clip)):
            v = op.exact(ch, v)
        elif isinstance(op, LeakyRelu):
            v = op.exact(ch, v)
            err = err * max(1.0, op.alpha)
        elif isinstance(op, Round):
            fl = v.numerator // v.denominator
            frac_part = v - fl
            if op.mode in ("FLOOR", "CEIL", "UP", "DOWN"):
                dist = min(frac_part, 1 - frac_part)
            else:
                dist = abs(frac_part - Fraction(1, 2))
            if float(dist) <= err:
                return True
            v = op.exact(ch, v)
            err = 0.0
        elif isinstance(op, Sign):
            if abs(float(v)) <= err:
                return True
            v = op.exact(ch, v)
            err = 0.0
    return False


def _mean_zero(chain, n: int, channels: int) -> np.ndarray | float | None:
    """Per channel, the input code z where the terms of a mean vanish: the chain of a requantiser after an
    AvgPool starts with the exact mean a * sum + b = (1/n) * sum_i (n*a) * (x_i - z), z = -b / (n * a)."""
    if not chain or not isinstance(chain[0], Affine):
        return None
    z = []
    for c in range(channels):
        a, b = chain[0]._ab(c)
        if a == 0:
            return None
        z.append(float(-b / (n * a)))
    return np.asarray(z, dtype=np.float64)


def _sabs(design: Design, layer: L.Layer, xs: list[np.ndarray], chain=None) -> tuple[np.ndarray, int]:
    """Sum of |products| of the layer producing an accumulator (for the float error bound), and its fan-in.

    For an AvgPool the reference sums the dequantised terms a * (x_i - z) in float32 (then divides): the
    bound's sum is sum_i |x_i - z| with each channel's own zero z (frontend/ops/pool.py guarantees every
    rounded intermediate of a term is proportional to x_i - z); padding contributes nothing."""
    if isinstance(layer, L.Conv):
        pv = np.asarray(layer.pad_value)
        centre = pv if pv.size > 1 else int(pv)
        xa = np.abs(xs[0] - centre)
        s = ops.conv(xa, np.abs(layer.weight), layer.stride, layer.pads, layer.groups, 0, layer.dilation)
        return s, int(np.prod(layer.weight.shape[1:]))
    if isinstance(layer, L.Dense):
        return ops.dense(np.abs(xs[0]), np.abs(layer.weight)), layer.weight.shape[1]
    if isinstance(layer, L.AvgPool):
        n = layer.kernel[0] * layer.kernel[1]
        z = _mean_zero(chain, n, xs[0].shape[-1])
        if z is None:
            z = float(layer.pad_value)
        # padded positions hold pad_value == z whenever there is padding (the lowering refuses otherwise)
        xp = ops.pad_nhwc(xs[0].astype(np.float64), layer.pads, layer.pad_value)
        return ops.sliding_windows(np.abs(xp - z), layer.kernel, layer.stride, (0, 0, 0, 0)).sum(axis=(3, 4)), n
    if isinstance(layer, L.Add):
        return np.abs(xs[0] * layer.ka) + np.abs(xs[1] * layer.kb), 2
    return None, 1


# ----------------------------------------------------------------------------- comparison
def _ref_codes(design: Design, tname: str, ref_frames) -> np.ndarray | None:
    """The reference's value of an IR tensor, as IR-layout codes (None if it has no reference)."""
    t = design.tensors[tname]
    if not t.onnx_name or not t.onnx_layout or t.onnx_name not in ref_frames[0]:
        return None
    r = _stack(ref_frames, t.onnx_name)
    layout = dict(t.onnx_layout, ir_shape=t.shape)
    r = to_ir_layout(r.reshape((r.shape[0],) + tuple(layout["shape"])), layout)
    if np.issubdtype(r.dtype, np.integer):
        return r.astype(np.int64)
    if t.scale is None:
        return None
    if t.bipolar:
        return np.where(r >= 0, 1, -1).astype(np.int64)
    sc = np.asarray(t.scale, dtype=np.float64)
    return np.rint(r.astype(np.float64) / sc + t.zero_point).astype(np.int64)


def _float_defined(layer) -> bool:
    """Near-ties are allowed per layer: a requantiser whose reference is real arithmetic evaluated in float32 in
    an order of the reference's choosing (every QONNX / QDQ requantiser, and in QOperator graphs those of float
    pools and means, lowered with mode "exact"); the float32 programs of QLinear* ops (exact_f32) stay bit-exact."""
    return isinstance(layer, L.Requant) and bool(layer.chain) and not layer.exact_f32


def _compare(stat: Stat, got, ref, layer=None, acc=None, sabs=None, fan=1, allow_ties=True, frame0=0):
    stat.compared += got.size
    eq = got == ref
    stat.exact += int(eq.sum())
    bad = np.argwhere(~eq)
    for idx in bad:
        idx = tuple(int(i) for i in idx)
        ok = False
        step = 2 if allow_ties and layer.out_lo == -1 and layer.out_hi == 1 else 1   # bipolar codes: -1 / +1
        if allow_ties and abs(int(got[idx]) - int(ref[idx])) <= step:
            chain = [op_from_json(o) if isinstance(o, dict) else o for o in layer.chain]
            ok = near_tie(chain, idx[-1], int(acc[idx]), float(sabs[idx]) if sabs is not None else 0.0, fan)
        if ok:
            stat.near_ties += 1
            stat.tie_frames.add(idx[0] + frame0)
        else:
            stat.unexplained += 1
            if len(stat.examples) < 5:   # frame numbers of the whole run, not of this batch
                stat.examples.append(f"{(idx[0] + frame0,) + idx[1:]}: golden {got[idx]} reference {ref[idx]}"
                                     + (f" (input {acc[idx]})" if acc is not None else ""))


def check_stream(design: Design, model, batches) -> Report | None:
    """`check` over an iterable of input batches, one batch in memory at a time: the reference's full execution
    context of every frame is kept until its batch is compared, so memory grows with the batch, not the run.
    The merged report equals `check` of all frames at once (every figure is per frame or a sum over frames).
    None when there are no frames."""
    rep = None
    frame0 = 0
    for x in batches:
        r = check(design, model, x, frame0=frame0)
        frame0 += x.shape[0]
        if rep is None:
            rep = r
        else:
            rep.add(r)
    return rep


def _frame_max(a: np.ndarray) -> np.ndarray:
    """max |a| of each frame, broadcastable against a (batch first)."""
    return np.abs(a).reshape(a.shape[0], -1).max(1).reshape((-1,) + (1,) * (a.ndim - 1))


def check(design: Design, model, x: np.ndarray, frame0: int = 0) -> Report:
    """Compare golden and reference on a batch of float inputs x (ONNX layout, batch first). `frame0`: the
    number of the batch's first frame in the whole run (for the examples and tied frames)."""
    refs = reference_run(model, design.flavour, x)
    stats: dict[str, Stat] = {}
    env: dict[str, np.ndarray] = {}      # values fed forward: the reference's where it has one
    for layer in design.layers:
        st = Stat(layer.name, layer.op)
        if isinstance(layer, L.Input):
            got = encode_input(design, x)
        else:
            xs = [env[i] for i in layer.inputs]
            got = run_layer(layer, xs)
        ref = _ref_codes(design, layer.output, refs)
        if ref is not None and ref.shape == got.shape:
            sabs, fan = (None, 1)
            acc = None
            if isinstance(layer, L.Requant):
                acc = env[layer.inputs[0]]
                prod = design.producer(layer.inputs[0])
                if prod is not None and not isinstance(prod, L.Input) and (got != ref).any():
                    chain = [op_from_json(o) if isinstance(o, dict) else o for o in layer.chain]
                    sabs, fan = _sabs(design, prod, [env[i] for i in prod.inputs], chain)
                if sabs is None:
                    sabs = np.abs(acc).astype(np.float64)
            _compare(st, got, ref, layer, acc, sabs, fan, _float_defined(layer), frame0)
            stats[layer.name] = st
            env[layer.output] = ref
        else:
            env[layer.output] = got
    # end to end: golden from the input alone
    from .model import output_float
    from .model import run as golden_run
    genv = golden_run(design, x)
    e2e = Stat("end-to-end", "output")
    # frames where a proven near-tie upstream may legitimately change the output
    tie_frames = set().union(*(s.tie_frames for s in stats.values())) if stats else set()
    tied = np.zeros(x.shape[0], dtype=bool)
    tied[[f - frame0 for f in tie_frames]] = True
    ref_scores = _ref_codes(design, design.scores, refs)
    got_scores = genv[design.scores]
    b = design.output_boundary
    if ref_scores is not None:
        e2e.compared = got_scores.size
        e2e.exact = int((got_scores == ref_scores).sum())
        # end-to-end mismatches are explained when the layer-by-layer check explained every one upstream
        diff = got_scores != ref_scores
        frame_tied = tied.reshape((-1,) + (1,) * (diff.ndim - 1))
        e2e.near_ties = int((diff & frame_tied).sum())
        e2e.unexplained = int((diff & ~frame_tied).sum())
        for idx in np.argwhere(diff & ~frame_tied)[:5]:
            idx = tuple(int(i) for i in idx)
            e2e.examples.append(f"{(idx[0] + frame0,) + idx[1:]}: golden {got_scores[idx]} reference "
                                f"{ref_scores[idx]}")
    else:
        # a float output: the reference's own float32 arithmetic (sums in its order) against the exact integers
        # replayed through the same float32 ops; differences within the float32 bound count as near-ties
        e2e.op = "float32 output"
        gf = output_float(design, genv)
        rf = _stack(refs, b["onnx_name"]).reshape(gf.shape)
        e2e.compared = gf.size
        e2e.exact = int((gf == rf).sum())
        diff = gf != rf
        if diff.any():
            # each frame is computed on its own, so its float32 error scales with its own largest value (a
            # scale over all frames would make the verdict depend on which frames are checked together)
            scale = np.maximum(_frame_max(rf), _frame_max(gf))
            bound = float(design.tensors[design.scores].elements + 16) * U * 64 * np.maximum(scale, 1e-30)
            ok = (np.abs(gf - rf) <= bound) | tied.reshape((-1,) + (1,) * (gf.ndim - 1))
            e2e.near_ties = int((diff & ok).sum())
            # a float output within the proven bound may also flip a close arg-max
            tied = tied | (diff & ok).reshape(x.shape[0], -1).any(1)
            e2e.unexplained = int((diff & ~ok).sum())
            for idx in np.argwhere(diff & ~ok)[:5]:
                idx = tuple(int(i) for i in idx)
                e2e.examples.append(f"{(idx[0] + frame0,) + idx[1:]}: golden {gf[idx]} reference {rf[idx]}")
    rep = Report(layers=stats, end_to_end=e2e, frames=x.shape[0])
    # arg-max agreement on the model's output
    out_name = model.graph.output[0].name
    ro = _stack(refs, out_name)
    if design.output != design.scores:
        label = genv[design.output].reshape(x.shape[0], -1)[:, 0]
        if b.get("kind") == "ArgMax":
            ref_label = ro.reshape(x.shape[0], -1)[:, 0]
        elif b.get("kind") == "TopK":  # all k indices in order: compare the first position where they differ
            label, ref_label = _first_difference(genv[design.output].reshape(x.shape[0], -1),
                                                 ro.reshape(x.shape[0], -1))
        else:
            ref_label = ro.reshape(x.shape[0], -1).argmax(1)
    else:
        gf = output_float(design, genv)
        label = gf.reshape(x.shape[0], -1).argmax(1)
        ref_label = ro.reshape(x.shape[0], -1).argmax(1)
    rep.argmax_total = x.shape[0]
    rep.argmax_agree = int((label == ref_label).sum())
    if design.output != design.scores and (label != ref_label).any():
        # the two classes' exact scores within the float32 bound of each other: the reference may pick either
        gf = output_float(design, genv).reshape(x.shape[0], -1)
        bound = float(gf.shape[1] + 16) * U * 64 * np.maximum(np.abs(gf).max(1), 1e-30)   # per frame, as above
        rows = np.arange(x.shape[0])
        close = np.abs(gf[rows, label] - gf[rows, np.clip(ref_label, 0, gf.shape[1] - 1)]) <= bound
        tied = tied | ((label != ref_label) & close)
    # an arg-max disagreement is explained only by a (proven) near-tie upstream in the same frame
    rep.argmax_unexplained = int(((label != ref_label) & ~tied).sum())
    return rep


def _first_difference(got: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the two top-k lists' entries at their first differing position (position 0 if equal)."""
    if got.shape != ref.shape:
        return got[:, 0], np.full(got.shape[0], -1)
    j = np.argmax(got != ref, axis=1)
    rows = np.arange(got.shape[0])
    return got[rows, j], ref[rows, j]


@dataclass(frozen=True)
class InputSampler:
    """Random float inputs on the input quantiser's grid, frame by frame: frame i is the same whether frames are
    drawn all at once or in batches (so a batched `gen check` sees the same inputs as an unbatched one)."""
    values: tuple        # per channel: float32 inputs, one for each code the input chain can produce
    shape: tuple         # IR shape (H, W, C)
    layout: dict         # the graph input's layout (from_ir_layout)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        h, w, c = self.shape
        xs = np.empty((n, h, w, c), dtype=np.float32)
        for i in range(n):
            for ch in range(c):
                xs[i, ..., ch] = self.values[ch][rng.integers(0, len(self.values[ch]), size=(h, w))]
        return from_ir_layout(xs, self.layout).astype(np.float32)

    def batches(self, n: int, batch: int, rng: np.random.Generator):
        """n frames in batches of at most `batch` frames."""
        for start in range(0, n, batch):
            yield self.draw(min(batch, n - start), rng)


def input_sampler(design: Design, model=None) -> InputSampler:
    """We draw codes and search, per element, for a float32 value the input chain maps to that code: the decoded
    value (code - zp) * scale pushed back through the pre-processing, then verified by re-encoding.

    `model` (the graph the reference executes): its graph input's QONNX datatype annotation, if any, restricts
    the candidates to the values it allows - qonnx's executor rejects any other input ("Rounding error is too
    high to match set QONNX datatype"), and they could never reach a design built for that input anyway."""
    inp = design.layers[0]
    t = design.tensors[inp.output]
    chain = [op_from_json(o) if isinstance(o, dict) else o for o in inp.chain]
    # candidate float values: a dense grid over the plausible input range, keep those hitting distinct codes
    grid = _input_grid(chain, t, input_datatype(model))
    cand = np.broadcast_to(grid[:, None], (grid.size, t.channels)).astype(np.float32)
    codes = chain_f32(chain, cand.reshape(grid.size, 1, 1, t.channels), axis=-1).reshape(grid.size, t.channels)
    values = tuple(grid[np.unique(codes[:, c], return_index=True)[1]] for c in range(t.channels))
    return InputSampler(values=values, shape=tuple(t.shape), layout=dict(inp.graph_layout, ir_shape=t.shape))


def sample_inputs(design: Design, n: int, rng: np.random.Generator, model=None) -> np.ndarray:
    """n random float inputs on the input quantiser's grid and the input's annotated grid (see input_sampler)."""
    return input_sampler(design, model).draw(n, rng)


def input_datatype(model):
    """The QONNX datatype annotated on the graph input (quantization_annotation 'finn_datatype', as qonnx's
    ModelWrapper.get_tensor_datatype reads it), when it restricts the input to a grid: an integer type (BIPOLAR,
    TERNARY, BINARY, INTn, UINTn) or a fixed-point one (FIXED<n,i>: 2^-(n-i) * INTn). None otherwise: no model,
    no annotation, or a float type (FLOAT32 is qonnx's default; SCALEDINT<n> states no scale, so no grid)."""
    if model is None or not model.graph.input:
        return None
    name = model.graph.input[0].name
    for ann in model.graph.quantization_annotation:
        if ann.tensor_name != name:
            continue
        for entry in ann.quant_parameter_tensor_names:
            if entry.key != "finn_datatype":
                continue
            from qonnx.core.datatype import DataType
            try:
                dt = DataType[entry.value]
            except (KeyError, ValueError, TypeError, AssertionError):
                raise GenError(f"graph input '{name}': unknown QONNX datatype annotation '{entry.value}' "
                               "(qonnx.core.datatype.DataType names it, e.g. BIPOLAR, INT8, FIXED<8,4>)") from None
            return dt if dt.is_integer() or dt.is_fixed_point() else None
    return None


def _annotated_values(dt, near: np.ndarray) -> np.ndarray:
    """float32 values the datatype `dt` allows: all of them when there are at most 2^16, otherwise the lattice
    points nearest to the candidates `near` and the two extremes (a 32-bit type has too many to enumerate)."""
    step = float(dt.scale_factor()) if dt.is_fixed_point() else 1.0
    lo, hi = int(round(dt.min() / step)), int(round(dt.max() / step))
    if hi - lo <= 2 ** 16:
        k = np.arange(lo, hi + 1, dtype=np.float64)
    else:
        k = np.unique(np.concatenate([np.clip(np.rint(near.astype(np.float64) / step), lo, hi), [lo, hi]]))
    vals = (k * step).astype(np.float32)
    # allowed() also drops 0 for BIPOLAR and extremes float32 cannot hold exactly (e.g. INT32's 2^31 - 1)
    return vals[np.asarray(dt.allowed(vals), dtype=bool)]


def _input_grid(chain, t, dt=None) -> np.ndarray:
    """float32 values to try as inputs: images k/255, the decoded codes, and a fine sweep of a range - those the
    input's annotated datatype `dt` allows, followed by that datatype's own values (see input_datatype)."""
    imgs = (np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float32)
    sweep = np.linspace(-64, 64, 2 ** 16 + 1, dtype=np.float32)
    scale = np.asarray(t.scale if t.scale else (1.0,), dtype=np.float32)
    codes = np.arange(t.lo, t.hi + 1, dtype=np.float32)
    deq = ((codes[:, None] - np.float32(t.zero_point)) * scale[None, :]).astype(np.float32).ravel()
    # order matters: sample_inputs takes, for each code, the first candidate reaching it, so images k/255 and
    # the decoded grid win over the sweep (whose clipped extremes would not be on the grid)
    grid = np.concatenate([imgs, deq, sweep]).astype(np.float32)
    if dt is None:
        return grid
    return np.concatenate([grid[np.asarray(dt.allowed(grid), dtype=bool)], _annotated_values(dt, grid)])
