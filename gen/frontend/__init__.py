"""Frontends: read an ONNX file, detect its flavour (QONNX | QDQ | QOperator) and lower it to the IR."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..errors import GenError, node_error
from ..ir.design import Design
from .channels_last import from_channels_last_domain, to_channels_first
from .thirdparty import third_party
from .validate import validate_model

QONNX_OPS = {"Quant", "BipolarQuant", "Trunc", "MultiThreshold", "IntQuant"}
QONNX_DOMAINS = {"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general", "finn"}
QOP_OPS = {"QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "QLinearAdd",
           "QLinearGlobalAveragePool", "QLinearConcat", "QLinearMul", "QLinearAveragePool", "QLinearLeakyRelu",
           "QLinearSigmoid", "QLinearSoftmax"}
QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass
class Loaded:
    model: onnx.ModelProto       # the graph the reference executes (after qonnx cleanup for QONNX)
    flavour: str
    name: str
    path: Path


def detect_flavour(model: onnx.ModelProto) -> str:
    ops = {(n.op_type, n.domain) for n in model.graph.node}
    if any(op in QONNX_OPS and (dom in QONNX_DOMAINS or dom.startswith("finn") or dom.startswith("qonnx"))
           for op, dom in ops):
        return "qonnx"
    names = {op for op, _ in ops}
    if names & QOP_OPS:
        return "qop"
    if names & QDQ_OPS:
        return "qdq"
    raise GenError("the model is not quantised (no Quant/BipolarQuant, QuantizeLinear/DequantizeLinear or "
                   "QLinear* nodes): gen builds integer hardware. Quantise it first, e.g. with Brevitas, QKeras "
                   "or onnxruntime.quantization.quantize_static")


def read_model(path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise GenError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise GenError(f"{path}: empty file. Give a .onnx model exported by Brevitas, QKeras or onnxruntime")
    try:
        return onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf raises several types for garbage
        raise GenError(f"{path}: not an ONNX file ({type(e).__name__}). Give a .onnx model exported by Brevitas, "
                       "QKeras or onnxruntime") from None


def prepare(model: onnx.ModelProto, flavour: str) -> onnx.ModelProto:
    """The graph both we and the reference executor see: qonnx cleanup for QONNX, the model itself otherwise."""
    if flavour == "qonnx":
        # qonnx's channels-last ops (N,H,W,C Conv / MaxPool / BatchNorm) as Transposes around the standard ops:
        # the lowering knows those, and qonnx's cleanup needs no value_info for them (see channels_last.py)
        from_channels_last_domain(model)
        # qonnx executes one fixed shape: pin a dynamic batch axis to 1 (gen streams one frame at a time)
        for vi in list(model.graph.input) + list(model.graph.output):
            dims = vi.type.tensor_type.shape.dim
            if len(dims) and not dims[0].HasField("dim_value"):
                dims[0].dim_value = 1
        del model.graph.value_info[:]
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
        with warnings.catch_warnings(), third_party("qonnx cleanup"):
            warnings.simplefilter("ignore")
            cleaned = cleanup_model(ModelWrapper(model))
        # channels-last forms (QKeras / tf2onnx: Concat on axis 3, Resize with N,H,W,C scales, an NHWC input
        # behind an element-wise op) rewritten exactly into N,C,H,W ones; both the reference and we see them
        if to_channels_first(cleaned.model):
            from qonnx.transformation.infer_shapes import InferShapes
            with warnings.catch_warnings(), third_party("qonnx shape inference (after the channels-last rewrite)"):
                warnings.simplefilter("ignore")
                cleaned = cleaned.transform(InferShapes())
        with third_party("qonnx shape lookup"):
            check_shapes_known(cleaned)
        return cleaned.model
    with third_party("ONNX checker"):
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as e:
            raise GenError(f"the ONNX checker rejects the model: {str(e).splitlines()[0]}") from None
    return model


def check_shapes_known(wrapper) -> None:
    """qonnx's executor (the reference of `gen check`) needs every tensor's shape after its shape inference."""
    for node in wrapper.graph.node:
        for o in node.output:
            if o and wrapper.get_tensor_shape(o) is None:
                raise node_error(node, f"the shape of its output '{o}' cannot be inferred (qonnx shape inference)",
                                 "Check the node's attributes and input shapes, or re-export the model")


def load(path) -> Loaded:
    path = Path(path)
    model = read_model(path)
    validate_model(model, path)
    flavour = detect_flavour(model)
    return Loaded(model=prepare(model, flavour), flavour=flavour, name=path.stem, path=path)


def lower(loaded: Loaded) -> Design:
    from .lowering import Lowering
    return Lowering(loaded.model, loaded.flavour, loaded.name).run()


def load_design(path) -> tuple[Loaded, Design]:
    loaded = load(path)
    return loaded, lower(loaded)
