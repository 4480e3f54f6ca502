"""DESIGN_HASH covers what the hardware is made from, and the design clock has one rule (gen.boards.clock_mhz_of).

A reworded fold reason, a recalibrated estimate or a frontend note must leave the hash of identical hardware
alone (the driver, libaccel and the host compare it with the bitstream's); a different folding or clock must
change it."""

from __future__ import annotations

import copy

import numpy as np
import onnx

from gen.boards import clock_mhz_of, load_board
from gen.fold.fold import META, fold_design
from gen.frontend import load_design
from gen.hw import build_hw_graph
from gen.rtl.emit import design_hash
from gen.vendor.system import design_clock_mhz
from tests.modelgen import qonnx_model


def _folded(tmp_path):
    gm = qonnx_model("gemm", np.random.default_rng(3))
    onnx.save(gm.model, tmp_path / "m.onnx")
    design = load_design(tmp_path / "m.onnx")[1]
    board = load_board("zybo-z7")
    graph = build_hw_graph(design)
    design.folding = fold_design(design, graph, board)
    design.folding["clock_mhz"] = 100.0
    return design, board


def test_hash_ignores_the_fold_report_and_notes(tmp_path):
    design, _ = _folded(tmp_path)
    h = design_hash(design)
    other = copy.deepcopy(design)
    other.folding[META]["reason"] = "reworded: " + str(other.folding[META]["reason"])
    other.folding[META]["estimate"] = {"total": {"LUT": 1}}
    other.notes = list(other.notes) + ["a new frontend note"]
    assert design_hash(other) == h


def test_hash_follows_the_hardware(tmp_path):
    design, _ = _folded(tmp_path)
    h = design_hash(design)
    node = next(k for k, v in design.folding.items() if isinstance(v, dict) and "pe" in v)
    refolded = copy.deepcopy(design)
    refolded.folding[node]["pe"] = refolded.folding[node]["pe"] + 1
    assert design_hash(refolded) != h
    clocked = copy.deepcopy(design)
    clocked.folding["clock_mhz"] = 125.0
    assert design_hash(clocked) != h


def test_one_clock_rule(tmp_path):
    design, board = _folded(tmp_path)
    assert clock_mhz_of(board, requested=125) == 125.0                    # asked for
    assert clock_mhz_of(board, {"clock_mhz": 50.0}) == 50.0               # what the design was folded for
    assert clock_mhz_of(board, {META: {"clock_mhz": 62.5}}) == 62.5       # a fold summary alone
    assert clock_mhz_of(board) == float(board["clock_mhz"])               # the board's
    design.folding["clock_mhz"] = 50.0
    assert design_clock_mhz(design, board) == 50.0
