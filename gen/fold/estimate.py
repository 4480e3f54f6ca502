"""Resource estimate of a folded hardware graph: per node (kernel + its input FIFOs and width converters), the
shell, and the total against the board. Uses the calibrated kernel model of gen/fold/resources.py."""

from __future__ import annotations

import math

import numpy as np

from . import resources as R

QUANTITIES = ("lut", "ff", "bram18", "dsp")
# the AXI shell (AXI-Stream in/out adapters' control, AXI-Lite registers, frame checks): a fixed estimate
SHELL = dict(lut=450.0, ff=600.0, bram18=0, dsp=0)


def board_capacity(board: dict) -> dict:
    r = board["resources"]
    return dict(lut=float(r["lut"]), ff=float(r["ff"]), bram18=float(2 * r["bram36"]), dsp=float(r["dsp"]))


def _sbits(lo: int, hi: int) -> int:
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def _requant_info(design, node) -> dict:
    if design is None or not node.requant:
        return dict(RQ="none", NTHR=0)
    layer = next((cand for cand in design.layers if cand.name == node.requant), None)
    if layer is None:
        return dict(RQ="none", NTHR=0)
    if getattr(layer, "mult", None) is not None and node.output is not None and node.output.bits >= 5:
        return dict(RQ="multshift", NTHR=0)
    t = np.asarray(layer.thresholds)
    return dict(RQ="thresholds", NTHR=int(t.shape[1]) if t.ndim == 2 else int(t.size))


def node_params(node, pe: int, simd: int, design=None, runtime_weights: bool = False,
                ram_style: str = "auto") -> dict:
    """The resource model's parameter dict of a gen.hw HwNode at folding (pe, simd); `ram_style`: an mvu's
    weight memory (as the fold chose it)."""
    p, k = dict(node.params), node.kind
    x = node.inputs[0] if node.inputs else None
    out = node.output
    if k == "mvu":
        wb, ab = int(p["W_BITS"]), int(p["A_BITS"])
        wbip = wb == 1 and p.get("W_MIN", 0) == -1 and p.get("W_MAX", 0) == 1
        xnor = bool(wbip and x is not None and x.bipolar)
        wmax = max(abs(int(p.get("W_MIN", -(1 << (wb - 1))))), abs(int(p.get("W_MAX", 1 << (wb - 1)))), 1)
        amax = max(abs(x.lo), abs(x.hi), 1) if x is not None and (x.lo or x.hi) else (1 << ab) - 1
        bound = int(p["MW"]) * wmax * amax
        rq = _requant_info(design, node)
        q = dict(MW=p["MW"], MH=p["MH"], PE=pe, SIMD=pe if p.get("DEPTHWISE") else simd, W_BITS=wb, A_BITS=ab,
                 NUM_PIX=p.get("NUM_PIX", 1), DEPTHWISE=bool(p.get("DEPTHWISE")), XNOR=xnor,
                 USE_DSP=(not wbip) and not (x is not None and x.bipolar) and wb >= 5 and ab >= 5,
                 ACC_BITS=_sbits(-bound, bound), RUNTIME=runtime_weights, O_BITS=out.bits if out else None,
                 W_MIN=int(p.get("W_MIN", 0)), W_MAX=int(p.get("W_MAX", 0)), A_LO=int(p.get("A_LO", 0)),
                 A_HI=int(p.get("A_HI", 0)), A_SIGNED=bool(x is not None and x.signed), RAM_STYLE=ram_style,
                 **rq)
        q["RQ_VB"] = q["ACC_BITS"] + 1
        return q
    if k == "swg":
        pads = tuple(p.get("PADS", (0, 0, 0, 0)))
        return dict(IFM_CH=p["IFM_CH"], SIMD=simd, A_BITS=x.bits, IFM_DIM_H=p["IFM_DIM_H"], IFM_DIM_W=p["IFM_DIM_W"],
                    K_H=p["K_H"], K_W=p["K_W"], STRIDE_H=p["STRIDE_H"], STRIDE_W=p["STRIDE_W"], PAD_TOP=pads[0],
                    PAD_LEFT=pads[1], PAD_BOTTOM=pads[2], PAD_RIGHT=pads[3], OFM_DIM_H=p["OFM_DIM_H"],
                    OFM_DIM_W=p["OFM_DIM_W"], DEPTHWISE=p.get("DEPTHWISE", 0))
    if k == "pool":
        glob = bool(p.get("GLOBAL"))
        red = p["IFM_DIM_H"] * p["IFM_DIM_W"] if glob else p["K_H"] * p["K_W"]
        ab = x.bits
        if p.get("MODE") == "max":
            acc = ab + (0 if x.signed else 1)
        else:
            acc = _sbits(red * min(x.lo, 0), red * max(x.hi, 1))
        return dict(CHANNELS=p["CHANNELS"], SIMD=simd, A_BITS=ab, ACC_BITS=acc, O_BITS=out.bits, REDUCE=red,
                    NUM_PIX=p.get("NUM_PIX", 1), GLOBAL=int(glob), **_requant_info(design, node))
    if k == "add":
        ab, bb = int(p["A_BITS"]), int(p["B_BITS"])
        return dict(CHANNELS=p["CHANNELS"], SIMD=simd, A_BITS=ab, B_BITS=bb, ACC_BITS=max(ab, bb) + 4,
                    O_BITS=out.bits, **_requant_info(design, node))
    if k == "concat":
        return dict(CH_A=p["CH_A"], CH_B=p["CH_B"], SIMD=simd, A_BITS=p["A_BITS"], NUM_PIX=p["NUM_PIX"])
    if k == "upsample":
        return dict(IFM_CH=p["IFM_CH"], SIMD=simd, A_BITS=p["A_BITS"], IFM_DIM_W=p["IFM_DIM_W"])
    if k == "lut_act":
        return dict(SIMD=simd, A_BITS=p["A_BITS"], O_BITS=p["O_BITS"])
    if k == "requant":
        return dict(CHANNELS=p["CHANNELS"], SIMD=simd, IN_BITS=p["IN_BITS"], O_BITS=p["O_BITS"],
                    **_requant_info(design, node))
    if k == "label_select":
        return dict(N_ELEMS=p["N_ELEMS"], SIMD=simd, A_BITS=p["A_BITS"], TOPK=p.get("TOPK", 1))
    return dict(p, SIMD=simd, PE=pe)


# the input / output adapters (DMA words <-> codes): small fixed estimates scaled by the DMA width
def _adapter(node, simd: int) -> dict:
    dma = int(node.params.get("DMA_BITS", 64))
    if node.kind == "input":
        return dict(lut=60.0 + 1.5 * dma + 2.0 * simd * node.output.bits, ff=40.0 + 2.0 * dma, bram18=0, dsp=0)
    return dict(lut=80.0 + 1.5 * dma + 4.0 * simd * 32, ff=60.0 + 1.5 * dma + simd * 32, bram18=0, dsp=0)


def node_estimate(node, pe: int, simd: int, design=None, runtime_weights: bool = False,
                  ram_style: str = "auto") -> dict:
    if node.kind in ("input", "output"):
        return _adapter(node, simd)
    return R.estimate(node.kind, node_params(node, pe, simd, design, runtime_weights, ram_style))


def dwc_estimate(in_lanes: int, out_lanes: int, bits: int, elems: int) -> dict:
    if in_lanes == out_lanes:
        return dict(lut=0.0, ff=0.0, bram18=0, dsp=0)
    n = elems - elems % math.lcm(in_lanes, out_lanes) or math.lcm(in_lanes, out_lanes)
    return R.estimate("dwc", dict(IN_SIMD=in_lanes, OUT_SIMD=out_lanes, A_BITS=bits, N_ELEMS=n))


def fifo_estimate(depth: int, width: int) -> dict:
    if depth <= 0:
        return dict(lut=0.0, ff=0.0, bram18=0, dsp=0)
    return R.estimate("fifo", dict(DEPTH=depth, WIDTH=width))


def add(a: dict, b: dict) -> dict:
    return {q: a.get(q, 0) + b.get(q, 0) for q in QUANTITIES}


def graph_estimate(graph, folding: dict, design=None, fifo_depths: dict | None = None) -> dict:
    """{"nodes": {name: {kernel, dwc, fifo, total}}, "shell": .., "total": ..}. FIFO depths from `folding`
    (per node "fifo": [depth per input]) unless given."""
    rt = bool(getattr(graph, "runtime_weights", False))
    nodes = {}
    total = dict(SHELL)
    for n in graph.nodes:
        pe, simd = graph.fold_of(folding, n.name)
        kern = node_estimate(n, pe, simd, design, rt, (folding.get(n.name) or {}).get("ram_style", "auto"))
        dwc = dict(lut=0.0, ff=0.0, bram18=0, dsp=0)
        fifo = dict(lut=0.0, ff=0.0, bram18=0, dsp=0)
        depths = (fifo_depths or {}).get(n.name) or (folding.get(n.name) or {}).get("fifo") or []
        in_l = n.in_lanes(pe, simd)
        for i, s in enumerate(n.inputs):
            prod = graph.producer(s.tensor)
            ppe, psimd = graph.fold_of(folding, prod.name)
            ol = prod.out_lanes(ppe, psimd)
            dwc = add(dwc, dwc_estimate(ol, in_l[i], s.bits, s.elems))
            if i < len(depths):
                fifo = add(fifo, fifo_estimate(int(depths[i]), in_l[i] * s.bits))
        tot = add(add(kern, dwc), fifo)
        nodes[n.name] = dict(kernel=kern, dwc=dwc, fifo=fifo, total=tot)
        total = add(total, tot)
    return dict(nodes=nodes, shell=dict(SHELL), total=total)
