"""Robustness of a generated accelerator: malformed input frames (short / long -> error flag, next frame correct,
no reset) and a soft reset in the middle of a frame (counters cleared, later frames correct)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from gen.frontend import load_design
from gen.shell import regmap
from gen.sim import accel

from .test_accel_e2e import generate


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from tests.modelgen import qonnx_model
    tmp = tmp_path_factory.mktemp("robust")
    gm = qonnx_model("maxpool", np.random.default_rng(1))  # 30-byte input frames: 4 DMA beats
    onnx.save(gm.model, tmp / "m.onnx")
    design = load_design(tmp / "m.onnx")[1]
    rtl, info, graph, folding = generate(design, tmp, "default")
    accel.lint_rtl(rtl)
    return design, info, accel.build_rtl(rtl)


def test_malformed_frames_recover(small):
    design, info, b = small
    dma = info["_accel"]["dma_bits"]
    nbytes = dma // 8
    codes = accel.random_codes(design, 6, np.random.default_rng(5))
    fr = accel.input_frames(design, info, codes)
    nb = len(fr[0]) // nbytes
    assert nb >= 3
    short = fr[1][:2 * nbytes]                              # tlast after 2 of nb beats
    long_ = fr[3] + bytes(range(1, 2 * nbytes + 1))          # 2 extra beats
    sent = [fr[0], short, fr[2], long_, fr[4], fr[5]]
    eff = [codes[0:1], accel.codes_from_bytes(design, short + bytes(len(fr[1]) - len(short))), codes[2:3],
           codes[3:4], codes[4:5], codes[5:6]]
    flags = [0, regmap.FLAG_SHORT, 0, regmap.FLAG_LONG, 0, 0]
    exp = [accel.expected_frames(design, info, c, seq0=i, flags=[f])[0] for i, (c, f) in enumerate(zip(eff, flags))]
    steps = [dict(op="send", frames=[f.hex() for f in sent]), dict(op="recv", n=len(sent)),
             dict(op="read", regs=["ERRORS", "STATUS", "FRAMES_IN", "FRAMES_OUT"]),
             dict(op="write", reg="ERRORS", value=0xFFFFFFFF), dict(op="read", regs=["ERRORS", "STATUS"])]
    r = accel.run_steps(b, steps, gap=0.3, bp=0.3, max_cycles=200000, name="malformed")
    errs = r["errors"] + accel.compare(r["frames"], exp)
    assert not errs, "\n".join(errs) + f" [{r['log']}]"
    e = {f.name: f.lsb for f in regmap.REG["ERRORS"].fields}
    assert r["reads"][0]["ERRORS"] == (1 << e["SHORT_FRAME"]) | (1 << e["LONG_FRAME"])
    assert r["reads"][0]["STATUS"] & 2 and r["reads"][0]["FRAMES_IN"] == r["reads"][0]["FRAMES_OUT"] == 6
    assert r["reads"][1]["ERRORS"] == 0 and not r["reads"][1]["STATUS"] & 2


def test_soft_reset_mid_frame(small):
    design, info, b = small
    nbytes = info["_accel"]["dma_bits"] // 8
    codes = accel.random_codes(design, 5, np.random.default_rng(7))
    fr = accel.input_frames(design, info, codes)
    nb = len(fr[0]) // nbytes
    steps = [dict(op="send", frames=[fr[0].hex(), fr[1].hex()]), dict(op="recv", n=2),
             dict(op="send", frames=[fr[2].hex()]), dict(op="pause_after", beats=2 * nb + 1),
             dict(op="write", reg="CTRL", value=1), dict(op="wait", cycles=20),
             dict(op="read", regs=["FRAMES_IN", "FRAMES_OUT", "STATUS"]), dict(op="resume"), dict(op="recv", n=1),
             dict(op="send", frames=[fr[3].hex(), fr[4].hex()]), dict(op="recv", n=2),
             dict(op="read", regs=["FRAMES_IN", "FRAMES_OUT", "ERRORS"])]
    r = accel.run_steps(b, steps, gap=0.0, bp=0.2, max_cycles=200000, name="softreset")
    assert not r["errors"], r["errors"]
    k = r["marks"][0] - 2 * nb  # beats of frame 2 taken before the reset; the rest arrives as a short frame
    assert 0 < k < nb
    tail = fr[2][k * nbytes:]
    tail_codes = accel.codes_from_bytes(design, tail + bytes(len(fr[2]) - len(tail)))
    exp = accel.expected_frames(design, info, codes[:2])
    exp += accel.expected_frames(design, info, tail_codes, seq0=0, flags=[regmap.FLAG_SHORT])
    exp += accel.expected_frames(design, info, codes[3:5], seq0=1)
    errs = accel.compare(r["frames"], exp)
    assert not errs, "\n".join(errs) + f" [{r['log']}]"
    assert r["reads"][0]["FRAMES_IN"] == 0 and r["reads"][0]["FRAMES_OUT"] == 0
    assert r["reads"][1]["FRAMES_IN"] == 3 and r["reads"][1]["FRAMES_OUT"] == 3
