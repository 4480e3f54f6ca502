"""Shared pieces of the random model generators.

- `GenModel`: a generated model plus what a test needs to feed it (`sample`) and to run it (`reference_run`).
- `InputGrid`: the set of float inputs that the model's first quantiser maps exactly to integer codes.
- `GraphBuilder`: builds an ONNX graph node by node with onnx.helper and executes every node as soon as it is
  added ("eager") on a small calibration batch, so that generators can pick quantisation scales, BatchNorm
  statistics etc. from the actual value ranges of the tensors (no dead or saturated layers).
- small random helpers (`rand_scale`, `conv_geometry`...).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
BREVITAS_DOMAIN = "onnx.brevitas"  # older Brevitas exports
FINN_DOMAIN = "finn.custom_op.general"  # older FINN / finn-base models
QONNX_DOMAINS = (QONNX_DOMAIN, BREVITAS_DOMAIN, FINN_DOMAIN)
MS_DOMAIN = "com.microsoft"

FLAVOURS = ("qonnx", "qdq", "qop")


# --------------------------------------------------------------------------------------------------------------
# GenModel
# --------------------------------------------------------------------------------------------------------------
@dataclass
class InputGrid:
    """Inputs on the first quantiser's grid.

    A code k is drawn uniformly from [qmin, qmax] (or from `codes` when given) and turned into a float32 input:
    - `divisor` is None: x = float32(k - zero_point) * float32(scale)   (the quantiser's own grid)
    - `divisor` is set:  x = float32(k) / float32(divisor)              (an image k/255 that a float
      pre-processing such as 2x-1 or (x-mean)/std maps onto the quantiser's grid)
    """

    scale: float = 1.0
    zero_point: int = 0
    qmin: int = 0
    qmax: int = 255
    divisor: float | None = None
    codes: tuple | None = None

    def sample_codes(self, shape, rng: np.random.Generator) -> np.ndarray:
        if self.codes is not None:
            return rng.choice(np.asarray(self.codes, dtype=np.int64), size=shape)
        return rng.integers(self.qmin, self.qmax + 1, size=shape, dtype=np.int64)

    def to_float(self, codes: np.ndarray) -> np.ndarray:
        if self.divisor is not None:
            return (codes.astype(np.float32) / np.float32(self.divisor)).astype(np.float32)
        return ((codes - self.zero_point).astype(np.float32) * np.float32(self.scale)).astype(np.float32)


@dataclass
class GenModel:
    model: onnx.ModelProto  # the model
    flavour: str  # "qonnx" | "qdq" | "qop"
    kind: str  # which op mix
    input_name: str
    input_shape: tuple  # concrete shape with batch 1 (NCHW, or NHWC when the model takes NHWC)
    grid: InputGrid = field(default_factory=InputGrid)
    info: dict = field(default_factory=dict)  # generator parameters, for debugging / test ids
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n float32 inputs on the input quantiser's grid, shape (n, *input_shape[1:])."""
        shape = (n, *self.input_shape[1:])
        return self.grid.to_float(self.grid.sample_codes(shape, rng))

    def __getstate__(self):  # the executor cache (onnxruntime sessions) is neither picklable nor copyable
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def __deepcopy__(self, memo):
        new = copy.copy(self)
        new.__dict__.update(copy.deepcopy(self.__getstate__(), memo))
        return new

    def op_types(self) -> set:
        return {nd.op_type for nd in self.model.graph.node}

    @property
    def output_name(self) -> str:
        return self.model.graph.output[0].name

    def __repr__(self) -> str:  # short, for hypothesis failure reports
        return (
            f"GenModel(flavour={self.flavour!r}, kind={self.kind!r}, input_shape={self.input_shape}, "
            f"nodes={[nd.op_type for nd in self.model.graph.node]}, info={self.info})"
        )


def reference_run(gm: GenModel, x: np.ndarray, **kw) -> np.ndarray:
    """Run the flavour's reference executor on x (batch on axis 0), return the first output.

    qonnx: `cleanup_model` (with the batch size set to len(x)) then `execute_onnx`.
    qdq / qop: onnxruntime InferenceSession, CPUExecutionProvider. Keyword `opt_level` (an
    onnxruntime.GraphOptimizationLevel) selects ORT's graph optimisation level, default ORT_DISABLE_ALL so that
    QDQ graphs run node by node as written (float semantics); pass ORT_ENABLE_ALL for ORT's fused kernels.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if gm.flavour == "qonnx":
        return _qonnx_run(gm, x)
    return _ort_run(gm, x, kw.get("opt_level"))


def _model_key(model: onnx.ModelProto) -> int:
    """Cache key of the model's current content (a test may edit gm.model after a first run)."""
    return hash(model.SerializeToString(deterministic=True))


def _qonnx_run(gm: GenModel, x: np.ndarray) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    n = x.shape[0]
    key = ("qonnx", n, _model_key(gm.model))
    if key not in gm._cache:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mw = ModelWrapper(copy.deepcopy(gm.model))
            gm._cache[key] = cleanup_model(mw, override_inpsize=n)
    mw = gm._cache[key]
    iname = mw.graph.input[0].name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = execute_onnx(mw, {iname: x})
    return out[mw.graph.output[0].name]


def _ort_run(gm: GenModel, x: np.ndarray, opt_level=None) -> np.ndarray:
    import onnxruntime as ort

    if opt_level is None:
        opt_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    key = ("ort", int(opt_level), _model_key(gm.model))
    if key not in gm._cache:
        so = ort.SessionOptions()
        so.graph_optimization_level = opt_level
        so.log_severity_level = 3
        so.intra_op_num_threads = 1
        gm._cache[key] = ort.InferenceSession(
            gm.model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
    sess = gm._cache[key]
    return sess.run(None, {gm.input_name: x})[0]


# --------------------------------------------------------------------------------------------------------------
# random helpers
# --------------------------------------------------------------------------------------------------------------
def f32(v) -> np.float32:
    return np.float32(v)


def rand_scale(rng: np.random.Generator, amax: float, qmax: int, pow2_prob: float = 0.3) -> np.float32:
    """A scale so that amax maps near qmax: random float32 (jittered) or, with pow2_prob, a power of two."""
    amax = float(amax)
    if not np.isfinite(amax) or amax <= 1e-12:
        amax = 1.0
    base = amax / max(int(qmax), 1)
    if rng.random() < pow2_prob:
        return f32(2.0 ** np.round(np.log2(base)))
    return f32(base * rng.uniform(0.8, 1.2))


def rand_channel_scales(rng: np.random.Generator, amax: np.ndarray, qmax: int, pow2_prob: float = 0.3):
    amax = np.where(np.isfinite(amax) & (amax > 1e-12), amax, 1.0).astype(np.float64)
    base = amax / max(int(qmax), 1)
    if rng.random() < pow2_prob:
        return (2.0 ** np.round(np.log2(base))).astype(np.float32)
    return (base * rng.uniform(0.8, 1.2, size=base.shape)).astype(np.float32)


def divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def conv_geometry(rng: np.random.Generator, h: int, w: int, kmax: int = 5, smax: int = 3, pmax: int = 2):
    """Random square kernel k, stride s, symmetric pad p with an output of at least 1x1."""
    kw = np.array([1.0, 1.0, 3.0, 1.0, 1.0][:kmax])
    sw = np.array([5.0, 3.5, 1.5][:smax])
    for _ in range(100):
        k = int(rng.choice(np.arange(1, len(kw) + 1), p=kw / kw.sum()))
        s = int(rng.choice(np.arange(1, len(sw) + 1), p=sw / sw.sum()))
        p = int(rng.integers(0, min(pmax, k - 1) + 1))
        if min(h, w) + 2 * p >= k:
            return k, s, p
    return 1, 1, 0


def pool_geometry(rng: np.random.Generator, h: int, w: int, kmax: int = 3, smax: int = 3, allow_pad=True):
    """Random pool kernel k, stride s, pad p <= k//2 with an output of at least 1x1."""
    for _ in range(100):
        k = int(rng.integers(1, kmax + 1))
        s = int(rng.integers(1, smax + 1))
        p = int(rng.integers(0, k // 2 + 1)) if allow_pad else 0
        if min(h, w) + 2 * p >= k and not (k == 1 and s == 1):
            return k, s, p
    return 1, 1, 0


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


# --------------------------------------------------------------------------------------------------------------
# GraphBuilder: onnx.helper graph construction with eager execution on a calibration batch
# --------------------------------------------------------------------------------------------------------------
def _np_to_onnx_dtype(dt) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dt))


def _exec_qonnx_custom(node: onnx.NodeProto, ins: list) -> list:
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant
    from qonnx.custom_op.general.trunc import trunc_v1

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    rm = attrs.get("rounding_mode", b"ROUND")
    rm = rm.decode() if isinstance(rm, bytes) else rm
    if node.op_type == "Quant":
        y = int_quant(ins[0], ins[1], ins[2], ins[3], attrs.get("signed", 1), attrs.get("narrow", 0), rm)
    elif node.op_type == "BipolarQuant":
        y = binary_quant(ins[0], ins[1])
    elif node.op_type == "Trunc":
        rm = attrs.get("rounding_mode", b"FLOOR")
        rm = rm.decode() if isinstance(rm, bytes) else rm
        y = trunc_v1(ins[0], ins[1], ins[2], ins[3], ins[4], rm)
    else:
        raise NotImplementedError(node.op_type)
    return [np.asarray(y, dtype=np.float32)]


def _exec_ort_node(node: onnx.NodeProto, feeds: dict, opsets: dict, ir_version: int) -> list:
    import onnxruntime as ort

    ins = [
        helper.make_tensor_value_info(k, _np_to_onnx_dtype(v.dtype), list(v.shape)) for k, v in feeds.items()
    ]
    g = helper.make_graph([node], "eager", ins, [])
    m = helper.make_model(
        g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()], ir_version=ir_version
    )
    m = onnx.shape_inference.infer_shapes(m)
    vis = {vi.name: vi for vi in m.graph.value_info}
    for o in node.output:
        m.graph.output.append(vis[o])
    del m.graph.value_info[:]
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


class GraphBuilder:
    """Builds a graph with onnx.helper; every node added is executed at once on the calibration batch.

    `values[name]` holds the calibration-batch value of every tensor (initializers included).
    """

    def __init__(self, rng: np.random.Generator, opset: int = 13, ir_version: int = 8, name: str = "gen"):
        self.rng = rng
        self.opset = opset
        self.ir_version = ir_version
        self.name = name
        self.nodes: list = []
        self.inits: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.values: dict = {}
        self.opsets: dict = {"": opset}
        self._names: dict = {}

    # names ------------------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        i = self._names.get(hint, 0)
        self._names[hint] = i + 1
        return f"{hint}_{i}"

    # graph parts ------------------------------------------------------------------------------------------
    def add_input(self, name: str, calib: np.ndarray, batch_param: str = "N") -> str:
        calib = np.asarray(calib)
        shape = [batch_param, *calib.shape[1:]]
        self.inputs.append(helper.make_tensor_value_info(name, _np_to_onnx_dtype(calib.dtype), shape))
        self.values[name] = calib
        return name

    def const(self, arr, hint: str = "c", dtype=np.float32) -> str:
        arr = np.asarray(arr, dtype=dtype)
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(arr, name))
        self.values[name] = arr
        return name

    def use_domain(self, domain: str, version: int = 1):
        if domain and domain not in self.opsets:
            self.opsets[domain] = version

    def op(self, op_type: str, inputs: list, hint: str | None = None, domain: str = "", n_out: int = 1, **attrs):
        """Add a node; returns its output name (or list of names when n_out > 1)."""
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        node = helper.make_node(op_type, list(inputs), outs, name=self.fresh("n_" + op_type), domain=domain, **attrs)
        self.use_domain(domain)
        self.nodes.append(node)
        feeds = {i: self.values[i] for i in inputs if i}
        if domain in QONNX_DOMAINS:
            res = _exec_qonnx_custom(node, [self.values[i] for i in inputs])
        else:
            res = _exec_ort_node(node, feeds, self.opsets, self.ir_version)
        for o, r in zip(outs, res):
            self.values[o] = np.asarray(r)
        return outs[0] if n_out == 1 else outs

    def value(self, name: str) -> np.ndarray:
        return self.values[name]

    def shape(self, name: str) -> tuple:
        """Per-sample shape (without the batch axis)."""
        return tuple(self.values[name].shape[1:])

    def add_output(self, name: str, batch_param: str = "N"):
        v = self.values[name]
        shape = [batch_param, *v.shape[1:]]
        self.outputs.append(helper.make_tensor_value_info(name, _np_to_onnx_dtype(v.dtype), shape))

    def build(self, producer: str = "tests.modelgen") -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(
            g,
            opset_imports=[helper.make_opsetid(d, v) for d, v in self.opsets.items()],
            ir_version=self.ir_version,
            producer_name=producer,
        )
        return m
