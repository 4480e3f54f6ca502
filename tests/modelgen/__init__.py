"""Random small quantized ONNX models in three flavours (QONNX, ONNX QDQ, ONNX QOperator) for property tests.

    from tests.modelgen import qonnx_model, QONNX_KINDS, qonnx_models, reference_run
    gm = qonnx_model("conv", np.random.default_rng(0))
    x = gm.sample(4, rng)            # float32 inputs on the first quantiser's grid, batch 4
    y = reference_run(gm, x)         # qonnx execute_onnx (qonnx) / onnxruntime (qdq, qop)

    @given(qonnx_models())           # hypothesis strategies: qonnx_models(), qdq_models(), qop_models()
    def test_x(gm): ...

See the docstrings of qonnx_models.py and ort_models.py for the kinds.
"""

from .bipolar_out import BIPOLAR_OUT_KINDS, bipolar_out_model
from .channels_last import (
    CHANNELS_LAST_KINDS,
    QONNX_CHANNELS_LAST_KINDS,
    channels_last_model,
    channels_last_models,
    qonnx_channels_last_model,
)
from .common import FLAVOURS, GenModel, InputGrid, reference_run
from .concats import CONCAT_KINDS, concat_model, concat_models
from .ort_models import QDQ_KINDS, QOP_KINDS, qdq_model, qdq_models, qop_model, qop_models
from .qonnx_models import QONNX_INPUT_KINDS, QONNX_KINDS, qonnx_model, qonnx_models

__all__ = [
    "BIPOLAR_OUT_KINDS",
    "bipolar_out_model",
    "CHANNELS_LAST_KINDS",
    "channels_last_model",
    "channels_last_models",
    "QONNX_CHANNELS_LAST_KINDS",
    "qonnx_channels_last_model",
    "CONCAT_KINDS",
    "concat_model",
    "concat_models",
    "FLAVOURS",
    "GenModel",
    "InputGrid",
    "reference_run",
    "QONNX_KINDS",
    "QONNX_INPUT_KINDS",
    "qonnx_model",
    "qonnx_models",
    "QDQ_KINDS",
    "qdq_model",
    "qdq_models",
    "QOP_KINDS",
    "qop_model",
    "qop_models",
]
