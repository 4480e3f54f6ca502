"""The model door: checks on a freshly read ONNX model before anything interprets it.

A value that means nothing (NaN / Inf constants, zero or negative quantiser scales, bit widths that are not whole
numbers from 1 to 32, zero points off the integer grid), a version gen's readers do not know, or a graph that is
not a DAG would otherwise be built into hardware, crash a later pass or give a reference executor's raw message.
Each check raises a GenError naming the node / initialiser, the value and what to do.

Only constants the file holds (initialisers, Constant nodes) are checked here; constants computed by sub-graphs
are folded (and checked where they are used) by the lowering.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import GenError, node_error
from .thirdparty import third_party_message

# The oldest opset gen's lowering was written and tested for (FINN / QKeras exports use 9) and the newest the
# installed onnx library (which the reference executors read the model with) defines.
MIN_OPSET = 9
MAX_OPSET = onnx.defs.onnx_opset_version()
MIN_IR = 3                   # IR version 3 introduced opset_import, which every check above relies on
MAX_IR = onnx.IR_VERSION
MAX_QUANT_BITS = 32          # Quant bit widths: 1..32 (biases go up to 32; activations and weights to 8, checked
                             # where they are lowered)
FIX = "Fix the quantisation parameters in the exporter (Brevitas, QKeras, onnxruntime.quantization) and re-export"

# input positions of scales / zero points per quantising op: (scales, zero points)
QUANT_PARAMS = {
    "Quant": ((1,), (2,)), "BipolarQuant": ((1,), ()), "Trunc": ((1, 4), (2,)),
    "QuantizeLinear": ((1,), ()), "DequantizeLinear": ((1,), ()),
    "QLinearConv": ((1, 4, 6), ()), "QLinearMatMul": ((1, 4, 6), ()), "QGemm": ((1, 4, 7), ()),
    "QLinearAdd": ((1, 4, 6), ()), "QLinearMul": ((1, 4, 6), ()),
    "QLinearGlobalAveragePool": ((1, 3), ()), "QLinearAveragePool": ((1, 3), ()),
    "QLinearLeakyRelu": ((1, 3), ()), "QLinearSigmoid": ((1, 3), ()), "QLinearSoftmax": ((1, 3), ()),
}


def validate_model(model: onnx.ModelProto, path) -> None:
    """Every door check on a model just read from `path` (raises GenError on the first problem)."""
    check_not_empty(model, path)
    check_versions(model, path)
    check_graph_order(model)
    check_input_shapes(model)
    consts = constants(model)
    for node in model.graph.node:   # quantiser parameters first: their messages are the more specific
        check_qonnx_attributes(node)
        check_window_attributes(node)
        check_quantiser(node, consts)
        if node.op_type == "BatchNormalization":
            check_batchnorm(node, consts)
    check_finite_constants(model, consts)
    check_shapes(model)


def check_not_empty(model: onnx.ModelProto, path) -> None:
    # protobuf parses many byte strings (even a few junk bytes) as an empty ModelProto
    if not model.HasField("graph") or not model.graph.node:
        raise GenError(f"{path}: not an ONNX model (no graph nodes). Give a .onnx model exported by Brevitas, "
                       "QKeras or onnxruntime")


def check_versions(model: onnx.ModelProto, path) -> None:
    if not MIN_IR <= model.ir_version <= MAX_IR:
        raise GenError(f"{path}: ONNX IR version {model.ir_version} is not supported; supported: IR version "
                       f"{MIN_IR} to {MAX_IR}. Re-export the model with a current exporter")
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default:
        raise GenError(f"{path}: the model imports no default ONNX opset; supported: opset {MIN_OPSET} to "
                       f"{MAX_OPSET}. Re-export the model")
    if not MIN_OPSET <= default[0] <= MAX_OPSET:
        raise GenError(f"{path}: ONNX opset {default[0]} is not supported; supported: opset {MIN_OPSET} to "
                       f"{MAX_OPSET}. Re-export with an opset in that range (e.g. torch.onnx.export(..., "
                       f"opset_version=13))")


def check_graph_order(model: onnx.ModelProto) -> None:
    """Every node input exists and is computed before the node (ONNX requires topological order); a cycle is
    named as such, with the nodes on it."""
    g = model.graph
    producer = {}
    for n in g.node:
        for o in n.output:
            if o:
                producer.setdefault(o, n)
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    for n in g.node:
        for i in n.input:
            if i in known:
                continue
            if i not in producer:
                raise node_error(n, f"input '{i}' is neither a graph input, an initialiser nor any node's output",
                                 "The graph is broken; re-export the model")
            cycle = _cycle_through(producer, known, producer[i])
            if cycle:
                raise GenError("the graph has a cycle: " + " -> ".join(f"'{c.name}' ({c.op_type})" for c in cycle)
                               + ". An ONNX graph must be acyclic; re-export the model")
            raise node_error(n, f"input '{i}' is computed later, by node '{producer[i].name}'",
                             "ONNX requires nodes in topological order; sort the graph (onnx / qonnx SortGraph)")
        known.update(o for o in n.output if o)


def _cycle_through(producer: dict, known: set, start) -> list:
    """The nodes of a cycle reached from `start` by following producers of its inputs, or []."""
    path, on_path, seen = [], {}, set()

    def visit(n) -> list:
        if id(n) in on_path:
            return path[on_path[id(n)]:] + [n]
        if id(n) in seen:
            return []
        seen.add(id(n))
        on_path[id(n)] = len(path)
        path.append(n)
        for i in n.input:
            if i not in known and i in producer:
                found = visit(producer[i])
                if found:
                    return found
        path.pop()
        del on_path[id(n)]
        return []
    return visit(start)


def check_shapes(model: onnx.ModelProto) -> None:
    """ONNX's strict shape and type inference over the standard ops (custom-domain ops are skipped): wrong
    attribute values (a negative kernel size), initialisers of the wrong shape or type, inconsistent ranks."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    # exporters often omit the opset import of a custom domain (qonnx executes such models): import it here, so
    # the inference skips those ops instead of stopping at them
    imported = {o.domain for o in probe.opset_import}
    for dom in sorted({n.domain for n in probe.graph.node} - imported - {"", "ai.onnx"}):
        probe.opset_import.append(onnx.helper.make_opsetid(dom, 1))
    try:
        onnx.shape_inference.infer_shapes(probe, check_type=True, strict_mode=True, data_prop=True)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - InferenceError, ValidationError, and a few more for broken protos
        why = third_party_message("ONNX shape inference", e)
        raise GenError(f"the model's shapes or types are inconsistent ({why}). Fix or re-export the model") from None


def check_qonnx_attributes(node) -> None:
    """QONNX quantisers: the attributes qonnx's own executor requires, with values it knows."""
    if node.op_type not in ("Quant", "BipolarQuant", "Trunc") or not (
            node.domain.startswith("qonnx") or node.domain.startswith("finn") or node.domain == "onnx.brevitas"):
        return
    from ..ir.elementwise import ROUNDING_MODES
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    required = {"Quant": ("signed", "narrow"), "Trunc": ("rounding_mode",)}.get(node.op_type, ())
    for name in required:
        if name not in a:
            raise node_error(node, f"attribute '{name}' is missing (qonnx requires it)", FIX)
    for name in ("signed", "narrow"):
        if name in a and a[name] not in (0, 1):
            raise node_error(node, f"attribute {name}={a[name]!r}: expected 0 or 1", FIX)
    mode = a.get("rounding_mode")
    if mode is not None:
        mode = mode.decode("utf-8", "replace") if isinstance(mode, bytes) else str(mode)
        if mode.upper() not in ROUNDING_MODES:
            raise node_error(node, f"rounding_mode {mode!r} is not one of {', '.join(sorted(ROUNDING_MODES))}", FIX)


WINDOW_OPS = ("Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "QLinearAveragePool")


def check_window_attributes(node) -> None:
    """Convolution / pooling windows: sizes, strides, dilations and groups >= 1, pads >= 0 (ONNX's shape
    inference does not reject all of these, and a negative one would be built into address arithmetic)."""
    if node.op_type not in WINDOW_OPS:
        return
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    for name, lo in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("pads", 0), ("group", 1)):
        v = a.get(name)
        if v is None:
            continue
        vals = list(v) if isinstance(v, (list, tuple)) else [v]
        if not all(isinstance(x, int) and x >= lo for x in vals):
            raise node_error(node, f"attribute {name}={v!r}: every value must be a whole number >= {lo}", "Fix or "
                             "re-export the model")


def check_input_shapes(model: onnx.ModelProto) -> None:
    """gen streams one frame at a time: a fixed batch axis other than 1, or an empty axis, means nothing here."""
    inits = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value <= 0:
                raise GenError(f"input '{vi.name}': axis {k} has size {d.dim_value}; every axis needs a size >= 1. "
                               "Re-export the model with its real input shape")
        if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value != 1:
            raise GenError(f"input '{vi.name}': batch size {dims[0].dim_value}; gen streams one frame at a time. "
                           "Export the model with batch size 1 or a dynamic batch axis")


def constants(model: onnx.ModelProto) -> dict:
    """Name -> array of every initialiser and Constant node value (an unreadable one is a GenError)."""
    out = {}
    for init in model.graph.initializer:
        try:
            out[init.name] = numpy_helper.to_array(init)
        except Exception as e:  # noqa: BLE001 - onnx raises several types for inconsistent tensors
            raise GenError(f"initialiser '{init.name}': unreadable tensor ({type(e).__name__}: {e}). The file is "
                           "damaged; re-export the model") from None
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output:
            try:
                out[n.output[0]] = np.asarray(onnx.helper.get_attribute_value(n.attribute[0]) if
                                              n.attribute[0].name != "value" else
                                              numpy_helper.to_array(n.attribute[0].t))
            except Exception as e:  # noqa: BLE001
                raise node_error(n, f"unreadable constant ({type(e).__name__}: {e})", "Re-export the model") \
                    from None
    return out


def check_finite_constants(model: onnx.ModelProto, consts: dict) -> None:
    """NaN never means anything; +-Inf only as a Clip bound (an open side)."""
    users: dict[str, list] = {}
    for n in model.graph.node:
        for k, i in enumerate(n.input):
            users.setdefault(i, []).append((n, k))
    for name, arr in consts.items():
        if not np.issubdtype(arr.dtype, np.floating) or np.isfinite(arr).all():
            continue
        clip_bound = users.get(name) and all(n.op_type == "Clip" and k in (1, 2) for n, k in users[name])
        if clip_bound and not np.isnan(arr).any():
            continue
        bad = np.argwhere(~np.isfinite(arr))[0].tolist() if arr.ndim else []
        used = ", ".join(f"'{n.name or n.output[0]}' ({n.op_type})" for n, _ in users.get(name, [])[:3])
        raise GenError(f"constant '{name}'{f' (used by {used})' if used else ''} contains NaN or Inf"
                       f"{f' at {bad}' if bad else ''}: every weight and parameter must be a finite number. "
                       "Re-export from a trained checkpoint without NaN/Inf values")


def check_quantiser(node, consts: dict) -> None:
    scales, zps = QUANT_PARAMS.get(node.op_type, ((), ()))
    if node.op_type == "QLinearConcat":
        scales = tuple(range(0, len(node.input), 3))     # y_scale, then (x, x_scale, x_zp) per input
    for i in scales:
        if i < len(node.input) and node.input[i] in consts:
            check_scale(node, consts[node.input[i]], i)
            if node.op_type not in ("Quant", "BipolarQuant", "Trunc"):
                check_zero_point_matches(node, consts, i)
    if node.op_type == "DequantizeLinear" and len(node.input) > 2 and node.input[2] in consts:
        zp = consts[node.input[2]]
        if zp.dtype == np.int32 and np.any(zp != 0):
            raise node_error(node, f"int32 zero point {int(zp.ravel()[np.argmax(zp.ravel() != 0)])}: ONNX "
                                   "defines int32 dequantisation without a zero point (it must be 0)", FIX)
    if node.op_type in ("Quant", "Trunc"):
        bit_inputs = (3,) if node.op_type == "Quant" else (3, 5 if len(node.input) > 5 else 4)
        bits = [check_bits(node, consts[node.input[i]]) for i in bit_inputs
                if i < len(node.input) and node.input[i] in consts]
        if node.op_type == "Quant" and bits:
            for i in zps:
                if i < len(node.input) and node.input[i] in consts:
                    check_zero_point(node, consts[node.input[i]], bits[0])


def _numbers(node, arr: np.ndarray, what: str) -> np.ndarray:
    """A quantiser parameter as float64, or an error if it does not hold numbers (a string tensor, ...)."""
    arr = np.asarray(arr)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise node_error(node, f"{what} holds {arr.dtype} values, not numbers", FIX)
    return arr.astype(np.float64)


def check_zero_point_matches(node, consts: dict, i: int) -> None:
    """ONNX Q/DQ and QLinear* ops: the zero point (the input after its scale) has the scale's size."""
    if i + 1 < len(node.input) and node.input[i + 1] in consts:
        ns, nz = np.asarray(consts[node.input[i]]).size, np.asarray(consts[node.input[i + 1]]).size
        if ns != nz:
            raise node_error(node, f"scale '{node.input[i]}' has {ns} values but its zero point '{node.input[i + 1]}' "
                                   f"has {nz}: they must match (one per tensor or one per channel)", FIX)


def check_scale(node, scale: np.ndarray, i: int) -> None:
    s = _numbers(node, scale, "the scale").ravel()
    bad = ~(np.isfinite(s) & (s > 0))
    if s.size == 0 or bad.any():
        k = int(np.argmax(bad)) if s.size else 0
        where = f"[{k}]" if s.size > 1 else ""   # a per-channel scale: the (flat) channel index
        val = s[k] if s.size else "(empty)"
        raise node_error(node, f"scale{where} = {val} (input {i}, '{node.input[i]}') is not a positive finite "
                               "number; a quantiser scale must be > 0 and finite", FIX)


def check_bits(node, bits: np.ndarray) -> int:
    b = _numbers(node, bits, "the bit width")
    if b.size != 1 or not np.isfinite(b).all() or float(b.ravel()[0]) != int(b.ravel()[0]) \
            or not 1 <= int(b.ravel()[0]) <= MAX_QUANT_BITS:
        shown = b.ravel()[0] if b.size == 1 else f"of shape {b.shape}"
        raise node_error(node, f"bit width {shown} is not supported: a bit width is one whole number from 1 to "
                               f"{MAX_QUANT_BITS} (activations and weights: at most 8)", FIX)
    return int(b.ravel()[0])


def check_zero_point(node, zp: np.ndarray, bits: int) -> None:
    """A QONNX Quant zero point is added to x / scale before clipping to the code range: on the integer grid and
    within that range, or the quantiser's output does not mean what its bit width says."""
    a = {x.name: onnx.helper.get_attribute_value(x) for x in node.attribute}
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    lo = -(1 << (bits - 1)) + int(narrow) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - int(narrow)
    z = _numbers(node, zp, "the zero point").ravel()
    for v in z:
        if not np.isfinite(v) or v != np.round(v) or not lo <= v <= hi:
            raise node_error(node, f"zero point {v:g} is off the integer grid of this {bits}-bit "
                                   f"{'signed' if signed else 'unsigned'} quantiser: it must be a whole number from "
                                   f"{lo} to {hi}", FIX)


def check_batchnorm(node, consts: dict) -> None:
    if len(node.input) < 5 or node.input[4] not in consts:
        return
    eps = next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-5)
    var = _numbers(node, consts[node.input[4]], "the variance") + float(eps)
    if (var <= 0).any():
        c = int(np.argmax(var.ravel() <= 0))
        raise node_error(node, f"variance + epsilon of channel {c} is {var.ravel()[c]:g}: a variance must be "
                               "non-negative (and variance + epsilon > 0)", "Re-export from a trained checkpoint")
