"""Issue 14, families 4 and 7.

Family 4: a graph input annotated with a QONNX datatype (BIPOLAR, INTn / UINTn, FIXED<n,i>) is checked on that
grid: `gen check` draws only values the annotation allows (qonnx's executor rejects others with "Rounding error is
too high to match set QONNX datatype"), exits 0 and finds no unexplained mismatch.

Family 7: a failure inside a third-party step (qonnx cleanup / execution, onnxruntime session creation / run, ONNX
shape inference, the ONNX checker, onnx's ReferenceEvaluator) ends in exit 2 and one `error:` line naming the step
(and the node where known) - never a traceback. Each step is forced to fail by wrapping or replacing the library
call; where a real input makes the library fail (off-grid inputs, an op onnxruntime does not know, input dims it
rejects), that input is used.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from qonnx.core.datatype import DataType

from gen.frontend import Loaded, load_design, lower, prepare
from gen.frontend.thirdparty import third_party_message
from gen.golden.check import check, input_datatype, input_sampler
from tests.modelgen import QONNX_INPUT_KINDS, qdq_model, qonnx_model, qonnx_models, qop_model
from tests.test_validation import MODELS, assert_error, run_cli

# seeds picked so that every variant of the kinds' input stage is covered (see each model's info["layers"][0])
ANNOTATED = [("bipolar_input", s) for s in (0, 1, 5, 7)] + [("scaled_input", s) for s in (0, 1, 2, 5)]


def _save(model, tmp_path, name="m.onnx"):
    p = tmp_path / name
    onnx.save(model, str(p))
    return p


def _assert_check_ok(r):
    rc, out, err = r
    assert rc == 0 and "Traceback" not in err, (rc, out[-2000:], err[-3000:])
    assert "OK: 0 unexplained mismatches" in out, out[-2000:]


# ------------------------------------------------------------------------------- family 4: annotated input grids
@pytest.mark.parametrize("kind,seed", ANNOTATED)
def test_gen_check_annotated_input(kind, seed, tmp_path):
    gm = qonnx_model(kind, np.random.default_rng(seed))
    p = _save(gm.model, tmp_path)
    _assert_check_ok(run_cli(["check", p, "--n", "16"]))
    # the sampler's values are all on the annotated grid, and every code the first quantiser makes from that grid
    # is drawn (the grid of the generator: InputGrid -> the first quantiser)
    loaded, design = load_design(p)
    dt = input_datatype(loaded.model)
    assert dt is not None and dt.get_canonical_name() == gm.model.graph.quantization_annotation[0]. \
        quant_parameter_tensor_names[0].value
    s = input_sampler(design, loaded.model)
    for vals in s.values:
        assert vals.size >= 2 and np.all(dt.allowed(vals)), (dt.get_canonical_name(), vals)
    x = s.draw(16, np.random.default_rng(0))
    assert np.all(dt.allowed(x))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(qonnx_models(QONNX_INPUT_KINDS))
def test_hypothesis_annotated_input(gm):
    """Random annotated-input models, fed the generator's own grid (InputGrid), not gen's sampler: the golden
    model agrees with qonnx (no unexplained mismatch), and gen's sampler draws only values the annotation allows."""
    m = prepare(gm.model, "qonnx")
    d = lower(Loaded(m, "qonnx", "random", None))
    rep = check(d, m, gm.sample(6, np.random.default_rng(0)))
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()} | {"e2e": rep.end_to_end.examples}
    dt = input_datatype(m)
    assert all(np.all(dt.allowed(v)) for v in input_sampler(d, m).values)


def test_bipolar_input_draws_both_codes(tmp_path):
    """A BIPOLAR input: the values drawn are exactly -1 and +1 (the old sampler drew 0.0 for +1 and images k/255
    once a float pre-processing came first)."""
    for seed in (0, 7):   # a BipolarQuant directly on the input, and one after g*x + c
        gm = qonnx_model("bipolar_input", np.random.default_rng(seed))
        loaded, design = load_design(_save(gm.model, tmp_path, f"b{seed}.onnx"))
        for vals in input_sampler(design, loaded.model).values:
            assert sorted(vals.tolist()) == [-1.0, 1.0]


@pytest.mark.parametrize("name", ["tfc_1w1a", "tfc_2w2a"])
def test_real_tfc_annotated_bipolar(name, tmp_path):
    """The QONNX model zoo's TFC MLPs with their input annotated BIPOLAR (binarised MNIST, as FINN annotates it
    with ModelWrapper.set_tensor_datatype): `gen check` passes; before, it ended in qonnx's traceback."""
    from qonnx.core.modelwrapper import ModelWrapper
    src = MODELS / f"{name}.onnx"
    if not src.exists():
        pytest.skip(f"{src} not present")
    mw = ModelWrapper(str(src))
    mw.set_tensor_datatype(mw.graph.input[0].name, DataType["BIPOLAR"])
    p = _save(mw.model, tmp_path)
    _assert_check_ok(run_cli(["check", p, "--n", "8"]))


def test_unknown_annotation_is_an_error(tmp_path):
    gm = qonnx_model("bipolar_input", np.random.default_rng(0))
    gm.model.graph.quantization_annotation[0].quant_parameter_tensor_names[0].value = "NOSUCHTYPE"
    assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]), "unknown QONNX datatype annotation",
                 "NOSUCHTYPE")


# ------------------------------------------------------------------------------- family 7: third-party failures
def test_qonnx_execution_off_grid_inputs(tmp_path):
    """Real: user inputs off the BIPOLAR grid make qonnx's executor raise; the error names the step and node."""
    gm = qonnx_model("bipolar_input", np.random.default_rng(7))
    x = np.full((2, *gm.input_shape[1:]), 0.5, np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    line = assert_error(run_cli(["check", _save(gm.model, tmp_path), "--inputs", tmp_path / "x.npz"]),
                        "qonnx execution (the reference) failed on node '", "Rounding error is too high", "BIPOLAR")
    assert "(op Mul)" in line   # the graph's first node, where qonnx checks the input against its annotation


def test_qonnx_execution_failure_names_node(tmp_path, monkeypatch):
    import qonnx.core.onnx_exec as oe
    real = oe.execute_node

    def failing(node, *a, **k):
        if node.op_type == "MatMul":
            raise ValueError("shapes (1,3) and (4,2) not aligned:\n   3 (dim 1) != 4 (dim 0)")
        return real(node, *a, **k)
    monkeypatch.setattr(oe, "execute_node", failing)
    gm = qonnx_model("matmul", np.random.default_rng(0))
    line = assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]),
                        "qonnx execution (the reference) failed on node 'MatMul_0' (op MatMul): ValueError: "
                        "shapes (1,3) and (4,2) not aligned: 3 (dim 1) != 4 (dim 0)")
    assert line.count("\n") == 0


def test_qonnx_cleanup_failure_names_node(tmp_path, monkeypatch):
    """qonnx's cleanup crashes inside a transformation on channels-last QKeras graphs (family 3); whatever it
    raises, the error names the step and the node the transformation was at."""
    import qonnx.util.cleanup as cl

    def crashing(model, *a, **k):
        for node in model.graph.node:   # as qonnx's transformations walk the graph
            if node.op_type == "Conv":
                len(None)   # TypeError: object of type 'NoneType' has no len()
        return model
    monkeypatch.setattr(cl, "cleanup_model", crashing)
    gm = qonnx_model("conv", np.random.default_rng(0))
    conv = next(n for n in gm.model.graph.node if n.op_type == "Conv")
    for cmd in (["check"], []):   # `gen check` and `gen` itself
        args = cmd + [_save(gm.model, tmp_path)] + (["-o", tmp_path / "out"] if not cmd else [])
        assert_error(run_cli(args), f"qonnx cleanup failed on node '{conv.name}' (op Conv): TypeError: "
                                    "object of type 'NoneType' has no len()")


def test_onnxruntime_session_creation_failure(tmp_path, monkeypatch):
    """Real: onnxruntime refuses a graph it has no kernel for (the reference's session gets a renamed op)."""
    import onnxruntime as ort
    real = ort.InferenceSession

    def renamed(model_bytes, *a, **k):
        m = onnx.load_from_string(model_bytes)
        next(n for n in m.graph.node if n.op_type == "Conv").op_type = "ConvNoSuchOp"
        return real(m.SerializeToString(), *a, **k)
    gm = qdq_model("conv", np.random.default_rng(0))   # (made with onnxruntime: before the patch)
    conv = next(n for n in gm.model.graph.node if n.op_type == "Conv")
    monkeypatch.setattr(ort, "InferenceSession", renamed)
    assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]),
                 f"onnxruntime session creation (the reference) failed on node '{conv.name}' (op ConvNoSuchOp): "
                 "InvalidGraph:")


def test_onnxruntime_run_failure(tmp_path, monkeypatch):
    """Real: onnxruntime rejects the feed (here cut to the wrong size on its way in)."""
    import onnxruntime as ort
    real = ort.InferenceSession.run

    def cut(self, names, feeds, *a, **k):
        return real(self, names, {n: v[..., :1] for n, v in feeds.items()}, *a, **k)
    gm = qdq_model("conv", np.random.default_rng(0))
    monkeypatch.setattr(ort.InferenceSession, "run", cut)
    assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]),
                 "onnxruntime run (the reference) failed: InvalidArgument: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT "
                 ": Got invalid dimensions for input")


def test_onnxruntime_tabulation_failure(tmp_path, monkeypatch):
    """QOperator QLinearAdd is tabulated by running it in onnxruntime while lowering (`gen` and `gen check`)."""
    import onnxruntime as ort

    def refuse(*a, **k):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model failed:\nno kernel")
    gm = qop_model("residual", np.random.default_rng(0))
    add = next(n for n in gm.model.graph.node if n.op_type == "QLinearAdd")
    p = _save(gm.model, tmp_path)
    monkeypatch.setattr(ort, "InferenceSession", refuse)
    assert_error(run_cli(["check", p, "--n", "2"]),
                 f"onnxruntime session creation (tabulating the node) failed on node '{add.name}' (op QLinearAdd): "
                 "RuntimeError: [ONNXRuntimeError] : 1 : FAIL : Load model failed: no kernel")


def test_onnx_shape_inference_failure(tmp_path, monkeypatch):
    """onnx's shape inference raises its InferenceError naming the node in its own words: we name it too."""
    import onnx.shape_inference as si
    gm = qdq_model("conv", np.random.default_rng(0))
    conv = next(n for n in gm.model.graph.node if n.op_type == "Conv")

    def failing(model, *a, **k):
        raise si.InferenceError(f"[ShapeInferenceError] (op_type:Conv, node name: {conv.name}): kernel_shape\n"
                                "has wrong rank")
    monkeypatch.setattr(si, "infer_shapes", failing)
    assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]),
                 f"ONNX shape inference failed on node '{conv.name}' (op Conv): InferenceError:", "has wrong rank")


def test_onnx_checker_failure(tmp_path, monkeypatch):
    """Not a ValidationError (e.g. the checker's C++ side failing on a huge or odd proto): still one line."""
    gm = qdq_model("conv", np.random.default_rng(0))

    def failing(*a, **k):
        raise ValueError("odd proto")
    monkeypatch.setattr(onnx.checker, "check_model", failing)
    assert_error(run_cli(["check", _save(gm.model, tmp_path), "--n", "2"]),
                 "ONNX checker failed: ValueError: odd proto")


def test_constant_folding_failure(tmp_path, monkeypatch):
    """A constant sub-graph (Mul of two initialisers) is folded with onnx's ReferenceEvaluator while lowering (a
    QDQ graph: qonnx's cleanup would fold it before gen sees a QONNX one)."""
    import onnx.reference
    gm = qdq_model("conv", np.random.default_rng(0))
    g = gm.model.graph
    a = onnx.numpy_helper.from_array(np.ones(1, np.float32), "fold_a")
    b = onnx.numpy_helper.from_array(np.ones(1, np.float32), "fold_b")
    g.initializer.extend([a, b])
    first = next(n for n in g.node if n.input[0] == g.input[0].name)   # the input's quantiser
    g.node.insert(0, onnx.helper.make_node("Mul", ["fold_a", "fold_b"], ["fold_ab"], name="fold_mul"))
    # x * (a * b): the folded constant (1) scales the input before the first quantiser
    g.node.insert(1, onnx.helper.make_node("Mul", [g.input[0].name, "fold_ab"], ["x_scaled"], name="apply_mul"))
    first.input[0] = "x_scaled"
    p = _save(gm.model, tmp_path)
    _assert_check_ok(run_cli(["check", p, "--n", "2"]))   # sound when the evaluator works

    class Broken:
        def __init__(self, *a, **k):
            raise TypeError("unsupported operand")
    monkeypatch.setattr(onnx.reference, "ReferenceEvaluator", Broken)
    assert_error(run_cli(["check", p, "--n", "2"]),
                 "constant folding (onnx ReferenceEvaluator) failed on node", "TypeError: unsupported operand")


def test_memory_error_is_not_converted():
    """MemoryError is no model problem: it propagates (the CLI's caller sees it as it is)."""
    from gen.errors import GenError
    from gen.frontend.thirdparty import third_party
    with pytest.raises(MemoryError):
        with third_party("some step"):
            raise MemoryError()
    with pytest.raises(GenError, match="^some step failed: KeyError: 'k'$"):
        with third_party("some step"):
            raise KeyError("k")


def test_message_names_onnxruntime_node_from_its_text():
    msg = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Conv node. Name:'conv_7' "
           "Status Message: \n bad")
    assert third_party_message("onnxruntime run", RuntimeError(msg)) == \
        "onnxruntime run failed on node 'conv_7' (op Conv): RuntimeError: " + " ".join(msg.split())


def test_nchw_input_with_a_small_last_axis_stays_nchw():
    """N,C,H,W = 1,15,12,4 read by a Conv: ONNX defines Conv on N,C,H,W, so the small last axis is the width, not
    the channels of an NHWC image (the guess that serves channels-last exports must not apply here)."""
    gm = qdq_model("conv", np.random.default_rng(35))
    assert [d.dim_value for d in gm.model.graph.input[0].type.tensor_type.shape.dim][1:] == [15, 12, 4]
    m = prepare(gm.model, "qdq")
    d = lower(Loaded(m, "qdq", "narrow", None))
    assert d.tensors[d.input].shape == (12, 4, 15)
    rep = check(d, m, gm.sample(4, np.random.default_rng(0)))
    assert rep.unexplained == 0
