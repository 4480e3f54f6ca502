"""The hardware graph: a lowered Design mapped to kernel instances (one `HwNode` per instance).

    graph = build_hw_graph(design, dma_bits=64)
    folding = graph.default_folding()              # {node name: {"pe": .., "simd": ..}}
    graph.check_folding(folding)                   # divisibility and ties, raises GenError
    graph.bottleneck(folding)                      # (node name, cycles per frame)

Mapping (IR layer -> kernel instances):
  Input                      -> `input`   (DMA beats of bytes -> input codes, frame-length checks)
  Conv (+ Requant)           -> `swg` + `mvu` (requant fused into the mvu); a 1x1/stride-1/unpadded conv needs no swg
  Conv depthwise (+ Requant) -> `swg` (depthwise order) + `mvu` (depthwise mode, SIMD == PE)
  Conv grouped               -> as a dense conv with a block-diagonal weight (exact, more MACs)
  Dense (+ Requant)          -> `mvu`
  MaxPool                    -> `swg` (depthwise order) + `pool` (max); AvgPool (+ Requant) -> `swg` + `pool` (sum)
  global AvgPool (+ Requant) -> `pool` (global)
  Add (+ Requant)            -> `add`;  Concat -> `concat`;  Upsample -> `upsample`
  Requant (standalone)       -> `lut_act` (per-tensor function of a <= 8-bit input) or `requant`
  LabelSelect (top-1)        -> `label_select`, whose class index joins the scores in `output`
                                (scores + class -> output frames of gen/shell/regmap.py); a classifier whose
                                scores are (1, 1, C) without one gets a `label_select` on the scores
  encoding changes           -> `lut_act` "recode" nodes (e.g. bipolar or narrower codes entering a concat)

Folding is kept apart from the graph: a plain dict {node name: {"pe": int, "simd": int}} (design.json
`folding`). Optional per node: "fifo": [depth per input stream] (FIFO in front of each input; the emitter
picks safe depths where absent). `pe` is the number of output channels per cycle of an mvu (1 elsewhere);
`simd` the number of elements per input beat. Some nodes have their `simd` tied to another node's (`tie`):
a depthwise-order swg and its pool / depthwise mvu, a depthwise mvu's simd and its own pe.
Adjacent nodes whose lanes differ get a width converter (dwc) from the emitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import GenError
from .ir import layers as L
from .ir.design import Design

KINDS = ("input", "swg", "mvu", "pool", "add", "concat", "upsample", "requant", "lut_act", "label_select", "output")


def divisors(n: int) -> list[int]:
    n = int(n)
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass
class StreamInfo:
    """A stream between two nodes: `elems` elements per frame of `bits` bits, in `order`.

    order: "nhwc" (a plain tensor; `shape` = (H, W, C)), "win" (swg windows in (KH, KW, C) order per output
    pixel) or "win_dw" (swg windows in depthwise order (C/SIMD, KH, KW, SIMD)); for windows `shape` is the
    (OH, OW, C) output grid and `window` the (KH, KW).
    """
    tensor: str
    shape: tuple[int, int, int]
    bits: int
    signed: bool
    bipolar: bool = False
    order: str = "nhwc"
    window: tuple[int, int] = (1, 1)
    lo: int = 0
    hi: int = 0

    @property
    def channels(self) -> int:
        return self.shape[2]

    @property
    def elems(self) -> int:
        h, w, c = self.shape
        return h * w * c * self.window[0] * self.window[1]

    def to_json(self) -> dict:
        return dict(tensor=self.tensor, shape=list(self.shape), bits=self.bits, signed=self.signed,
                    bipolar=self.bipolar, order=self.order, window=list(self.window), elems=self.elems)


@dataclass
class HwNode:
    """One kernel instance. `params` use the IR's / the kernels' names (IFM_CH, OFM_CH, K, STRIDE, MW, MH, ...)."""
    name: str
    kind: str
    layers: tuple[str, ...]                 # the IR layers this instance implements ("" for recode nodes)
    inputs: tuple[StreamInfo, ...]
    output: StreamInfo | None               # None for the output adapter
    params: dict = field(default_factory=dict)
    tie: str | None = None                  # this node's simd must equal node `tie`'s simd
    requant: str | None = None              # name of the fused IR Requant layer, if any
    simd_span: int | None = None            # input adapter: SIMD may divide this many elements (default: channels)

    # -- folding ------------------------------------------------------------------------------------------------
    def legal_pe(self) -> list[int]:
        if self.kind == "mvu":
            return divisors(self.params["MH"])
        return [1]

    def legal_simd(self, pe: int | None = None) -> list[int]:
        p = self.params
        if self.kind == "mvu":
            if p["DEPTHWISE"]:
                return [pe] if pe is not None else divisors(p["MH"])
            return divisors(p["MW"])
        if self.kind == "concat":
            return divisors(math.gcd(p["CH_A"], p["CH_B"]))
        if self.kind == "output":
            return divisors(self.inputs[0].channels)
        if self.kind == "label_select":
            return divisors(self.inputs[0].channels)
        if self.kind == "swg":
            legal = divisors(self.inputs[0].channels)
            if self.wide_simd() is not None:
                legal = legal + [self.wide_simd()]
            return legal
        if self.kind == "input":
            # divisors of the channel count; when every consumer reads the frame as one vector (a Dense mvu), also
            # the divisors of the element count up to one DMA beat of codes
            legal = set(divisors(self.output.channels))
            if self.simd_span is not None:
                legal |= {d for d in divisors(self.simd_span) if d <= p["DMA_BYTES"]}
            return sorted(legal)
        return divisors(self.inputs[0].channels)

    def wide_simd(self) -> int | None:
        """An swg's window-parallel SIMD (a whole K_H x K_W x C window per beat, gen/rtl/swg.py), if it has one."""
        p = self.params
        if self.kind != "swg" or p["DEPTHWISE"] or self.tie is not None or p["K_H"] * p["K_W"] == 1:
            return None
        return p["K_H"] * p["K_W"] * p["IFM_CH"]

    def wide_geometry(self) -> dict:
        """The padded image an swg walks in window-parallel mode (gen/rtl/swg.py wide_geometry)."""
        from .rtl.swg import wide_geometry
        p = self.params
        return wide_geometry((p["IFM_DIM_H"], p["IFM_DIM_W"]), (p["K_H"], p["K_W"]), (p["STRIDE_H"], p["STRIDE_W"]),
                             p["PADS"])

    def in_lanes(self, pe: int = 1, simd: int = 1) -> list[int]:
        if self.kind == "output":  # scores at SIMD lanes, the class index as one lane
            return [simd] + [1] * (len(self.inputs) - 1)
        if self.kind == "swg" and simd == self.wide_simd():  # one pixel in per beat
            return [self.params["IFM_CH"]]
        return [simd] * len(self.inputs)

    def out_lanes(self, pe: int = 1, simd: int = 1) -> int:
        if self.kind == "mvu":
            return pe
        if self.kind == "label_select":
            return 1
        return simd

    def cycles(self, pe: int = 1, simd: int = 1) -> int:
        """Analytic cycles per frame without back-pressure (the kernels' own formulas, gen/rtl)."""
        p, k = self.params, self.kind
        if k == "input":
            n = p["N_ELEMS"]
            return max(-(-n // p["DMA_BYTES"]), n // simd)
        if k == "swg" and simd == self.wide_simd():  # one padded-image position per cycle
            g = self.wide_geometry()
            return g["HS"] * g["WS"]
        if k == "swg":
            cf = p["IFM_CH"] // simd
            return max(p["IFM_DIM_H"] * p["IFM_DIM_W"] * cf, p["OFM_DIM_H"] * p["OFM_DIM_W"] * p["K_H"] * p["K_W"] * cf)
        if k == "mvu":
            sf = p["MW"] if p["DEPTHWISE"] else p["MW"] // simd
            return (p["MH"] // pe) * sf * p["NUM_PIX"]
        if k == "pool":
            cf = p["CHANNELS"] // simd
            return (p["IFM_DIM_H"] * p["IFM_DIM_W"] * cf) if p["GLOBAL"] else p["NUM_PIX"] * cf * p["K_H"] * p["K_W"]
        if k == "concat":
            return p["NUM_PIX"] * (p["CH_A"] + p["CH_B"]) // simd
        if k == "upsample":
            return self.output.elems // simd
        if k in ("add", "requant", "lut_act"):
            return self.inputs[0].elems // simd
        if k == "label_select":
            return max(p["N_ELEMS"], p["TOPK"] + 1)  # one element per cycle
        if k == "output":
            ns, words = p["NUM_SCORES"], p["NUM_SCORES"] + max(p["NUM_CLASSES"], 1) - 1
            return max(ns // simd, 1 + -(-words * 4 // p["DMA_BYTES"]))  # receive and send overlap (2 buffers)
        raise ValueError(k)

    def to_json(self) -> dict:
        return dict(name=self.name, kind=self.kind, layers=list(self.layers), inputs=[s.to_json() for s in self.inputs],
                    output=self.output.to_json() if self.output else None,
                    params={k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
                    tie=self.tie, requant=self.requant, legal_pe=self.legal_pe(), legal_simd=self.legal_simd())


@dataclass
class HwGraph:
    name: str
    nodes: list[HwNode]
    dma_bits: int = 64
    runtime_weights: bool = False

    def node(self, name: str) -> HwNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def producer(self, tensor: str) -> HwNode:
        for n in self.nodes:
            if n.output is not None and n.output.tensor == tensor:
                return n
        raise KeyError(tensor)

    def consumers(self, tensor: str) -> list[tuple[HwNode, int]]:
        return [(n, i) for n in self.nodes for i, s in enumerate(n.inputs) if s.tensor == tensor]

    def edges(self) -> list[tuple[HwNode, HwNode, int]]:
        """(producer, consumer, consumer input index) for every stream."""
        return [(self.producer(s.tensor), n, i) for n in self.nodes for i, s in enumerate(n.inputs)]

    # -- folding ------------------------------------------------------------------------------------------------
    def default_folding(self) -> dict:
        """The smallest legal folding (PE = SIMD = 1): a trivial, always-valid starting point."""
        return {n.name: {"pe": 1, "simd": 1} for n in self.nodes}

    def fold_of(self, folding: dict, name: str) -> tuple[int, int]:
        f = (folding or {}).get(name) or {}
        return int(f.get("pe", 1)), int(f.get("simd", 1))

    def check_folding(self, folding: dict) -> None:
        for n in self.nodes:
            pe, simd = self.fold_of(folding, n.name)
            if pe not in n.legal_pe():
                raise GenError(f"folding of {n.name} ({n.kind}): PE={pe} is not one of {n.legal_pe()}")
            if simd not in n.legal_simd(pe):
                raise GenError(f"folding of {n.name} ({n.kind}): SIMD={simd} is not one of {n.legal_simd(pe)}")
            if n.tie is not None and simd != self.fold_of(folding, n.tie)[1]:
                raise GenError(f"folding of {n.name}: SIMD={simd} must equal the SIMD of {n.tie}")

    def cycles(self, folding: dict) -> dict[str, int]:
        return {n.name: n.cycles(*self.fold_of(folding, n.name)) for n in self.nodes}

    def bottleneck(self, folding: dict) -> tuple[str, int]:
        c = self.cycles(folding)
        name = max(c, key=lambda k: c[k])
        return name, c[name]

    def to_json(self) -> dict:
        return dict(name=self.name, dma_bits=self.dma_bits, runtime_weights=self.runtime_weights,
                    nodes=[n.to_json() for n in self.nodes])


# ------------------------------------------------------------------------------------------------ building

def _stream(design: Design, tensor: str) -> StreamInfo:
    t = design.tensors[tensor]
    return StreamInfo(tensor, tuple(t.shape), t.bits, t.signed, t.bipolar, lo=int(t.lo), hi=int(t.hi))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _sole_consumer(design: Design, tensor: str):
    cons = design.consumers(tensor)
    return cons[0] if len(cons) == 1 and tensor != design.scores and tensor != design.output else None


def conv_matrix(layer: L.Conv, ifm_ch: int) -> tuple[np.ndarray, bool]:
    """(weight (OFM_CH, KH, KW, IC) for the mvu, depthwise). Grouped convs become block-diagonal dense ones."""
    w = np.asarray(layer.weight, dtype=np.int64)
    if layer.groups == 1:
        return w, False
    if layer.depthwise:
        return w, True
    oc, kh, kw, icg = w.shape
    g = layer.groups
    full = np.zeros((oc, kh, kw, ifm_ch), dtype=np.int64)
    ocg = oc // g
    for i in range(g):
        full[i * ocg:(i + 1) * ocg, :, :, i * icg:(i + 1) * icg] = w[i * ocg:(i + 1) * ocg]
    return full, False


def _one_increasing_map(design: Design) -> bool:
    """Do the scores dequantise through one increasing affine map shared by all classes?"""
    from .frontend.values import affine_of
    from .ir.elementwise import op_from_json

    ops = [op_from_json(o) if isinstance(o, dict) else o for o in design.output_boundary.get("chain", [])]
    ab = affine_of(ops, design.tensors[design.scores].channels)
    return ab is not None and len(set(ab[0])) == 1 and len(set(ab[1])) == 1 and ab[0][0] > 0


def _split_requant(design: Design, cat: L.Concat, rq: L.Requant | None) -> L.Requant | None:
    """The threshold requantiser after `cat` when it is one per-tensor function on each input's channels (and
    not one for all: that stays a single lookup table after the concat), every input at most 8 bits."""
    if rq is None or rq.thresholds is None or _per_tensor(rq):
        return None
    t = np.asarray(rq.thresholds)
    neg = np.asarray(rq.negate, dtype=bool).reshape(-1)
    c0 = 0
    for name in cat.inputs:
        ti = design.tensors[name]
        rows, n = t[c0:c0 + ti.channels], neg[c0:c0 + ti.channels]
        if ti.bits > 8 or not (np.all(rows == rows[:1]) and np.all(n == n[:1])):
            return None
        c0 += ti.channels
    return rq


def _per_tensor(rq: L.Requant) -> bool:
    t = np.asarray(rq.thresholds)
    neg = np.asarray(rq.negate, dtype=bool).reshape(-1)
    return (t.shape[0] == 1 or bool(np.all(t == t[:1]))) and bool(np.all(neg == neg[:1]))


def build_hw_graph(design: Design, dma_bits: int = 64, runtime_weights: bool = False) -> HwGraph:
    """Map the lowered `design` to kernel instances. Raises GenError for what the hardware cannot do."""
    nodes: list[HwNode] = []
    fused: set[str] = set()  # Requant layers absorbed into their producer's kernel
    dma_bytes = dma_bits // 8

    def fusable_requant(tensor: str) -> L.Requant | None:
        c = _sole_consumer(design, tensor)
        return c if isinstance(c, L.Requant) else None

    def out_of(layer: L.Layer, rq: L.Requant | None) -> StreamInfo:
        return _stream(design, rq.output if rq is not None else layer.output)

    def recode(src: StreamInfo, to: StreamInfo, name: str) -> StreamInfo:
        """A lut_act node re-encoding `src` codes in `to`'s encoding (same values)."""
        if (src.bits, src.signed, src.bipolar) == (to.bits, to.signed, to.bipolar):
            return src
        if src.bits > 8:
            raise GenError(f"{name}: cannot re-encode a {src.bits}-bit stream (at most 8 bits)")
        out = StreamInfo(f"{name}__recoded", src.shape, to.bits, to.signed, to.bipolar, lo=src.lo, hi=src.hi)
        nodes.append(HwNode(name, "lut_act", (), (src,), out, dict(CHANNELS=src.channels, RECODE=1,
                                                                    A_BITS=src.bits, O_BITS=to.bits)))
        return out

    for layer in design.layers:
        if layer.name in fused:
            continue
        if isinstance(layer, L.Input):
            s = _stream(design, layer.output)
            if s.bits > 8:
                raise GenError(f"input {layer.output}: {s.bits}-bit codes do not fit the one-byte input format")
            nodes.append(HwNode("input", "input", (layer.name,), (), s,
                                dict(N_ELEMS=s.elems, A_BITS=s.bits, DMA_BITS=dma_bits, DMA_BYTES=dma_bytes,
                                     IFM_CH=s.channels)))
            continue
        ins = [_stream(design, t) for t in layer.inputs]
        if isinstance(layer, (L.Conv, L.Dense)):
            rq = fusable_requant(layer.output)
            if rq is not None:
                fused.add(rq.name)
            x = ins[0]
            if isinstance(layer, L.Conv) and any(layer.pads) and np.unique(layer.pad_value).size > 1:
                raise GenError(f"{layer.name}: padding with a different zero point per input channel (the "
                               "sliding-window unit pads with one code)")
            if isinstance(layer, L.Dense):
                mat = np.asarray(layer.weight)
                params = dict(IFM_CH=x.elems, OFM_CH=mat.shape[0], MW=mat.shape[1], MH=mat.shape[0], NUM_PIX=1,
                              DEPTHWISE=0, K=1, STRIDE=1)
                src = x
            else:
                if tuple(layer.dilation) != (1, 1):
                    raise GenError(f"{layer.name}: dilated convolution is not supported by the hardware kernels")
                ih, iw, ic = x.shape
                w, dw = conv_matrix(layer, ic)
                oc, kh, kw, _ = w.shape
                sh, sw = _pair(layer.stride)
                pads = tuple(int(p) for p in layer.pads)
                oh, ow, _ = design.tensors[layer.output].shape
                params = dict(IFM_CH=ic, OFM_CH=oc, IFM_DIM_H=ih, IFM_DIM_W=iw, K_H=kh, K_W=kw, STRIDE_H=sh,
                              STRIDE_W=sw, OFM_DIM_H=oh, OFM_DIM_W=ow, NUM_PIX=oh * ow, DEPTHWISE=int(dw),
                              MH=oc, MW=kh * kw * (1 if dw else ic), K=kh, STRIDE=sh, GROUPS=int(layer.groups))
                plain = (kh, kw, sh, sw) == (1, 1, 1, 1) and not any(pads) and not dw
                if plain:
                    src = x
                else:
                    win = StreamInfo(f"{layer.name}__win", (oh, ow, ic), x.bits, x.signed, x.bipolar,
                                     order="win_dw" if dw else "win", window=(kh, kw), lo=x.lo, hi=x.hi)
                    nodes.append(HwNode(f"{layer.name}_swg", "swg", (layer.name,), (x,), win,
                                        dict(IFM_CH=ic, IFM_DIM_H=ih, IFM_DIM_W=iw, K_H=kh, K_W=kw, STRIDE_H=sh,
                                             STRIDE_W=sw, PADS=pads, PAD_VALUE=int(np.unique(layer.pad_value)[0]),
                                             OFM_DIM_H=oh, OFM_DIM_W=ow, DEPTHWISE=int(dw)),
                                        tie=layer.name if dw else None))
                    src = win
            wmat = np.asarray(layer.weight)
            a_lo, a_hi = int(x.lo), int(x.hi)
            if isinstance(layer, L.Conv) and any(layer.pads):  # the window also carries the padding value
                pv = int(np.unique(layer.pad_value)[0])
                a_lo, a_hi = min(a_lo, pv), max(a_hi, pv)
            params.update(W_BITS=_wbits(wmat)[0], A_BITS=x.bits, W_MIN=int(wmat.min()), W_MAX=int(wmat.max()),
                          A_LO=a_lo, A_HI=a_hi)
            nodes.append(HwNode(layer.name, "mvu", (layer.name,) + ((rq.name,) if rq else ()), (src,),
                                out_of(layer, rq), params, requant=rq.name if rq else None))
            continue
        if isinstance(layer, (L.MaxPool, L.AvgPool)):
            x = ins[0]
            ih, iw, c = x.shape
            kh, kw = _pair(layer.kernel)
            sh, sw = _pair(layer.stride)
            pads = tuple(int(p) for p in layer.pads)
            oh, ow, _ = design.tensors[layer.output].shape
            is_max = isinstance(layer, L.MaxPool)
            rq = None if is_max else fusable_requant(layer.output)
            if rq is not None:
                fused.add(rq.name)
            if x.bipolar and not is_max:
                x = recode(x, StreamInfo(x.tensor, x.shape, 2, True), f"{layer.name}_recode")
            glob = (kh, kw) == (ih, iw) and not any(pads) and (oh, ow) == (1, 1)
            params = dict(CHANNELS=c, IFM_DIM_H=ih, IFM_DIM_W=iw, K_H=kh, K_W=kw, STRIDE_H=sh, STRIDE_W=sw,
                          OFM_DIM_H=oh, OFM_DIM_W=ow, NUM_PIX=oh * ow, GLOBAL=int(glob),
                          MODE="max" if is_max else "sum", A_BITS=x.bits)
            src = x
            if not glob:
                pv = x.lo if is_max else int(layer.pad_value)
                win = StreamInfo(f"{layer.name}__win", (oh, ow, c), x.bits, x.signed, x.bipolar, order="win_dw",
                                 window=(kh, kw), lo=x.lo, hi=x.hi)
                nodes.append(HwNode(f"{layer.name}_swg", "swg", (layer.name,), (x,), win,
                                    dict(IFM_CH=c, IFM_DIM_H=ih, IFM_DIM_W=iw, K_H=kh, K_W=kw, STRIDE_H=sh,
                                         STRIDE_W=sw, PADS=pads, PAD_VALUE=int(pv), OFM_DIM_H=oh, OFM_DIM_W=ow,
                                         DEPTHWISE=1), tie=layer.name))
                src = win
            nodes.append(HwNode(layer.name, "pool", (layer.name,) + ((rq.name,) if rq else ()), (src,),
                                out_of(layer, rq), params, requant=rq.name if rq else None))
            continue
        if isinstance(layer, L.Add):
            rq = fusable_requant(layer.output)
            if rq is not None:
                fused.add(rq.name)
            xs = [recode(s, StreamInfo(s.tensor, s.shape, 2, True), f"{layer.name}_recode{i}") if s.bipolar else s
                  for i, s in enumerate(ins)]
            nodes.append(HwNode(layer.name, "add", (layer.name,) + ((rq.name,) if rq else ()), tuple(xs),
                                out_of(layer, rq), dict(CHANNELS=xs[0].channels, A_BITS=xs[0].bits,
                                                         B_BITS=xs[1].bits), requant=rq.name if rq else None))
            continue
        if isinstance(layer, L.Concat):
            rq = _split_requant(design, layer, fusable_requant(layer.output))
            out = _stream(design, rq.output if rq is not None else layer.output)
            if rq is not None:
                # the per-channel quantiser after the concat moves in front of it: one lookup table per input
                # (each input's channels share one threshold row), cheaper than recoding every input to a common
                # width and thresholding the concatenated stream per channel
                fused.add(rq.name)
                c0 = np.cumsum([0] + [s.channels for s in ins])
                xs = []
                for i, s in enumerate(ins):
                    xs.append(StreamInfo(f"{layer.name}__q{i}", s.shape, out.bits, out.signed, out.bipolar,
                                         lo=out.lo, hi=out.hi))
                    nodes.append(HwNode(f"{layer.name}_rq{i}", "lut_act", (rq.name,), (s,), xs[-1],
                                        dict(CHANNELS=s.channels, RECODE=0, A_BITS=s.bits, O_BITS=out.bits,
                                             CH0=int(c0[i])), requant=rq.name))
            else:
                # every input re-encoded in the output's encoding (widths and signedness may differ)
                xs = [recode(s, out, f"{layer.name}_recode{i}") for i, s in enumerate(ins)]
            # the kernel joins two streams: n inputs become a chain of n - 1 kernels, each appending one input
            h, w, _ = out.shape
            acc = xs[0]
            for i, b in enumerate(xs[1:], 1):
                last = i == len(xs) - 1
                o = out if last else StreamInfo(f"{layer.name}__part{i}", (h, w, acc.channels + b.channels),
                                                out.bits, out.signed, out.bipolar, lo=out.lo, hi=out.hi)
                nodes.append(HwNode(layer.name if last else f"{layer.name}_part{i}", "concat", (layer.name,),
                                    (acc, b), o, dict(CH_A=acc.channels, CH_B=b.channels, OFM_CH=o.channels,
                                                      NUM_PIX=h * w, A_BITS=out.bits)))
                acc = o
            continue
        if isinstance(layer, L.Upsample):
            x = ins[0]
            fh, fw = _pair(layer.factor)
            nodes.append(HwNode(layer.name, "upsample", (layer.name,), (x,), _stream(design, layer.output),
                                dict(IFM_CH=x.channels, IFM_DIM_H=x.shape[0], IFM_DIM_W=x.shape[1], FACTOR_H=fh,
                                     FACTOR_W=fw, A_BITS=x.bits)))
            continue
        if isinstance(layer, L.Requant):
            x = ins[0]
            out = _stream(design, layer.output)
            if layer.thresholds is not None and x.bits <= 8 and _per_tensor(layer):
                nodes.append(HwNode(layer.name, "lut_act", (layer.name,), (x,), out,
                                    dict(CHANNELS=x.channels, RECODE=0, A_BITS=x.bits, O_BITS=out.bits),
                                    requant=layer.name))
            else:
                if x.bipolar or not x.signed:
                    x = recode(x, StreamInfo(x.tensor, x.shape, 2 if x.bipolar else x.bits + 1, True),
                               f"{layer.name}_recode")
                nodes.append(HwNode(layer.name, "requant", (layer.name,), (x,), out,
                                    dict(CHANNELS=x.channels, IN_BITS=x.bits, O_BITS=out.bits), requant=layer.name))
            continue
        if isinstance(layer, L.LabelSelect):
            if layer.output != design.output:
                raise GenError(f"{layer.name}: a label select is supported only at the output")
            x = ins[0]  # a top-k head sends k indices per frame, largest first (regmap NUM_CLASSES)
            nodes.append(HwNode(layer.name, "label_select", (layer.name,), (x,), _stream(design, layer.output),
                                dict(N_ELEMS=x.elems, TOPK=layer.k, A_BITS=x.bits)))
            continue
        raise GenError(f"{layer.name}: no hardware kernel for {layer.op}")

    scores = _stream(design, design.scores)
    if max(abs(scores.lo), abs(scores.hi)) >= 1 << 31:
        raise GenError(f"scores {design.scores} range [{scores.lo}, {scores.hi}] exceeds the 32-bit output words")
    label = [n for n in nodes if n.kind == "label_select"]
    if not label and scores.shape[:2] == (1, 1) and scores.channels > 1 and _one_increasing_map(design):
        # a classifier without an arg-max node in the model: the class is the arg-max of the scores, which is the
        # model's only when one increasing map dequantises every class (else the host picks it from the scores)
        label = [HwNode("label_select", "label_select", (), (scores,),
                        StreamInfo("label_select__class", (1, 1, 1), max(1, (scores.elems - 1).bit_length()), False),
                        dict(N_ELEMS=scores.elems, TOPK=1, A_BITS=scores.bits))]
        nodes += label
    ins = (scores,) + ((label[0].output,) if label else ())
    nodes.append(HwNode("output", "output", (), ins, None,
                        dict(NUM_SCORES=scores.elems, HAS_CLASS=int(bool(label)),
                             NUM_CLASSES=label[0].params["TOPK"] if label else 0, DMA_BITS=dma_bits,
                             DMA_BYTES=dma_bytes)))
    g = HwGraph(design.name, nodes, dma_bits, runtime_weights)
    for n in nodes:  # every stream has one producer
        for s in n.inputs:
            g.producer(s.tensor)
    for n in nodes:  # input adapter feeding only Dense mvus (the frame is one vector): SIMD over the element count
        if n.kind == "input":
            cons = g.consumers(n.output.tensor)
            if cons and all(c.kind == "mvu" and not c.params["DEPTHWISE"] and c.params["NUM_PIX"] == 1
                            and c.params["MW"] == n.output.elems for c, _ in cons):
                n.simd_span = n.output.elems
    return g


def _wbits(w: np.ndarray) -> tuple[int, bool, bool]:
    """(W_BITS, signed, bipolar) of a weight tensor."""
    lo, hi = int(np.min(w)), int(np.max(w))
    if set(np.unique(w).tolist()) <= {-1, 1}:
        return 1, False, True
    if lo >= 0:
        return max(1, hi.bit_length()), False, False
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b, True, False


def weight_format(w: np.ndarray) -> tuple[int, bool, bool]:
    return _wbits(np.asarray(w))
