"""Make the binarised-output Brevitas exports under tests/data/exports/bipolar/ with the real tool (deterministic).

    .venv/bin/python tests/exports/make_bipolar.py [OUT_DIR] [NAME ...]

Tiny BNNs in the style of FINN's TFC / CNV: QuantLinear / QuantConv2d with 1-bit weights
(SignedBinaryWeightPerTensorConst), BatchNorm, bipolar activations (QuantIdentity or QuantHardTanh with
SignedBinaryActPerTensorConst), and a bipolar activation at the END, so the model's output is the -1 / +1 codes
themselves - optionally followed by torch.argmax (ONNX ArgMax) or torch.topk(...).indices (ONNX TopK).
Calibrated in training mode on seeded random data (BatchNorm running statistics), exported in eval mode with
`brevitas.export.export_qonnx` (BipolarQuant nodes).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "exports" / "bipolar"
SEED = 4242


@dataclass(frozen=True)
class Config:
    net: str              # tfc (input 1x6x6) | cnv (input 1x10x10)
    head: str = "none"    # none | argmax | topk1 | topk3
    last: str = "identity"  # identity (QuantIdentity) | hardtanh (QuantHardTanh): the final bipolar activation
    bipolar_input: bool = False  # tfc: the input binarised too (else an 8-bit input quantiser)


CONFIGS = {
    "tfc_bnn_out": Config("tfc"),
    "tfc_bnn_hardtanh_argmax": Config("tfc", head="argmax", last="hardtanh"),
    "tfc_bnn_binin_topk1": Config("tfc", head="topk1", bipolar_input=True),
    "tfc_bnn_topk3": Config("tfc", head="topk3", last="hardtanh"),
    "cnv_bnn_argmax": Config("cnv", head="argmax"),
}


def build(cfg: Config):
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import (
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
    )
    from torch import nn

    def bip(hardtanh=False):
        if hardtanh:
            return qnn.QuantHardTanh(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)

    def linear(kin, kout):
        return qnn.QuantLinear(kin, kout, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    def conv(cin, cout):
        return qnn.QuantConv2d(cin, cout, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    class Head(nn.Module):
        def forward(self, x):
            x = x.value if hasattr(x, "value") else x
            if cfg.head == "argmax":
                return torch.argmax(x, dim=1)
            if cfg.head.startswith("topk"):
                return torch.topk(x, int(cfg.head[4:]), dim=1).indices
            return x

    class TFC(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = bip() if cfg.bipolar_input else qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.body = nn.Sequential(linear(36, 24), nn.BatchNorm1d(24), bip(),
                                      linear(24, 16), nn.BatchNorm1d(16), bip(),
                                      linear(16, 10), nn.BatchNorm1d(10), bip(cfg.last == "hardtanh"))
            self.head = Head()

        def forward(self, x):
            return self.head(self.body(self.inp(torch.flatten(x, 1))))

    class CNV(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
            self.body = nn.Sequential(conv(1, 8), nn.BatchNorm2d(8), bip(), nn.MaxPool2d(2))
            self.fc = nn.Sequential(linear(8 * 4 * 4, 10), nn.BatchNorm1d(10), bip(cfg.last == "hardtanh"))
            self.head = Head()

        def forward(self, x):
            return self.head(self.fc(torch.flatten(self.body(self.inp(x)), 1)))

    return {"tfc": TFC, "cnv": CNV}[cfg.net]()


def input_hw(cfg: Config) -> int:
    return 10 if cfg.net == "cnv" else 6


def calibrate(model, seed: int, hw: int):
    """Training-mode passes on seeded random inputs (BatchNorm running statistics), then random BatchNorm affine
    parameters with some negative gammas (a trained BNN's last BatchNorm flips classes too)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 1.5 + 0.5)
                m.weight.mul_(torch.where(torch.rand(m.weight.shape, generator=g) < 0.2, -1.0, 1.0))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.rand(16, 1, hw, hw, generator=g) * 2 - 1)
    model.eval()


def export(name: str, cfg: Config, out_dir: Path) -> Path:
    import torch
    from brevitas.export import export_qonnx

    torch.manual_seed(SEED)
    model = build(cfg)
    hw = input_hw(cfg)
    calibrate(model, SEED, hw)
    path = out_dir / f"{name}.onnx"
    export_qonnx(model, args=torch.rand(1, 1, hw, hw) * 2 - 1, export_path=str(path), dynamo=False)
    return path


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
