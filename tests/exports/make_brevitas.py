"""Make the Brevitas exports under tests/data/exports/brevitas/ with the real tool (deterministic, seeded).

    .venv/bin/python tests/exports/make_brevitas.py [OUT_DIR] [NAME ...]

Tiny VGG-, MobileNet- and ResNet-like nets (QuantIdentity input quantiser first), calibrated on seeded random
data in training mode (Brevitas collects its activation statistics there, BatchNorm its running statistics),
then exported in eval mode with `brevitas.export.export_onnx_qcdq` (QuantizeLinear -> Clip -> DequantizeLinear;
`dynamo=True`, Brevitas' default with torch >= 2.9, or the TorchScript exporter with `dynamo=False`, which is
the only one that exports an Int32 bias quantiser) and, for comparison, `export_qonnx`.

Each config varies what Brevitas writes differently: weight / activation bits (8, 4, 2; QCDQ narrows 8-bit
codes with Clip below 8), per-tensor or per-output-channel weight scales, float or Int32-quantised bias,
Linear with bias (Gemm) or without (MatMul of a transposed weight), torch.flatten or x.view(x.size(0), -1)
(Shape / Gather / Concat / Reshape in TorchScript), residual adds behind one shared quantiser or two.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "exports" / "brevitas"
SEED = 1234
H = 16  # input height = width


@dataclass(frozen=True)
class Config:
    net: str                  # vgg | mobilenet | resnet
    bits: int                 # weight and activation bits (the input quantiser is always 8-bit)
    per_channel: bool = False  # per-output-channel weight scales
    bias_quant: bool = False   # Int32Bias (TorchScript exporter only)
    exporter: str = "dynamo"   # dynamo | ts (export_onnx_qcdq) | qonnx | qonnx_dynamo (export_qonnx)
    fc_bias: bool = True       # Linear with bias (Gemm) or without (Transpose + MatMul)
    view: bool = False         # x.view(x.size(0), -1) instead of torch.flatten
    shared: bool = True        # resnet: both addends through one quantiser
    trunc_pool: bool = False   # mobilenet: TruncAvgPool2d instead of AdaptiveAvgPool2d + QuantIdentity
    hardtanh: bool = False     # signed QuantHardTanh activations instead of QuantReLU
    dynamic_batch: bool = False  # a free batch axis (x.view(x.size(0), -1) then reads it with Shape / Gather)


CONFIGS = {
    "vgg_w8a8_dynamo": Config("vgg", 8),
    "vgg_w8a8_ts_bias32": Config("vgg", 8, per_channel=True, bias_quant=True, exporter="ts"),
    "vgg_w8a8_ts_nobias_view": Config("vgg", 8, exporter="ts", fc_bias=False, view=True),
    "vgg_w8a8_dynamo_nobias_view": Config("vgg", 8, per_channel=True, fc_bias=False, view=True),
    "vgg_w4a4_pc_dynamo": Config("vgg", 4, per_channel=True),
    "vgg_w4a4_ts_bias32": Config("vgg", 4, bias_quant=True, exporter="ts"),
    "vgg_w2a2_ts": Config("vgg", 2, per_channel=True, exporter="ts", fc_bias=False),
    "vgg_w4a4_hardtanh_dynamo": Config("vgg", 4, hardtanh=True),
    "mobilenet_w8a8_dynamo": Config("mobilenet", 8, per_channel=True),
    "mobilenet_w4a4_ts_bias32": Config("mobilenet", 4, per_channel=True, bias_quant=True, exporter="ts"),
    "mobilenet_w4a4_truncavg_ts": Config("mobilenet", 4, exporter="ts", trunc_pool=True),
    "resnet_w8a8_shared_dynamo": Config("resnet", 8),
    "resnet_w4a4_unshared_ts": Config("resnet", 4, per_channel=True, exporter="ts", shared=False),
    "resnet_w8a8_unshared_ts_bias32": Config("resnet", 8, bias_quant=True, exporter="ts", shared=False),
    "vgg_w8a8_ts_view_dynbatch": Config("vgg", 8, exporter="ts", view=True, dynamic_batch=True),
    "vgg_w4a4_qonnx_dynamo": Config("vgg", 4, exporter="qonnx_dynamo"),
    "vgg_w8a8_qonnx": Config("vgg", 8, per_channel=True, bias_quant=True, exporter="qonnx"),
    "mobilenet_w4a4_qonnx": Config("mobilenet", 4, exporter="qonnx"),
    "resnet_w4a4_qonnx": Config("resnet", 4, exporter="qonnx", shared=False),
}


def build(cfg: Config):
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import Int32Bias
    from torch import nn

    def conv(cin, cout, k=3, stride=1, groups=1, bias=False):
        kw = {"weight_bit_width": cfg.bits, "weight_scaling_per_output_channel": cfg.per_channel}
        if cfg.bias_quant and bias:
            kw["bias_quant"] = Int32Bias
        return qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias, **kw)

    def linear(kin, kout):
        kw = {"weight_bit_width": cfg.bits, "weight_scaling_per_output_channel": cfg.per_channel}
        if cfg.bias_quant and cfg.fc_bias:
            kw["bias_quant"] = Int32Bias
        return qnn.QuantLinear(kin, kout, bias=cfg.fc_bias, **kw)

    def relu():
        # a quantised tensor out, so that a following Int32 bias finds its input scale
        if cfg.hardtanh:
            return qnn.QuantHardTanh(bit_width=cfg.bits, max_val=1.0, min_val=-1.0, return_quant_tensor=True)
        return qnn.QuantReLU(bit_width=cfg.bits, return_quant_tensor=True)

    def ident(bits=None, quant_tensor=True):
        return qnn.QuantIdentity(bit_width=bits or cfg.bits, return_quant_tensor=quant_tensor)

    def flat(x):
        return x.view(x.size(0), -1) if cfg.view else torch.flatten(x, 1)

    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = ident(8)
            self.features = nn.Sequential(
                conv(3, 6), nn.BatchNorm2d(6), relu(), nn.MaxPool2d(2),
                conv(6, 8, bias=True), nn.BatchNorm2d(8), relu(), nn.MaxPool2d(2),
                conv(8, 8), nn.BatchNorm2d(8), relu(), nn.MaxPool2d(2))
            self.fc1 = linear(8 * 2 * 2, 16)
            self.act = relu()
            self.fc2 = linear(16, 10)

        def forward(self, x):
            x = self.features(self.inp(x))
            return self.fc2(self.act(self.fc1(flat(x))))

    class MobileNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = ident(8)
            layers = [conv(3, 8, stride=2), nn.BatchNorm2d(8), relu()]
            for cin, cout, s in ((8, 8, 1), (8, 16, 2)):
                layers += [conv(cin, cin, stride=s, groups=cin), nn.BatchNorm2d(cin), relu(),
                           conv(cin, cout, k=1, bias=True), nn.BatchNorm2d(cout), relu()]
            self.features = nn.Sequential(*layers)
            if cfg.trunc_pool:  # the sum of a 4x4 window truncated back to `bits` (Brevitas' Trunc)
                self.pool, self.pool_q = qnn.TruncAvgPool2d(4, bit_width=cfg.bits, return_quant_tensor=True), \
                    nn.Identity()
            else:
                self.pool, self.pool_q = nn.AdaptiveAvgPool2d(1), ident()
            self.fc = linear(16, 10)

        def forward(self, x):
            x = self.pool_q(self.pool(self.features(self.inp(x))))
            return self.fc(flat(x))

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c1, self.b1, self.r1 = conv(c, c), nn.BatchNorm2d(c), relu()
            self.c2, self.b2 = conv(c, c, bias=True), nn.BatchNorm2d(c)
            # one quantiser for both addends (Brevitas' idiom for an integer add) or one each (Brevitas adds
            # quantised tensors only at one scale: the unshared addends leave as float)
            self.q_res = ident(quant_tensor=cfg.shared)
            self.q_short = self.q_res if cfg.shared else ident(quant_tensor=False)
            self.out = relu()

        def forward(self, x):
            y = self.q_res(self.b2(self.c2(self.r1(self.b1(self.c1(x))))))
            return self.out(y + self.q_short(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = ident(8)
            self.stem = nn.Sequential(conv(3, 8), nn.BatchNorm2d(8), relu())
            self.block1 = Block(8)
            self.down = nn.Sequential(conv(8, 8, stride=2), nn.BatchNorm2d(8), relu())
            self.block2 = Block(8)
            self.pool = nn.MaxPool2d(2)
            self.fc = linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = self.block2(self.down(self.block1(self.stem(self.inp(x)))))
            return self.fc(flat(self.pool(x)))

    return {"vgg": VGG, "mobilenet": MobileNet, "resnet": ResNet}[cfg.net]()


def calibrate(model, seed: int):
    """Training-mode passes on seeded random images (Brevitas' activation statistics, BatchNorm's running ones)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(40):
            model(torch.rand(8, 3, H, H, generator=g) * 2 - 1)
    model.eval()


def export(name: str, cfg: Config, out_dir: Path) -> Path:
    import torch
    from brevitas.export import export_onnx_qcdq, export_qonnx

    torch.manual_seed(SEED)
    model = build(cfg)
    calibrate(model, SEED)
    x = torch.rand(1, 3, H, H) * 2 - 1
    path = out_dir / f"{name}.onnx"
    if cfg.exporter == "ts":
        kw = {"dynamo": False}
        if cfg.dynamic_batch:
            kw |= {"input_names": ["x"], "dynamic_axes": {"x": {0: "N"}}}
    else:
        kw = {"dynamo": True, "external_data": False} if cfg.exporter.endswith("dynamo") else {"dynamo": False}
    if cfg.exporter.startswith("qonnx"):
        export_qonnx(model, args=x, export_path=str(path), **kw)
    else:
        export_onnx_qcdq(model, args=x, export_path=str(path), **kw)
    strip_debug(path)
    return path


def strip_debug(path: Path):
    """Drop the dynamo exporter's per-node debug metadata (module paths, rewrite rules: ~100 KB a net)."""
    import onnx

    m = onnx.load(str(path))
    for n in m.graph.node:
        del n.metadata_props[:]
    onnx.save(m, str(path))


def main(argv):
    out_dir = Path(argv[0]) if argv else OUT
    names = argv[1:] or list(CONFIGS)
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.WARNING)
    for name in names:
        p = export(name, CONFIGS[name], out_dir)
        print(f"{p}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
