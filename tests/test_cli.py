"""CLI: a good run writes design.json + report atomically; every bad input is one clear error, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from gen.golden.model import infer
from gen.ir.design import Design

# ../shared/models beside the checkout, or wherever GEN_SHARED_MODELS points
MODELS = Path(os.environ.get("GEN_SHARED_MODELS", Path(__file__).resolve().parents[2] / "shared" / "models"))
TFC = MODELS / "tfc_2w2a.onnx"


def gen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _float_model(path, op="Relu", domain=""):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node(op, ["x"], ["y"], name="the_node", domain=domain)
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), path)


def test_generate_writes_design_and_report(tmp_path):
    if not TFC.exists():
        pytest.skip("external model missing")
    out = tmp_path / "o"
    r = gen(TFC, "--board", "zybo-z7", "-o", out)
    assert r.returncode == 0, r.stderr
    assert (out / "design.json").exists() and (out / "report" / "report.md").exists()
    assert "Dense" in (out / "report" / "report.md").read_text()
    # design.json loads back and computes the same
    from gen.frontend import load_design
    _, d = load_design(TFC)
    d2 = Design.load(out / "design.json")
    x = np.load(MODELS / "tfc_2w2a.io.npz")["x"][:, 0]
    assert np.array_equal(infer(d, x)["float"], infer(d2, x)["float"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("case", ["not_onnx", "empty", "float", "unsupported", "bits", "board", "unwritable",
                                  "missing", "fps_nan"])
def test_bad_input(tmp_path, case):
    model = tmp_path / "m.onnx"
    args = [model, "-o", tmp_path / "out"]
    if case == "not_onnx":
        model.write_text("hello")
        expect = "not an ONNX file"
    elif case == "empty":
        model.write_bytes(b"")
        expect = "empty file"
    elif case == "fps_nan":  # the real process: argparse's own exit path is not taken (one error: line, exit 2)
        model = TFC
        args = [model, "--fps", "nan", "-o", tmp_path / "out"]
        expect = "argument --fps: nan: must be frames per second"
    elif case == "float":
        _float_model(model)
        expect = "not quantised"
    elif case == "unsupported":
        from tests.modelgen import qonnx_model  # a real quantised model with one op swapped for Sin
        gm = qonnx_model("relu", np.random.default_rng(0))
        for n in gm.model.graph.node:
            if n.op_type == "Relu":
                n.op_type = "Sin"
                n.name = "bad_sin"
        onnx.save(gm.model, model)
        expect = "op Sin is not supported"
    elif case == "bits":
        from tests.modelgen import qonnx_model
        gm = qonnx_model("relu", np.random.default_rng(0))
        inits = {i.name: i for i in gm.model.graph.initializer}
        for n in gm.model.graph.node:
            if n.op_type == "Quant" and n.input[0] not in inits:
                bw = inits[n.input[3]]
                bw.CopyFrom(onnx.numpy_helper.from_array(np.array(12, dtype=np.float32), bw.name))
                break
        onnx.save(gm.model, model)
        expect = "at most 8 bits"
    elif case == "board":
        model = TFC
        args = [model, "--board", "nosuchboard", "-o", tmp_path / "out"]
        expect = "zybo-z7"
    elif case == "unwritable":
        model = TFC
        blocker = tmp_path / "file"
        blocker.write_text("x")
        args = [model, "-o", blocker / "out"]
        expect = "output folder"
    else:
        expect = "no such file"
        args = [tmp_path / "nope.onnx"]
    if case in ("board", "unwritable", "fps_nan") and not TFC.exists():
        pytest.skip("external model missing")
    r = gen(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expect in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if "error" in ln] == [ln for ln in r.stderr.splitlines()
                                                                   if ln.startswith("error: ")], r.stderr
    assert not (tmp_path / "out").exists()
