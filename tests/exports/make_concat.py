"""Make the concat exports under tests/data/exports/concat/ with the real tools (deterministic, seeded).

    .venv/bin/python tests/exports/make_concat.py [OUT_DIR] [NAME ...]

* densenet_qonnx / densenet_qcdq: a tiny DenseNet-like block made with Brevitas - QuantConv2d / QuantReLU with
  separate quantizers (different bit widths 8 / 4 / 6 / 3, signed input, unsigned ReLUs), torch.cat of the
  growing feature list feeding the next QuantConv2d directly (no quantiser after the cat, so the convs see
  per-channel scales), a MaxPool on the final concat and a QuantLinear head. Calibrated in training mode on
  seeded random images (Brevitas learns each activation scale from its own statistics: random ratios), exported
  with `export_qonnx` and `export_onnx_qcdq` (TorchScript exporter, dynamo=False).
* branches_qdq / branches_qop: a small float PyTorch net with three conv branches (1x1, 3x3, max-pool + 1x1)
  joined by torch.cat, exported by torch.onnx (TorchScript, opset 13) and quantised by onnxruntime's
  `quantize_static` (QDQ and QOperator - QLinearConcat - uint8 activations with zero points, int8 weights) on
  seeded random calibration data.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "exports" / "concat"
SEED = 2024
H = 8  # input height = width
NAMES = ("densenet_qonnx", "densenet_qcdq", "branches_qdq", "branches_qop")


def densenet():
    import brevitas.nn as qnn
    import torch
    from torch import nn

    class Dense(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(bit_width=8)  # signed 8-bit input
            self.c1 = qnn.QuantConv2d(3, 4, 3, padding=1, weight_bit_width=4, bias=True)
            self.r1 = qnn.QuantReLU(bit_width=4)
            self.c2 = qnn.QuantConv2d(7, 4, 3, padding=1, weight_bit_width=4, bias=True)
            self.r2 = qnn.QuantReLU(bit_width=6)
            self.c3 = qnn.QuantConv2d(11, 4, 1, weight_bit_width=6, bias=True)
            self.r3 = qnn.QuantReLU(bit_width=3)
            self.pool = nn.MaxPool2d(2)
            self.c4 = qnn.QuantConv2d(15, 6, 1, weight_bit_width=4, bias=False)
            self.r4 = qnn.QuantReLU(bit_width=4)
            self.fc = qnn.QuantLinear(6 * (H // 2) ** 2, 5, weight_bit_width=4, bias=True)

        def forward(self, x):
            x0 = self.inp(x)
            x1 = self.r1(self.c1(x0))
            cat1 = torch.cat([x0, x1], 1)            # 8-bit signed + 4-bit unsigned -> conv directly
            x2 = self.r2(self.c2(cat1))
            cat2 = torch.cat([x0, x1, x2], 1)        # three scales -> 1x1 conv directly
            x3 = self.r3(self.c3(cat2))
            cat3 = torch.cat([x0, x1, x2, x3], 1)    # four inputs, widths 8/4/6/3 -> MaxPool -> conv
            y = self.r4(self.c4(self.pool(cat3)))
            return self.fc(torch.flatten(y, 1))

    return Dense()


def make_densenet(out_dir: Path, flavour: str) -> Path:
    import torch
    from brevitas.export import export_onnx_qcdq, export_qonnx

    torch.manual_seed(SEED)
    model = densenet()
    g = torch.Generator().manual_seed(SEED)
    model.train()
    with torch.no_grad():
        for _ in range(30):
            model(torch.rand(8, 3, H, H, generator=g) * 2 - 1)
    model.eval()
    x = torch.rand(1, 3, H, H, generator=g) * 2 - 1
    path = out_dir / f"densenet_{flavour}.onnx"
    if flavour == "qonnx":
        export_qonnx(model, args=x, export_path=str(path), dynamo=False)
    else:
        export_onnx_qcdq(model, args=x, export_path=str(path), dynamo=False)
    return path


def branches():
    import torch
    from torch import nn

    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 3, 3, padding=1)
            self.b1 = nn.Conv2d(3, 2, 1)
            self.b2 = nn.Conv2d(3, 3, 3, padding=1)
            self.b3 = nn.Conv2d(3, 2, 1)
            self.pool = nn.MaxPool2d(3, stride=1, padding=1)
            self.mix = nn.Conv2d(2 + 3 + 2 + 3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * (H // 2) ** 2, 5)

        def forward(self, x):
            s = torch.relu(self.stem(x))
            a = torch.relu(self.b1(s))
            b = self.b2(s)                     # no ReLU: a signed branch (its own zero point)
            c = torch.relu(self.b3(self.pool(s)))
            y = torch.cat([a, b, c, s], 1)     # four branches with their own scales / zero points
            y = nn.functional.max_pool2d(torch.relu(self.mix(y)), 2)
            return self.fc(torch.flatten(y, 1))

    return Branches()


def make_ort(out_dir: Path, fmt: str) -> Path:
    import numpy as np
    import onnx
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    torch.manual_seed(SEED)
    model = branches().eval()
    rng = np.random.default_rng(SEED)
    batches = [rng.normal(0, 1, (4, 3, H, H)).astype(np.float32) for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    path = out_dir / f"branches_{fmt}.onnx"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "float.onnx"
        torch.onnx.export(model, torch.from_numpy(batches[0][:1]), str(src), input_names=["input"],
                          output_names=["logits"], opset_version=13, dynamo=False,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        quantize_static(str(src), str(path), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)
    m = onnx.load(str(path))
    m.producer_name = "tests/exports/make_concat.py+onnxruntime.quantization"
    onnx.save(m, str(path))
    return path


def make(name: str, out_dir: Path) -> Path:
    if name.startswith("densenet_"):
        return make_densenet(out_dir, name.split("_", 1)[1])
    return make_ort(out_dir, name.split("_", 1)[1])


def main(argv):
    out_dir = Path(argv[0]) if argv else OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    import logging
    logging.disable(logging.WARNING)
    for name in argv[1:] or NAMES:
        p = make(name, out_dir)
        print(f"{p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
