"""Simulate a whole generated accelerator (`accel_top`) in Verilator and compare every output frame, byte for
byte, with the golden model (gen/golden/model.py) packed by gen/shell/regmap.py.

    b = build_rtl(out / "rtl")                     # cached by the hash of every source and .mem file
    r = run_frames(design, b, hwinfo, n=32, bp=0.3, gap=0.3)
    assert r["mismatches"] == []
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gen.golden import ops
from gen.golden.model import run as golden_run
from gen.ir.design import Design
from gen.shell import regmap

from . import runner

TOP = regmap.TOP_MODULE


def _materialize_mem(sv: str, mem: dict[str, str]) -> str:
    """$readmemh("weights/x.mem") -> a content-addressed absolute path (so the build cache keys on content)."""
    return runner.place_mem_files(sv, mem, prefix="weights/")


def build_rtl(rtl_dir: Path) -> runner.Build:
    """Build the accelerator in an emitted rtl/ folder (filelist.f, weights/)."""
    rtl_dir = Path(rtl_dir)
    files = (rtl_dir / "filelist.f").read_text().split()
    mem = {p.name: p.read_text() for p in (rtl_dir / "weights").glob("*.mem")}
    srcs = {f: _materialize_mem((rtl_dir / f).read_text(), mem) for f in files}
    return runner.build(TOP, [], extra_sv=srcs, wrap=False)


def lint_rtl(rtl_dir: Path) -> str:
    rtl_dir = Path(rtl_dir)
    files = [rtl_dir / f for f in (rtl_dir / "filelist.f").read_text().split()]
    return runner.lint(files, TOP)


# ------------------------------------------------------------------------------------------------ golden

def random_codes(design: Design, n: int, rng: np.random.Generator) -> np.ndarray:
    t = design.tensors[design.input]
    if t.bipolar:
        return rng.choice(np.array([-1, 1]), size=(n,) + tuple(t.shape)).astype(np.int64)
    return rng.integers(t.lo, t.hi + 1, size=(n,) + tuple(t.shape), dtype=np.int64)


def codes_from_bytes(design: Design, data: bytes) -> np.ndarray:
    """What the input adapter makes of a frame's bytes (one code per byte; bipolar: 1 -> +1, 0 -> -1)."""
    t = design.tensors[design.input]
    raw = np.frombuffer(data[:t.elements], dtype=np.uint8).astype(np.int64)
    if t.bipolar:
        v = np.where(raw & 1, 1, -1)
    else:
        b = t.bits
        v = raw & ((1 << b) - 1)
        if t.signed:
            v = np.where(v >= (1 << (b - 1)), v - (1 << b), v)
    return v.reshape((1,) + tuple(t.shape))


def golden_outputs(design: Design, hwinfo: dict, codes: np.ndarray) -> tuple[np.ndarray, list]:
    """(scores (N, NUM_SCORES), labels) for input codes (N, H, W, C)."""
    env = golden_run(design, None, feeds={design.input: codes})
    scores = env[design.scores].reshape(codes.shape[0], -1)
    acc = hwinfo["_accel"]
    if not acc["has_class"]:
        labels = [None] * codes.shape[0]
    elif design.output != design.scores:  # the model's head: its k classes per frame, largest first
        labels = [[int(c) for c in row] for row in env[design.output].reshape(codes.shape[0], -1)]
    else:
        labels = [int(v) for v in ops.label_select(env[design.scores], 1)[:, 0]]
    return scores, labels


def expected_frames(design: Design, hwinfo: dict, codes: np.ndarray, seq0: int = 0, flags=None) -> list[bytes]:
    scores, labels = golden_outputs(design, hwinfo, codes)
    dma = hwinfo["_accel"]["dma_bits"]
    flags = flags or [0] * len(labels)
    return [regmap.pack_output(lab, seq0 + i, fl, sc.tolist(), dma_bits=dma)
            for i, (lab, sc, fl) in enumerate(zip(labels, scores, flags))]


def input_frames(design: Design, hwinfo: dict, codes: np.ndarray) -> list[bytes]:
    bip = design.tensors[design.input].bipolar
    return [regmap.pack_input(c, bipolar=bip, dma_bits=hwinfo["_accel"]["dma_bits"]) for c in codes]


# ------------------------------------------------------------------------------------------------ running

def run_steps(b: runner.Build, steps: list, *, gap: float = 0.0, bp: float = 0.0, seed: int = 1,
              max_cycles: int = 10 ** 7, name: str = "accel") -> dict:
    spec = dict(seed=seed, clock_ns=10, gap=gap, bp=bp, max_cycles=max_cycles, steps=steps)
    return runner.run(b, spec, name=name, test_module="gen.sim.tb_accel")


def compare(got_hex: list[str], exp: list[bytes], start: int = 0) -> list[str]:
    errs = []
    for i, e in enumerate(exp):
        k = start + i
        if k >= len(got_hex):
            errs.append(f"frame {k}: missing")
            continue
        g = bytes.fromhex(got_hex[k])
        if g != e:
            errs.append(f"frame {k}: got {g[:48].hex()}... expected {e[:48].hex()}... ({len(g)} vs {len(e)} bytes)")
    return errs


READ_ALL = ["ID", "VERSION", "STATUS", "ERRORS", "FRAMES_IN", "FRAMES_OUT", "LAST_LATENCY", "LAST_INTERVAL",
            "NUM_SCORES", "NUM_CLASSES", "IN_FRAME_BYTES", "OUT_FRAME_BYTES"]


def run_frames(design: Design, b: runner.Build, hwinfo: dict, *, n: int = 32, bp: float = 0.3, gap: float = 0.3,
               seed: int = 1, timing_frames: int = 4) -> dict:
    """n random frames back to back with random gaps / back-pressure (all compared with the golden model), then
    `timing_frames` frames with neither, for LAST_INTERVAL (cycles between the last two output frames)."""
    rng = np.random.default_rng(seed)
    codes = random_codes(design, n + timing_frames, rng)
    ins = input_frames(design, hwinfo, codes)
    exp = expected_frames(design, hwinfo, codes)
    est = hwinfo["_accel"]["bottleneck_cycles"]
    steps = [dict(op="send", frames=[f.hex() for f in ins[:n]]), dict(op="recv", n=n),
             dict(op="read", regs=READ_ALL), dict(op="set", gap=0.0, bp=0.0),
             dict(op="send", frames=[f.hex() for f in ins[n:]]), dict(op="recv", n=timing_frames),
             dict(op="read", regs=READ_ALL)]
    max_cycles = int((est + 2000) * (n + timing_frames) * (2 + 8 * max(bp, gap))) + 100000
    res = run_steps(b, steps, gap=gap, bp=bp, seed=seed, max_cycles=max_cycles)
    res["mismatches"] = res["errors"] + compare(res["frames"], exp)
    res["n_frames"] = n + timing_frames
    res["interval"] = res["reads"][-1]["LAST_INTERVAL"] if len(res["reads"]) > 1 else None
    res["analytic"] = est
    return res


def load_hwinfo(rtl_dir: Path) -> dict:
    return json.loads((Path(rtl_dir) / "hw.json").read_text())


def bench_design(out: Path, design: Design, graph=None, folding=None, *, n: int = 4, timing_frames: int = 4,
                 seed: int = 1) -> dict:
    """bench/run.py --sim: build out/rtl (cached), n + timing_frames random frames back to back with neither input
    gaps nor back-pressure, all compared with the golden model; fps = clock / LAST_INTERVAL."""
    import time
    rtl = Path(out) / "rtl"
    hwinfo = load_hwinfo(rtl)
    t0 = time.time()
    b = build_rtl(rtl)
    wall = time.time() - t0
    bt = b.dir / "build_time.txt"
    build_s = float(bt.read_text()) if bt.exists() else round(wall, 1)
    r = run_frames(design, b, hwinfo, n=n, bp=0.0, gap=0.0, seed=seed, timing_frames=timing_frames)
    clock = hwinfo["_accel"].get("clock_mhz", 100) * 1e6
    interval = r["interval"]
    return dict(fps=clock / interval if interval else None, build_s=build_s, build_cached=wall < 0.5 * build_s,
                ok=not r["mismatches"], interval=interval, analytic=r["analytic"], frames=r["n_frames"],
                run_s=round(r["wall_s"], 1), mismatches=r["mismatches"][:4])
