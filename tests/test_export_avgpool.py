"""Average pools the reference computes in float32 (issue 14, family 1).

PyTorch heads `x.mean((2, 3))`, `F.adaptive_avg_pool2d(x, 1)` and `nn.AvgPool2d` exported by torch.onnx and
quantised by onnxruntime's quantize_static (QDQ and QOperator; tests/exports/make_avgpool.py, committed under
tests/data/exports/avgpool/) convert, and `gen check` finds no unexplained mismatch: the mean's requantiser is
float-defined (near-ties allowed, proven) also inside QOperator graphs, while the QLinear* requantisers around it
stay bit-exact. Refusals (other reductions, other axes, a float Clip off the code grid) are one clear line.
Slow: the RTL of one model per flavour equals the golden model (`python -m gen` + `make -C OUT/sim sim`), and
the exports regenerate with the real tools.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gen.errors import UnsupportedError
from gen.frontend import Loaded, load, lower, prepare
from gen.golden.check import check_stream, input_sampler
from gen.ir import layers as L
from tests.real_exports import export_script, gen_and_simulate

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO / "tests" / "data" / "exports" / "avgpool"
NAMES = sorted(p.stem for p in EXPORTS.glob("*.onnx"))
POOL_OPS = {"mean13": "ReduceMean", "mean18": "ReduceMean", "adaptive": "GlobalAveragePool",
            "avgpool2d": "AveragePool"}


def _check(path: Path, n: int):
    loaded = load(path)
    design = lower(loaded)
    rep = check_stream(design, loaded.model,
                       input_sampler(design, loaded.model).batches(n, 32, np.random.default_rng(0)))
    return loaded, design, rep


def test_exports_present():
    assert len(NAMES) == 8, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_export_checks(name):
    loaded, design, rep = _check(EXPORTS / f"{name}.onnx", 32)
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()} | {"e2e": rep.end_to_end.examples}
    ops = {nd.op_type for nd in loaded.model.graph.node}
    kind, fmt = name.rsplit("_", 1)
    assert any(o.endswith(POOL_OPS[kind]) for o in ops), ops
    assert any(isinstance(la, L.AvgPool) for la in design.layers)
    # the requantisers of float-computed means follow the near-tie rule; every QLinear* one is a float32 program
    exact = [la for la in design.layers if isinstance(la, L.Requant) and not la.exact_f32]
    if fmt == "qop":
        float_pool = kind != "adaptive"      # QLinearGlobalAveragePool is MLAS's integer program: bit-exact
        assert len(exact) == (1 if float_pool else 0)
        for la in design.layers:
            if isinstance(la, L.Requant) and la.exact_f32:
                assert rep.layers[la.name].near_ties == 0 if la.name in rep.layers else True


# ---------------------------------------------------------------------------------------------------- refusals
def _qdq_model(mid_nodes, out_shape, opset=13, inits=(), in_shape=(1, 3, 6, 6)):
    """input -> Q -> DQ -> mid_nodes ('a' -> 'b') -> Q -> DQ -> output (uint8, scale 1/64, zero point 3)."""
    s = numpy_helper.from_array(np.array(1 / 64, np.float32), "s")
    z = numpy_helper.from_array(np.array(3, np.uint8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"], name="dq0"), *mid_nodes,
             helper.make_node("QuantizeLinear", ["b", "s", "z"], ["q2"], name="q1"),
             helper.make_node("DequantizeLinear", ["q2", "s", "z"], ["y"], name="dq1")]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], [s, z, *inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    if out_shape is None:   # the output's shape as onnx infers it
        del m.graph.output[:]
        inferred = onnx.shape_inference.infer_shapes(m)
        y = next(v for v in inferred.graph.value_info if v.name == "y")
        m.graph.output.append(y)
    return m


def _lower(model, flavour="qdq"):
    m = prepare(model, flavour)
    return m, lower(Loaded(m, flavour, "t", None))


@pytest.mark.parametrize("op,attrs,match", [
    ("ReduceMean", dict(axes=[1], keepdims=1), r"ReduceMean over axes \[1\] is not supported"),
    ("ReduceMean", dict(axes=[1, 2, 3], keepdims=1), r"ReduceMean over axes \[1, 2, 3\]"),
    ("ReduceMean", dict(keepdims=1), r"ReduceMean over axes \[0, 1, 2, 3\]"),
    ("ReduceSum", dict(keepdims=1), r"ReduceSum is not supported"),
    ("ReduceMax", dict(axes=[2, 3], keepdims=1), r"ReduceMax is not supported"),
])
def test_reductions_refused(op, attrs, match):
    m = _qdq_model([helper.make_node(op, ["a"], ["b"], name="red", **attrs)], None)
    with pytest.raises(UnsupportedError, match=match) as e:
        _lower(m)
    assert "\n" not in str(e.value) and "node 'red'" in str(e.value)


def test_float_clip_off_grid_refused():
    """A float Clip whose bound is no code of the grid cannot be an integer clamp before the sum: refused."""
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(0.7, np.float32), "hi")    # 0.7 * 64 is not an integer
    mid = [helper.make_node("Clip", ["a", "lo", "hi"], ["c"], name="clip"),
           helper.make_node("GlobalAveragePool", ["c"], ["b"], name="gap")]
    with pytest.raises(UnsupportedError, match="not a code of its input's grid"):
        _lower(_qdq_model(mid, None, inits=[lo, hi]))


@pytest.mark.parametrize("flavour", ["qdq", "qop"])
@pytest.mark.parametrize("variant", ["relu", "clip_on_grid", "noop", "one_axis"])
def test_small_means_check(flavour, variant):
    """Float Relu / on-grid Clip before the mean (QOperator keeps them in float), noop_with_empty_axes, one
    spatial axis with keepdims=0 (the index map drops an axis): convert, and the check finds nothing unexplained."""
    inits, mid, opset, out_shape = [], [], 13, None
    if variant in ("relu", "clip_on_grid"):
        if variant == "relu":
            mid.append(helper.make_node("Relu", ["a"], ["c"], name="act"))
        else:
            inits = [numpy_helper.from_array(np.array(0, np.float32), "lo"),
                     numpy_helper.from_array(np.array(1.5, np.float32), "hi")]   # codes 3 and 99
            mid.append(helper.make_node("Clip", ["a", "lo", "hi"], ["c"], name="act"))
        mid.append(helper.make_node("ReduceMean", ["c"], ["b"], name="mean", axes=[2, 3], keepdims=0))
    elif variant == "noop":
        opset = 18
        inits = [numpy_helper.from_array(np.zeros(0, np.int64), "axes")]
        mid.append(helper.make_node("ReduceMean", ["a", "axes"], ["b"], name="mean", noop_with_empty_axes=1))
    else:
        mid.append(helper.make_node("ReduceMean", ["a"], ["b"], name="mean", axes=[-1], keepdims=0))
    m = _qdq_model(mid, out_shape, opset=opset, inits=inits)
    m, d = _lower(m, flavour)
    rep = check_stream(d, m, input_sampler(d, m).batches(16, 16, np.random.default_rng(1)))
    assert rep.unexplained == 0
    if variant != "noop":
        assert any(isinstance(la, L.AvgPool) for la in d.layers)
    assert any(s.compared for s in rep.layers.values())


# ---------------------------------------------------------------------------------------------------- slow
@pytest.mark.slow
@pytest.mark.parametrize("name", ["avgpool2d_qdq", "avgpool2d_qop", "mean18_qop", "mean13_qdq"])
def test_rtl_equals_golden(name, tmp_path):
    """`python -m gen` then `make -C OUT/sim sim`: 32 random frames (+4) through Verilator == golden."""
    gen_and_simulate(EXPORTS / f"{name}.onnx", tmp_path / "out")


@pytest.mark.slow
def test_exports_regenerate(tmp_path):
    """The committed files are what the script makes with the real tools (torch, onnxruntime) here."""
    pytest.importorskip("torch")
    make_avgpool = export_script("make_avgpool")
    make_avgpool.main([str(tmp_path)])
    for name in NAMES:
        new = onnx.load(str(tmp_path / f"{name}.onnx"))
        old = onnx.load(str(EXPORTS / f"{name}.onnx"))
        assert [n.op_type for n in new.graph.node] == [n.op_type for n in old.graph.node]
        _, _, rep = _check(tmp_path / f"{name}.onnx", 16)
        assert rep.unexplained == 0


def test_mean_error_bound_per_channel_zero():
    """The float32 error of a mean is bounded by sum_i |x_i - z_c| with each channel's own zero z_c (the
    reference sums dequantised terms s * (x_i - z_c)); a shared pad value would understate it."""
    from fractions import Fraction

    from gen.frontend.ops.pool import Mean
    from gen.golden.check import _sabs, near_tie
    from gen.ir.elementwise import Arith, Clip, Round

    n, s = 4, Fraction(1, 64)
    zs = [3, 100]
    mean = Mean([s / n, s / n], [-z * s for z in zs])
    pool = L.AvgPool(name="p", inputs=("x",), output="y", kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                     pad_value=3)
    x = np.zeros((1, 2, 2, 2), dtype=np.int64)       # channel 1 holds codes 0: terms s * (0 - 100)
    sabs, fan = _sabs(None, pool, [x], [mean])
    assert fan == n and sabs.shape == (1, 1, 1, 2)
    assert sabs[0, 0, 0, 0] == n * 3 and sabs[0, 0, 0, 1] == n * 100
    # sum 0: the mean -100/64 over the step 1/32 is -50 exactly, half a code from any boundary: no tie
    chain = [mean, Arith("div", np.float32(1 / 32)), Round("ROUND"), Clip(-128, 127)]
    assert not near_tie(chain, 1, 0, float(sabs[0, 0, 0, 1]), fan)
    # an exact half ((8 - 400) / 16 = -24.5) is always a near-tie
    assert near_tie([mean, Arith("div", np.float32(1 / 16)), Round("ROUND")], 1, 8, float(sabs[0, 0, 0, 1]), fan)
