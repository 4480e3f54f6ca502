"""Wafer-map classifiers in float PyTorch and Brevitas QAT: a simplified VGG and a MobileNetV1-lite.

Needs the `train` extra (torch, brevitas). Both take (N, 1, 42, 42) float maps with values {0, 1, 2} and return
9 logits (no softmax: the accelerator outputs the arg-max / scores).

* `vgg`: 3 conv blocks [Conv3x3 pad 1 -> BatchNorm -> ReLU -> MaxPool 2] with 16, 32, 64 channels
  (42 -> 21 -> 10 -> 5), Flatten (1600) -> Linear 64 -> ReLU -> Linear 9.
* `mobilenet`: Conv3x3 stride 2 (16) then 4 depthwise-separable blocks [DW3x3 -> BN -> ReLU -> PW1x1 -> BN ->
  ReLU] with 32, 64, 64, 128 channels (strides 1, 2, 1, 2: 21 -> 21 -> 11 -> 11 -> 6), global average pool,
  Linear 9.

`bits=None` gives the float model; `bits=(w, a)` the QAT model with the same parameter names (so float weights
initialise QAT): input QuantIdentity 2-bit unsigned with a constant scale of 1 (the codes 0/1/2 pass exactly),
per-channel `w`-bit narrow-range weights on every conv/linear, `a`-bit unsigned QuantReLU activations
(per-tensor learned scale), max(a, 4)-bit QuantIdentity after the global average pool, float BatchNorm (folded into the
thresholds by gen), a float bias on the hidden linear layer (`bias_quant=Int32Bias` with `--bias-quant`).
The classifier (last linear layer) has a per-tensor weight scale and no bias: its logits are one positive scale
times the integer accumulator, so an arg-max over the integer scores (the hardware's label_select) is exactly the
model's class. With per-channel scales or a bias the logits are a per-class affine function of the accumulator:
an arg-max over the raw integers then disagrees with the model on a few % of the maps (gen handles an explicit
ArgMax node exactly with a per-class multiplier/offset stage, up to 53 bits wide for a Brevitas Int32Bias).
"""

from __future__ import annotations

import torch
from torch import nn

ARCHS = ("vgg", "mobilenet")
BITS = {"w2a2": (2, 2), "w2a4": (2, 4), "w4a4": (4, 4), "w8a8": (8, 8)}


def _quant_layers(bits, bias_quant=False):
    if bits is None:
        return None
    import brevitas.nn as qnn
    from brevitas.inject.enum import ScalingImplType
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

    wb, ab = bits

    class InputQuant(Uint8ActPerTensorFloat):
        bit_width = 2
        scaling_impl_type = ScalingImplType.CONST
        scaling_init = 3.0  # unsigned 2-bit: scale = 3 / (2^2 - 1) = 1, codes 0..3

    kw = dict(weight_quant=Int8WeightPerChannelFloat, weight_bit_width=wb)
    bkw = dict(bias_quant=Int32Bias) if bias_quant else {}

    class Q:
        @staticmethod
        def inp():
            return qnn.QuantIdentity(act_quant=InputQuant, return_quant_tensor=True)

        @staticmethod
        def conv(cin, cout, k, stride=1, pad=0, groups=1):
            return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False, **kw)

        @staticmethod
        def linear(cin, cout):
            return qnn.QuantLinear(cin, cout, bias=True, **kw, **bkw, return_quant_tensor=False)

        @staticmethod
        def classifier(cin, cout):
            # per-tensor weight scale, no bias: the logits are one scale s > 0 times the integer accumulator,
            # so the arg-max of the integer scores is the model's class
            return qnn.QuantLinear(cin, cout, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                   weight_bit_width=wb, return_quant_tensor=False)

        @staticmethod
        def relu():
            return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=ab, return_quant_tensor=True)

        @staticmethod
        def ident8():
            return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=max(ab, 4), return_quant_tensor=True)

    return Q


class _F:
    """Float counterparts with the same parameter names."""

    @staticmethod
    def inp():
        return nn.Identity()

    @staticmethod
    def conv(cin, cout, k, stride=1, pad=0, groups=1):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False)

    @staticmethod
    def linear(cin, cout):
        return nn.Linear(cin, cout)

    @staticmethod
    def classifier(cin, cout):
        return nn.Linear(cin, cout, bias=False)

    @staticmethod
    def relu():
        return nn.ReLU()

    @staticmethod
    def ident8():
        return nn.Identity()


class VGG(nn.Module):
    def __init__(self, bits=None, chans=(16, 32, 64), hidden=64, ncls=9, bias_quant=False):
        super().__init__()
        Q = _quant_layers(bits, bias_quant) or _F
        self.inp = Q.inp()
        layers, cin, size = [], 1, 42
        for c in chans:
            layers += [Q.conv(cin, c, 3, pad=1), nn.BatchNorm2d(c), Q.relu(), nn.MaxPool2d(2)]
            cin, size = c, size // 2
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.fc1 = Q.linear(cin * size * size, hidden)
        self.act1 = Q.relu()
        self.fc2 = Q.classifier(hidden, ncls)

    def forward(self, x):
        return self.fc2(self.act1(self.fc1(self.flatten(self.features(self.inp(x))))))


class MobileNet(nn.Module):
    def __init__(self, bits=None, stem=16, blocks=((32, 1), (64, 2), (64, 1), (128, 2)), ncls=9, bias_quant=False):
        super().__init__()
        Q = _quant_layers(bits, bias_quant) or _F
        self.inp = Q.inp()
        layers = [Q.conv(1, stem, 3, stride=2, pad=1), nn.BatchNorm2d(stem), Q.relu()]
        cin = stem
        for cout, s in blocks:
            layers += [Q.conv(cin, cin, 3, stride=s, pad=1, groups=cin), nn.BatchNorm2d(cin), Q.relu(),
                       Q.conv(cin, cout, 1), nn.BatchNorm2d(cout), Q.relu()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pool_q = Q.ident8()
        self.flatten = nn.Flatten()
        self.fc = Q.classifier(cin, ncls)

    def forward(self, x):
        return self.fc(self.flatten(self.pool_q(self.pool(self.features(self.inp(x))))))


def build(arch: str, bits=None, bias_quant=False) -> nn.Module:
    if isinstance(bits, str):
        bits = BITS[bits]
    return {"vgg": VGG, "mobilenet": MobileNet}[arch](bits=bits, bias_quant=bias_quant)


def count(model: nn.Module, size: int = 42) -> dict:
    """Parameters of the conv/linear weights (no BN) and MACs per frame of the conv/linear layers."""
    macs, params = 0, 0
    hooks = []

    def hook(m, inp, out):
        nonlocal macs, params
        w = m.weight
        params += w.numel()
        o = out.value if hasattr(out, "value") else out
        if o.dim() == 4:
            macs += w.numel() * o.shape[2] * o.shape[3]
        else:
            macs += w.numel()

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    model.train(was)
    for h in hooks:
        h.remove()
    return {"params": params, "macs": macs}
