"""Validation at every door (issue 13, finding 5): bad model values, CLI numbers, board / fold files, file
encodings and `gen check` inputs end in exit 2 with one `error: ...` line that names what is wrong and where -
never a traceback, never a design built from a value that means nothing.

The CLI runs in-process (gen.cli.main) so these tests stay fast; `run_cli` is shared with tests/test_fuzz.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper

from gen.boards import BOARDS_DIR
from gen.cli import build_parser, check_parser, main
from tests.modelgen import qdq_model, qonnx_model

MODELS = Path(os.environ.get("GEN_SHARED_MODELS", Path(__file__).resolve().parents[2] / "shared" / "models"))
BOARDS = BOARDS_DIR   # the bundled board files (gen/board_files/)


def run_cli(args) -> tuple[int, str, str]:
    """gen.cli.main(args) with stdout/stderr captured; an escaping exception becomes rc -1 with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except BaseException:  # noqa: BLE001 - SystemExit included: main must return, not exit
            err.write(traceback.format_exc())
            rc = -1
    return rc, out.getvalue(), err.getvalue()


def assert_error(r, *expect: str) -> str:
    """Exit 2, exactly one `error:` line on stderr (no traceback) containing every string of `expect`."""
    rc, out, err = r
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, out[-2000:], err[-3000:])
    for e in expect:
        assert e in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------ model builders

def _model(kind="relu", flavour="qonnx"):
    return (qonnx_model if flavour == "qonnx" else qdq_model)(kind, np.random.default_rng(0)).model


def _inits(model) -> dict:
    return {i.name: i for i in model.graph.initializer}


def _set(model, name, value) -> None:
    init = _inits(model)[name]
    old = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array(np.asarray(value, dtype=old.dtype), name))


def _quant(model, weights: bool, per_channel: bool = False):
    """The first QONNX Quant node on weights (an initializer input) or on activations."""
    inits = _inits(model)
    for n in model.graph.node:
        if n.op_type == "Quant" and (n.input[0] in inits) == weights:
            if not per_channel or numpy_helper.to_array(inits[n.input[1]]).size > 1:
                return n
    raise LookupError("no such Quant node")


def _save(model, tmp_path, name="m.onnx") -> Path:
    p = tmp_path / name
    onnx.save(model, p)
    return p


def _both(path, tmp_path):
    """generate and check on the same model: both must refuse it the same way."""
    return [run_cli([path, "-o", tmp_path / "out"]), run_cli(["check", path, "--n", "2"])]


# ------------------------------------------------------------------------------------------ model values

@pytest.mark.parametrize("bits", [0, -2, 2.5, float("nan"), 40])
def test_quant_bit_width_outside_range(tmp_path, bits):
    m = _model()
    q = _quant(m, weights=False)
    _set(m, q.input[3], bits)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, f"'{q.name}'", "bit width")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -0.5])
def test_activation_scale_not_positive_finite(tmp_path, value):
    m = _model()
    q = _quant(m, weights=False)
    _set(m, q.input[1], value)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, f"'{q.name}'", "scale", "positive")


def test_per_channel_weight_scale_zero(tmp_path):
    m = _model("conv")
    q = _quant(m, weights=True, per_channel=True)
    s = numpy_helper.to_array(_inits(m)[q.input[1]]).copy()
    s.flat[1] = 0
    _set(m, q.input[1], s)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, f"'{q.name}'", "scale", "positive", "[1]")


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_weight_not_finite(tmp_path, value):
    m = _model("conv")
    q = _quant(m, weights=True)
    w = numpy_helper.to_array(_inits(m)[q.input[0]]).copy()
    w.flat[3] = value
    _set(m, q.input[0], w)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, f"'{q.input[0]}'", "NaN or Inf")


def test_qdq_scale_zero(tmp_path):
    m = _model("conv", "qdq")
    n = next(n for n in m.graph.node if n.op_type == "QuantizeLinear")
    _set(m, n.input[1], 0.0)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, "QuantizeLinear", "scale", "positive")


@pytest.mark.parametrize("zp", [0.5, 300])
def test_zero_point_off_grid(tmp_path, zp):
    m = _model()
    q = _quant(m, weights=False)
    _set(m, q.input[2], zp)
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, f"'{q.name}'", "zero point")


def test_batchnorm_variance_nan_negative(tmp_path):
    m = _model("batchnorm")
    bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
    var = numpy_helper.to_array(_inits(m)[bn.input[4]]).copy()
    var[0] = np.nan
    _set(m, bn.input[4], var)
    assert_error(run_cli(["check", _save(m, tmp_path), "--n", "2"]), bn.input[4], "NaN or Inf")
    var[0] = -1.0
    _set(m, bn.input[4], var)
    assert_error(run_cli(["check", _save(m, tmp_path), "--n", "2"]), f"'{bn.name}'", "variance")


@pytest.mark.parametrize("field,value", [("opset", 1), ("opset", 99), ("ir_version", 99), ("ir_version", 1)])
def test_unsupported_versions(tmp_path, field, value):
    m = _model()
    if field == "opset":
        next(o for o in m.opset_import if o.domain in ("", "ai.onnx")).version = value
    else:
        m.ir_version = value
    for r in _both(_save(m, tmp_path), tmp_path):
        line = assert_error(r, str(value), "supported")
        assert "opset 9" in line or "IR version 3" in line, line  # the supported range is stated


def test_graph_cycle(tmp_path):
    m = _model()
    a, b = m.graph.node[2], m.graph.node[3]   # Conv -> Relu: feed the Relu's output back into the Conv
    a.input[0] = b.output[0]
    line = assert_error(run_cli(["check", _save(m, tmp_path), "--n", "2"]), "cycle")
    assert a.name in line and b.name in line


# ------------------------------------------------------------------------------------------ file encodings

@pytest.mark.parametrize("content,expect", [(b"", "empty file"), (b"\x00\xff\xfe" * 40, "not an ONNX")])
def test_model_file_empty_or_junk(tmp_path, content, expect):
    p = tmp_path / "m.onnx"
    p.write_bytes(content)
    for r in _both(p, tmp_path):
        assert_error(r, str(p), expect)


# ------------------------------------------------------------------------------------------ CLI numbers

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _save(_model(), tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("opt,value", [("--fps", "0"), ("--fps", "-1"), ("--fps", "inf"), ("--fps", "nan"),
                                       ("--fps", "abc"), ("--clock-mhz", "-5"), ("--clock-mhz", "1e-9"),
                                       ("--clock-mhz", "nan"), ("--clock-mhz", "5000"), ("--clock-mhz", "inf")])
def test_cli_numbers(tmp_path, tiny, opt, value):
    line = assert_error(run_cli([tiny, "-o", tmp_path / "out", opt, value]), opt, value)
    assert " to " in line  # the allowed range is stated
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("opt,value", [("--n", "0"), ("--n", "-1"), ("--n", "2.5"), ("--seed", "-1")])
def test_check_numbers(tiny, opt, value):
    assert_error(run_cli(["check", tiny, opt, value]), opt, value)


def test_help_states_ranges():
    h = build_parser().format_help()
    assert "1 to 250" in h and "MHz" in h and "--fps" in h
    assert ">= 1" in check_parser().format_help()


def test_check_inputs_wrong_shape(tmp_path, tiny):
    x = np.zeros((3, 7, 2), np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    line = assert_error(run_cli(["check", tiny, "--inputs", tmp_path / "x.npz"]), "shape", "(3, 7, 2)")
    assert "expected" in line
    shape = [d.dim_value for d in onnx.load(tiny).graph.input[0].type.tensor_type.shape.dim][1:]
    np.save(tmp_path / "x.npy", np.zeros([2] + shape, np.float32))  # a .npy (no 'x' inside)
    assert_error(run_cli(["check", tiny, "--inputs", tmp_path / "x.npy"]), "'x'")
    np.savez(tmp_path / "nan.npz", x=np.full([2] + shape, np.nan, np.float32))
    assert_error(run_cli(["check", tiny, "--inputs", tmp_path / "nan.npz"]), "NaN")


# ------------------------------------------------------------------------------------------ board files

def _board(tmp_path, edit=None, raw: bytes | None = None) -> Path:
    p = tmp_path / "myboard.yaml"
    if raw is not None:
        p.write_bytes(raw)
        return p
    b = yaml.safe_load((BOARDS / "zybo-z7.yaml").read_text())
    edit(b)
    p.write_text(yaml.safe_dump(b))
    return p


@pytest.mark.parametrize("case,edit,expect", [
    ("clock negative", lambda b: b.update(clock_mhz=-100), ["clock_mhz", "1 to 250"]),
    ("clock string", lambda b: b.update(clock_mhz="fast"), ["clock_mhz", "number", "str"]),
    ("lut bool", lambda b: b["resources"].update(lut=True), ["resources.lut", "integer", "bool"]),
    ("dma width string", lambda b: b["dma"].update(width_bits="64"), ["dma.width_bits", "integer"]),
    ("resources list", lambda b: b.update(resources=[1, 2]), ["resources", "mapping", "list"]),
    ("part missing", lambda b: b.pop("part"), ["part", "missing"]),
    ("unknown key", lambda b: b.update(clock_mzh=100), ["clock_mzh", "unknown"]),
])
def test_board_schema(tmp_path, tiny, case, edit, expect):
    p = _board(tmp_path, edit)
    assert_error(run_cli([tiny, "--board", p, "-o", tmp_path / "out"]), str(p), *expect)


@pytest.mark.parametrize("raw,expect", [(b"", "empty file"), (b"name: \xff\xfe\n", "UTF-8"),
                                        (b"- 1\n- 2\n", "mapping")])
def test_board_file_encoding(tmp_path, tiny, raw, expect):
    p = _board(tmp_path, raw=raw)
    assert_error(run_cli([tiny, "--board", p, "-o", tmp_path / "out"]), str(p), expect)


# ------------------------------------------------------------------------------------------ fold files

def hw_nodes(model_path) -> list[str]:
    """The hardware node names a fold file may name (as gen's generate builds them)."""
    from gen.frontend import load_design
    from gen.hw import build_hw_graph
    _, design = load_design(model_path)
    return [n.name for n in build_hw_graph(design, dma_bits=64).nodes]


@pytest.mark.parametrize("raw,expect", [(None, ["pe", "integer", "bool"]), (b"", ["empty file"]),
                                        (b"a: \xff\n", ["UTF-8"])])
def test_fold_file(tmp_path, tiny, raw, expect):
    p = tmp_path / "fold.yaml"
    if raw is None:   # a real hardware node of the model, with a boolean PE (True == 1 is a legal PE)
        p.write_text(yaml.safe_dump({hw_nodes(tiny)[0]: {"pe": True}}))
    else:
        p.write_bytes(raw)
    assert_error(run_cli([tiny, "--fold", p, "-o", tmp_path / "out"]), str(p), *expect)


# ------------------------------------------------------------------------------------------ found by the fuzzer

def test_qdq_zero_point_rules(tmp_path):
    m = _model("conv", "qdq")   # a bias DequantizeLinear (int32): ONNX defines no zero point there
    n = next(n for n in m.graph.node if n.op_type == "DequantizeLinear"
             and numpy_helper.to_array(_inits(m)[n.input[0]]).dtype == np.int32)
    _set(m, n.input[2], 7)
    assert_error(run_cli(["check", _save(m, tmp_path), "--n", "2"]), "int32 zero point 7")
    m = _model("conv", "qdq")   # a per-tensor zero point beside a 3-channel scale
    n = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in _inits(m))
    _set(m, n.input[1], np.full(3, 0.05, np.float32))
    assert_error(run_cli(["check", _save(m, tmp_path), "--n", "2"]), "has 3 values", "must match")


@pytest.mark.parametrize("edit,expect", [("group", "group=-1"), ("batch", "batch size 6")])
def test_conv_group_and_fixed_batch(tmp_path, edit, expect):
    m = _model()
    if edit == "group":
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        conv.attribute.append(onnx.helper.make_attribute("group", -1))
    else:
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 6
    for r in _both(_save(m, tmp_path), tmp_path):
        assert_error(r, expect)
