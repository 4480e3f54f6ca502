"""Make the average-pool exports under tests/data/exports/avgpool/ with the real tools (deterministic, seeded).

    .venv/bin/python tests/exports/make_avgpool.py [OUT_DIR] [NAME ...]

Small float PyTorch nets, conv -> relu -> pool -> linear, exported by torch.onnx (TorchScript exporter,
dynamo=False) and quantised by onnxruntime's `quantize_static` (QDQ and QOperator; uint8 activations with zero
points, int8 weights; seeded random calibration data). The pool is the head PyTorch users write:
* mean13:     x.mean((2, 3))                           -> ReduceMean, axes attribute, keepdims 0 (opset 13)
* mean18:     x.mean((-1, -2), keepdim=True) + flatten -> ReduceMean, axes input, keepdims 1 (opset 18)
* adaptive:   F.adaptive_avg_pool2d(x, 1) + flatten    -> GlobalAveragePool (opset 13)
* avgpool2d:  nn.AvgPool2d(2) + flatten                -> AveragePool (opset 13)
onnxruntime leaves ReduceMean in float between DequantizeLinear and QuantizeLinear in both formats; QOperator
turns AveragePool into com.microsoft QLinearAveragePool (float32 inside) and GlobalAveragePool into
QLinearGlobalAveragePool. Files: <net>_qdq.onnx, <net>_qop.onnx.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "exports" / "avgpool"
SEED = 1414
H = 8  # input height = width
NETS = {"mean13": 13, "mean18": 18, "adaptive": 13, "avgpool2d": 13}   # net -> opset
NAMES = tuple(f"{n}_{f}" for n in NETS for f in ("qdq", "qop"))


def net(kind: str):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, padding=1)
            self.c2 = nn.Conv2d(6, 8, 3, stride=1, padding=1)
            self.pool = nn.AvgPool2d(2)
            self.fc = nn.Linear(8 * (H // 2) ** 2 if kind == "avgpool2d" else 8, 5)

        def forward(self, x):
            y = torch.relu(self.c2(torch.relu(self.c1(x))))
            if kind == "mean13":
                y = y.mean((2, 3))
            elif kind == "mean18":
                y = torch.flatten(y.mean((-1, -2), keepdim=True), 1)
            elif kind == "adaptive":
                y = torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)
            else:
                y = torch.flatten(self.pool(y), 1)
            return self.fc(y)

    return Net()


def make(name: str, out_dir: Path) -> Path:
    import numpy as np
    import onnx
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    kind, fmt = name.rsplit("_", 1)
    torch.manual_seed(SEED)
    model = net(kind).eval()
    rng = np.random.default_rng(SEED)
    batches = [rng.normal(0, 1, (4, 3, H, H)).astype(np.float32) for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"input": b}

    path = out_dir / f"{name}.onnx"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "float.onnx"
        torch.onnx.export(model, torch.from_numpy(batches[0][:1]), str(src), input_names=["input"],
                          output_names=["logits"], opset_version=NETS[kind], dynamo=False,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        quantize_static(str(src), str(path), Reader(),
                        quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)
    m = onnx.load(str(path))
    m.producer_name = "tests/exports/make_avgpool.py+onnxruntime.quantization"
    onnx.save(m, str(path))
    return path


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
