#!/usr/bin/env python3
"""Evaluate the wafer-map models: float PyTorch, QAT PyTorch and gen's golden integer model, per bit width.

    .venv/bin/python examples/wafer/evaluate.py                  # all models found in build/wafer/
    .venv/bin/python examples/wafer/evaluate.py --readme         # ... and rewrite the results in README.md
    .venv/bin/python examples/wafer/evaluate.py --rtl-frames 50  # + 50 maps through the Verilator RTL (vgg w4a4)

Test sets (never seen in training, seed 1): `standard` = generate(--n-test, seed=3, "standard") (nearest resize)
and `hard` = generate(--n-test, seed=4, "hard") (resize modes mixed). For every `{arch}_{bits}.onnx` in
--models: the golden model (`gen.frontend.load` + `lower`, then `gen.golden.model.infer` on the encoded maps)
on the full test sets, the QAT PyTorch model (`{arch}_{bits}.pt`) and the float model (`{arch}_float.pt`)
when torch is installed, and `python -m gen MODEL --board zybo-z7` for the report (MACs, parameter memory, and
whatever else report.json holds: fps / resources once the folding pass writes them).

Writes examples/wafer/results.json, results.md, accuracy.png, confusion_{arch}.png, confusion_vgg_w4a4.png, and
with --readme the block between the `results` markers of examples/wafer/README.md. Accuracy "8 defect" is the
accuracy over the maps whose true class is one of the 8 defect classes (all but `none`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import wafermap as wm  # noqa: E402

BITS = ("w2a2", "w2a4", "w4a4", "w8a8")
ARCHS = ("vgg", "mobilenet")
SETS = ("standard", "hard")


def accuracy(y, p) -> dict:
    d = y != wm.CLASSES.index("none")
    return {"acc9": float((y == p).mean()), "acc8": float((y[d] == p[d]).mean())}


def confusion(y, p) -> np.ndarray:
    cm = np.zeros((wm.NCLS, wm.NCLS), np.int64)
    np.add.at(cm, (y, p), 1)
    return cm


def main_confusions(cm: np.ndarray, k: int = 3) -> list[str]:
    off = cm.copy()
    np.fill_diagonal(off, 0)
    idx = np.argsort(off, axis=None)[::-1][:k]
    out = []
    for i in idx:  # largest off-diagonal counts
        t, p = divmod(int(i), wm.NCLS)
        if off[t, p]:
            out.append(f"{wm.CLASSES[t]}->{wm.CLASSES[p]} {off[t, p]}")
    return out


# ---------------------------------------------------------------------------------------------------------------
# predictors

def golden_predict(onnx_path: Path, x: np.ndarray, batch: int = 500):
    """Class per map from gen's golden integer model (its label stream if the model ends in ArgMax, else the
    arg-max of the output replayed in float32 from the integer scores, i.e. the model's own logits), the Design,
    and the fraction of maps where the arg-max of the raw integer scores gives the same class (what a hardware
    label_select over the scores outputs)."""
    from gen.frontend import load_design
    from gen.golden.model import infer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, design = load_design(onnx_path)
    preds, same = [], 0
    for i in range(0, len(x), batch):
        r = infer(design, x[i:i + batch])
        n = len(x[i:i + batch])
        p = r["label"][:, 0] if "label" in r else r["float"].reshape(n, -1).argmax(1)
        preds.append(p)
        same += int((r["codes"].reshape(n, -1).argmax(1) == p).sum())
    return np.concatenate(preds), design, same / len(x)


def torch_predict(arch: str, bits, pt: Path, x: np.ndarray) -> np.ndarray:
    import models
    import torch
    m = models.build(arch, bits)
    m.load_state_dict(torch.load(pt))
    m.eval()
    with torch.no_grad():
        return torch.cat([m(torch.from_numpy(x[i:i + 500])).argmax(1) for i in range(0, len(x), 500)]).numpy()


def torch_count(arch: str) -> dict:
    import models
    return models.count(models.build(arch))


def rtl_predict(gen_out: Path, design, x: np.ndarray, bp: float = 0.2, gap: float = 0.2, seed: int = 1) -> dict:
    """Run the maps through the Verilator model of the generated accelerator (gen_out/rtl, from `python -m gen`)
    with random input gaps and output back-pressure, and compare every output frame (label + scores bytes) with
    the frame the golden model predicts (`gen.sim.accel`). Returns {"frames", "equal", "mismatches"}."""
    from gen.golden.model import encode_input
    from gen.sim import accel
    rtl = gen_out / "rtl"
    info = accel.load_hwinfo(rtl)
    codes = encode_input(design, x)
    ins = accel.input_frames(design, info, codes)
    exp = accel.expected_frames(design, info, codes)
    est = info["_accel"]["bottleneck_cycles"]
    steps = [dict(op="send", frames=[f.hex() for f in ins]), dict(op="recv", n=len(ins))]
    res = accel.run_steps(accel.build_rtl(rtl), steps, gap=gap, bp=bp, seed=seed,
                          max_cycles=int((est + 2000) * len(ins) * (2 + 8 * max(bp, gap))) + 100000)
    got = res["frames"]
    equal = sum(1 for k, e in enumerate(exp) if k < len(got) and bytes.fromhex(got[k]) == e)
    return {"frames": len(exp), "equal": equal, "mismatches": res["errors"] + accel.compare(got, exp)}


def gen_report(onnx_path: Path, out: Path) -> dict:
    """`python -m gen MODEL --board zybo-z7 -o OUT`; report.json's totals + any fps/resource figures."""
    r = subprocess.run([sys.executable, "-m", "gen", str(onnx_path), "--board", "zybo-z7", "-o", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stdout + r.stderr).strip().splitlines()[-1:]}
    rep = json.loads((out / "report" / "report.json").read_text())
    res = {"macs": rep["totals"]["macs"], "param_bits": rep["totals"]["param_bits"]}
    wbits = sum(r["param_bits"] for r in rep["layers"] if r["op"] in ("Conv", "Dense"))
    res["weight_bits"] = wbits
    res["threshold_bits"] = sum(r["param_bits"] for r in rep["layers"] if r["op"] == "Requant")
    res["weights"] = int(sum(r["param_bits"] // max(r["weight_bits"], 1) for r in rep["layers"]
                             if r["op"] in ("Conv", "Dense")))
    hw = rep.get("hardware")
    if hw:  # gen's folding pass: default folding, analytic cycles and resource estimate for the board
        res["hw"] = {"fps": hw.get("fps"), "latency_us": hw.get("latency_us"), "clock_mhz": hw.get("clock_mhz"),
                     "bottleneck": hw.get("bottleneck"), **{k: hw.get("total", {}).get(k) for k in
                                                             ("lut", "ff", "bram18", "dsp")},
                     "utilisation": hw.get("utilisation")}
    return res


# ---------------------------------------------------------------------------------------------------------------
# plots

def plot_confusions(panels, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.9))
    axes = np.atleast_1d(axes)
    short = ["Cen", "Don", "E-L", "E-R", "Loc", "Ran", "Scr", "N-F", "none"]
    for ax, (name, cm) in zip(axes, panels):
        rowsum = np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(cm / rowsum, cmap="Blues", vmin=0, vmax=1)
        for i in range(wm.NCLS):
            for j in range(wm.NCLS):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if cm[i, j] / rowsum[i, 0] > 0.5 else "black")
        acc = np.trace(cm) / cm.sum()
        ax.set_title(f"{name}\nacc {100 * acc:.1f}%", fontsize=9)
        ax.set_xticks(range(wm.NCLS), short, fontsize=6, rotation=90)
        ax.set_yticks(range(wm.NCLS), short, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
    axes[0].set_ylabel("true", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_accuracy(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, arch in zip(axes, ARCHS):
        rows = [r for r in results["models"] if r["arch"] == arch]
        if not rows:
            continue
        labels = ["float"] + [r["bits"] for r in rows]
        for s, off in [("standard", -0.2), ("hard", 0.2)]:
            f = results["float"].get(arch, {}).get(s, {}).get("acc9")
            vals = [f if f is not None else np.nan] + [r["golden"][s]["acc9"] for r in rows]
            ax.bar(np.arange(len(labels)) + off, 100 * np.asarray(vals, float), 0.4, label=f"{s} test set")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(f"{arch}: float PyTorch vs golden integer model", fontsize=9)
        ax.set_ylim(50, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("accuracy, 9 classes (%)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# tables

def pct(v):
    return "-" if v is None else f"{100 * v:.2f}"


def results_markdown(res) -> str:
    L = []
    ts = res["test_sets"]
    L.append(f"Test sets: `standard` {ts['standard']} maps (seed 3, nearest resize), `hard` {ts['hard']} maps "
             f"(seed 4, resize modes mixed); training: {res.get('n_train', '?')} maps of the hard variant (seed 1). "
             "Accuracy in %, 9 classes / 8 defect classes (`none` excluded). `golden` = gen's integer model "
             "(bit-exact with the hardware) on the exported QONNX; `QAT` = the Brevitas model in PyTorch; "
             "`agree` = frames where golden and QAT predict the same class (hard set).")
    L.append("")
    L.append("| model | bits | float std | QAT std | golden std | float hard | QAT hard | golden hard | "
             "golden hard, 8 defect | agree | weights | MACs/frame | weight memory | threshold memory "
             "| fps | LUT | BRAM18 | DSP |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["models"]:
        f = res["float"].get(r["arch"], {})
        rep = r.get("report", {})
        wmem = f"{rep['weight_bits'] / 8 / 1024:.1f} KiB" if "weight_bits" in rep else "-"
        tmem = f"{rep['threshold_bits'] / 8 / 1024:.1f} KiB" if "threshold_bits" in rep else "-"
        L.append(
            f"| {r['arch']} | {r['bits']} | {pct(f.get('standard', {}).get('acc9'))} "
            f"| {pct(r.get('qat', {}).get('standard', {}).get('acc9'))} | {pct(r['golden']['standard']['acc9'])} "
            f"| {pct(f.get('hard', {}).get('acc9'))} | {pct(r.get('qat', {}).get('hard', {}).get('acc9'))} "
            f"| **{pct(r['golden']['hard']['acc9'])}** | {pct(r['golden']['hard']['acc8'])} "
            f"| {pct(r.get('agree_hard'))} | {rep.get('weights', '-'):,} | {rep.get('macs', 0):,} | {wmem} | {tmem} "
            + ("| {:,.0f} | {:,.0f} | {} | {} |".format(hw["fps"], hw["lut"], hw["bram18"], hw["dsp"])
               if (hw := rep.get("hw")) else "| - | - | - | - |"))
    L.append("")
    L.append("Float models (32-bit weights): " + "; ".join(
        f"{a}: {f['count']['params']:,} weights ({f['count']['params'] * 4 / 1024:.0f} KiB), "
        f"{f['count']['macs']:,} MACs/frame, 8 defect classes std {pct(f['standard']['acc8'])} / hard "
        f"{pct(f['hard']['acc8'])}"
        for a, f in res["float"].items()) + ".")
    L.append("")
    L.append("Quantisation cost on the hard set (golden minus float, points): " + "; ".join(
        f"{r['arch']} {r['bits']} {100 * (r['golden']['hard']['acc9'] - res['float'][r['arch']]['hard']['acc9']):+.2f}"
        for r in res["models"] if r["arch"] in res["float"]) + ".")
    L.append("")
    L.append("Main confusions (hard set, golden, true->predicted count): ")
    L.append("")
    for r in res["models"]:
        L.append(f"- {r['arch']} {r['bits']}: {', '.join(r['golden']['hard']['main_confusions'])}")
    for a, f in res["float"].items():
        L.append(f"- {a} float: {', '.join(f['hard']['main_confusions'])}")
    L.append("")
    if any("hw" in r.get("report", {}) for r in res["models"]):
        r0 = next(r for r in res["models"] if "hw" in r.get("report", {}))
        L.append("fps / LUT / BRAM18 / DSP: gen's report for the Zybo Z7-20 "
                 f"(xc7z020, {r0['report']['hw']['clock_mhz']:g} "
                 "MHz) with its default folding: analytic throughput of the slowest node and the resource estimate "
                 "(gen/fold, calibrated against Yosys), not a Vivado implementation. Capacity: 53,200 LUT, 280 BRAM18, "
                 "220 DSP. Bottlenecks: " + "; ".join(f"{r['arch']} {r['bits']} {r['report']['hw']['bottleneck']}"
                                                     for r in res["models"] if "hw" in r.get("report", {})) + ".")
    else:
        L.append("fps and FPGA resources: not in gen's report.json (no `hardware` section).")
    errs = [f"{r['arch']} {r['bits']}: {r['report']['error']}" for r in res["models"] if "error" in r.get("report", {})]
    if errs:
        L.append("")
        L.append("`python -m gen` failed on: " + "; ".join(errs))
    L.append("")
    rtl = res.get("rtl")
    L.append("RTL simulation (Verilator, `--rtl-frames N`): " + ("; ".join(rtl) if rtl else "not run."))
    L.append("")
    tl = res.get("train_log") or {}
    if tl:
        L.append("Training time (train.py, 1 CPU thread, shared machine): " + ", ".join(
            f"{k} {v['seconds']:.0f} s ({v['epochs']} ep, train acc {100 * v['final']['acc']:.1f}%)"
            for k, v in tl.items()) + f"; total {sum(v['seconds'] for v in tl.values()) / 60:.1f} min.")
        L.append("")
    L.append(f"Evaluation time: {res['seconds']:.0f} s on {res.get('threads', 1)} CPU thread(s).")
    return "\n".join(L) + "\n"


def update_readme(md: str):
    p = HERE / "README.md"
    text = p.read_text()
    a, b = "<!-- results:begin (written by evaluate.py --readme) -->", "<!-- results:end -->"
    i, j = text.find(a), text.find(b)
    if i < 0 or j < 0:
        raise SystemExit(f"{p}: results markers not found")
    p.write_text(text[:i + len(a)] + "\n" + md + text[j:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=str(ROOT / "build" / "wafer"))
    ap.add_argument("--arch", nargs="+", default=list(ARCHS))
    ap.add_argument("--bits", nargs="+", default=list(BITS))
    ap.add_argument("--n-test", type=int, default=200, help="test maps per class and set")
    ap.add_argument("--rtl-frames", type=int, default=0, help="maps of the hard test set to simulate in RTL")
    ap.add_argument("--rtl-models", nargs="+", default=["vgg_w4a4"], help="which models to simulate")
    ap.add_argument("--readme", action="store_true")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--from-json", action="store_true", help="only re-render results.md / README from results.json")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.from_json:
        res = json.loads((Path(args.out) / "results.json").read_text())
        md = results_markdown(res)
        (Path(args.out) / "results.md").write_text(md)
        print(md)
        if args.readme:
            update_readme(md)
        return
    mdir, out = Path(args.models), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import torch
        torch.set_num_threads(args.threads)
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed: golden model only (install the train extra for float / QAT)")

    data = {}
    for s, seed in (("standard", 3), ("hard", 4)):
        X, y = wm.generate(args.n_test, seed=seed, variant=s)
        data[s] = (wm.to_model_input(X), y)
    res = {"test_sets": {s: len(data[s][1]) for s in SETS}, "float": {}, "models": [], "threads": args.threads}
    log_p = mdir / "train_log.json"
    train_log = json.loads(log_p.read_text()) if log_p.exists() else {}
    if train_log:
        res["n_train"] = next(iter(train_log.values())).get("n_train")
        res["train_log"] = train_log

    cms = {}
    for arch in args.arch:
        fpt = mdir / f"{arch}_float.pt"
        if have_torch and fpt.exists():
            f = {"count": torch_count(arch)}
            for s in SETS:
                x, y = data[s]
                p = torch_predict(arch, None, fpt, x)
                cm = confusion(y, p)
                f[s] = dict(accuracy(y, p), main_confusions=main_confusions(cm), confusion=cm.tolist())
                cms[(arch, "float", s)] = cm
            res["float"][arch] = f
            print(f"{arch} float: std {pct(f['standard']['acc9'])} hard {pct(f['hard']['acc9'])}", flush=True)
        for bits in args.bits:
            onnx_p = mdir / f"{arch}_{bits}.onnx"
            if not onnx_p.exists():
                continue
            r = {"arch": arch, "bits": bits, "onnx": str(onnx_p.relative_to(ROOT) if onnx_p.is_relative_to(ROOT)
                                                       else onnx_p), "golden": {}, "qat": {}}
            t = time.time()
            gp = {}
            design = None
            for s in SETS:
                x, y = data[s]
                p, design, r[f"scores_argmax_agree_{s}"] = golden_predict(onnx_p, x)
                gp[s] = p
                cm = confusion(y, p)
                r["golden"][s] = dict(accuracy(y, p), main_confusions=main_confusions(cm), confusion=cm.tolist())
                cms[(arch, f"golden {bits}", s)] = cm
            r["golden_seconds"] = round(time.time() - t, 1)
            qpt = mdir / f"{arch}_{bits}.pt"
            if have_torch and qpt.exists():
                for s in SETS:
                    x, y = data[s]
                    p = torch_predict(arch, bits, qpt, x)
                    cm = confusion(y, p)
                    r["qat"][s] = dict(accuracy(y, p), main_confusions=main_confusions(cm))
                    cms[(arch, f"QAT {bits}", s)] = cm
                    if s == "hard":
                        r["agree_hard"] = float((p == gp[s]).mean())
            r["report"] = gen_report(onnx_p, ROOT / "build" / "wafer" / "gen" / f"{arch}_{bits}")
            res["models"].append(r)
            print(f"{arch} {bits}: golden std {pct(r['golden']['standard']['acc9'])} hard "
                  f"{pct(r['golden']['hard']['acc9'])}; QAT hard {pct(r['qat'].get('hard', {}).get('acc9'))}; "
                  f"agree {pct(r.get('agree_hard'))} ({r['golden_seconds']} s)", flush=True)
            if args.rtl_frames and f"{arch}_{bits}" in args.rtl_models and "error" not in r["report"]:
                x, y = data["hard"]
                n = args.rtl_frames
                t = time.time()
                try:
                    rr = rtl_predict(ROOT / "build" / "wafer" / "gen" / f"{arch}_{bits}", design, x[:n])
                    acc = float((gp["hard"][:n] == y[:n]).mean())
                    res.setdefault("rtl", []).append(
                        f"{arch} {bits}: {rr['equal']}/{rr['frames']} frames of the hard test set bit-identical "
                        f"to the golden model (label and scores, random input gaps and output back-pressure), "
                        f"so RTL accuracy on them = golden = {100 * acc:.1f}% ({time.time() - t:.0f} s)")
                    r["rtl"] = {k: v for k, v in rr.items() if k != "mismatches"}
                    r["rtl"]["mismatches"] = rr["mismatches"][:5]
                except Exception as e:  # noqa: BLE001 - report, keep the rest of the evaluation
                    res.setdefault("rtl", []).append(f"{arch} {bits}: RTL simulation failed: {type(e).__name__}: {e}")
                print(res["rtl"][-1], flush=True)

    # plots
    for arch in args.arch:
        panels = [("float", cms[(arch, "float", "hard")])] if (arch, "float", "hard") in cms else []
        panels += [(f"golden {b}", cms[(arch, f"golden {b}", "hard")]) for b in args.bits
                   if (arch, f"golden {b}", "hard") in cms]
        if panels:
            plot_confusions(panels, out / f"confusion_{arch}.png", f"{arch}: confusion matrices, hard test set")
    key = [("float", ("vgg", "float", "hard")), ("QAT w4a4 (PyTorch)", ("vgg", "QAT w4a4", "hard")),
           ("golden w4a4 (integer)", ("vgg", "golden w4a4", "hard"))]
    if all(k in cms for _, k in key):
        plot_confusions([(n, cms[k]) for n, k in key], out / "confusion_vgg_w4a4.png",
                        "bundled model vgg w4a4, hard test set")
    if res["models"]:
        plot_accuracy(res, out / "accuracy.png")
    res["seconds"] = time.time() - t0
    md = results_markdown(res)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    (out / "results.md").write_text(md)
    print(md)
    if args.readme:
        update_readme(md)


if __name__ == "__main__":
    main()
