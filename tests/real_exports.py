"""Shared by the real-export tests (tests/test_export_*.py): the design's own RTL check and the export scripts."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tests" / "exports"


def gen_and_simulate(model: Path, out: Path, frames: int = 32) -> str:
    """`python -m gen MODEL -o OUT` then `make -C OUT/sim sim FRAMES=n`: n random frames (+4 timing frames) under
    random back-pressure through Verilator, every output frame compared with the golden model. Returns the log;
    fails the test on any mismatch."""
    r = subprocess.run([sys.executable, "-m", "gen", str(model), "--board", "zybo-z7", "-o", str(out)],
                       check=False, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(["make", "-C", str(out / "sim"), "sim", f"FRAMES={frames}", f"PYTHON={sys.executable}"],
                       check=False, cwd=REPO, capture_output=True, text=True, timeout=2400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "frames: all equal to the golden model" in r.stdout, r.stdout[-3000:]
    return r.stdout


def export_script(name: str):
    """tests/exports/<name>.py as a module (the scripts are run as files, not a package)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)
