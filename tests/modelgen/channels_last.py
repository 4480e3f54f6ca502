"""Random channels-last QONNX models, as QKeras -> tf2onnx -> qonnx.converters.from_keras writes them.

TensorFlow keeps activations N,H,W,C; ONNX's Conv / MaxPool are N,C,H,W, so tf2onnx wraps each of them in
Transpose(0,3,1,2) ... Transpose(0,2,3,1). Where its transpose optimiser cannot move those Transposes (it does
not know the qonnx Quant op), the graph keeps NHWC tensors between the layers: Relu and Quant on NHWC tensors,
Concat along axis 3 (or -1), Resize with N,H,W,C scales (1, 2, 2, 1), Reshape of an NHWC tensor before Dense,
and an NHWC input whose first quantiser may sit behind a Relu (QActivation quantized_relu) in front of the first
Transpose. The tests/data/exports/channels_last files are the real tool's output (tests/exports/make_qkeras.py);
these generators draw the NHWC-heavy variants at random shapes and bit widths.

Kinds (CHANNELS_LAST_KINDS):
- `cl_conv`       1-3 convs (random k / stride / pads), optional max-pool, Reshape -> MatMul + Add bias
- `cl_separable`  depthwise (group = C) + pointwise 1x1 convs, 1-2 blocks
- `cl_branch`     two conv branches -> Concat(axis 3 | -1) -> conv -> head
- `cl_unet`       max-pool down, conv, nearest Resize (1, 2, 2, 1) up, Concat skip connection, 1x1 conv:
                  per-pixel N,H,W,K output

QONNX_CHANNELS_LAST_KINDS (`qonnx_channels_last_model`): random QONNX models (qonnx_models kinds conv, depthwise,
concat, resize and cl_unet above) put through qonnx's ConvertToChannelsLastAndClean, as hls4ml's *_ch_last.onnx
test models are: Conv / MaxPool in the qonnx.custom_op.channels_last domain on N,H,W,C tensors.
"""

from __future__ import annotations

import numpy as np

from .common import QONNX_DOMAIN, GenModel, InputGrid, conv_geometry, rand_scale
from .qonnx_models import _max_int, _min_int, _Net

CHANNELS_LAST_KINDS = ["cl_conv", "cl_separable", "cl_branch", "cl_unet"]
QONNX_CHANNELS_LAST_KINDS = ["chl_conv", "chl_separable", "chl_branch", "chl_unet"]

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]


class _ClNet(_Net):
    """A _Net whose activations are NHWC between layers (shape() of an NHWC tensor is (H, W, C))."""

    def __init__(self, kind, rng):
        super().__init__(kind, rng)
        self.domain = QONNX_DOMAIN   # from_keras writes qonnx.custom_op.general
        self.input_name = "global_in"

    def nhwc_input(self, h, w, c):
        """NHWC input -> [Relu ->] Quant (from_keras: QActivation quantized_relu / quantized_bits)."""
        rng = self.rng
        bits = self.rint(3, 8)
        relu = self.rbool(0.5)
        signed = (not relu) and self.rbool(0.5)
        narrow = signed and self.rbool(0.3)
        qmin, qmax = _min_int(signed, narrow, bits), _max_int(signed, narrow, bits)
        scale = rand_scale(rng, rng.uniform(0.5, 2.0), qmax)
        # with a Relu in front, negative codes reach the quantiser as 0: draw them anyway (the Relu clips)
        self.grid = InputGrid(scale=float(scale), qmin=-qmax if relu else qmin, qmax=qmax)
        x = self.add_input((h, w, c))
        if relu:
            x = self.b.op("Relu", [x])
        if self.rbool(0.5):    # Quant on the NHWC input, or behind the first Transpose (then undone here)
            x = self.quant(x, bits, signed, narrow, scale=scale)
        else:
            x = self.b.op("Transpose", [x], perm=TO_NCHW)
            x = self.quant(x, bits, signed, narrow, scale=scale)
            x = self.b.op("Transpose", [x], perm=TO_NHWC)
        self.log("nhwc input", (h, w, c), "relu" if relu else "", f"Quant{bits}")
        return x

    def cl_conv(self, x, act="relu", **kw):
        """Transpose -> Conv -> Transpose -> [Relu] -> Quant, the Quant on the NHWC tensor."""
        y = self.b.op("Transpose", [x], perm=TO_NCHW)
        y = self.conv(y, act=None, quant=False, **kw)
        y = self.b.op("Transpose", [y], perm=TO_NHWC)
        return self.act_quant(y, act)

    def cl_maxpool(self, x, k=2, s=2):
        y = self.b.op("Transpose", [x], perm=TO_NCHW)
        y = self.maxpool(y, k, s, 0)
        return self.b.op("Transpose", [y], perm=TO_NHWC)

    def cl_concat(self, xs):
        axis = int(self.pick([3, -1]))
        y = self.b.op("Concat", xs, axis=axis)
        self.log("Concat axis", axis)
        return y

    def cl_resize(self, x):
        attrs = {"mode": "nearest"}
        if self.rbool(0.5):
            attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        roi = self.b.const(np.zeros((0,), np.float32), "roi")
        sc = self.b.const(np.array([1, 2, 2, 1], np.float32), "scales")
        y = self.b.op("Resize", [x, roi, sc], **attrs)
        self.log("Resize NHWC x2")
        return y

    def cl_head(self, x):
        """NHWC tensor -> Reshape(-1, H*W*C) -> MatMul -> Add (QDense)."""
        h, w, c = self.shape(x)
        x = self.b.op("Reshape", [x, self.b.const(np.array([-1, h * w * c], np.int64), "shape", np.int64)])
        ncls = self.rint(2, 8)
        wq = self.weight(self.rng.normal(0, 1, (h * w * c, ncls)), axis=1, per_channel=False, narrow=True)
        bq = self.weight(self.rng.normal(0, 1, ncls), bits=8, per_channel=False, narrow=True, hint="bias")
        y = self.b.op("Add", [self.b.op("MatMul", [x, wq]), bq])
        if self.rbool(0.3):
            y = self.b.op("Softmax", [y], axis=-1)
        return y


def _k_conv(n: _ClNet):
    x = n.nhwc_input(n.rint(5, 10), n.rint(5, 10), n.rint(1, 8))
    for _ in range(n.rint(1, 3)):
        h, w, _c = n.shape(x)
        k, s, p = conv_geometry(n.rng, h, w, kmax=3)
        x = n.cl_conv(x, cout=n.rint(1, 8), k=k, s=s, p=p, groups=1)
    h, w, _c = n.shape(x)
    if min(h, w) >= 2 and n.rbool(0.5):
        x = n.cl_maxpool(x)
    return n.cl_head(x)


def _k_separable(n: _ClNet):
    x = n.nhwc_input(n.rint(5, 10), n.rint(5, 10), n.rint(2, 6))
    for _ in range(n.rint(1, 2)):
        h, w, c = n.shape(x)
        k, s, p = conv_geometry(n.rng, h, w, kmax=3)
        x = n.cl_conv(x, cout=c, k=k, s=s, p=p, groups=c)                 # depthwise
        x = n.cl_conv(x, cout=n.rint(1, 8), k=1, s=1, p=0, groups=1)      # pointwise
    return n.cl_head(x)


def _k_branch(n: _ClNet):
    x = n.nhwc_input(n.rint(4, 8), n.rint(4, 8), n.rint(1, 4))
    x = n.cl_conv(x, cout=n.rint(2, 6), same=True, groups=1)
    a = n.cl_conv(x, cout=n.rint(1, 6), same=True, groups=1)
    b = n.cl_conv(x, cout=n.rint(1, 6), k=1, s=1, p=0, groups=1) if n.rbool(0.7) else x
    y = n.cl_concat([a, b] if n.rbool() else [b, a])
    if n.rbool(0.5):
        y = n.quant(y, n.act_bits(), False)
    y = n.cl_conv(y, cout=n.rint(1, 6), same=True, groups=1)
    return n.cl_head(y)


def _k_unet(n: _ClNet):
    h, w = 2 * n.rint(2, 5), 2 * n.rint(2, 5)
    x = n.nhwc_input(h, w, n.rint(1, 3))
    skip = n.cl_conv(x, cout=n.rint(2, 6), k=3, s=1, p=1, groups=1)
    d = n.cl_maxpool(skip)
    d = n.cl_conv(d, cout=n.rint(2, 8), k=3, s=1, p=1, groups=1)
    u = n.cl_resize(d)
    if n.rbool(0.5):   # re-quantise the upsampled tensor on its own grid
        u = n.quant(u, n.act_bits(), False)
    y = n.cl_concat([u, skip] if n.rbool() else [skip, u])
    y = n.cl_conv(y, cout=n.rint(2, 6), k=3, s=1, p=1, groups=1)
    # per-pixel scores: 1x1 conv, output N,H,W,K
    y = n.b.op("Transpose", [y], perm=TO_NCHW)
    y = n.conv(y, cout=n.rint(2, 5), k=1, s=1, p=0, groups=1, act=None, quant=False)
    return n.b.op("Transpose", [y], perm=TO_NHWC)


_KINDS = {"cl_conv": _k_conv, "cl_separable": _k_separable, "cl_branch": _k_branch, "cl_unet": _k_unet}
assert list(_KINDS) == CHANNELS_LAST_KINDS


def channels_last_model(kind: str, rng: np.random.Generator) -> GenModel:
    """A random small channels-last QONNX model of the given kind (see CHANNELS_LAST_KINDS)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown channels-last kind {kind!r}; one of {CHANNELS_LAST_KINDS}")
    n = _ClNet(kind, rng)
    return n.finish(_KINDS[kind](n))


def channels_last_models(kinds=None):
    """Hypothesis strategy: GenModel of a random channels-last kind from a random seed."""
    from hypothesis import strategies as st

    return st.builds(lambda kind, seed: channels_last_model(kind, np.random.default_rng(seed)),
                     st.sampled_from(list(kinds or CHANNELS_LAST_KINDS)), st.integers(0, 2**32 - 1))


_CHL_SOURCES = {"chl_conv": "conv", "chl_separable": "depthwise", "chl_branch": "concat", "chl_unet": "cl_unet"}


def qonnx_channels_last_model(kind: str, rng: np.random.Generator) -> GenModel:
    """A random model (see QONNX_CHANNELS_LAST_KINDS) through qonnx's ConvertToChannelsLastAndClean."""
    import random
    import warnings

    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.util.cleanup import cleanup_model

    from .qonnx_models import qonnx_model

    src = _CHL_SOURCES[kind]
    gm = channels_last_model(src, rng) if src in _KINDS else qonnx_model(src, rng)
    m = ModelWrapper(gm.model)
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_value = 1
    random.seed(int(rng.integers(2**31)))   # qonnx names new tensors with random strings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cleanup_model(m)
        for n in m.graph.node:   # the channels-last ops need these attributes written out
            have = {a.name for a in n.attribute}
            for key, val in (("pads", [0, 0, 0, 0]), ("strides", [1, 1]), ("dilations", [1, 1]), ("group", 1)):
                if n.op_type in ("Conv", "MaxPool") and key not in have and (key != "group" or n.op_type == "Conv"):
                    n.attribute.append(helper.make_attribute(key, val))
        # an N,C,H,W source may get an N,H,W,C input too (a Transpose behind it), as hls4ml's models have
        nhwc_input = len(gm.input_shape) == 4 and src not in _KINDS and bool(rng.random() < 0.5)
        m = m.transform(ConvertToChannelsLastAndClean(make_input_channels_last=nhwc_input))
    if nhwc_input:
        n, c, h, w = gm.input_shape
        gm.input_shape = (n, h, w, c)
    gm.model, gm.kind = m.model, kind
    gm.info["nhwc_input"] = nhwc_input
    gm._cache.clear()
    return gm
