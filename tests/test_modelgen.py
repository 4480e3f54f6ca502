"""Fast checks of the random model generators in tests/modelgen.

Every kind of every flavour, two seeds each: `onnx.checker.check_model` passes, `sample(4, rng)` lies on the
first quantiser's grid, the reference executor runs it with a finite output, batch 4 == 4 x batch 1 (dynamic
batch axis), and the ops each flavour must exercise all appear.

ONNX op types produced (collected over 20 seeds per kind; "(x/20)" = in x of 20 models, else in all):

QONNX (opset 13 + custom domain qonnx.custom_op.general | onnx.brevitas | finn.custom_op.general, random per
model; Quant / BipolarQuant / Trunc below may carry any of the three domains):
  conv           Conv, Quant, Relu
  depthwise      Conv, Quant, Relu (Conv with group = channels)
  matmul         MatMul, Quant, Relu, Transpose, Add (bias), Flatten | Reshape
  gemm           Gemm, Quant, Relu, Flatten | Reshape
  batchnorm      BatchNormalization, Conv | MatMul | Gemm, Quant, Relu, LeakyRelu, Add, Transpose
  relu           Conv, Relu, Quant, BatchNormalization, GlobalAveragePool, Gemm, Flatten | Reshape
  leakyrelu      Conv, LeakyRelu, Quant, BatchNormalization, GlobalAveragePool, Gemm, Flatten | Reshape
  clip           Conv, Clip, Quant, BatchNormalization, GlobalAveragePool, Gemm, Flatten | Reshape
  maxpool        Conv, Relu, Quant, MaxPool
  avgpool        Conv, Relu, Quant, AveragePool
  truncavgpool   Conv, Relu, Quant, AveragePool, Mul, Trunc
  globalavgpool  Conv, Relu, Quant, GlobalAveragePool, Flatten | Reshape, Gemm | MatMul, BatchNormalization, Add
  residual       Conv, Relu, Quant, Add, BatchNormalization
  preprocess     Mul, Sub, Div, Add (float pre-processing of a k/255 image), Quant, Conv, Relu, MaxPool
  flatten        Conv, Relu, Quant, Flatten | Reshape, MatMul | Gemm, Add, Transpose, MaxPool
  nhwc           Transpose, Quant, Conv, Relu, Reshape, MatMul, Add, Softmax (QKeras style, quantised biases)
  concat         Conv, Relu, LeakyRelu, Quant, Concat, MaxPool
  resize         Conv, Relu, Quant, Resize
  softmax        Conv, Relu, Quant, Softmax, Gemm | MatMul, Add, Flatten | Reshape, GlobalAveragePool, Transpose
  argmax         Conv, Relu, Quant, ArgMax, Gemm | MatMul, Add, Flatten | Reshape, GlobalAveragePool, MaxPool
  bipolar        BipolarQuant, MatMul, Transpose, BatchNormalization, Mul, Sub, Reshape | Flatten, Quant, Conv,
                 MaxPool
  mixed          any of the above chained
  reducemean     Quant, Conv, Relu, ReduceMean over H / W (keepdims 0/1), Gemm | MatMul (tests/modelgen/pools.py)
QDQ (opset 13; int4: opset 21):
  conv           QuantizeLinear, DequantizeLinear, Conv, Relu, Clip
  depthwise      QuantizeLinear, DequantizeLinear, Conv, Relu, Clip
  matmul         QuantizeLinear, DequantizeLinear, MatMul, Add, Relu, Flatten | Reshape
  gemm           QuantizeLinear, DequantizeLinear, Gemm, Relu, Flatten | Reshape
  maxpool        QuantizeLinear, DequantizeLinear, Conv, Relu, MaxPool
  avgpool        QuantizeLinear, DequantizeLinear, Conv, Relu, AveragePool
  globalavgpool  QuantizeLinear, DequantizeLinear, Conv, Relu, GlobalAveragePool, Flatten | Reshape, Gemm | MatMul,
                 Add
  residual       QuantizeLinear, DequantizeLinear, Conv, Relu, Add
  concat         QuantizeLinear, DequantizeLinear, Conv, Relu, Concat, MaxPool
  flatten        QuantizeLinear, DequantizeLinear, Conv, Relu, Flatten | Reshape, MatMul | Gemm, Add, MaxPool
  mixed          QuantizeLinear, DequantizeLinear, Conv, Relu, Clip, Add, AveragePool, MaxPool, GlobalAveragePool,
                 Concat, Flatten | Reshape, MatMul | Gemm
  int4           QuantizeLinear, DequantizeLinear (int4 / uint4 weights), Conv | Gemm | MatMul, Relu, Clip, Add,
                 Flatten | Reshape
  qcdq           QuantizeLinear, Clip, DequantizeLinear (Brevitas QCDQ), Conv, Relu, MaxPool, GlobalAveragePool,
                 Flatten, Gemm
  qcdq_layout    QCDQ weights moved by Transpose / Reshape after the DQ, MatMul(x, Transpose(W)), Flatten /
                 Reshape / Shape / Squeeze around the classifier (tests/modelgen/qcdq.py)
  reducemean     QuantizeLinear, DequantizeLinear, Conv, Relu, ReduceMean (axes attribute at opset 13, input at
                 opset 18; keepdims 0/1), Gemm | MatMul (tests/modelgen/pools.py)
QOperator (opset 13 + com.microsoft):
  conv           QuantizeLinear, QLinearConv, DequantizeLinear, Relu, Clip
  depthwise      QuantizeLinear, QLinearConv, DequantizeLinear, Relu, Clip
  matmul         QuantizeLinear, QLinearMatMul, QLinearAdd, DequantizeLinear, Relu
  gemm           QuantizeLinear, QGemm, DequantizeLinear, Relu
  maxpool        QuantizeLinear, QLinearConv, MaxPool, DequantizeLinear, Relu
  avgpool        QuantizeLinear, QLinearConv, QLinearAveragePool, DequantizeLinear, Relu
  globalavgpool  QuantizeLinear, QLinearConv, QLinearGlobalAveragePool (GlobalAveragePool in float when ORT
                 declines), Flatten | Reshape, QGemm | QLinearMatMul, QLinearAdd, DequantizeLinear, Relu
  residual       QuantizeLinear, QLinearConv, QLinearAdd, DequantizeLinear, Relu
  concat         QuantizeLinear, QLinearConv, QLinearConcat, MaxPool, DequantizeLinear, Relu
  leakyrelu      QuantizeLinear, QLinearConv, QLinearLeakyRelu, DequantizeLinear
  mixed          any of the above chained
  convinteger    QuantizeLinear, ConvInteger, Cast, Mul, Add, Relu, MaxPool, Flatten, MatMulInteger,
                 DequantizeLinear
  matmulinteger  QuantizeLinear, MatMulInteger, Cast, Mul, Add, Relu, Flatten, DequantizeLinear
  reducemean     QuantizeLinear, QLinearConv, DequantizeLinear, float ReduceMean, QuantizeLinear, QGemm
  floatpool      QuantizeLinear, QLinearConv, DequantizeLinear, float AveragePool | GlobalAveragePool (left in
                 float by quantize_static's nodes_to_exclude), QuantizeLinear
Family generators beside these (own modules, own tests): concats.py (Concat of differently quantised inputs,
every flavour), channels_last.py (QKeras-style NHWC graphs and qonnx channels-last ops), bipolar_out.py
(BipolarQuant outputs and class heads over non-standard score encodings).
"""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.modelgen import (
    QDQ_KINDS,
    QONNX_KINDS,
    QOP_KINDS,
    qdq_model,
    qdq_models,
    qonnx_model,
    qonnx_models,
    qop_model,
    qop_models,
    reference_run,
)

SEEDS = (0, 1)
COVERAGE_SEEDS = range(5)
_MAKERS = {"qonnx": qonnx_model, "qdq": qdq_model, "qop": qop_model}
_KINDS = {"qonnx": QONNX_KINDS, "qdq": QDQ_KINDS, "qop": QOP_KINDS}
CASES = [(fl, kind, seed) for fl, kinds in _KINDS.items() for kind in kinds for seed in SEEDS]

REQUIRED = {
    "qonnx": [
        "Quant", "BipolarQuant", "Trunc", "Conv", "MatMul", "Gemm", "BatchNormalization", "Relu", "LeakyRelu",
        "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Mul", "Sub", "Div", ("Flatten", "Reshape"),
        "Transpose", "Concat", "Resize", "Softmax", "ArgMax",
    ],
    "qdq": [
        "QuantizeLinear", "DequantizeLinear", "Clip", "Conv", "MatMul", "Gemm", "MaxPool", "GlobalAveragePool",
        "Add", "Concat",
    ],
    "qop": [
        "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm", "QLinearAdd",
        "QLinearGlobalAveragePool", "QLinearConcat", "MaxPool",
    ],
}


@functools.cache
def _gen(flavour: str, kind: str, seed: int):
    return _MAKERS[flavour](kind, np.random.default_rng(seed))


def _first_quantiser_codes(gm, x):
    """(float codes before rounding, qmin, qmax) of the model's first activation quantiser on input x."""
    if gm.flavour == "qonnx":
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.util.cleanup import cleanup_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mw = cleanup_model(ModelWrapper(copy.deepcopy(gm.model)), override_inpsize=x.shape[0])
            ctx = execute_onnx(mw, {mw.graph.input[0].name: x}, return_full_exec_context=True)
        node = next(
            nd for nd in mw.graph.node
            if nd.op_type in ("Quant", "BipolarQuant") and mw.get_initializer(nd.input[0]) is None
        )
        if node.op_type == "BipolarQuant":
            return None
        v, s, z = ctx[node.input[0]], ctx[node.input[1]], ctx[node.input[2]]
        return (v / s + z).astype(np.float64)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in gm.model.graph.initializer}
    node = next(nd for nd in gm.model.graph.node if nd.op_type == "QuantizeLinear" and nd.input[0] == gm.input_name)
    s, z = inits[node.input[1]], inits[node.input[2]]
    return (x / s).astype(np.float64) + z.astype(np.float64)


@pytest.mark.parametrize("flavour,kind,seed", CASES, ids=[f"{f}-{k}-{s}" for f, k, s in CASES])
def test_generated_model_runs(flavour, kind, seed):
    gm = _gen(flavour, kind, seed)
    assert gm.flavour == flavour and gm.kind == kind
    onnx.checker.check_model(gm.model)
    assert gm.model.graph.input[0].name == gm.input_name
    assert gm.input_shape[0] == 1
    assert gm.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert gm.model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"

    rng = np.random.default_rng(100 + seed)
    x = gm.sample(4, rng)
    assert x.dtype == np.float32 and x.shape == (4, *gm.input_shape[1:])

    # inputs on the first quantiser's grid: integer codes (to float32 rounding) within the code range
    codes = _first_quantiser_codes(gm, x)
    if codes is not None:
        assert np.abs(codes - np.round(codes)).max() < 1e-3
        if gm.grid.divisor is None:  # else qmin / qmax bound the image values k, not the codes
            assert codes.min() >= gm.grid.qmin - 1e-3 and codes.max() <= gm.grid.qmax + 1e-3

    y = reference_run(gm, x)
    assert y.shape[0] == 4
    assert np.all(np.isfinite(y))
    # dynamic batch: the first sample alone gives the same result (to float rounding in unquantised outputs)
    y1 = reference_run(gm, x[:1])
    np.testing.assert_allclose(y1, y[:1], rtol=1e-5, atol=1e-5 * (1 + float(np.abs(y).max())))
    if flavour != "qonnx":
        import onnxruntime as ort

        y_opt = reference_run(gm, x, opt_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        assert y_opt.shape == y.shape and np.all(np.isfinite(y_opt))


@pytest.mark.parametrize("flavour", list(_KINDS))
def test_required_ops_covered(flavour):
    seen = set()
    for kind in _KINDS[flavour]:
        for seed in COVERAGE_SEEDS:
            seen |= _gen(flavour, kind, seed).op_types()
    missing = [r for r in REQUIRED[flavour] if not (set(r) & seen if isinstance(r, tuple) else r in seen)]
    assert not missing, f"{flavour}: no generated model has {missing}; seen {sorted(seen)}"


def test_qonnx_custom_domains():
    """Quant ops come in all three custom-op domains across seeds (old Brevitas and FINN included)."""
    domains = set()
    for seed in range(12):
        gm = qonnx_model("conv", np.random.default_rng(seed))
        domains |= {nd.domain for nd in gm.model.graph.node if nd.op_type == "Quant"}
    assert domains == {"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general"}


@pytest.mark.parametrize("flavour,kind", [("qonnx", "mixed"), ("qdq", "mixed"), ("qop", "convinteger")])
def test_deterministic(flavour, kind):
    a = _MAKERS[flavour](kind, np.random.default_rng(7)).model.SerializeToString()
    b = _MAKERS[flavour](kind, np.random.default_rng(7)).model.SerializeToString()
    assert a == b


def test_int4_weights_present():
    gm = _gen("qdq", "int4", 0)
    types = {t.data_type for t in gm.model.graph.initializer}
    assert types & {onnx.TensorProto.INT4, onnx.TensorProto.UINT4}
    assert any(o.domain == "" and o.version == 21 for o in gm.model.opset_import)


_hyp = settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@_hyp
@given(qonnx_models())
def test_strategy_qonnx(gm):
    onnx.checker.check_model(gm.model)
    assert gm.flavour == "qonnx"


@_hyp
@given(qdq_models())
def test_strategy_qdq(gm):
    onnx.checker.check_model(gm.model)
    assert gm.flavour == "qdq"


@_hyp
@given(qop_models())
def test_strategy_qop(gm):
    onnx.checker.check_model(gm.model)
    assert gm.flavour == "qop"
