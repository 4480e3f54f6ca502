"""Hardware report: per-node rows, markdown section, report.json, plots."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_write_report_extras(tmp_path):
    from gen.boards import load_board
    from gen.fold import fold_design
    from gen.frontend import load, lower
    from gen.hw import build_hw_graph
    from gen.report import write_report_extras
    p = Path(os.environ.get("GEN_SHARED_MODELS", REPO.parent / "shared" / "models")) / "tfc_1w1a.onnx"
    if not p.exists():
        pytest.skip("shared TFC model missing")
    d = lower(load(p))
    g = build_hw_graph(d)
    b = load_board("zybo-z7")
    f = fold_design(d, g, b, fps=20000)
    hw = write_report_extras(tmp_path, d, g, f, b)
    rep = tmp_path / "report"
    md = (rep / "report.md").read_text()
    assert "## Hardware" in md and "### FIFOs" in md and "bottleneck" in md and "target: 20,000 fps - met" in md
    assert (rep / "cycles.png").stat().st_size > 1000 and (rep / "resources.png").stat().st_size > 1000
    js = json.loads((rep / "report.json").read_text())["hardware"]
    assert js["bottleneck"] == g.bottleneck(f)[0] and js["fps"] >= 20000
    assert {r["node"] for r in js["nodes"]} == {n.name for n in g.nodes}
    assert all(0 < r["vs_bottleneck"] <= 1 for r in js["nodes"])
    assert hw["total"]["lut"] > 0 and 0 < hw["utilisation"]["lut"] < 1
