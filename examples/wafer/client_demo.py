#!/usr/bin/env python3
"""The deployed path on a PC after `python -m gen` (the second half of `make demo`): wafer maps in files (SEMI G85
XML and .npy die grids of many sizes) -> the generated host client -> accel_server (C) -> libaccel (C) ->
simulated device (gen's golden model) -> CSV, with the true class of every map beside the answer.

    .venv/bin/python examples/wafer/client_demo.py build/wafer_vgg_w4a4 [--board zybo-z7] [--n 2]

Skipped (exit 0, one line) when the design's input contract is not wafer maps (codes named off, pass, fail), or
without a C compiler. Inputs and results go to build/client_demo/<design> (never into the gen output folder).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import wafermap as wm  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the gen output folder (design.json, firmware/)")
    ap.add_argument("--board", default="zybo-z7")
    ap.add_argument("--n", type=int, default=2, help="maps per class (9 classes)")
    a = ap.parse_args(argv)

    from gen.boards import load_board
    from gen.firmware.simdev import GoldenBackend, SimDeviceServer
    from gen.ir.design import Design

    design = Design.load(a.out / "design.json")
    contract = design.input_contract or {"kind": "tensor", "spec": "tensor"}
    if contract["kind"] != "codes" or not {"off", "pass", "fail"} <= set(contract["codes"]):
        print(f"client demo: skipped (input kind {contract['spec']} is not wafer maps)")
        return 0
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("client demo: skipped (no C compiler for the server)")
        return 0
    fw = a.out / "firmware"
    r = subprocess.run(["make", "-s", "-C", str(fw), f"CC={cc}"], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr, file=sys.stderr)
        return 1

    work = ROOT / "build" / "client_demo" / a.out.name
    work.mkdir(parents=True, exist_ok=True)
    _, labels, grids, _ = wm.generate(a.n, seed=3, return_grids=True)
    half = len(grids) // 2
    wm.write_g85(grids[:half], work / "lot.xml", wafer_ids=[f"W{i:02d}" for i in range(half)])
    files = [work / "lot.xml"]
    for i in range(half, len(grids)):
        np.save(work / f"wafer{i:02d}.npy", grids[i])
        files.append(work / f"wafer{i:02d}.npy")

    sock = work / "dev.sock"
    dev = SimDeviceServer(sock, GoldenBackend(design, load_board(a.board))).start()
    server = subprocess.Popen([str(fw / "accel_server"), "-d", f"unix:{sock}", "-b", "127.0.0.1", "-p", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if "listening on" not in line:
            print(f"client demo: the server did not start: {line}{server.stderr.read()}", file=sys.stderr)
            return 1
        port = line.rsplit(":", 1)[1].strip()
        cmd = [sys.executable, str(fw / "host" / "accel_client.py"), "--port", port, "--csv",
               str(work / "results.csv"), *map(str, files)]
        print("$ " + " ".join(Path(c).name if c.startswith(str(ROOT)) else c for c in cmd[1:]))
        r = subprocess.run(cmd, capture_output=True, text=True)
        print((r.stdout + r.stderr).strip())
        if r.returncode:
            return r.returncode
    finally:
        server.terminate()
        server.wait(timeout=5)
        dev.stop()

    rows = list(csv.DictReader((work / "results.csv").open()))
    right = 0
    print(f"{'input':22s} {'true class':11s} {'answer':11s}")
    for row, y in zip(rows, labels):
        c = int(row["class"])
        right += c == y
        print(f"{row['input']:22s} {wm.CLASSES[y]:11s} {wm.CLASSES[c]:11s}{'' if c == y else '  <- wrong'}")
    print(f"client demo: {right}/{len(rows)} maps right; files and results.csv in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
