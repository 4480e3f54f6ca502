"""The real models in ../shared/models lower, reproduce their reference pairs, and pass `gen check`."""

import os
from pathlib import Path

import numpy as np
import pytest

from gen.frontend import load_design
from gen.golden.check import check, sample_inputs
from gen.golden.model import infer

# ../shared/models beside the checkout, or wherever GEN_SHARED_MODELS points
MODELS = Path(os.environ.get("GEN_SHARED_MODELS", Path(__file__).resolve().parents[2] / "shared" / "models"))
NAMES = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "qkeras_qconv2d_mnist"]


def _model(name):
    p = MODELS / f"{name}.onnx"
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p


@pytest.mark.parametrize("name", [n for n in NAMES if n != "tfc_1w2a"])
def test_reproduces_io_pairs(name):
    loaded, design = load_design(_model(name))
    io = np.load(MODELS / f"{name}.io.npz")
    x, y = io["x"][:, 0], io["y"][:, 0]
    res = infer(design, x)
    # arg-max always
    label = res["label"][:, 0] if "label" in res else res["float"].reshape(len(x), -1).argmax(1)
    assert np.array_equal(label, y.reshape(len(x), -1).argmax(1))
    if design.output == design.scores:  # no softmax: the float outputs themselves, bit for bit
        assert np.array_equal(res["float"].reshape(y.shape), y)


@pytest.mark.parametrize("name", NAMES)
def test_gen_check_no_unexplained(name):
    loaded, design = load_design(_model(name))
    x = sample_inputs(design, 24, np.random.default_rng(1))
    rep = check(design, loaded.model, x)
    assert rep.unexplained == 0, {k: (s.unexplained, s.examples) for k, s in rep.layers.items()}
    assert rep.argmax_agree == rep.argmax_total
