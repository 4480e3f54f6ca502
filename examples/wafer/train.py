#!/usr/bin/env python3
"""Train the wafer-map classifiers (float, then QAT from the float weights) and export them to QONNX.

    .venv/bin/python examples/wafer/train.py --all                       # both archs, float + w2a2 w2a4 w4a4 w8a8
    .venv/bin/python examples/wafer/train.py --arch vgg --bits w4a4      # one model (trains float first if needed)
    .venv/bin/python examples/wafer/train.py --all --bundle              # ... and copy vgg w4a4 to examples/

Needs the `train` extra (`pip install -e '.[train]'`). Outputs (default build/wafer/):
`{arch}_float.pt`, `{arch}_{bits}.pt`, `{arch}_{bits}.onnx` (QONNX, `brevitas.export.export_qonnx`,
`dynamo=False`) and `train_log.json` (per model: epochs, seconds, final training loss/accuracy).

Data: `wafermap.generate(--n-train, seed=1, variant="hard")` (mixed resize modes), plus random flips and
90-degree turns of the 42x42 maps at every epoch. Float: Adam, lr 2e-3 with cosine decay, --float-epochs.
QAT: same architecture with Brevitas layers initialised from the float weights, lr 1e-3 cosine, --qat-epochs.
Loss: cross entropy, or focal loss (--loss focal, gamma 2; --class-weights for an imbalanced real data set).
Everything is seeded (torch, numpy); torch runs on 1 CPU thread by default (--threads).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import wafermap  # noqa: E402

BUNDLED = ROOT / "examples" / "wafer_vgg_w4a4.onnx"


def focal_loss(logits, target, gamma=2.0, weight=None):
    import torch.nn.functional as F
    logp = F.log_softmax(logits, 1)
    lp = logp.gather(1, target[:, None])[:, 0]
    loss = -((1 - lp.exp()) ** gamma) * lp
    if weight is not None:
        loss = loss * weight[target]
    return loss.mean()


def augment(x, gen):
    """Random flips and 90-degree turns of a (B, 1, H, W) batch (square maps), one draw per batch quarter."""
    import torch
    out = []
    for part in torch.chunk(x, 4):
        k = int(torch.randint(0, 4, (1,), generator=gen))
        if int(torch.randint(0, 2, (1,), generator=gen)):
            part = part.flip(3)
        out.append(torch.rot90(part, k, (2, 3)))
    return torch.cat(out)


def train_model(model, X, y, epochs, lr, args, seed):
    import torch
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    steps = epochs * ((len(X) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    cw = None
    if args.class_weights:
        cnt = np.bincount(y, minlength=wafermap.NCLS).astype(np.float64)
        cw = torch.tensor(len(y) / (wafermap.NCLS * np.maximum(cnt, 1)), dtype=torch.float32)
    hist = []
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(Xt), generator=gen)
        tot, correct, n = 0.0, 0, 0
        for i in range(0, len(perm), args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = augment(Xt[idx], gen), yt[idx]
            out = model(xb)
            loss = focal_loss(out, yb, args.gamma, cw) if args.loss == "focal" else F.cross_entropy(out, yb, weight=cw)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            n += len(idx)
        hist.append({"epoch": ep + 1, "loss": tot / n, "acc": correct / n})
        print(f"    epoch {ep + 1:2d}/{epochs}: loss {tot / n:.4f} train acc {correct / n:.4f}", flush=True)
    model.eval()
    return hist


def export(model, path):
    import torch
    from brevitas.export import export_qonnx
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.zeros(1, 1, wafermap.SIZE, wafermap.SIZE), export_path=str(path), dynamo=False)
    stamp_input_kind(path)


def stamp_input_kind(path):
    """Write the input contract into the ONNX file's metadata (`gen.input_kind`, graph untouched): gen's host
    client then maps wafer-map files to the model input as `wafermap.prepare` does, with no option to remember."""
    import onnx
    m = onnx.load(str(path))
    for p in [p for p in m.metadata_props if p.key == "gen.input_kind"]:
        m.metadata_props.remove(p)
    m.metadata_props.add(key="gen.input_kind", value=wafermap.INPUT_KIND)
    onnx.save(m, str(path))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true", help="every arch and bit width")
    ap.add_argument("--arch", nargs="+", default=["vgg"], choices=["vgg", "mobilenet"])
    ap.add_argument("--bits", nargs="+", default=["w4a4"], help="w2a2 w2a4 w4a4 w8a8")
    ap.add_argument("--out", default=str(ROOT / "build" / "wafer"))
    ap.add_argument("--n-train", type=int, default=500, help="training maps per class")
    ap.add_argument("--float-epochs", type=int, default=15)
    ap.add_argument("--qat-epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--loss", choices=["ce", "focal"], default="ce")
    ap.add_argument("--gamma", type=float, default=2.0, help="focal loss gamma")
    ap.add_argument("--class-weights", action="store_true", help="inverse-frequency class weights")
    ap.add_argument("--bias-quant", action="store_true", help="Int32Bias on the linear layers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retrain-float", action="store_true", help="retrain the float model even if saved")
    ap.add_argument("--skip-existing", action="store_true", help="keep QAT models already in --out")
    ap.add_argument("--bundle", action="store_true", help=f"copy vgg w4a4 to {BUNDLED.relative_to(ROOT)}")
    args = ap.parse_args(argv)

    import models
    import torch
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    archs = list(models.ARCHS) if args.all else args.arch
    bitss = ["w4a4", "w2a4", "w2a2", "w8a8"] if args.all else args.bits  # the bundled model first
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else {}

    t0 = time.time()
    X, y = wafermap.generate(args.n_train, seed=1, variant="hard")
    X = wafermap.to_model_input(X)
    print(f"training data: {len(X)} maps (hard variant, seed 1) in {time.time() - t0:.1f} s", flush=True)

    for arch in archs:
        fpath = out / f"{arch}_float.pt"
        if args.retrain_float or not fpath.exists():
            torch.manual_seed(args.seed)
            m = models.build(arch)
            print(f"[{arch} float] {models.count(m)}", flush=True)
            t = time.time()
            hist = train_model(m, X, y, args.float_epochs, 2e-3, args, args.seed)
            torch.save(m.state_dict(), fpath)
            log[f"{arch}_float"] = {"seconds": round(time.time() - t, 1), "epochs": args.float_epochs,
                                   "loss": args.loss, "final": hist[-1], "n_train": len(X)}
            log_path.write_text(json.dumps(log, indent=1))
        fstate = torch.load(fpath)
        for bits in bitss:
            if args.skip_existing and (out / f"{arch}_{bits}.onnx").exists() and f"{arch}_{bits}" in log:
                print(f"[{arch} {bits}] kept", flush=True)
                continue
            torch.manual_seed(args.seed)
            m = models.build(arch, bits, bias_quant=args.bias_quant)
            missing, unexpected = m.load_state_dict(fstate, strict=False)
            assert not unexpected, unexpected
            print(f"[{arch} {bits}] QAT from float ({len(missing)} quantiser parameters initialised fresh)",
                  flush=True)
            t = time.time()
            hist = train_model(m, X, y, args.qat_epochs, 1e-3, args, args.seed + 1)
            torch.save(m.state_dict(), out / f"{arch}_{bits}.pt")
            export(m, out / f"{arch}_{bits}.onnx")
            log[f"{arch}_{bits}"] = {"seconds": round(time.time() - t, 1), "epochs": args.qat_epochs,
                                    "loss": args.loss, "bias_quant": args.bias_quant, "final": hist[-1],
                                    "n_train": len(X), "onnx_bytes": os.path.getsize(out / f"{arch}_{bits}.onnx")}
            log_path.write_text(json.dumps(log, indent=1))
            print(f"    wrote {out / f'{arch}_{bits}.onnx'} ({time.time() - t:.0f} s)", flush=True)
            if args.bundle and arch == "vgg" and bits == "w4a4":
                shutil.copyfile(out / "vgg_w4a4.onnx", BUNDLED)
                print(f"    bundled {BUNDLED}", flush=True)
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
