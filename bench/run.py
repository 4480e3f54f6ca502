"""`make bench`: designs benchmark (TFC-w1a1 and FINN's CNV, W1A1 and W2A2, folded like FINN and auto-folded
for the board) side by side with FINN's published XC7Z020 figures, then the kernel benchmark (bench/kernels.py).

usage: .venv/bin/python bench/run.py [--synth] [--sim] [--skip-kernels] [--board zybo-z7]

Per design: generation time (load, lower, hardware graph, fold, emit RTL), the analytic bottleneck and fps at
100 MHz, the resource estimate (gen/fold/resources.py); with --synth Yosys `synth_xilinx` counts of the whole
accelerator (slow: minutes per CNV); with --sim a Verilator build and a few frames through gen/sim (when the
per-design simulation is available). Writes bench/results/designs.json and designs.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
OUT = REPO / "bench" / "results"

# FINN's published XC7Z020 figures at 100 MHz (fps, LUT, BRAM36)
FINN = {"tfc_w1a1": dict(fps=958413, lut=None, bram36=None), "cnv_w1a1": dict(fps=9150, lut=26072, bram36=124),
        "cnv_w2a2": dict(fps=2580, lut=37302, bram36=140)}


def finn_fold(graph, table):
    """FINN's (PE, SIMD) per mvu in order; the swg feeding an mvu takes its SIMD where legal."""
    mvus = [n for n in graph.nodes if n.kind == "mvu"]
    fold = {}
    for n, (pe, simd) in zip(mvus, table):
        fold[n.name] = {"pe": pe, "simd": simd}
        for s in n.inputs:
            prod = graph.producer(s.tensor)
            if prod.kind == "swg" and prod.tie is None and simd in prod.legal_simd():
                fold[prod.name] = {"simd": simd}
    return fold


def run_design(name, model_path, board, fold_table, synth, sim, workdir):
    from gen.fold import estimate as E
    from gen.fold import fold_design
    from gen.frontend import load, lower
    from gen.hw import build_hw_graph
    from gen.report import synth_design
    from gen.rtl.emit import emit
    rows = []
    for mode in ("finn", "auto"):
        if mode == "finn" and not fold_table:
            continue
        t0 = time.time()
        design = lower(load(model_path))
        graph = build_hw_graph(design, dma_bits=int(board["dma"]["width_bits"]))
        fixed = finn_fold(graph, fold_table) if mode == "finn" else None
        folding = fold_design(design, graph, board, fold_file=fixed)
        em = emit(design, graph, folding, clock_mhz=board["clock_mhz"])
        out = workdir / f"{name}_{mode}"
        em.write(out / "rtl")
        gen_s = time.time() - t0
        cyc = graph.cycles(folding)
        bn = max(cyc, key=lambda k: cyc[k])
        est = E.graph_estimate(graph, folding, design)["total"]
        row = dict(design=name, fold=mode, gen_s=round(gen_s, 2), bottleneck=bn, cycles=cyc[bn],
                   fps=board["clock_mhz"] * 1e6 / cyc[bn], est_lut=round(est["lut"]), est_ff=round(est["ff"]),
                   est_bram36=est["bram18"] / 2, est_dsp=est["dsp"],
                   reason=folding.get("_fold", {}).get("reason"),
                   mvu_fold=[(n.name, *graph.fold_of(folding, n.name)) for n in graph.nodes if n.kind == "mvu"])
        if synth:
            try:
                s = synth_design(out / "rtl", workdir=out / "synth")
                m = s["measured"]
                row.update(yosys_lut=m["lut"], yosys_ff=m["ff"], yosys_bram36=m["bram18"] / 2, yosys_dsp=m["dsp"],
                           yosys_carry4=m["carry4"], synth_s=s["seconds"])
            except Exception as e:  # noqa: BLE001 - reported in the table
                row["yosys_error"] = str(e).splitlines()[0][:200]
        if sim:
            row.update(sim_design(out, design, graph, folding))
        rows.append(row)
        print(f"{name:9s} {mode:4s} gen {row['gen_s']:5.2f} s  {row['fps']:10,.0f} fps  est LUT {row['est_lut']:6,} "
              f"BRAM36 {row['est_bram36']:5.1f}" + (f"  Yosys LUT {row.get('yosys_lut', '-')}" if synth else ""),
              flush=True)
    return rows


def sim_design(out, design, graph, folding) -> dict:
    """Verilator build + frames through the generated testbench, when gen/sim supports it."""
    try:
        from gen.sim import accel as A  # E's whole-accelerator simulation
    except Exception as e:  # noqa: BLE001
        return dict(sim_error=f"no per-design simulation: {e}")
    fn = getattr(A, "bench_design", None)
    if fn is None:
        return dict(sim_error="gen.sim.accel has no bench_design(out, design, graph, folding)")
    t0 = time.time()
    r = fn(out, design, graph, folding)
    return dict(sim_fps=r.get("fps"), build_s=r.get("build_s"), sim_ok=r.get("ok"), sim_s=round(time.time() - t0, 1),
                sim_interval=r.get("interval"), sim_mismatches=r.get("mismatches") or [])


def per(x, y):
    return x / y if x and y else None


def markdown(rows, meta) -> str:
    L = ["# Designs benchmark", "",
         f"Generated by `bench/run.py` on {meta['date']} (board {meta['board']}, 100 MHz). gen s: load, lower, "
         "fold and write the RTL. fps: analytic bottleneck (the kernels' cycles per frame); Verilator fps: clock / "
         "LAST_INTERVAL of the generated RTL in Verilator, frames back to back, every frame checked against the "
         "golden model (`--sim`); build s: the Verilator build. LUT / FF / BRAM36: our estimate "
         "(gen/fold/resources.py) and Yosys `synth_xilinx -family xc7` of the whole accelerator (`--synth`; LUT = "
         "logic + LUTRAM + SRL sites, BRAM36 = RAMB36 + RAMB18 / 2). The per-kLUT and per-BRAM figures use the "
         "Verilator fps and the Yosys counts where present. FINN: published XC7Z020 figures at 100 MHz (Vivado).",
         "",
         "| design | folding | gen s | bottleneck | fps | Verilator fps | build s | LUT est | LUT Yosys | FF Yosys "
         "| BRAM36 est | BRAM36 Yosys | synth s | fps/kLUT | fps/BRAM36 | FINN fps | FINN fps/kLUT | FINN fps/BRAM36 "
         "| fps/kLUT vs FINN | BRAM36 vs FINN |",
         "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def num(v, fmt=",.0f"):
        return "-" if v is None else format(v, fmt)

    for r in rows:
        f = FINN.get(r["design"], {})
        lut = r.get("yosys_lut") or r["est_lut"]
        bram = r.get("yosys_bram36") if r.get("yosys_bram36") is not None else r["est_bram36"]
        fps = r.get("sim_fps") or r["fps"]
        sim = "-" if not r.get("sim_fps") else f"{r['sim_fps']:,.0f}" + ("" if r.get("sim_ok") else " (mismatch)")
        fk, fb = per(fps, lut / 1000), per(fps, bram)
        ffk, ffb = per(f.get("fps"), (f.get("lut") or 0) / 1000), per(f.get("fps"), f.get("bram36"))
        ylut = "failed" if "yosys_error" in r else num(r.get("yosys_lut"))
        bvs = f"{bram / f['bram36']:.2f}x" if f.get("bram36") else "-"
        L.append(f"| {r['design']} | {r['fold']} | {r['gen_s']} | {r['bottleneck']} | {r['fps']:,.0f} | {sim} | "
                 f"{num(r.get('build_s'), '.0f')} | {r['est_lut']:,} | {ylut} | {num(r.get('yosys_ff'))} | "
                 f"{r['est_bram36']:g} | {num(r.get('yosys_bram36'), 'g')} | {num(r.get('synth_s'), '.0f')} | "
                 f"{num(fk, ',.1f')} | {num(fb, ',.1f')} | {num(f.get('fps'), ',')} | {num(ffk, ',.1f')} | "
                 f"{num(ffb, ',.1f')} | {f'{fk / ffk:.2f}x' if ffk else '-'} | "
                 f"{bvs} |")
    errs = [r for r in rows if r.get("yosys_error")]
    if errs:
        L += ["", "Yosys failures:", ""] + [f"- {r['design']} ({r['fold']}): {r['yosys_error']}" for r in errs]
    L += ["", "Folding (mvu: PE x SIMD):", ""]
    for r in rows:
        L.append(f"- {r['design']} {r['fold']}: " + ", ".join(f"{n} {p}x{s}" for n, p, s in r["mvu_fold"]) +
                 (f" - {r['reason']}" if r.get("reason") else ""))
    return "\n".join(L) + "\n"


def splice(path: Path, table: str) -> None:
    """Replace the text between the designs-table markers of a README with `table` (no hand-kept copies)."""
    begin, end = "<!-- bench:designs -->", "<!-- /bench:designs -->"
    text = path.read_text()
    if begin not in text or end not in text:
        return
    i, j = text.index(begin) + len(begin), text.index(end)
    path.write_text(text[:i] + "\n" + table + text[j:])


def designs_table(md: str) -> str:
    lines = md.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("| design |"))
    j = next((k for k in range(i, len(lines)) if not lines[k].startswith("|")), len(lines))
    return "\n".join(lines[i:j]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", action="store_true", help="Yosys synthesis of every generated design (slow)")
    ap.add_argument("--sim", action="store_true", help="Verilator simulation of every generated design")
    ap.add_argument("--skip-kernels", action="store_true", help="do not run bench/kernels.py")
    ap.add_argument("--kernels-args", default="", help="arguments for bench/kernels.py (e.g. '--quick')")
    ap.add_argument("--board", default="zybo-z7")
    ap.add_argument("--only", nargs="*", help="design names (tfc_w1a1, cnv_w1a1, cnv_w2a2)")
    a = ap.parse_args()
    import onnx
    from cnv import FINN_CNV_FOLD, FINN_TFC_FOLD, cnv_model

    from gen.boards import load_board
    board = load_board(a.board)
    work = REPO / "build" / "bench_designs"
    work.mkdir(parents=True, exist_ok=True)
    models = {"tfc_w1a1": (Path("/work/shared/models/tfc_1w1a.onnx"), FINN_TFC_FOLD)}
    import os
    shared = Path(os.environ.get("GEN_SHARED_MODELS", REPO.parent / "shared" / "models"))
    models["tfc_w1a1"] = (shared / "tfc_1w1a.onnx", FINN_TFC_FOLD)
    for wb in (1, 2):
        p = work / f"cnv_w{wb}a{wb}.onnx"
        onnx.save(cnv_model(wb, wb), p)
        models[f"cnv_w{wb}a{wb}"] = (p, FINN_CNV_FOLD)
    rows = []
    for name, (path, table) in models.items():
        if a.only and name not in a.only:
            continue
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            continue
        rows += run_design(name, path, board, table, a.synth, a.sim, work)
    if a.only and (OUT / "designs.json").exists():  # keep the other designs' rows from the last full run
        old = json.loads((OUT / "designs.json").read_text())["rows"]
        rows = [r for r in old if r["design"] not in a.only] + rows
        order = list(models)
        rows.sort(key=lambda r: (order.index(r["design"]) if r["design"] in order else 99, r["fold"] != "finn"))
    meta = dict(date=time.strftime("%Y-%m-%d"), board=board["name"], synth=a.synth, sim=a.sim)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "designs.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=float))
    md = markdown(rows, meta)
    (OUT / "designs.md").write_text(md)
    for readme in (REPO / "README.md", REPO / "bench" / "README.md"):
        splice(readme, designs_table(md))
    print(f"wrote {OUT}/designs.md (table copied into README.md and bench/README.md)")
    if not a.skip_kernels:
        subprocess.run([sys.executable, str(REPO / "bench" / "kernels.py")] + a.kernels_args.split(), check=True)


if __name__ == "__main__":
    main()
