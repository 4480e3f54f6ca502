"""End-to-end: generated accelerators (accel_top) in Verilator against the golden model, byte for byte.

Every run: >= 32 random frames back to back with random input gaps and sink back-pressure, then frames with
neither, for LAST_INTERVAL (cycles per frame from the control block) within 5% of the analytic bottleneck; the
RTL is linted (verilator --lint-only -Wall). Builds are cached by source hash (gen/sim/runner.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from gen.boards import load_board
from gen.frontend import load_design
from gen.hw import build_hw_graph
from gen.rtl.emit import emit
from gen.shell import regmap
from gen.sim import accel

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("GEN_SHARED_MODELS", REPO.parent / "shared" / "models"))
N_FRAMES = 32


def generate(design, tmp: Path, folding: str | dict = "auto", runtime_weights: bool = False):
    """Emit the accelerator of `design` into tmp/rtl; returns (rtl dir, hw info, graph, folding)."""
    graph = build_hw_graph(design, dma_bits=64, runtime_weights=runtime_weights)
    if folding == "auto":
        try:
            from gen.fold import fold_design
            # gen/fold's sized FIFO depths (the LAST_INTERVAL check holds them to the analytic rate)
            folding = fold_design(design, graph, load_board("zybo-z7"))
        except ImportError:
            folding = graph.default_folding()
    elif folding == "default":
        folding = graph.default_folding()
    design.folding = folding
    em = emit(design, graph, folding, clock_mhz=100, runtime_weights=runtime_weights)
    em.write(tmp / "rtl")
    return tmp / "rtl", accel.load_hwinfo(tmp / "rtl"), graph, folding


def check_design(design, tmp: Path, folding="auto", n=N_FRAMES, bp=0.3, gap=0.3, seed=1):
    from gen.errors import GenError
    try:
        rtl, info, graph, folding = generate(design, tmp, folding)
    except GenError as e:
        if "not supported" in str(e):
            pytest.skip(str(e))
        raise
    accel.lint_rtl(rtl)
    b = accel.build_rtl(rtl)
    r = accel.run_frames(design, b, info, n=n, bp=bp, gap=gap, seed=seed)
    assert not r["mismatches"], f"{len(r['mismatches'])} mismatches [{r['log']}]:\n" + "\n".join(r["mismatches"][:8])
    regs = r["reads"][-1]
    assert regs["FRAMES_IN"] == regs["FRAMES_OUT"] == n + 4 and regs["ERRORS"] == 0
    assert regs["ID"] == regmap.ID_MAGIC and regs["NUM_SCORES"] == info["_accel"]["num_scores"]
    assert regs["NUM_CLASSES"] == info["_accel"]["num_classes"]
    est = info["_accel"]["bottleneck_cycles"]
    assert abs(r["interval"] - est) <= 0.05 * est, f"LAST_INTERVAL {r['interval']} vs analytic {est}"
    return r, info, b


def _external(name):
    p = MODELS / f"{name}.onnx"
    if not p.exists():
        pytest.skip(f"{p} not present")
    return load_design(p)[1]


@pytest.mark.parametrize("name", ["tfc_1w1a", "tfc_2w2a"])
def test_external_tfc(name, tmp_path):
    check_design(_external(name), tmp_path)


@pytest.mark.slow
def test_external_qkeras_conv(tmp_path):
    check_design(_external("qkeras_qconv2d_mnist"), tmp_path, bp=0.2, gap=0.2)


def test_example_cnn(tmp_path):
    p = REPO / "examples" / "example_cnn.onnx"
    try:
        design = load_design(p)[1]
    except Exception as e:  # noqa: BLE001 - the frontend does not lower it yet
        pytest.skip(f"example does not lower yet: {e}")
    check_design(design, tmp_path)


def _random_design(kind, seed, tmp):
    from tests.modelgen import qonnx_model
    gm = qonnx_model(kind, np.random.default_rng(seed))
    p = tmp / f"{kind}_{seed}.onnx"
    onnx.save(gm.model, p)
    try:
        return load_design(p)[1]
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{kind} seed {seed} does not lower: {e}")


KINDS = ["conv", "depthwise", "maxpool", "avgpool", "residual", "concat", "gemm", "globalavgpool", "resize"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_cnn(kind, seed, tmp_path):
    check_design(_random_design(kind, seed, tmp_path), tmp_path, folding="default" if seed == 0 else "auto")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 8))
@pytest.mark.parametrize("kind", KINDS + ["mixed", "bipolar", "argmax"])
def test_random_cnn_more(kind, seed, tmp_path):
    check_design(_random_design(kind, seed, tmp_path), tmp_path, folding="auto" if seed % 2 else "default")


def _window_parallel_fold(graph, split: bool) -> dict:
    """Every (non-depthwise, K > 1) swg window-parallel; its mvu takes whole windows (PE 1: the swg and the mvu
    connect without a FIFO when the mvu is slow enough per window) or, with `split`, a third of one (dwc split)."""
    fixed = {}
    for n in graph.nodes:
        if n.kind == "swg" and n.wide_simd() is not None:
            fixed[n.name] = {"simd": n.wide_simd()}
            for c, _ in graph.consumers(n.output.tensor):
                if c.kind == "mvu":
                    mw = c.params["MW"]
                    fixed[c.name] = {"pe": 1, "simd": mw // 3 if split and mw % 3 == 0 else mw}
    return fixed


@pytest.mark.parametrize("kind,seed,expect", [("residual", 0, "direct"), ("conv", 0, "direct"), ("conv", 1, "split")])
def test_window_parallel_swg(kind, seed, expect, tmp_path):
    """The window-parallel swg in a whole accelerator: direct swg -> mvu connections (no FIFO; one next to a
    residual join), a split dwc; RTL == golden under back-pressure, LAST_INTERVAL at the analytic rate."""
    from gen.fold import fold_design
    design = _random_design(kind, seed, tmp_path)
    graph = build_hw_graph(design, dma_bits=64)
    fixed = _window_parallel_fold(graph, expect == "split")
    folding = fold_design(design, graph, load_board("zybo-z7"), fold_file=fixed)
    wide = [n for n in graph.nodes if n.kind == "swg" and folding[n.name]["simd"] == n.wide_simd()]
    assert wide
    if expect == "direct":
        assert any(0 in (folding[n.name].get("fifo") or []) for n in graph.nodes)
    check_design(design, tmp_path, folding=folding)
