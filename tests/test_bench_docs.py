"""The benchmark tables quoted in README.md and bench/README.md are the ones bench/run.py last wrote."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))


def test_readme_designs_table_is_the_bench_result():
    import run
    table = run.designs_table((REPO / "bench" / "results" / "designs.md").read_text())
    for readme in (REPO / "README.md", REPO / "bench" / "README.md"):
        text = readme.read_text()
        quoted = text.split("<!-- bench:designs -->", 1)[1].split("<!-- /bench:designs -->", 1)[0]
        assert quoted.strip() == table.strip(), f"{readme}: run bench/run.py (or copy results/designs.md)"


def test_readme_families_table_is_the_bench_result():
    """The issue 14 families table in README.md is the one bench/families.py last wrote."""
    rows = [ln for ln in (REPO / "bench" / "results" / "families.md").read_text().splitlines() if ln.startswith("|")]
    text = (REPO / "README.md").read_text()
    quoted = text.split("<!-- bench:families -->", 1)[1].split("<!-- /bench:families -->", 1)[0]
    assert quoted.strip().splitlines() == rows, "README.md: copy bench/results/families.md (bench/families.py)"
