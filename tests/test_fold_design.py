"""gen/fold: folding of real designs, fold-file validation, the does-not-fit error, FIFO sizing, resource model."""

import json
from pathlib import Path

import numpy as np
import pytest

from gen.errors import GenError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tfc():
    import os

    from gen.frontend import load, lower
    from gen.hw import build_hw_graph
    p = Path(os.environ.get("GEN_SHARED_MODELS", REPO.parent / "shared" / "models")) / "tfc_1w1a.onnx"
    if not p.exists():
        pytest.skip("shared TFC model missing")
    d = lower(load(p))
    return d, build_hw_graph(d)


@pytest.fixture(scope="module")
def cnv():
    import sys
    sys.path.insert(0, str(REPO / "bench"))
    import tempfile

    import onnx
    from cnv import cnv_model

    from gen.frontend import load, lower
    from gen.hw import build_hw_graph
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "cnv.onnx"
        onnx.save(cnv_model(1, 1), p)
        d = lower(load(p))
    return d, build_hw_graph(d)


def _board():
    from gen.boards import load_board
    return load_board("zybo-z7")


def test_auto_fold_fits_and_is_legal(cnv):
    from gen.fold import fold_design, fold_summary
    from gen.fold.estimate import board_capacity
    d, g = cnv
    f = fold_design(d, g, _board())
    g.check_folding(f)
    s = fold_summary(f)
    assert s["cycles"] == g.bottleneck(f)[1]
    cap = board_capacity(_board())
    assert s["estimate"]["total"]["lut"] <= 0.85 * cap["lut"]
    assert s["limited_by"] in [n.name for n in g.nodes]
    # faster than the trivial folding by orders of magnitude
    assert s["cycles"] * 100 < max(g.cycles(g.default_folding()).values())
    for n in g.nodes:
        assert len(f[n.name]["fifo"]) == len(n.inputs)


def test_fps_target_met_with_fewer_resources(cnv):
    from gen.fold import fold_design, fold_summary
    d, g = cnv
    fast = fold_summary(fold_design(d, g, _board()))
    slow = fold_summary(fold_design(d, g, _board(), fps=500))
    assert slow["fps"] >= 500 and slow["limited_by"] is None and "met" in slow["reason"]
    assert slow["estimate"]["total"]["lut"] < fast["estimate"]["total"]["lut"]


def test_unreachable_target_names_the_limiting_node(tfc):
    from gen.fold import fold_design, fold_summary
    d, g = tfc
    s = fold_summary(fold_design(d, g, _board(), fps=10e6))
    assert s["limited_by"] == "input" and "maximum parallelism" in s["reason"]


def test_fold_file_overrides_and_validates(tfc, tmp_path):
    from gen.fold import fold_design
    d, g = tfc
    p = tmp_path / "fold.yaml"
    p.write_text("dense_7: {pe: 4, simd: 16}\n")
    f = fold_design(d, g, _board(), fold_file=str(p))
    assert (f["dense_7"]["pe"], f["dense_7"]["simd"]) == (4, 16)
    p.write_text("nosuch: {pe: 2}\n")
    with pytest.raises(GenError, match="unknown node 'nosuch'"):
        fold_design(d, g, _board(), fold_file=str(p))
    p.write_text("dense_7: {pe: 3}\n")
    with pytest.raises(GenError, match=r"dense_7.*PE=3 is not legal.*\[1, 2, 4, 8, 16, 32, 64\]"):
        fold_design(d, g, _board(), fold_file=str(p))
    p.write_text("dense_7: {simd: 5}\n")
    with pytest.raises(GenError, match=r"dense_7.*SIMD=5 is not legal"):
        fold_design(d, g, _board(), fold_file=str(p))


def test_lut_bound_design_moves_deep_rom_weights_to_block_ram(cnv):
    """The auto fold of CNV-W1A1 is LUT-heavy with block RAM to spare: some deep LUT-ROM weight memories move to
    block RAM, each move lowers the highest utilisation, and shallow ROMs (cheap in LUTs) stay where they are."""
    from gen.fold import estimate as E
    from gen.fold import fold_design, fold_summary
    from gen.fold.fold import MARGIN, _utilisation
    d, g = cnv
    f = fold_design(d, g, _board())
    moved = [n for n, v in f.items() if isinstance(v, dict) and v.get("ram_style") == "block"]
    assert moved
    cap = E.board_capacity(_board())
    with_moves = E.graph_estimate(g, f, d)["total"]
    without = E.graph_estimate(g, {k: {kk: vv for kk, vv in v.items() if kk != "ram_style"}
                                   for k, v in f.items() if isinstance(v, dict)}, d)["total"]
    assert with_moves["lut"] < without["lut"] and with_moves["bram18"] > without["bram18"]
    assert _utilisation(with_moves, cap, MARGIN) < _utilisation(without, cap, MARGIN)
    assert fold_summary(f)["estimate"]["total"] == with_moves
    for n in moved:  # deep memories only: depth = MH/PE * MW/SIMD
        node = g.node(n)
        pe, simd = g.fold_of(f, n)
        assert node.params["MH"] // pe * node.params["MW"] // simd >= 32


def test_fold_file_ram_style(tfc, tmp_path):
    from gen.fold import estimate as E
    from gen.fold import fold_design
    d, g = tfc
    p = tmp_path / "fold.yaml"
    p.write_text("dense_7: {pe: 1, simd: 8, ram_style: block}\n")
    f = fold_design(d, g, _board(), fold_file=str(p))
    assert f["dense_7"]["ram_style"] == "block"
    assert E.graph_estimate(g, f, d)["nodes"]["dense_7"]["kernel"]["bram18"] > 0
    p.write_text("dense_7: {ram_style: ultra}\n")
    with pytest.raises(GenError, match=r"dense_7.*ram_style='ultra'.*auto, block, distributed, registers"):
        fold_design(d, g, _board(), fold_file=str(p))
    p.write_text("input: {ram_style: block}\n")
    with pytest.raises(GenError, match=r"input.*only an mvu's weight memory"):
        fold_design(d, g, _board(), fold_file=str(p))


def test_does_not_fit_is_a_clear_error(cnv):
    from gen.fold import fold_design
    d, g = cnv
    tiny = dict(_board(), name="tiny", resources=dict(lut=2000, ff=4000, bram36=4, dsp=0))
    with pytest.raises(GenError) as e:
        fold_design(d, g, tiny)
    msg = str(e.value)
    assert "does not fit tiny" in msg and "What to change" in msg and "total" in msg and "conv_" in msg


def test_fifo_depths_round_to_the_kernel():
    from gen.fold.fifo import round_depth
    from gen.rtl.elementwise import render_fifo
    for d in (1, 2, 17, 32, 33, 100, 260, 1000):
        r = round_depth(d)
        assert r >= max(2, d)
        assert render_fifo("x", depth=r, width=8).extra["capacity"] == r


def test_join_skew_sizes_the_short_branch():
    """Residual block: fork -> (swg 3x3 pad 1 -> mvu) and (skip) -> add: the skip input holds ~W+2 pixels."""
    from gen.fold.fifo import size_fifos
    from gen.hw import HwGraph, HwNode, StreamInfo
    H = W = 8
    C = 4
    x = StreamInfo("x", (H, W, C), 4, False)
    win = StreamInfo("win", (H, W, C), 4, False, order="win", window=(3, 3))
    y = StreamInfo("y", (H, W, C), 4, False)
    z = StreamInfo("z", (H, W, C), 4, False)
    nodes = [
        HwNode("input", "input", (), (), x, dict(N_ELEMS=H * W * C, DMA_BYTES=8, IFM_CH=C)),
        HwNode("c_swg", "swg", (), (x,), win, dict(IFM_CH=C, IFM_DIM_H=H, IFM_DIM_W=W, K_H=3, K_W=3, STRIDE_H=1,
                                                   STRIDE_W=1, PADS=(1, 1, 1, 1), OFM_DIM_H=H, OFM_DIM_W=W,
                                                   DEPTHWISE=0)),
        HwNode("c", "mvu", (), (win,), y, dict(MW=9 * C, MH=C, NUM_PIX=H * W, DEPTHWISE=0)),
        HwNode("add", "add", (), (x, y), z, dict(CHANNELS=C, A_BITS=4, B_BITS=4)),
        HwNode("output", "output", (), (z,), None, dict(NUM_SCORES=H * W * C, NUM_CLASSES=0, DMA_BYTES=8)),
    ]
    g = HwGraph("res", nodes)
    fold = {n.name: {"pe": 1, "simd": 1} for n in nodes}
    d = size_fifos(g, fold)
    # the skip input (index 0) must hold the window's lead: (W + 1) pixels of C beats (pad 1), plus slack
    assert d["add"][0] >= (W + 2) * C
    assert d["add"][1] <= 32
    fold["add"]["simd"] = 4
    assert size_fifos(g, fold)["add"][0] >= (W + 2)


def test_resource_model_on_calibration_points():
    """The model vs the cached Yosys counts (bench/results/calibration.json): stated bounds."""
    from gen.fold import resources as R
    cache = json.loads((REPO / "bench" / "results" / "calibration.json").read_text())
    errs = []
    for v in cache.values():
        if not v.get("yosys"):
            continue
        m, e = R.measured(v["yosys"]), R.estimate(v["kernel"], v["params"])
        errs.append(abs(e["lut"] - m["lut"]) / m["lut"])
        if v["kernel"] in ("mvu", "swg", "fifo"):
            assert e["bram18"] == pytest.approx(m["bram18"], rel=0.15, abs=1), v["name"]
        assert e["dsp"] == m["dsp"], v["name"]
    assert np.mean(errs) < 0.15 and np.max(errs) < 0.8


def test_window_parallel_swg_buffering_by_simulation():
    """gen/fold/fifo.py's model of a window-parallel swg and its consumer: a consumer faster than the windows'
    pace needs no buffer; a frame change longer than a slow consumer's window time costs rate unless windows
    are buffered, and more buffering never hurts."""
    from gen.fold.fifo import _pair_interval
    from gen.rtl.swg import wide_geometry
    g = wide_geometry((32, 32), (3, 3), (1, 1), (0, 0, 0, 0))
    real, emit = g["REAL"], g["EMIT"]
    assert sum(emit) == 900 and len(real) == 1024
    # consumer 1 cycle per window: the swg's own 1,024 positions set the rate
    assert _pair_interval(real, emit, 1.0, 70, 1, 1) == 1024
    # 4 cycles per window (3,600 per frame): the 67-position frame change starves it without a buffer ...
    direct = _pair_interval(real, emit, 1.0, 70, 4, 1)
    assert direct > 3600
    # ... and 17 buffered windows (67 / 4) cover it
    rates = [_pair_interval(real, emit, 1.0, 70, 4, h) for h in (1, 3, 5, 9, 17, 33)]
    assert rates == sorted(rates, reverse=True) and rates[-2] == 3600
