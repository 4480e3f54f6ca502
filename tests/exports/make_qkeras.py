"""Make the channels-last QONNX test exports with the real tools: QKeras -> qonnx.converters.from_keras.

    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tests/exports/make_qkeras.py [OUT_DIR]
    .venv/bin/python tests/exports/make_qkeras.py --ch-last [OUT_DIR]     (then: the channels-last forms)

writes tests/data/exports/channels_last/qkeras_{conv,branch,unet}.onnx (deterministic: seeded weights,
no training). Needs a venv apart from the project's (TensorFlow pins protobuf / onnx versions of its own):

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 qkeras==0.9.0 tf2onnx==1.17.0 pyparsing
    /tmp/tfvenv/bin/pip install qonnx==0.4.0 && /tmp/tfvenv/bin/pip install --no-deps "protobuf>=5.28,<7"

qonnx 1.0.0 dropped its converters package; 0.4.0 is the last release with `from_keras` (it pins protobuf 3.20,
which TensorFlow 2.21 cannot import: protobuf is upgraded after it). qonnx 0.4.0 reads
`tf2onnx.optimizer._optimizers`, which tf2onnx 1.17 only imports lazily: it is imported here first.

The models are what hls4ml's QKeras tests use: channels-last Conv2D with quantised kernels and biases,
quantized_relu activations, MaxPooling2D, UpSampling2D (nearest), Concatenate on the channel axis, Flatten ->
Dense, a per-pixel 1x1 conv output (U-Net-like).

Not exported: separable convs. qonnx 0.4.0 converts QConv2D, QDense and QActivation only: a QDepthwiseConv2D
fails in from_keras ("Keyword argument not understood: depthwise_quantizer", its generic layer stripping keeps
the quantiser in the Keras config), and a QConv2D with groups = channels becomes a TF PartitionedCall that
tf2onnx 1.17 does not convert. tests/modelgen/channels_last.py (kind cl_separable) builds depthwise + pointwise
graphs in the form from_keras writes for its convs instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "exports" / "channels_last"


def make_ch_last(out: Path):
    """qkeras_*_ch_last.onnx: the exports through qonnx 1.0.0's ConvertToChannelsLastAndClean, the form of
    hls4ml's *_ch_last.onnx test models (Conv / MaxPool in the qonnx.custom_op.channels_last domain on N,H,W,C
    tensors). Runs in the project's venv (no TensorFlow): `python tests/exports/make_qkeras.py --ch-last`."""
    import random
    import warnings

    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model

    for name in ("qkeras_conv", "qkeras_branch", "qkeras_unet"):
        random.seed(0)   # qonnx names new tensors with random strings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = cleanup_model(ModelWrapper(str(out / f"{name}.onnx")))
            # the channels-last Conv / MaxPool need these attributes written out (tf2onnx leaves defaults out)
            for n in m.graph.node:
                have = {a.name for a in n.attribute}
                for key, val in (("pads", [0, 0, 0, 0]), ("strides", [1, 1]), ("dilations", [1, 1]), ("group", 1)):
                    if n.op_type in ("Conv", "MaxPool") and key not in have and (key != "group" or n.op_type == "Conv"):
                        n.attribute.append(helper.make_attribute(key, val))
            m = m.transform(ConvertToChannelsLastAndClean(make_input_channels_last=False))
        m.save(str(out / f"{name}_ch_last.onnx"))
        print(out / f"{name}_ch_last.onnx")


if __name__ == "__main__" and sys.argv[1:2] == ["--ch-last"]:
    make_ch_last(Path(sys.argv[2]) if len(sys.argv) > 2 else OUT)
    sys.exit(0)

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import tf2onnx
import tf2onnx.convert
import tf2onnx.optimizer  # noqa: F401 - qonnx 0.4.0 reads tf2onnx.optimizer at import
from qkeras import QActivation, QConv2D, QDense
from qonnx.converters import from_keras

L = tf.keras.layers


def qbits(bits, integer=0):
    return f"quantized_bits({bits},{integer},alpha=1)"


def qrelu(bits, integer=0):
    return f"quantized_relu({bits},{integer})"


def conv(x, filters, k, name, *, wbits=4, abits=4, groups=1, padding="same", strides=1):
    y = QConv2D(filters, k, strides=strides, padding=padding, groups=groups, name=name,
                kernel_quantizer=qbits(wbits), bias_quantizer=qbits(8, 2))(x)
    return QActivation(qrelu(abits, 1), name=f"{name}_act")(y)


def model_conv():
    x = L.Input((12, 12, 3), name="image")
    y = QActivation(qrelu(8, 0), name="in_q")(x)
    y = conv(y, 4, 3, "c1", abits=4)
    y = L.MaxPooling2D(2, name="pool1")(y)
    y = conv(y, 6, 3, "c2", wbits=3, abits=3, padding="valid")
    y = L.Flatten(name="flat")(y)
    y = QDense(5, kernel_quantizer=qbits(4), bias_quantizer=qbits(8, 2), name="fc")(y)
    return tf.keras.Model(x, L.Activation("softmax", name="prob")(y))


def model_branch():
    x = L.Input((8, 8, 6), name="image")    # 6 channels: the NHWC input is known by its Transpose only
    y = QActivation(qrelu(8, 0), name="in_q")(x)
    y = conv(y, 4, 3, "stem")
    a = conv(y, 4, 3, "branch_a")
    b = conv(y, 2, 1, "branch_b")
    y = L.Concatenate(axis=-1, name="cat")([a, b])
    y = conv(y, 4, 3, "mix", padding="valid")
    y = L.MaxPooling2D(2, name="pool")(y)
    y = L.Flatten(name="flat")(y)
    y = QDense(3, kernel_quantizer=qbits(4), bias_quantizer=qbits(8, 2), name="fc")(y)
    return tf.keras.Model(x, y)


def model_unet():
    x = L.Input((16, 16, 1), name="image")
    y = QActivation(qrelu(8, 0), name="in_q")(x)
    e1 = conv(y, 4, 3, "enc1")
    d = L.MaxPooling2D(2, name="down1")(e1)
    e2 = conv(d, 8, 3, "enc2")
    d = L.MaxPooling2D(2, name="down2")(e2)
    m = conv(d, 8, 3, "mid")
    u = L.UpSampling2D(2, interpolation="nearest", name="up2")(m)
    u = L.Concatenate(axis=-1, name="skip2")([u, e2])
    u = conv(u, 8, 3, "dec2")
    u = L.UpSampling2D(2, interpolation="nearest", name="up1")(u)
    u = L.Concatenate(axis=3, name="skip1")([u, e1])
    u = conv(u, 4, 3, "dec1")
    y = QConv2D(3, 1, name="head", kernel_quantizer=qbits(4), bias_quantizer=qbits(8, 2))(u)
    return tf.keras.Model(x, y)   # per-pixel class scores, N,H,W,3


MODELS = {"qkeras_conv": model_conv, "qkeras_branch": model_branch, "qkeras_unet": model_unet}


def seeded_weights(model, seed):
    """Random weights (no training): kernels N(0, 0.5), biases N(0, 0.25) - non-zero so they are exported."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5 if w.ndim > 1 else 0.25, w.shape).astype(np.float32)
                       for w in model.get_weights()])


def export(name, make, seed, out: Path):
    tf.keras.utils.set_random_seed(seed)
    model = make()
    seeded_weights(model, seed)
    path = out / f"{name}.onnx"
    from_keras(model, name=name, opset=13, output_path=str(path))
    return path


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else OUT
    out.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(out)   # from_keras writes a tmp_<name>.onnx into the working directory
    try:
        for i, (name, make) in enumerate(MODELS.items()):
            p = export(name, make, 1000 + i, out)
            Path(f"tmp_{name}.onnx").unlink(missing_ok=True)
            print(p, p.stat().st_size, "bytes")
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    main(sys.argv)
