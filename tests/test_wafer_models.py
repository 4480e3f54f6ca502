"""The wafer-map models: the bundled trained model through gen, and (with the train extra) fresh Brevitas exports."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from gen.frontend import load_design
from gen.golden.check import check
from gen.golden.model import infer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "wafer"))
import wafermap as wm  # noqa: E402

BUNDLED = ROOT / "examples" / "wafer_vgg_w4a4.onnx"


def _bundled():
    if not BUNDLED.exists():
        pytest.skip(f"{BUNDLED} not present")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_design(BUNDLED)


def test_bundled_model_golden_equals_qonnx_on_wafer_maps():
    loaded, design = _bundled()
    X, _ = wm.generate(2, seed=21, variant="hard")
    rep = check(design, loaded.model, wm.to_model_input(X))
    assert rep.unexplained == 0, {k: (s.unexplained, s.examples) for k, s in rep.layers.items()}
    assert rep.argmax_agree == rep.argmax_total


def test_bundled_model_classifies_wafer_maps():
    _, design = _bundled()
    assert design.tensors[design.input].shape == (42, 42, 1)
    X, y = wm.generate(10, seed=22, variant="standard")
    r = infer(design, wm.to_model_input(X))
    pred = r["float"].reshape(len(y), -1).argmax(1)
    # one positive scale on the scores: the arg-max of the integer scores is the class (hardware label_select)
    assert np.array_equal(r["codes"].reshape(len(y), -1).argmax(1), pred)
    assert (pred == y).mean() > 0.8


@pytest.mark.parametrize("arch", ["vgg", "mobilenet"])
def test_fresh_brevitas_export_lowers_and_matches(arch, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    import models
    import train
    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = models.build(arch, "w2a4")
    X, y = wm.generate(3, seed=23, variant="hard")
    x = wm.to_model_input(X)
    m.train()
    with torch.no_grad():  # let the activation quantisers collect their statistics
        m(torch.from_numpy(x))
    m.eval()
    path = tmp_path / f"{arch}.onnx"
    train.export(m, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded, design = load_design(path)
    rep = check(design, loaded.model, x[:6])
    assert rep.unexplained == 0
    r = infer(design, x)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).numpy()
    assert np.allclose(r["float"].reshape(ref.shape), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert models.count(m)["params"] == sum(int(w.size) for w in
                                            (getattr(lay, "weight", None) for lay in design.layers) if w is not None)
