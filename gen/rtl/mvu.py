"""Matrix-vector unit (Conv after a sliding window, Dense, depthwise Conv) with fused requantisation."""

from __future__ import annotations

import math

import numpy as np

from .common import (
    Port,
    Rendered,
    Stream,
    axis_ports,
    clog2,
    encode,
    header,
    mem_text,
    module_name,
    pack_words,
    pow2_at_least,
    ram_style_for,
    render_template,
    sbits,
    ubits,
    value_range,
)
from .luts import bit_column
from .requant import RequantSpec, requant_ctx

# Defined by vivado/build.tcl: the weight files are project sources there and $readmemh names them by file name
# alone, the form Vivado resolves against the project's files; its run directory is not rtl/, so the
# "weights/<file>" used by simulators and Yosys (run in rtl/) would not be found and could leave zeros.
MEM_FLAT_DEFINE = "GEN_VIVADO_MEM"


def mvu_matrix(weight: np.ndarray) -> np.ndarray:
    """Conv weight (OC, KH, KW, IC/groups) or Dense weight (OC, MW) -> the (MH, MW) matrix the mvu streams."""
    w = np.asarray(weight)
    return w.reshape(w.shape[0], -1)


def product_range(w_lo: int, w_hi: int, a_lo: int, a_hi: int, xnor: bool) -> tuple[int, int]:
    """Range of one lane's product (XNOR: the agreement bit)."""
    if xnor:
        return 0, 1
    c = [x * y for x in (w_lo, w_hi) for y in (a_lo, a_hi)]
    return min(c), max(c)


def pair_lanes(w_bipolar: bool, a_bipolar: bool, a_bits: int, runtime_writable: bool, depthwise: bool, lanes: int,
               lut_inputs: int = 6) -> bool:
    """Bipolar weights x multi-bit activations (a binarised net's first layer) are summed two lanes at a time:
    w0*a0 + w1*a1 is +-(a0 + a1) or +-(a0 - a1), so the sums and differences are computed once for all PEs and
    each PE only selects one and negates it (ones' complement, the +1s folded into each channel's accumulator
    start, hence constant weights only). Narrower activations (two lanes' operand bits fit one LUT) use the
    group tables instead."""
    return (w_bipolar and not a_bipolar and 1 + a_bits > lut_inputs // 2 and not runtime_writable
            and not depthwise and lanes >= 2)


def ternary_lanes(w_lo: int, w_hi: int, w_bits: int, a_bits: int, w_bipolar: bool, a_bipolar: bool,
                  runtime_writable: bool, use_dsp: bool, depthwise: bool, lut_inputs: int = 6) -> bool:
    """Constant weights in {-1, 0, 1} x multi-bit activations (too wide for a product table, e.g. a 2-bit
    net's 8-bit first layer): each lane is 0, a or, in ones' complement, -a - 1, one LUT per product bit
    (instead of a shift-add multiplier); the +1s are counted into each channel's accumulator start."""
    return (not (w_bipolar or a_bipolar or runtime_writable or use_dsp or depthwise) and w_lo >= -1 and w_hi <= 1
            and w_bits >= 2 and w_bits + a_bits > lut_inputs)


def pair_range(a_lo: int, a_hi: int) -> tuple[int, int]:
    """Range of one lane's ones'-complement product (a or -a-1) in pair mode."""
    return min(a_lo, -a_hi - 1), max(a_hi, -a_lo - 1)


def pair_correction(w: np.ndarray, lanes: int) -> np.ndarray:
    """Per output channel: the +1s that turn the ones'-complement pair values into exact sums (one per pair
    whose first weight is -1, and per odd last lane of weight -1)."""
    w = np.asarray(w, dtype=np.int64)
    first = (np.arange(w.shape[1]) % lanes) % 2 == 0
    return ((w == -1) & first[None, :]).sum(axis=1)


def datapath(lanes: int, p_lo: int, p_hi: int, acc_bits: int, *, lane_in: int, grouped: bool, lut_inputs: int = 6,
             tree_reg_every: int = 2, pairs: bool = False, group: int = 0) -> tuple[int, list[int], list[dict]]:
    """Shape of a PE's dot product: (lanes per first-stage group, lanes of each group, adder-tree levels).
    Level 0 holds the registered group sums; level l adds pairs of level l-1 (`w` bits wide, registered every
    `tree_reg_every` levels and at the root). `pairs`: groups of two lanes (pair_lanes; p_lo, p_hi from
    pair_range); `group` > 0: that many lanes per group (weight-folded tables, folded_group()). Shared by the RTL
    and the resource model."""
    if not group:
        group = 2 if pairs else min(max(1, lut_inputs // lane_in) if grouped else 1, lanes)
    gcnt = [min(group, lanes - i) for i in range(0, lanes, group)]

    def width(c: int) -> int:  # non-negative products (XNOR counts, unsigned x unsigned): unsigned sums
        return min(acc_bits, ubits(c * p_hi) if p_lo >= 0 else sbits(c * p_lo, c * p_hi))
    levels = [dict(l=0, n=len(gcnt), cnt=gcnt, reg=True, adds=0, w=width(max(gcnt)))]
    while levels[-1]["n"] > 1:
        prev = levels[-1]
        cnt = [sum(prev["cnt"][2 * i:2 * i + 2]) for i in range((prev["n"] + 1) // 2)]
        levels.append(dict(l=prev["l"] + 1, n=len(cnt), cnt=cnt, adds=prev["n"] // 2, w=width(max(cnt)),
                           reg=((prev["l"] + 1) % tree_reg_every == 0)))
    levels[-1]["reg"] = True
    return group, gcnt, levels


def compressor(group: int, levels: list[dict], p_lo: int, tree_reg_every: int = 2, folded: bool = False):
    """The compressor-tree plan (gen/rtl/compress.py) replacing the adder tree above the group sums, or None:
    used for unsigned group sums (XNOR counts, unsigned narrow products; single lanes only when weight-folded
    tables make them 1-2 bits) of at least 6 groups. Shared by the RTL and the resource model."""
    from .compress import plan
    if (group < 2 and not (folded and levels[0]["w"] <= 2)) or p_lo < 0 or levels[0]["n"] < 6:
        return None
    return plan(levels[0]["n"], levels[0]["w"], levels[-1]["w"], reg_every=tree_reg_every)


def rom_sites(columns: int, depth: int, lut_inputs: int = 6) -> float:
    """LUT6 sites of a constant table of `columns` one-bit columns, `depth` words deep (the mvu's bit-sliced weight
    ROM, all PEs in one module): one LUT6 per 64 words of a column (MUXF7/F8 join them); identical columns are
    kept once (a shallow table has at most 2^depth distinct ones) and up to 32 words two columns share a LUT6_2
    (packed_rom())."""
    distinct = columns if depth >= 20 else min(columns, 1 << depth)
    if depth <= 1:
        return 0.0
    if depth <= 32 and lut_inputs == 6:
        return float(math.ceil(distinct / 2))
    return float(distinct * math.ceil(depth / 64))


def folded_group(wdepth: int, a_lane_bits: int, p_lo: int, p_hi: int, acc_bits: int, lanes: int, lane_in: int,
                 rom_per_lane: float, lut_inputs: int = 6) -> int:
    """Lanes per table when the weights are folded into the first-stage tables, else 0.

    With constant weights in LUTs, a group's sum is a function of its activation bits and the weight address
    alone: one table per group and PE (LUT6_2 up to five inputs: two sum bits per LUT; a 4-word XNOR layer sums
    three lanes in one LUT) instead of a weight ROM plus a shared {weights, activations} table. Chosen when that
    costs no more LUTs per lane, counting one LUT per first-stage output bit for the adder or compressor tree
    above. Not for one-word weights: synthesis already specialises those tables to the constants. Shared by the
    RTL and the resource model."""
    if lut_inputs != 6 or wdepth <= 1:
        return 0
    k = clog2(wdepth)

    def width(c: int) -> int:
        return min(acc_bits, ubits(c * p_hi) if p_lo >= 0 else sbits(c * p_lo, c * p_hi))
    from .luts import luts_for
    ga = min(max(1, lut_inputs // lane_in), lanes)
    current = rom_per_lane + 2 * width(ga) / ga
    best, best_cost = 0, current
    for g in range(1, lanes + 1):
        m = k + g * a_lane_bits
        if m > lut_inputs:
            break
        cost = (luts_for(width(g), m) + width(g)) / g
        if cost <= best_cost:
            best, best_cost = g, cost
    return best


def pair_folded(pairs: bool, runtime_writable: bool, w_style: str, wdepth: int, lut_inputs: int = 6) -> bool:
    """Lane pairs over 2..8 words of constant weights in LUTs: each PE's select-and-negate is folded into LUT6_2s
    of the shared sum and difference bits and the weight address, two PEs per LUT (folded_pair_tables()).
    (One word: synthesis already reduces the select to wires.) Shared by the RTL and the resource model."""
    return pairs and not runtime_writable and w_style != "block" and 1 < wdepth <= 8 and lut_inputs == 6


def acc_range(w: np.ndarray, a_lo: int, a_hi: int, bias=None) -> tuple[int, int]:
    """Exact accumulator range over all inputs in [a_lo, a_hi], per channel, then over channels."""
    w = np.asarray(w, dtype=np.int64)
    hi = np.maximum(w * a_lo, w * a_hi).sum(axis=1)
    lo = np.minimum(w * a_lo, w * a_hi).sum(axis=1)
    if bias is not None:
        b = np.broadcast_to(np.asarray(bias, dtype=np.int64), hi.shape)
        hi, lo = hi + b, lo + b
    return int(lo.min()), int(hi.max())


def render_mvu(layer: str, weights: np.ndarray, *, pe: int, simd: int, w_bits: int, a_bits: int,
               w_signed: bool = True, a_signed: bool = False, w_bipolar: bool = False, a_bipolar: bool = False,
               num_pix: int = 1, depthwise: bool = False, bias: np.ndarray | None = None,
               requant: RequantSpec | None = None, acc_bits: int | None = None, ram_style: str = "auto",
               use_dsp: bool | None = None, runtime_writable: bool = False, mem_dir: str = "",
               tree_reg_every: int = 2, ir_params: dict | None = None, yosys_compat: bool = True,
               a_range: tuple[int, int] | None = None, lut_inputs: int = 6) -> Rendered:
    """Render an mvu for `weights` (MH, MW) (use mvu_matrix() for Conv weights).

    Non-depthwise: the input is, per output pixel, MW elements (window order KH, KW, IC) in MW/SIMD beats; the
    output is MH channels in MH/PE beats. Depthwise (simd == pe): per pixel, C/PE channel folds of K*K beats
    (swg depthwise order), weights (C, K*K), output C channels in C/PE beats.
    `ir_params` adds the IR's names (IFM_CH, OFM_CH, K, OFM_DIM, ...) to the header and localparams.
    Weight memories: ram_style "auto" picks block / distributed / registers by size. Constant weights are a ROM
    (rom_style "block" when large; small ROMs become LUTs), run-time writable ones a RAM with that ram_style.
    `yosys_compat` leaves the rom_style "distributed" hint out (Yosys rejects it; Vivado infers it anyway).
    `a_range` (lo, hi): the activation codes that can occur (the input tensor's range and any padding value);
    with the weights' own range (unless writable at run time) it narrows products, adder tree and accumulator.
    Narrow products (at most `lut_inputs` operand bits for several lanes) are summed G lanes at a time by one
    table per group - one LUT level that merges the multiply (or XNOR) with the first adder-tree levels.
    """
    W = np.asarray(weights, dtype=np.int64)
    assert W.ndim == 2
    mh, mw = W.shape
    requant = requant or RequantSpec("none")
    if depthwise:
        assert simd == pe, "depthwise mvu: one lane per PE (SIMD == PE)"
    assert mh % pe == 0, f"MH={mh} not divisible by PE={pe}"
    lanes = 1 if depthwise else simd
    if not depthwise:
        assert mw % simd == 0, f"MW={mw} not divisible by SIMD={simd}"
    nf, sf = mh // pe, (mw if depthwise else mw // simd)
    xnor = w_bipolar and a_bipolar
    if w_bipolar or a_bipolar:
        assert (not w_bipolar or w_bits == 1) and (not a_bipolar or a_bits == 1)
    w_lo, w_hi = value_range(w_bits, w_signed, w_bipolar)
    a_lo, a_hi = value_range(a_bits, a_signed, a_bipolar)
    assert W.min() >= w_lo and W.max() <= w_hi, "weights out of range"
    if not runtime_writable and not w_bipolar:
        w_lo, w_hi = int(W.min()), int(W.max())
    if a_range is not None and not a_bipolar:
        assert a_lo <= a_range[0] <= a_range[1] <= a_hi, f"activation range {a_range} outside the {a_bits}-bit codes"
        a_lo, a_hi = int(a_range[0]), int(a_range[1])
    if use_dsp is None:
        use_dsp = (not (w_bipolar or a_bipolar)) and w_bits >= 5 and a_bits >= 5
    if w_bipolar or a_bipolar:
        use_dsp = False

    # -- widths ---------------------------------------------------------------------------------------------
    corners = [x * y for x in (w_lo, w_hi) for y in (a_lo, a_hi)]
    p_lo, p_hi = product_range(w_lo, w_hi, a_lo, a_hi, xnor)
    if runtime_writable:
        blo, bhi = (0, 0)
        if bias is not None:
            b = np.asarray(bias, dtype=np.int64)
            blo, bhi = int(b.min()), int(b.max())
        lo, hi = mw * min(corners) + blo, mw * max(corners) + bhi
    else:
        lo, hi = acc_range(W, a_lo, a_hi, bias)
    need = sbits(lo, hi)
    if acc_bits is None:
        acc_bits = need
    assert acc_bits >= need, f"ACC_BITS={acc_bits} < {need} needed for [{lo}, {hi}]"

    # all widths are capped at ACC_BITS: two's complement arithmetic modulo 2**ACC_BITS is exact for the sum
    P = min(ubits(p_hi) if p_lo >= 0 else sbits(p_lo, p_hi), acc_bits)
    pairs = pair_lanes(w_bipolar, a_bipolar, a_bits, runtime_writable, depthwise, lanes, lut_inputs)
    ternary = ternary_lanes(w_lo, w_hi, w_bits, a_bits, w_bipolar, a_bipolar, runtime_writable, use_dsp, depthwise,
                            lut_inputs)
    if ternary:
        p_lo, p_hi = pair_range(a_lo, a_hi)
        P = min(sbits(p_lo, p_hi), acc_bits)
        corr = (W == -1).sum(axis=1)
        if corr.any():
            bias = corr if bias is None else np.broadcast_to(np.asarray(bias, dtype=np.int64), (mh,)) + corr
    if pairs:
        p_lo, p_hi = pair_range(a_lo, a_hi)
        corr = pair_correction(W, lanes)
        if corr.any():
            bias = corr if bias is None else np.broadcast_to(np.asarray(bias, dtype=np.int64), (mh,)) + corr
    ww = lanes * w_bits
    wdepth = nf * sf
    w_style = ram_style_for(ww * wdepth, wdepth, ram_style, rom=not runtime_writable)
    lane_in = (1 if w_bipolar else w_bits) + (1 if a_bipolar else a_bits)
    fold_g = 0
    if not (runtime_writable or pairs or ternary or use_dsp or depthwise) and w_style != "block":
        fold_g = folded_group(wdepth, 1 if a_bipolar else a_bits, p_lo, p_hi, acc_bits, lanes, lane_in,
                              rom_sites(pe * ww, wdepth, lut_inputs) / (pe * lanes), lut_inputs)
    group, gcnt, levels = datapath(lanes, p_lo, p_hi, acc_bits, lane_in=lane_in,
                                   grouped=not (use_dsp or depthwise), lut_inputs=lut_inputs,
                                   tree_reg_every=tree_reg_every, pairs=pairs, group=fold_g)
    comp = None if pairs else compressor(group, levels, p_lo, tree_reg_every, folded=fold_g > 0)
    tree_regs = comp.regs if comp else sum(1 for lv in levels[1:] if lv["reg"])
    # -- memories -------------------------------------------------------------------------------------------
    enc = encode(W, w_bits, w_bipolar)
    name = module_name("mvu", layer)
    mem_files, mem_paths, word_lists = {}, [], []
    for p in range(pe):
        rows = []
        for n in range(nf):
            ch = n * pe + p
            for s in range(sf):
                rows.append(enc[ch, s * lanes:(s + 1) * lanes])
        fname = f"{name}_w{p}.mem"
        word_lists.append(pack_words(np.array(rows).reshape(wdepth, lanes), w_bits))
        mem_files[fname] = mem_text(word_lists[-1], ww)
        mem_paths.append(f"{mem_dir.rstrip('/') + '/' if mem_dir else ''}{fname}")
    if runtime_writable:
        w_attr = f'(* ram_style = "{w_style}" *) '
    elif w_style == "block":
        w_attr = '(* rom_style = "block" *) '
    else:
        # a small constant table: LUT ROM (Vivado: distributed ROM; Yosys has no ROM-to-LUTRAM mapping)
        w_attr = '(* rom_style = "distributed" *) ' if w_style == "distributed" and not yosys_compat else ""
    gtabs, ginits = {}, {}
    if group > 1 and not pairs and not fold_g:
        for n in sorted(set(gcnt)):
            if lut_inputs == 6 and wdepth > 1:  # LUT6 primitives (what synthesis makes of them; Verilator
                # builds them fast); one-word weights stay a function for synthesis to specialise
                ginits[n] = _group_inits(n, w_bits, a_bits, w_signed, a_signed, w_bipolar, a_bipolar, xnor,
                                         levels[0]["w"])
            else:
                gtabs[n] = _group_table(n, w_bits, a_bits, w_signed, a_signed, w_bipolar, a_bipolar, xnor,
                                        levels[0]["w"])
    # constant weights outside block RAM: bit-sliced truth tables (Yosys maps a $mem ROM to about twice the LUTs),
    # up to 32 words two columns per LUT6_2 - unless the weights are folded into the first-stage tables
    pair_fold = pair_folded(pairs, runtime_writable, w_style, wdepth, lut_inputs)
    w_sliced = (not runtime_writable) and w_style != "block" and wdepth > 1 and not fold_g and not pair_fold
    w_dp = 1 << max(clog2(wdepth), 1)
    w_tables = []
    rom_sv = packed_rom(word_lists, ww, wdepth) if w_sliced and wdepth <= 32 and lut_inputs == 6 else ""
    if w_sliced and not rom_sv:
        for words in word_lists:
            t = sum(bit_column(words, b) << (b * w_dp) for b in range(ww))
            w_tables.append(f"{ww * w_dp}'h{t:x}")
    comp_sv, pops = "", {}
    if comp is not None:
        from .compress import counter_tables, verilog
        comp_sv = verilog(comp, "cs0", "tree_sum", prims=lut_inputs == 6)
        used = {len(grp) for st in comp.stages for grp, _ in st.counters}
        pops = {n: t for n, t in counter_tables().items() if n in used} if lut_inputs != 6 else {}
    ft_sv = ""
    if pair_fold:
        ft_sv = folded_pair_tables(W, pe=pe, lanes=lanes, sf=sf, wdepth=wdepth, gcnt=gcnt, width=levels[0]["w"])
    if fold_g:
        ft_sv = folded_tables(W, pe=pe, lanes=lanes, sf=sf, wdepth=wdepth, gcnt=gcnt, width=levels[0]["w"],
                              a_bits=1 if a_bipolar else a_bits, a_signed=a_signed, a_bipolar=a_bipolar, xnor=xnor)
    need_ibuf = (not depthwise) and nf > 1
    ibuf_style = ram_style_for(simd * a_bits * sf, sf)

    # -- operand expressions (lane s of the PE's weight word `wv` / activation word `av`) ---------------------
    def ext(sig, bits, signed):
        sl = f"{sig}[s*{bits} +: {bits}]"
        return (f"$signed({sl})", bits) if signed else (f"$signed({{1'b0, {sl}}})", bits + 1)
    w_ext, w_xw = ext("wv", w_bits, w_signed)
    a_ext, a_xw = ext("av", a_bits, a_signed)
    if a_xw <= w_xw:
        mul_x, mul_xw, mul_y, mul_yw = w_ext, w_xw, a_ext, a_xw
    else:
        mul_x, mul_xw, mul_y, mul_yw = a_ext, a_xw, w_ext, w_xw

    rq = requant_ctx(requant, mh, pe, lo, hi, acc_bits, din="acc_all", din_valid="acc_v", din_idx="acc_n",
                     din_last="acc_t")
    rq_uses_idx = requant.mode != "none" and nf > 1
    has_bias = bias is not None
    need_n = nf > 1 and (has_bias or rq_uses_idx)
    lat = 2 + tree_regs + 1 + rq["lat"]  # issue -> push
    oq_depth = pow2_at_least(lat + 2)
    o_bits = rq["ob"]

    params = dict(MW=mw, MH=mh, PE=pe, SIMD=simd, W_BITS=w_bits, A_BITS=a_bits, ACC_BITS=acc_bits, O_BITS=o_bits,
                  NUM_PIX=num_pix, NF=nf, SF=sf)
    if ir_params:
        params.update({k.upper(): int(v) for k, v in ir_params.items()})
    ctx = dict(
        name=name, params=params,
        header=header("mvu", name, layer, {k: params[k] for k in params},
                      f"Weights {'writable at run time, ' if runtime_writable else ''}in {name}_w<pe>.mem; "
                      f"analytic cycles per frame = MH/PE * MW/SIMD * pixels = {nf * sf * num_pix}."),
        MH=mh, MW=mw, PE=pe, SIMD=simd, LANES=lanes, DW=depthwise, NF=nf, SF=sf, NUM_PIX=num_pix,
        SFW=clog2(sf), NFW=clog2(nf), PIXW=clog2(num_pix), WDEPTH=wdepth, WAW=clog2(wdepth), WW=ww,
        W_BITS=w_bits, A_BITS=a_bits, W_SIGNED=w_signed, A_SIGNED=a_signed, W_BIPOLAR=w_bipolar,
        A_BIPOLAR=a_bipolar, XNOR=xnor, USE_DSP=use_dsp, P=P, LEVELS=levels, TREE_REGS=tree_regs,
        GROUP=group, GCNT=gcnt, GTABS=gtabs, GINITS=ginits, PAIRS=pairs, NPAIR=len(gcnt), COMP=comp is not None,
        TERNARY=ternary,
        COMP_SV=comp_sv, POPS=pops, OUT_W=levels[-1]["w"],
        A_LANE=(f"$signed(act1[k*{a_bits} +: {a_bits}])" if a_signed else
                f"$signed({{1'b0, act1[k*{a_bits} +: {a_bits}]}})"), P0=levels[0]["w"],
        SG="signed " if p_lo < 0 else "",
        ACC_BITS=acc_bits, O_BITS=o_bits, HAS_BIAS=has_bias, NEED_IBUF=need_ibuf, IBUF_RAM_STYLE=ibuf_style,
        W_RAM_STYLE=w_style, W_ATTR=w_attr, W_SLICED=w_sliced, W_DP=w_dp, W_TABLES=w_tables, ROM_SV=rom_sv,
        FOLDED=fold_g > 0 or pair_fold, FT_SV=ft_sv,
        mem_files=list(mem_files), mem_paths=mem_paths, MEM_FLAT_DEFINE=MEM_FLAT_DEFINE,
        CFG=runtime_writable,
        PEW=clog2(pe), CFG_AW=clog2(pe) + max(clog2(wdepth), 1), W_EXT=w_ext, A_EXT=a_ext,
        MUL_X=mul_x, MUL_XW=mul_xw, MUL_Y=mul_y, MUL_YW=mul_yw, RQ=rq, RQ_MODE=requant.mode, RQ_LAT=rq["lat"],
        RQ_USES_IDX=rq_uses_idx, NEED_N=need_n, LAT=lat, OQ_DEPTH=oq_depth,
        OQ=dict(width=pe * o_bits, depth=oq_depth, aw=clog2(oq_depth), lat=lat, reserve="(issue && last_sf)",
                push="rq_valid", push_data="rq_dout", push_last="rq_last"),
    )
    if has_bias:
        b = np.broadcast_to(np.asarray(bias, dtype=np.int64), (mh,))
        ctx["BIAS_WORDS"] = pack_words(b.reshape(nf, pe), acc_bits)
    sv = render_template("mvu.sv.j2", **ctx)
    ports = [Port("clk", "input", 1), Port("rst", "input", 1)] + axis_ports("s_axis", "in", simd * a_bits)
    if runtime_writable:
        ports += [Port("cfg_we", "input", 1), Port("cfg_addr", "input", ctx["CFG_AW"]), Port("cfg_data", "input", ww)]
    ports += axis_ports("m_axis", "out", pe * o_bits)
    r = Rendered("mvu", name, sv, mem_files, ports,
                 [Stream("s_axis", "in", simd, a_bits), Stream("m_axis", "out", pe, o_bits)],
                 params, cycles_per_frame=nf * sf * num_pix)
    r.extra = dict(rq=rq, acc_range=(lo, hi), latency=lat + 1, w_ram_style=w_style, cfg_aw=ctx["CFG_AW"],
                   w_range=(w_lo, w_hi), a_range=(a_lo, a_hi), group=group, folded=fold_g > 0 or pair_fold,
                   waw=max(clog2(wdepth), 1), pew=clog2(pe))
    return r


def _group_inits(n: int, w_bits: int, a_bits: int, w_signed: bool, a_signed: bool, w_bipolar: bool,
                 a_bipolar: bool, xnor: bool, width: int) -> list[str]:
    """LUT6 INITs (one per sum bit) of the table {w lanes, a lanes} -> sum of the n lanes' products (XNOR: the
    number of agreeing lanes); index bit i < n*a_bits is activation bit i, then the weight bits (lane 0 lowest)."""
    from .compress import MAX_IN
    tot = _group_sums(n, w_bits, a_bits, w_signed, a_signed, w_bipolar, a_bipolar, xnor)
    assert len(tot) <= 1 << MAX_IN
    return [f"64'h{bit_column(tot, b):016x}" for b in range(width)]


def _group_sums(n: int, w_bits: int, a_bits: int, w_signed: bool, a_signed: bool, w_bipolar: bool,
                a_bipolar: bool, xnor: bool) -> np.ndarray:
    """Sum of the n lanes' products (XNOR: agreeing lanes) for every index {w lanes, a lanes}; activation bits
    first (lane 0 lowest), then the weight bits."""
    from .common import decode
    wb = 1 if w_bipolar else w_bits
    ab = 1 if a_bipolar else a_bits
    idx = np.arange(1 << (n * (wb + ab)), dtype=np.int64)
    total = np.zeros_like(idx)
    for s_ in range(n):
        a_raw = (idx >> (s_ * ab)) & ((1 << ab) - 1)
        w_raw = (idx >> (n * ab + s_ * wb)) & ((1 << wb) - 1)
        if xnor:
            total += (a_raw == w_raw)
        else:
            total += decode(w_raw, wb, w_signed, w_bipolar) * decode(a_raw, ab, a_signed, a_bipolar)
    return total


def _group_table(n: int, w_bits: int, a_bits: int, w_signed: bool, a_signed: bool, w_bipolar: bool,
                 a_bipolar: bool, xnor: bool, width: int) -> str:
    """Sized hex literal of the table {w lanes, a lanes} -> sum of the n lanes' products (XNOR: the number of
    agreeing lanes), entry i at bits [i*width +: width]; lane 0 at the LSBs of each operand slice."""
    total = _group_sums(n, w_bits, a_bits, w_signed, a_signed, w_bipolar, a_bipolar, xnor)
    val = 0
    for i, t in enumerate(total.tolist()):
        val |= (int(t) & ((1 << width) - 1)) << (i * width)
    return f"{len(total) * width}'h{val:x}"


def folded_tables(W: np.ndarray, *, pe: int, lanes: int, sf: int, wdepth: int, gcnt: list[int], width: int,
                  a_bits: int, a_signed: bool, a_bipolar: bool, xnor: bool) -> str:
    """Verilog of the weight-folded first stage (folded_group()): per PE p and group g, LUTs computing the
    group's `width`-bit sum (XNOR: agreeing lanes) from its activation bits act1[...] (lane 0 at I0) and the
    registered weight address wa1, into ft<p>[g*width +: width]; then ft_all = {ft<PE-1>, .., ft0}."""
    from .common import decode
    from .luts import bank, inits_for, specs_for
    k = clog2(wdepth)
    nd = 1 << k
    # Wp[p, d, s]: PE p's weight of lane s at word address d (words beyond the depth never occur: 0)
    Wp = np.zeros((pe, nd, lanes), dtype=np.int64)
    for d in range(wdepth):
        Wp[:, d, :] = W[(d // sf) * pe:(d // sf) * pe + pe, (d % sf) * lanes:(d % sf + 1) * lanes]
    a_val = decode(np.arange(1 << a_bits), a_bits, a_signed, a_bipolar)
    mask = (1 << width) - 1
    G = gcnt[0]
    nfull = sum(1 for n in gcnt if n == G)
    lines = []
    for p in range(pe):
        lines.append(f"  wire [{len(gcnt) * width - 1}:0] ft{p};")
    runs = [(0, nfull, G)] + ([(nfull, 1, gcnt[-1])] if len(gcnt) > nfull else [])
    for g0, count, n in runs:
        m = n * a_bits + k
        x = np.arange(1 << m)
        d = x >> (n * a_bits)
        ins = [f"act1[g*{G * a_bits} + {c}]" for c in range(n * a_bits)] + [f"wa1[{j}]" for j in range(k)]
        for p in range(pe):
            inits = []
            for g in range(g0, g0 + count):
                tot = np.zeros(len(x), dtype=np.int64)
                for i in range(n):
                    a = a_val[(x >> (i * a_bits)) & ((1 << a_bits) - 1)]
                    w = Wp[p, d, g * G + i]
                    tot += (w == a) if xnor else w * a
                tot[d >= wdepth] = 0
                inits.append(inits_for([int(v) & mask for v in tot], m, width))
            specs = specs_for(ins, width, f"ft{p}[g*{width} + {{b}}]")
            lines.append(f"  // PE {p}: groups {g0}..{g0 + count - 1} of {n} lane(s)")
            lines.append(bank(f"ft{p}", g0, inits, specs))
    lines.append(f"  wire [{pe * len(gcnt) * width - 1}:0] ft_all = "
                 f"{{{', '.join(f'ft{p}' for p in reversed(range(pe)))}}};")
    return "\n".join(lines)


def folded_pair_tables(W: np.ndarray, *, pe: int, lanes: int, sf: int, wdepth: int, gcnt: list[int],
                       width: int) -> str:
    """Verilog of the weight-folded lane-pair select (pair_lanes mode): bit j of PE p's pair g is
    (w0 == w1 ? psum : pdif)[g][j] ^ (w0 == -1), a function of psum[g][j], pdif[g][j] and the weight address
    wa1 (at most 3 bits): PEs p and p + 1 share one LUT6_2 per bit, into ft<p>[g*width +: width]."""
    from .luts import LutSpec, bank
    k = clog2(wdepth)
    Wp = np.zeros((pe, 1 << k, lanes), dtype=np.int64)
    for d in range(wdepth):
        Wp[:, d, :] = W[(d // sf) * pe:(d // sf) * pe + pe, (d % sf) * lanes:(d % sf + 1) * lanes]
    ng = len(gcnt)
    npair = sum(1 for n in gcnt if n == 2)
    # flat copies of the shared sums and differences (Yosys keeps an unpacked array as a memory, whose bits a
    # primitive's pin cannot read)
    lines = [f"  wire [{ng * width - 1}:0] psum_f;"]
    if npair < ng:
        lines.append("  /* verilator lint_off UNUSEDSIGNAL */  // the last, single lane has no difference")
    lines.append(f"  wire [{ng * width - 1}:0] pdif_f;")
    if npair < ng:
        lines.append("  /* verilator lint_on UNUSEDSIGNAL */")
    lines += [f"  for (genvar i = 0; i < {ng}; i++) begin : g_pflat",
              f"    assign psum_f[i*{width} +: {width}] = psum[i];",
              f"    assign pdif_f[i*{width} +: {width}] = pdif[i];",
              "  end"]
    lines += [f"  wire [{ng * width - 1}:0] ft{p};" for p in range(pe)]

    def table(p: int, g: int, single: bool) -> int:  # 32 entries: x = {addr, (pdif,) psum}
        t = 0
        for x in range(32):
            s_, dbit = x & 1, (x >> 1) & 1
            addr = x >> (1 if single else 2)
            if addr >= wdepth:
                continue
            w0 = Wp[p, addr, 2 * g]
            if single:
                v = s_ ^ int(w0 == -1)
            else:
                v = (s_ if w0 == Wp[p, addr, 2 * g + 1] else dbit) ^ int(w0 == -1)
            t |= v << x
        return t
    addr = [f"wa1[{i}]" for i in range(k)]
    for p0 in range(0, pe, 2):
        ps = [p for p in (p0, p0 + 1) if p < pe]
        for g0, count, single in [(0, npair, False)] + ([(npair, 1, True)] if len(gcnt) > npair else []):
            if not count:
                continue
            ins = ([f"psum_f[g*{width} + {{j}}]"] if single else
                   [f"psum_f[g*{width} + {{j}}]", f"pdif_f[g*{width} + {{j}}]"]) + addr
            specs = [LutSpec([i.format(j=j) for i in ins], [f"ft{p}[g*{width} + {j}]" for p in ps])
                     for j in range(width)]
            inits = []
            for g in range(g0, g0 + count):
                t = [table(p, g, single) for p in ps]
                word = t[0] | (t[1] << 32) if len(ps) == 2 else t[0] | (t[0] << 32)
                inits.append([word] * width)
            lines.append(f"  // PEs {', '.join(map(str, ps))}: lane pairs {g0}..{g0 + count - 1}"
                         f"{' (the last, single lane)' if single else ''}")
            lines.append(bank(f"fp{p0}_{int(single)}", g0, inits, specs))
    lines.append(f"  wire [{pe * len(gcnt) * width - 1}:0] ft_all = "
                 f"{{{', '.join(f'ft{p}' for p in reversed(range(pe)))}}};")
    return "\n".join(lines)


def packed_rom(word_lists: list[list[int]], ww: int, wdepth: int) -> str:
    """Verilog body of the weight ROM (all PEs, up to 32 words): every distinct column (bit b of PE p's words)
    is one 5-input function of the address, two per LUT6_2; constant columns need none. Output `q` registered."""
    from .luts import LutSpec, bank
    k = clog2(wdepth)
    cols, index, bits = [], {}, []
    for words in word_lists:
        for b in range(ww):
            col = bit_column(words, b)
            if col == 0 or col == (1 << wdepth) - 1:
                bits.append("1'b1" if col else "1'b0")
                continue
            if col not in index:
                index[col] = len(cols)
                cols.append(col)
            bits.append(f"col[{index[col]}]")
    lines = []
    if cols:
        if len(cols) % 2:
            cols.append(0)
        npair = len(cols) // 2
        # O5 = INIT[31:0], O6 = INIT[63:32]; the inputs above the address are tied to 0
        inits = [[cols[2 * i] | (cols[2 * i + 1] << 32)] for i in range(npair)]
        spec = LutSpec([f"addr[{j}]" for j in range(k)], ["col[2*g]", "col[2*g + 1]"])
        spare = len(index) % 2 == 1
        if spare:
            lines.append("  /* verilator lint_off UNUSEDSIGNAL */  // an odd count leaves one LUT6_2 output spare")
        lines.append(f"  wire [{2 * npair - 1}:0] col;  // the distinct non-constant columns")
        if spare:
            lines.append("  /* verilator lint_on UNUSEDSIGNAL */")
        lines.append(bank("wt", 0, inits, [spec]))
    words = ",\n      ".join(", ".join(reversed(bits[i:i + 8])) for i in reversed(range(0, len(bits), 8)))
    lines.append("  always_ff @(posedge clk)")
    lines.append(f"    if (en) q <= {{\n      {words}}};")
    return "\n".join(lines)


def mvu_weight_words(weights: np.ndarray, *, pe: int, simd: int, w_bits: int, w_bipolar: bool = False,
                     depthwise: bool = False) -> list[tuple[int, int]]:
    """(cfg_addr, cfg_data) pairs that write `weights` through the run-time configuration port."""
    W = np.asarray(weights, dtype=np.int64)
    mh, mw = W.shape
    lanes = 1 if depthwise else simd
    nf, sf = mh // pe, mw // lanes
    waw = max(clog2(nf * sf), 1)
    enc = encode(W, w_bits, w_bipolar)
    out = []
    for p in range(pe):
        for n in range(nf):
            for s in range(sf):
                word = pack_words(enc[n * pe + p, s * lanes:(s + 1) * lanes][None, :], w_bits)[0]
                out.append(((p << waw) | (n * sf + s), word))
    return out
