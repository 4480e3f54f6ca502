"""One design clock (issue 13, finding 6): --clock-mhz reaches the RTL, firmware, simulated device, Vivado and
the report, and FCLK0 must be able to make it."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gen.boards import load_board
from gen.errors import GenError
from gen.firmware.simdev import GoldenBackend
from gen.ir.design import Design
from gen.shell import regmap
from gen.vendor import write_vivado
from gen.vendor.system import fclk0

MODELS = Path(os.environ.get("GEN_SHARED_MODELS", Path(__file__).resolve().parents[2] / "shared" / "models"))
TFC = MODELS / "tfc_2w2a.onnx"
STUB = Path(__file__).resolve().parents[1] / "gen" / "vendor" / "vivado_stub.tcl"


def gen(*args):
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def out125(tmp_path_factory):
    if not TFC.exists():
        pytest.skip("external model missing")
    out = tmp_path_factory.mktemp("clk") / "o"
    r = gen(TFC, "--board", "zybo-z7", "--clock-mhz", "125", "-o", out)   # the board's clock is 100 MHz
    assert r.returncode == 0, r.stderr
    return out


def test_every_consumer_says_125_mhz(out125):
    out = out125
    design = Design.load(out / "design.json")
    assert design.folding["clock_mhz"] == 125.0
    # RTL: the control block's CLOCK_KHZ constant
    ctrl = (out / "rtl" / "accel_ctrl.sv").read_text()
    assert re.search(r"32'h0*1e848;\s*// CLOCK_KHZ", ctrl), "CLOCK_KHZ is not 125000 in the RTL"
    # firmware headers (user space and kernel) and the Python protocol module
    for d in ("include", "kernel"):
        assert "#define ACCEL_CLOCK_KHZ 125000" in (out / "firmware" / d / "accel_regs.h").read_text()
    spec = importlib.util.spec_from_file_location("accel_proto_t", out / "firmware" / "host" / "accel_proto.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.DESIGN["clock_khz"] == 125000
    # the simulated device, given the design and the board (whose default is 100 MHz)
    dev = GoldenBackend(design, load_board("zybo-z7"))
    assert dev.read_reg(regmap.REG["CLOCK_KHZ"].offset) == 125000
    # Vivado: FCLK0 request and the timing message
    tcl = (out / "vivado" / "build.tcl").read_text()
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {125}" in tcl and "timing not met at 125 MHz" in tcl
    assert "PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" not in tcl
    # report
    rep = json.loads((out / "report" / "report.json").read_text())
    assert rep["clock"]["khz"] == 125000 and rep["clock"]["fclk0"]["divisor0"] * rep["clock"]["fclk0"]["divisor1"] == 8
    assert rep["hardware"]["clock_mhz"] == 125.0
    assert "- clock: 125 MHz (125000 kHz" in (out / "report" / "report.md").read_text()


def test_fclk0_settings():
    assert (fclk0(100).mhz, fclk0(100).divisor0 * fclk0(100).divisor1) == (100.0, 10)
    assert fclk0(125).khz == 125000
    assert fclk0(142.857).mhz == 1000 / 7   # to the kHz: the clock becomes what FCLK0 really makes
    with pytest.raises(GenError, match=r"150 MHz.*142\.857 or 166\.667 MHz"):
        fclk0(150)


def test_cli_refuses_a_clock_fclk0_cannot_make(tmp_path):
    if not TFC.exists():
        pytest.skip("external model missing")
    r = gen(TFC, "--clock-mhz", "150", "-o", tmp_path / "o")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "142.857" in lines[0] and not (tmp_path / "o").exists()


@pytest.mark.skipif(not (Path("/usr/bin/tclsh").exists() or os.environ.get("TCLSH")), reason="tclsh missing")
@pytest.mark.parametrize("pll, ok", [("1000", True), ("1100", False)])
def test_build_tcl_checks_the_actual_fclk0(tmp_path, pll, ok):
    """The script stops when Vivado's FCLK0 (a board preset with another IO PLL) is not the design clock."""
    out = tmp_path / "out"
    (out / "rtl").mkdir(parents=True)
    (out / "rtl" / "filelist.f").write_text("accel_top.v\n")
    (out / "rtl" / "accel_top.v").write_text("module accel_top; endmodule\n")
    d = Design(name="clk", flavour="qonnx")
    d.folding = {"clock_mhz": 125.0}
    vdir = write_vivado(out, d, load_board("zybo-z7"))
    drv = vdir / "dry_run.tcl"
    drv.write_text(f"source {{{STUB}}}\nsource {{{vdir / 'build.tcl'}}}\n")
    r = subprocess.run([os.environ.get("TCLSH", "/usr/bin/tclsh"), str(drv)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, VIVADO_STUB_LOG=str(vdir / "calls.jsonl"),
                                            STUB_IOPLL_MHZ=pll))
    if ok:
        assert r.returncode == 0, r.stderr
        assert "FCLK0 = 125.000000 MHz" in r.stdout
    else:
        assert r.returncode != 0 and "FCLK0 would run at" in r.stderr and "not the design clock 125 MHz" in r.stderr
