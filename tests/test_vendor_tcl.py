"""gen/vendor build.tcl: a dry run under plain tclsh with every Vivado command stubbed (gen/vendor/vivado_stub.tcl),
then checks of what it asked Vivado to build: cells, CONFIG properties, connections, addresses, runs."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gen.boards import load_board
from gen.ir.design import Design
from gen.shell import regmap
from gen.vendor import system, write_vivado
from gen.vendor.system import IRQS

STUB = Path(__file__).resolve().parents[1] / "gen" / "vendor" / "vivado_stub.tcl"
TCLSH = shutil.which("tclsh") or shutil.which("tclsh8.6")
pytestmark = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed (apt-get install tcl)")

# pins of the Xilinx IPs that build.tcl may use (product guides PG082 PS7, PG021 AXI DMA, PG247 SmartConnect,
# PG059 AXI Interconnect, PG164 proc_sys_reset, xlconcat); accel pins come from regmap.top_ports
IP_PINS = {
    "processing_system7": {"M_AXI_GP0", "S_AXI_HP0", "FCLK_CLK0", "FCLK_RESET0_N", "M_AXI_GP0_ACLK",
                           "S_AXI_HP0_ACLK", "IRQ_F2P", "DDR", "FIXED_IO"},
    "axi_dma": {"S_AXI_LITE", "M_AXI_SG", "M_AXI_MM2S", "M_AXI_S2MM", "M_AXIS_MM2S", "S_AXIS_S2MM",
                "s_axi_lite_aclk", "m_axi_sg_aclk", "m_axi_mm2s_aclk", "m_axi_s2mm_aclk", "axi_resetn",
                "mm2s_introut", "s2mm_introut"},
    "smartconnect": {"S00_AXI", "S01_AXI", "S02_AXI", "M00_AXI", "aclk", "aresetn"},
    "axi_interconnect": {"S00_AXI", "M00_AXI", "M01_AXI", "ACLK", "ARESETN", "S00_ACLK", "S00_ARESETN",
                         "M00_ACLK", "M00_ARESETN", "M01_ACLK", "M01_ARESETN"},
    "proc_sys_reset": {"slowest_sync_clk", "ext_reset_in", "interconnect_aresetn", "peripheral_aresetn"},
    "xlconcat": {"In0", "In1", "In2", "In3", "dout"},
    "xlconstant": {"dout"},
}

# PS7 values the fallback must carry, copied by hand from the board references (not from the board YAMLs, so that a
# wrong YAML fails): Digilent vivado-boards zybo-z7-20/A.0/1.2/preset.xml; PYNQ-Z2 base overlay (PYNQ base.tcl)
REFERENCE_PS7 = {
    "zybo-z7": {"PCW_UIPARAM_DDR_MEMORY_TYPE": "DDR 3 (Low Voltage)", "PCW_UIPARAM_DDR_PARTNO": "MT41K256M16 RE-125",
                "PCW_UIPARAM_DDR_BUS_WIDTH": "32 Bit", "PCW_UIPARAM_DDR_FREQ_MHZ": "533.333333",
                "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3": "-0.100", "PCW_UIPARAM_DDR_BOARD_DELAY3": "0.244",
                "PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL": "1", "PCW_SD0_GRP_CD_IO": "MIO 47",
                "PCW_USB0_RESET_IO": "MIO 46", "PCW_QSPI_GRP_SINGLE_SS_IO": "MIO 1 .. 6",
                "PCW_UART1_UART1_IO": "MIO 48 .. 49", "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "33.333333"},
    "pynq-z2": {"PCW_UIPARAM_DDR_MEMORY_TYPE": "DDR 3", "PCW_UIPARAM_DDR_PARTNO": "Custom",
                "PCW_UIPARAM_DDR_BUS_WIDTH": "16 Bit", "PCW_UIPARAM_DDR_FREQ_MHZ": "525",
                "PCW_UIPARAM_DDR_T_RCD": "13.125", "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0": "0.040",
                "PCW_UIPARAM_DDR_TRAIN_DATA_EYE": "1", "PCW_SD0_GRP_CD_IO": "MIO 47",
                "PCW_UART0_UART0_IO": "MIO 14 .. 15", "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50"},
}
ZYBO_PARTS = "digilentinc.com:zybo-z7-20:part0"

# the weight memory as the generated RTL reads it (gen/rtl/templates/mvu.sv.j2)
READMEM_TOP = """module accel_top;
  logic [7:0] w [0:0];
`ifdef GEN_VIVADO_MEM
  initial $readmemh("{name}", w);
`else
  initial $readmemh("weights/{name}", w);
`endif
endmodule
"""


def _design():
    return Design(name="wafer-net", flavour="qonnx")  # build.tcl needs only the name


def dry_run(tmp_path, board="zybo-z7", env=None, filelist="accel_top.v\n", reads="l0.mem", rtl=None):
    """build.tcl under the stubs; the sources read `reads` (weights/l0.mem exists), or `rtl` is a ready rtl/."""
    out = tmp_path / "out"
    if rtl is None:
        (out / "rtl" / "weights").mkdir(parents=True)
        (out / "rtl" / "filelist.f").write_text(filelist)
        for line in filelist.splitlines():
            if line and not line.startswith(("#", "//", "+")):
                (out / "rtl" / line).write_text(READMEM_TOP.format(name=reads))
        (out / "rtl" / "weights" / "l0.mem").write_text("00\n")
    else:
        shutil.copytree(rtl, out / "rtl")
    vdir = write_vivado(out, _design(), load_board(board))
    drv = vdir / "dry_run.tcl"
    drv.write_text(f"source {{{STUB}}}\nsource {{{vdir / 'build.tcl'}}}\n")
    log = vdir / "calls.jsonl"
    r = subprocess.run([TCLSH, str(drv)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, VIVADO_STUB_LOG=str(log), **(env or {})))
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return r, calls, out


def by_cmd(calls, name):
    return [c[1:] for c in calls if c[0] == name]


def props(calls, cell):
    """CONFIG.* values set on a cell (set_property -dict [list K V ...] /cell)."""
    out = {}
    for args in by_cmd(calls, "set_property"):
        if args[0] == "-dict" and args[-1] == f"/{cell}":
            items = _tcl_list(args[1])
            out.update(dict(zip(items[::2], items[1::2])))
    return out


def _tcl_list(s):
    """A Tcl list as tclsh prints it (words, {braced words})."""
    words, i = [], 0
    while i < len(s):
        if s[i].isspace():
            i += 1
        elif s[i] == "{":
            j = s.index("}", i)
            words.append(s[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < len(s) and not s[j].isspace():
                j += 1
            words.append(s[i:j])
            i = j
    return words


def cells(calls):
    out = {}
    for args in by_cmd(calls, "create_bd_cell"):
        kind = args[args.index("-type") + 1]
        what = args[args.index("-vlnv") + 1] if kind == "ip" else args[args.index("-reference") + 1]
        out[args[-1]] = (kind, what)
    return out


def nets(calls):
    """Nets as sets of 'cell/pin' and interface pairs."""
    plain = [frozenset(a.strip("/") for a in args) for args in by_cmd(calls, "connect_bd_net")]
    intf = [frozenset(a.strip("/") for a in args) for args in by_cmd(calls, "connect_bd_intf_net")]
    return plain, intf


@pytest.mark.parametrize("board", ["zybo-z7", "pynq-z2"])
def test_block_design(tmp_path, board):
    r, calls, out = dry_run(tmp_path, board)
    assert r.returncode == 0, r.stderr
    b, sysmap = load_board(board), system(load_board(board))
    w = str(b["dma"]["width_bits"])

    proj = by_cmd(calls, "create_project")[0]
    assert proj[proj.index("-part") + 1] == b["part"]
    # no board files here: no board_part, no board automation, the YAML's PS7 fallback instead
    assert not [a for a in by_cmd(calls, "set_property") if a[0] == "board_part"]
    assert not by_cmd(calls, "apply_bd_automation")
    ps7 = props(calls, "ps7")
    for k, v in b["ps7"]["fallback"].items():
        assert ps7[f"CONFIG.{k}"] == v
    for k, v in REFERENCE_PS7[board].items():
        assert ps7[f"CONFIG.{k}"] == v, k
    assert ps7["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == str(b["clock_mhz"])
    assert ps7["CONFIG.PCW_USE_S_AXI_HP0"] == "1" and ps7["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == w
    assert ps7["CONFIG.PCW_USE_FABRIC_INTERRUPT"] == "1" and ps7["CONFIG.PCW_IRQ_F2P_INTR"] == "1"
    assert "WARNING: [gen] no board files matching" in r.stdout   # the fallback is never silent

    c = cells(calls)
    assert c["ps7"] == ("ip", "xilinx.com:ip:processing_system7:5.5")
    assert c["axi_dma"] == ("ip", "xilinx.com:ip:axi_dma:7.1")
    assert c["accel"] == ("module", regmap.TOP_MODULE)
    kinds = {v[1].split(":")[2] for v in c.values() if v[0] == "ip"}
    assert {"smartconnect", "axi_interconnect", "proc_sys_reset", "xlconcat"} <= kinds

    dma = props(calls, "axi_dma")
    assert dma["CONFIG.c_include_sg"] == "1"
    for k in ("c_m_axi_mm2s_data_width", "c_m_axis_mm2s_tdata_width", "c_m_axi_s2mm_data_width",
              "c_s_axis_s2mm_tdata_width"):
        assert dma[f"CONFIG.{k}"] == w, k
    base = sysmap.irq_base
    assert props(calls, "irq_concat")["CONFIG.NUM_PORTS"] == str(len(IRQS) + (1 if base else 0))

    # every pin exists on its cell (Xilinx IP pin lists above; accel_top's from regmap)
    accel_pins = {p for p, _, _ in regmap.top_ports(int(w))} | {"s_axis", "m_axis", "s_axil"}
    plain, intf = nets(calls)
    for net in plain + intf:
        for pin in net:
            cell, name = pin.split("/", 1)
            known = accel_pins if cell == "accel" else IP_PINS[c[cell][1].split(":")[2]]
            assert name in known, pin

    assert frozenset({"axi_dma/M_AXIS_MM2S", "accel/s_axis"}) in intf
    assert frozenset({"accel/m_axis", "axi_dma/S_AXIS_S2MM"}) in intf
    assert frozenset({"ps7/M_AXI_GP0", "axi_ic_gp0/S00_AXI"}) in intf
    assert frozenset({"axi_ic_gp0/M00_AXI", "axi_dma/S_AXI_LITE"}) in intf
    assert frozenset({"axi_ic_gp0/M01_AXI", "accel/s_axil"}) in intf
    for i, m in enumerate(("M_AXI_SG", "M_AXI_MM2S", "M_AXI_S2MM")):
        assert frozenset({f"axi_dma/{m}", f"axi_smc_hp/S0{i}_AXI"}) in intf
    assert frozenset({"axi_smc_hp/M00_AXI", "ps7/S_AXI_HP0"}) in intf
    clock = next(n for n in plain if "ps7/FCLK_CLK0" in n)
    for pin in ("accel/ap_clk", "axi_dma/m_axi_sg_aclk", "axi_dma/s_axi_lite_aclk", "ps7/S_AXI_HP0_ACLK",
                "ps7/M_AXI_GP0_ACLK", "axi_smc_hp/aclk", "axi_ic_gp0/ACLK", "rst_fclk0/slowest_sync_clk"):
        assert pin in clock
    assert "accel/ap_rst_n" in next(n for n in plain if "rst_fclk0/peripheral_aresetn" in n)
    for i, (pin, _) in enumerate(IRQS):
        assert frozenset({pin, f"irq_concat/In{i + (1 if base else 0)}"}) in plain
    if base:   # the lines below the accelerator's are driven low, base bits wide
        assert props(calls, "irq_concat")["CONFIG.IN0_WIDTH"] == str(base)
        assert props(calls, "irq_unused")["CONFIG.CONST_VAL"] == "0"
        assert props(calls, "irq_unused")["CONFIG.CONST_WIDTH"] == str(base)
        assert frozenset({"irq_unused/dout", "irq_concat/In0"}) in plain
    assert frozenset({"irq_concat/dout", "ps7/IRQ_F2P"}) in plain

    dma_a = next(a for a in by_cmd(calls, "assign_bd_address") if a[-2] == "/axi_dma/S_AXI_LITE/Reg")
    acc_a = next(a for a in by_cmd(calls, "assign_bd_address") if a[-2] == "/accel/s_axil/*")
    assert int(dma_a[dma_a.index("-offset") + 1], 16) == sysmap.dma_base == b["address_map"]["dma"]
    assert int(acc_a[acc_a.index("-offset") + 1], 16) == sysmap.accel_base == b["address_map"]["accel"]
    ddr = [a for a in by_cmd(calls, "assign_bd_address") if a[-2] == "/ps7/S_AXI_HP0/HP0_DDR_LOWOCM"]
    assert len(ddr) == 3 and all(a[a.index("-range") + 1] == f"{b['ddr_bytes'] >> 20}M" for a in ddr)

    # sources from rtl/filelist.f and the weight memories
    added = [f for a in by_cmd(calls, "add_files") for f in _tcl_list(a[-1])]
    assert str(out / "rtl" / "accel_top.v") in added and str(out / "rtl" / "weights" / "l0.mem") in added


def test_flow_order_and_outputs(tmp_path):
    r, calls, out = dry_run(tmp_path)
    assert r.returncode == 0, r.stderr
    order = [c[0] for c in calls]

    def at(name):
        return order.index(name)

    assert at("create_bd_design") < at("create_bd_cell") < at("assign_bd_address") < at("validate_bd_design") \
        < at("save_bd_design") < at("make_wrapper") < at("launch_runs") < at("write_bitstream") \
        < at("write_hw_platform")
    runs = [a[0] for a in by_cmd(calls, "launch_runs")]
    assert runs == ["synth_1", "impl_1"]
    # each run is waited for and its PROGRESS checked before the next step
    for run in runs:
        assert ["PROGRESS", run] in by_cmd(calls, "get_property")
    hw = by_cmd(calls, "write_hw_platform")[0]
    assert "-fixed" in hw and "-include_bit" in hw and hw[-1].endswith("wafer_net.xsa")
    assert by_cmd(calls, "write_bitstream")[0][-1].endswith("wafer_net.bit")
    assert calls[-1] == ["exit", "0"]
    mk = (out / "vivado" / "Makefile").read_text()
    assert "bitstream:" in mk and "-source build.tcl" in mk


@pytest.mark.parametrize("run", ["synth_1", "impl_1"])
def test_run_not_at_100_percent_fails_loudly(tmp_path, run):
    r, calls, _ = dry_run(tmp_path, env={"STUB_FAIL_RUN": run})
    assert r.returncode == 1
    assert f"ERROR: [gen] run {run} stopped at 42%" in r.stderr
    assert not by_cmd(calls, "write_bitstream") and not by_cmd(calls, "write_hw_platform")


def test_invalid_block_design_fails_loudly(tmp_path):
    r, calls, _ = dry_run(tmp_path, env={"STUB_INVALID_BD": "1"})
    assert r.returncode == 1 and "does not validate" in r.stderr
    assert not by_cmd(calls, "launch_runs")


@pytest.mark.parametrize("installed, chosen", [
    ("1.2", "1.2"),               # Digilent's current board files (the YAML used to pin 1.1: not found)
    ("1.1", "1.1"),
    ("1.1 1.2", "1.2"),           # several installed: the newest
    ("1.9 1.10", "1.10"),         # version order, not text order
])
def test_board_files_present_use_board_preset(tmp_path, installed, chosen):
    parts = " ".join(f"{ZYBO_PARTS}:{v}" for v in installed.split()) + " tul.com.tw:pynq-z2:part0:1.0"
    r, calls, _ = dry_run(tmp_path, env={"STUB_BOARD_PARTS": parts})
    assert r.returncode == 0, r.stderr
    bp = f"{ZYBO_PARTS}:{chosen}"
    assert ["board_part", bp, "project"] in by_cmd(calls, "set_property")
    assert f"INFO: [gen] board files found: PS7 preset of {bp}" in r.stdout
    auto = by_cmd(calls, "apply_bd_automation")
    assert auto and 'apply_board_preset "1"' in auto[0][auto[0].index("-config") + 1]
    assert "CONFIG.PCW_UIPARAM_DDR_PARTNO" not in props(calls, "ps7")   # the preset's, not the fallback's
    assert props(calls, "ps7")["CONFIG.PCW_USE_S_AXI_HP0"] == "1"


def test_filelist_comments_and_missing_sources(tmp_path):
    r, calls, out = dry_run(tmp_path, filelist="# generated\n// top last\n+incdir+.\nkernels.sv\naccel_top.v\n")
    assert r.returncode == 0, r.stderr
    added = [f for a in by_cmd(calls, "add_files") for f in _tcl_list(a[-1])]
    assert [Path(f).name for f in added
            if f.endswith((".v", ".sv")) and not f.startswith("/stub/")] == ["kernels.sv", "accel_top.v"]
    (out / "rtl" / "filelist.f").write_text("missing.v\n")
    drv = out / "vivado" / "dry_run.tcl"
    r = subprocess.run([TCLSH, str(drv)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, VIVADO_STUB_LOG=str(out / "vivado" / "c2.jsonl")))
    assert r.returncode != 0 and "missing.v" in r.stderr


def test_interrupts_avoid_the_board_images_own(tmp_path):
    """PYNQ images bind generic-uio to GIC 29 (IRQ_F2P[0]): the accelerator's interrupts must start above it, in
    build.tcl and in the device tree alike."""
    for board in ("zybo-z7", "pynq-z2"):
        b, sysmap = load_board(board), system(load_board(board))
        cells_dt = [sysmap.irq_dt(i)[1] for i in range(len(IRQS))]
        assert not set(cells_dt) & set(b.get("image_irqs", [])), board
    assert 29 in load_board("pynq-z2")["image_irqs"]
    assert [system(load_board("pynq-z2")).irq_dt(i)[1] for i in range(len(IRQS))] == [30, 31, 32]
    assert [system(load_board("zybo-z7")).irq_dt(i)[1] for i in range(len(IRQS))] == [29, 30, 31]


def test_weight_files_added_and_resolvable(tmp_path):
    r, calls, out = dry_run(tmp_path)
    assert r.returncode == 0, r.stderr
    mem = str(out / "rtl" / "weights" / "l0.mem")
    added = [f for a in by_cmd(calls, "add_files") for f in _tcl_list(a[-1])]
    assert mem in added
    # memory initialisation files, and the RTL names them the way Vivado resolves project files: by name
    ftype = [a for a in by_cmd(calls, "set_property") if a[0] == "file_type"]
    assert ftype and ftype[0][1] == "Memory Initialization Files" and mem in ftype[0][2]
    assert ["verilog_define", "GEN_VIVADO_MEM", "sources_1"] in by_cmd(calls, "set_property")
    assert ["-id", "Synth 8-4445", "-new_severity", "ERROR"] in by_cmd(calls, "set_msg_config")
    # before any run
    order = [c[0] for c in calls]
    assert order.index("set_msg_config") < order.index("launch_runs")


def test_missing_weight_file_fails_loudly(tmp_path):
    r, calls, _ = dry_run(tmp_path, reads="mvu_l3_w0.mem")
    assert r.returncode == 1
    assert "ERROR: [gen] weight files read by the RTL are missing" in r.stderr and "mvu_l3_w0.mem" in r.stderr
    assert not by_cmd(calls, "create_bd_design") and not by_cmd(calls, "launch_runs")


def test_generated_rtl_weights_resolve(tmp_path):
    """A real emitted design: every $readmemh names a file in rtl/weights, in both forms (rtl/ for simulators,
    by name for Vivado); build.tcl accepts it, and fails when one of its weight files is gone."""
    import re

    from gen.hw import build_hw_graph
    from gen.rtl.emit import emit

    from .test_firmware_e2e import make_design
    _, design = make_design(tmp_path, "conv")
    graph = build_hw_graph(design, dma_bits=64)
    em = emit(design, graph, graph.default_folding(), clock_mhz=100)
    rtl = tmp_path / "gen_rtl"
    em.write(rtl)
    text = "".join(p.read_text() for p in rtl.glob("*.sv"))
    flat = re.findall(r'`ifdef GEN_VIVADO_MEM\n\s*initial \$readmemh\("([^"/]+)"', text)
    rel = re.findall(r'`else\n\s*initial \$readmemh\("weights/([^"]+)"', text)
    weights = sorted(p.name for p in (rtl / "weights").glob("*.mem"))
    assert flat and flat == rel and sorted(set(flat)) == weights
    r, calls, out = dry_run(tmp_path / "a", rtl=rtl)
    assert r.returncode == 0, r.stderr
    # the RTL library modules the design instantiates (gen/rtl/lib) are sources like the rest
    added = [Path(f).name for a in by_cmd(calls, "add_files") for f in _tcl_list(a[-1])]
    lib = em.lib_modules()
    assert "gen_fifo.sv" in lib and set(lib) <= set(added) and all((rtl / f).exists() for f in lib)
    (rtl / "weights" / weights[0]).unlink()
    r, calls, out = dry_run(tmp_path / "b", rtl=rtl)
    assert r.returncode == 1 and weights[0] in r.stderr
