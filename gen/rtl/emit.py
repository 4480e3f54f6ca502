"""Emit the stitched accelerator: every HwNode rendered by its kernel renderer, width converters where adjacent
folds differ, a FIFO in front of every kernel input, forks for streams with several consumers, the input/output
adapters, the AXI-Lite control block, the SystemVerilog top `accel` and the plain-Verilog `regmap.TOP_MODULE`.
FIFOs, width converters, forks, upsample and concat are modules of the static RTL library (gen/rtl/lib), which
`accel` instantiates directly with named parameters; the library files a design uses are copied into its rtl/
and listed first in filelist.f.

    em = emit(design, graph, folding, clock_mhz=100)
    em.write(out / "rtl")          # *.sv, weights/*.mem, filelist.f, accel_top.v
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GenError
from ..fold.fold import strip_meta
from ..golden.model import run_layer
from ..hw import HwGraph, HwNode, conv_matrix, weight_format
from ..ir import layers as L
from ..ir.design import Design
from ..shell import regmap
from . import shell
from .common import Rendered, clog2, instance, module_name, render_template, value_range
from .elementwise import (
    render_add,
    render_concat,
    render_dwc,
    render_fifo,
    render_label_select,
    render_lut_act,
    render_requant,
    render_upsample,
)
from .lib import sources as lib_sources
from .mvu import mvu_matrix, render_mvu
from .pool import render_pool
from .requant import RequantSpec
from .swg import render_swg

WEIGHTS_DIR = "weights"
DEFAULT_FIFO = 16          # a kernel input FIFO on a plain chain (SRL, absorbs short stalls)
META_DEPTH = 32            # frames in flight between the input and the output adapter


@dataclass
class Enc:
    """How a stream's elements are coded on the wire."""
    bits: int
    signed: bool
    bipolar: bool = False


@dataclass
class Emitted:
    modules: dict[str, Rendered] = field(default_factory=dict)   # module name -> rendered kernel / shell module
    accel_sv: str = ""
    top_v: str = ""
    info: dict = field(default_factory=dict)                      # per node: module, lanes, cycles, fifo depths
    cfg_layers: list[dict] = field(default_factory=list)          # run-time writable mvus, CFG_LAYER order
    design_hash: int = 0

    def lib_modules(self) -> list[str]:
        """The RTL library modules (gen/rtl/lib) the design instantiates."""
        return list(lib_sources({m for r in self.modules.values() for m in r.lib}))

    def sources(self) -> dict[str, str]:
        """file name -> text of every SystemVerilog source (library modules, kernels, shell, accel), in compile
        order. A library instance has no file of its own: `accel` instantiates its library module."""
        out = lib_sources({m for r in self.modules.values() for m in r.lib})
        out.update({f"{name}.sv": r.sv for name, r in self.modules.items() if not r.module})
        out["accel.sv"] = self.accel_sv
        return out

    def mem_files(self) -> dict[str, str]:
        mem = {}
        for r in self.modules.values():
            mem.update(r.mem_files)
        return mem

    def write(self, rtl_dir: Path) -> list[Path]:
        rtl_dir = Path(rtl_dir)
        (rtl_dir / WEIGHTS_DIR).mkdir(parents=True, exist_ok=True)
        files = []
        for fname, text in self.sources().items():
            (rtl_dir / fname).write_text(text)
            files.append(fname)
        (rtl_dir / f"{regmap.TOP_MODULE}.v").write_text(self.top_v)
        files.append(f"{regmap.TOP_MODULE}.v")
        for fname, text in self.mem_files().items():
            (rtl_dir / WEIGHTS_DIR / fname).write_text(text)
        (rtl_dir / "filelist.f").write_text("".join(f"{f}\n" for f in files))
        (rtl_dir / "hw.json").write_text(json.dumps(self.info, indent=1))
        return [rtl_dir / f for f in files]


def hardware_json(design: Design) -> dict:
    """What the accelerator and its software contract are made from: the IR (tensors, layers, input / output /
    boundary) and the folding of every node with the design clock - not the fold report (estimates, the
    reason the fold stopped: fold.META) nor the frontend's notes, which can change wording or calibration
    without changing one gate."""
    d = design.to_json()
    d.pop("notes", None)
    d["folding"] = strip_meta(d.get("folding") or {})
    return d


def design_hash(design: Design) -> int:
    """regmap DESIGN_HASH: the first 32 bits of the SHA-256 of hardware_json(design) as canonical JSON."""
    text = json.dumps(hardware_json(design), sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


# ------------------------------------------------------------------------------------------------ kernels

def _rq_spec(rq: L.Requant, out: Enc) -> RequantSpec:
    if rq.thresholds is None or (rq.mult is not None):
        return RequantSpec.from_layer(rq, o_bits=out.bits)
    if out.bipolar:
        t = np.asarray(rq.thresholds)
        if t.shape[1] == 1:
            t = np.repeat(t, 2, axis=1)
        return RequantSpec("thresholds", thresholds=t, negate=rq.negate, out_lo=-1, o_bipolar=True)
    return RequantSpec("thresholds", thresholds=rq.thresholds, negate=rq.negate, out_lo=int(rq.out_lo),
                       o_bits=out.bits)


def _int_params(p: dict) -> dict:
    return {k: int(v) for k, v in p.items() if isinstance(v, (int, np.integer)) and not isinstance(v, bool)}


def _values(e: Enc) -> np.ndarray:
    lo, hi = value_range(e.bits, e.signed, e.bipolar)
    return np.array([-1, 1]) if e.bipolar else np.arange(lo, hi + 1)


def render_label_unit(name: str, *, n_elems: int, simd: int, x: Enc, k: int = 1) -> Rendered:
    """The arg-max / top-k kernel over a stream coded as `x`. Bipolar codes travel as one bit, 1 for +1 and 0 for
    -1: that bit compared unsigned orders the codes as their values do, so ties (the common case: many classes
    at +1) still go to the lower index, as ONNX ArgMax / TopK break them."""
    return render_label_select(name, n_elems=n_elems, simd=simd, a_bits=x.bits, a_signed=x.signed and not x.bipolar,
                               k=k)


def _activation_range(node: HwNode, x: Enc) -> tuple[int, int] | None:
    """The codes an mvu can see (hw.py's A_LO..A_HI: the input's exact range and any padding value) when they
    lie within the stream's encoding; None for bipolar streams or an unknown range."""
    lo, hi = int(node.params.get("A_LO", 0)), int(node.params.get("A_HI", 0))
    if x.bipolar or lo >= hi:
        return None
    elo, ehi = value_range(x.bits, x.signed)
    return (lo, hi) if elo <= lo and hi <= ehi else None


def render_node(node: HwNode, design: Design, pe: int, simd: int, ins: list[Enc], runtime_weights: bool,
                clock: dict, ram_style: str = "auto") -> tuple[Rendered, Enc]:
    """Render one node; returns the kernel and its output encoding. `ram_style`: an mvu's weight memory."""
    layers = {layer.name: layer for layer in design.layers}
    p = node.params
    out = node.output
    rq = layers[node.requant] if node.requant else None
    out_enc = Enc(out.bits, out.signed, out.bipolar) if out is not None else None
    x = ins[0] if ins else None
    k = node.kind
    if k == "mvu":
        layer = layers[node.layers[0]]
        if isinstance(layer, L.Dense):
            mat = np.asarray(layer.weight, dtype=np.int64)
            dw = False
        else:
            w, dw = conv_matrix(layer, p["IFM_CH"])
            mat = mvu_matrix(w)
        w_bits, w_signed, w_bip = weight_format(mat)
        if runtime_weights and w_bip and not x.bipolar:
            w_bits, w_signed, w_bip = 2, True, False  # uploads may change signs freely
        spec = _rq_spec(rq, out_enc) if rq is not None else None
        r = render_mvu(node.name, mat, pe=pe, simd=simd, w_bits=w_bits, a_bits=x.bits, w_signed=w_signed,
                       a_signed=x.signed, w_bipolar=w_bip, a_bipolar=x.bipolar, num_pix=p["NUM_PIX"], depthwise=dw,
                       a_range=_activation_range(node, x),
                       bias=layer.bias, requant=spec, runtime_writable=runtime_weights, mem_dir=WEIGHTS_DIR,
                       ram_style=ram_style,
                       ir_params=_int_params({kk: v for kk, v in p.items()
                                              if kk not in ("MW", "MH", "NUM_PIX", "A_LO", "A_HI")}))
        rqc = r.extra["rq"]
        enc = out_enc if rq is not None else Enc(r.params["O_BITS"], True)
        if rq is not None and rqc.get("o_bipolar"):
            enc = Enc(1, False, True)
        elif rq is not None:
            enc = Enc(r.params["O_BITS"], bool(rqc["o_signed"]))
        return r, enc
    if k == "swg":
        r = render_swg(node.layers[0], ifm_ch=p["IFM_CH"], ifm_dim=(p["IFM_DIM_H"], p["IFM_DIM_W"]), simd=simd,
                       a_bits=x.bits, k=(p["K_H"], p["K_W"]), stride=(p["STRIDE_H"], p["STRIDE_W"]), pads=p["PADS"],
                       pad_value=(1 if p["PAD_VALUE"] > 0 else 0) if x.bipolar else p["PAD_VALUE"],
                       depthwise=bool(p["DEPTHWISE"]))
        return r, x
    if k == "pool":
        spec = _rq_spec(rq, out_enc) if rq is not None else None
        r = render_pool(node.name, mode=p["MODE"], channels=p["CHANNELS"], simd=simd, a_bits=x.bits,
                        a_signed=x.signed, kernel=(p["K_H"], p["K_W"]), num_pix=p["NUM_PIX"],
                        global_pool=bool(p["GLOBAL"]), ifm_dim=(p["IFM_DIM_H"], p["IFM_DIM_W"]), requant=spec)
        if p["MODE"] == "max":
            return r, x
        rqc = r.extra["rq"]
        return r, (Enc(r.params["O_BITS"], bool(rqc.get("o_signed", True))) if spec else Enc(r.params["O_BITS"], True))
    if k == "add":
        layer = layers[node.layers[0]]
        spec = _rq_spec(rq, out_enc) if rq is not None else None
        r = render_add(node.name, channels=p["CHANNELS"], simd=simd, ka=layer.ka, kb=layer.kb, a_bits=ins[0].bits,
                       b_bits=ins[1].bits, a_signed=ins[0].signed, b_signed=ins[1].signed, requant=spec)
        rqc = r.extra["rq"]
        return r, (Enc(r.params["O_BITS"], bool(rqc.get("o_signed", True))) if spec else Enc(r.params["O_BITS"], True))
    if k == "concat":
        if (ins[0].bits, ins[0].signed, ins[0].bipolar) != (ins[1].bits, ins[1].signed, ins[1].bipolar):
            raise GenError(f"{node.name}: concat inputs are coded differently ({ins[0]} vs {ins[1]})")
        r = render_concat(node.name, ch_a=p["CH_A"], ch_b=p["CH_B"], simd=simd, a_bits=x.bits, num_pix=p["NUM_PIX"])
        return r, x
    if k == "upsample":
        r = render_upsample(node.name, ifm_ch=p["IFM_CH"], ifm_dim=(p["IFM_DIM_H"], p["IFM_DIM_W"]), simd=simd,
                            a_bits=x.bits, factor=(p["FACTOR_H"], p["FACTOR_W"]))
        return r, x
    if k == "lut_act":
        vals = _values(x)
        if p["RECODE"]:
            ys = vals
            o = Enc(out.bits, out.signed, out.bipolar)
        else:
            # per-tensor function: evaluate every input value on every channel (CH0: the first of this node's
            # channels among the requantiser's, when it serves one input of a concat - hw.py)
            c = np.asarray(rq.thresholds).shape[0] if "CH0" in p else node.inputs[0].channels
            arr = np.ascontiguousarray(np.broadcast_to(vals[None, None, :, None], (1, 1, len(vals), c)))
            ys = run_layer(rq, [arr])[0, 0, :, p.get("CH0", 0)]
            o = out_enc
        table = (ys > 0).astype(np.int64) if o.bipolar else ys
        raw_in = x.bipolar
        r = render_lut_act(node.name, simd=simd, a_bits=x.bits, a_signed=x.signed and not raw_in, table=table,
                           in_lo=0 if raw_in else int(vals[0]), o_bits=o.bits, o_signed=o.signed)
        return r, o
    if k == "requant":
        lo, hi = value_range(x.bits, x.signed)
        r = render_requant(node.name, channels=p["CHANNELS"], simd=simd, in_bits=x.bits, requant=_rq_spec(rq, out_enc),
                           in_range=(lo, hi))
        rqc = r.extra["rq"]
        if rqc.get("o_bipolar"):
            return r, Enc(1, False, True)
        return r, Enc(r.params["O_BITS"], bool(rqc["o_signed"]))
    if k == "label_select":
        r = render_label_unit(node.name, n_elems=p["N_ELEMS"], simd=simd, x=x, k=p["TOPK"])
        return r, Enc(r.params["IDX_BITS"], False)
    if k == "input":
        r = shell.render_input_adapter(n_elems=p["N_ELEMS"], simd=simd, a_bits=out.bits, dma_bits=p["DMA_BITS"])
        return r, Enc(out.bits, out.signed, out.bipolar)
    if k == "output":
        has_class = bool(p["HAS_CLASS"])
        r = shell.render_output_adapter(num_scores=p["NUM_SCORES"], lanes=simd, s_bits=x.bits, s_signed=x.signed,
                                        s_bipolar=x.bipolar, num_classes=p["NUM_CLASSES"],
                                        idx_bits=ins[1].bits if has_class else 1, dma_bits=p["DMA_BITS"])
        return r, None
    raise GenError(f"{node.name}: no renderer for kind {k}")


# ------------------------------------------------------------------------------------------------ the top

def _sig(name: str) -> str:
    return module_name("s", name)[2:]


class _Top:
    def __init__(self):
        self.decl: list[str] = []
        self.body: list[str] = []

    def bundle(self, name: str, width: int) -> str:
        self.decl.append(f"  logic [{width - 1}:0] {name}_tdata;")
        self.decl.append(f"  logic {name}_tvalid, {name}_tready, {name}_tlast;")
        return name

    def inst(self, module: str, iname: str, conns: list[tuple[str, str]], comment: str = "",
             params: dict | None = None):
        if comment:
            self.body.append(f"  // {comment}")
        self.body.append(instance(module, iname, params or {}, conns))

    def inst_of(self, r: Rendered, iname: str, conns: list[tuple[str, str]], comment: str = ""):
        """An instance of kernel `r`: its library module with named parameters, or its own module."""
        self.inst(r.module or r.name, iname, conns, comment, r.inst_params if r.module else None)


def _axis(port: str, bundle: str) -> list[tuple[str, str]]:
    return [(f"{port}_{s}", f"{bundle}_{s}") for s in ("tdata", "tvalid", "tready", "tlast")]


def emit(design: Design, graph: HwGraph, folding: dict, *, clock_mhz: float = 100.0,
         runtime_weights: bool | None = None) -> Emitted:
    runtime_weights = graph.runtime_weights if runtime_weights is None else runtime_weights
    graph.check_folding(folding)
    em = Emitted(design_hash=design_hash(design))
    top = _Top()
    enc: dict[str, Enc] = {}
    lanes_out: dict[str, int] = {}
    rendered: dict[str, Rendered] = {}
    for n in graph.nodes:
        pe, simd = graph.fold_of(folding, n.name)
        ins = [enc[s.tensor] for s in n.inputs]
        r, e = render_node(n, design, pe, simd, ins, runtime_weights, {},
                           ram_style=(folding.get(n.name) or {}).get("ram_style", "auto"))
        if r.name in em.modules:
            raise GenError(f"two kernels named {r.name}")
        em.modules[r.name] = r
        rendered[n.name] = r
        if n.output is not None:
            enc[n.output.tensor] = e
            lanes_out[n.output.tensor] = n.out_lanes(pe, simd)
        em.info[n.name] = dict(kind=n.kind, module=r.module or r.name, layers=list(n.layers), pe=pe, simd=simd,
                               cycles=n.cycles(pe, simd), in_lanes=n.in_lanes(pe, simd),
                               out_lanes=n.out_lanes(pe, simd) if n.output else None,
                               out_bits=e.bits if e else None, fifo=[])

    # producers' output bundles, forks for several consumers
    src_of: dict[tuple[str, int], str] = {}   # (consumer, input index) -> bundle feeding it
    for n in graph.nodes:
        if n.output is None:
            continue
        t = n.output.tensor
        width = lanes_out[t] * enc[t].bits
        b = top.bundle(f"{_sig(n.name)}_out", width)
        cons = graph.consumers(t)
        if not cons:
            raise GenError(f"{n.name}: output {t} is not used")
        if len(cons) == 1:
            src_of[(cons[0][0].name, cons[0][1])] = b
            continue
        fr = shell.render_fork(f"fork_{_sig(n.name)}", n=len(cons), width=width)
        em.modules[fr.name] = fr
        outs = []
        for i, (c, idx) in enumerate(cons):
            bi = top.bundle(f"{_sig(n.name)}_f{i}", width)
            outs.append(bi)
            src_of[(c.name, idx)] = bi
        # gen_axis_fork's packed outputs: consumer i at [i*WIDTH +: WIDTH] (bit i of tvalid / tready / tlast)
        conns = [("clk", "clk"), ("rst", "dp_rst")] + _axis("s_axis", b) + \
            [(f"m_axis_{x}", "{" + ", ".join(f"{bi}_{x}" for bi in reversed(outs)) + "}")
             for x in ("tdata", "tvalid", "tready", "tlast")]
        top.inst_of(fr, f"u_{fr.name}", conns, f"{t} goes to {', '.join(c.name for c, _ in cons)}")

    # every kernel input: [dwc] -> fifo -> kernel
    for n in graph.nodes:
        r = rendered[n.name]
        pe, simd = graph.fold_of(folding, n.name)
        f = (folding or {}).get(n.name) or {}
        depths = list(f.get("fifo") or [])
        conns = [("clk", "clk"), ("rst", "dp_rst")]
        in_ports = {"output": ["s_scores", "s_class"], "add": ["s_axis_a", "s_axis_b"],
                    "concat": ["s_axis_a", "s_axis_b"]}.get(n.kind, ["s_axis"])
        for idx, s in enumerate(n.inputs):
            e = enc[s.tensor]
            src = src_of[(n.name, idx)]
            pl, cl = lanes_out[s.tensor], n.in_lanes(pe, simd)[idx]
            tag = f"{_sig(n.name)}_in{idx}"
            if pl != cl:
                d = render_dwc(f"{n.name}_in{idx}", in_simd=pl, out_simd=cl, a_bits=e.bits, n_elems=s.elems)
                em.modules[d.name] = d
                b = top.bundle(f"{tag}_dwc", cl * e.bits)
                top.inst_of(d, f"u_{d.name}", [("clk", "clk"), ("rst", "dp_rst")] + _axis("s_axis", src) +
                            _axis("m_axis", b), f"width converter {pl} -> {cl} lanes ({d.extra['mode']})")
                src = b
            forked = len(graph.consumers(s.tensor)) > 1
            # a fork's branches re-join (residual add, concat): each branch can hold a whole frame, so one
            # branch never waits for the other one's input (no deadlock whatever the branch latencies)
            default = (s.elems // cl + DEFAULT_FIFO) if forked else DEFAULT_FIFO
            depth = int(depths[idx]) if idx < len(depths) else default
            if depth == 0:  # direct connection (gen/fold/fifo.py: a window-parallel swg and its mvu)
                em.info[n.name]["fifo"].append(dict(depth=0, capacity=0, style="none", dwc=pl != cl))
                conns += _axis(in_ports[idx], src)
                continue
            ff = render_fifo(f"{n.name}_in{idx}", depth=depth, width=cl * e.bits, lanes=cl)
            em.modules[ff.name] = ff
            b = top.bundle(tag, cl * e.bits)
            cw = next(p.width for p in ff.ports if p.name == "count")
            top.decl.append(f"  logic [{cw - 1}:0] {tag}_count;  // fill level (for FIFO sizing in simulation)")
            top.inst_of(ff, f"u_{ff.name}", [("clk", "clk"), ("rst", "dp_rst")] + _axis("s_axis", src) +
                        _axis("m_axis", b) + [("count", f"{tag}_count")],
                        f"FIFO of {n.name} input {idx}: depth {depth}, capacity {ff.extra['capacity']} "
                        f"({ff.extra['style']})")
            em.info[n.name]["fifo"].append(dict(depth=depth, capacity=ff.extra["capacity"], style=ff.extra["style"],
                                                dwc=pl != cl))
            conns += _axis(in_ports[idx], b)
        if n.kind == "input":
            conns += _axis("s_axis", "s_axis") + [("meta_space", "meta_space"), ("frame_start", "in_frame_start"),
                                                  ("frame_done", "in_frame_done"), ("frame_flags", "in_frame_flags")]
        if n.kind == "output":
            conns += [("meta_valid", "meta_valid"), ("meta_flags", "meta_flags"), ("meta_pop", "meta_pop")] + \
                _axis("m_axis", "m_axis") + [("frame_sent", "out_frame_sent")]
        elif n.output is not None:
            conns += _axis("m_axis", f"{_sig(n.name)}_out")
        if n.kind == "mvu" and runtime_weights:
            i = len(em.cfg_layers)
            ex = r.extra
            ww = next(p.width for p in r.ports if p.name == "cfg_data")
            if ww > 32 * regmap.CFG_DATA_WORDS:
                raise GenError(f"{n.name}: weight words of {ww} bits exceed CFG_DATA ({32 * regmap.CFG_DATA_WORDS})")
            em.cfg_layers.append(dict(index=i, node=n.name, layer=n.layers[0], pe=pe, simd=simd,
                                      words=r.params["NF"] * r.params["SF"], waw=ex["waw"], pew=ex["pew"],
                                      word_bits=ww))
            top.decl.append(f"  wire cfg_ok_{i} = (cfg_layer == 32'd{i}) && ((cfg_addr >> {ex['waw']}) < 32'd{pe}) && "
                            f"((cfg_addr & 32'd{(1 << ex['waw']) - 1}) < 32'd{r.params['NF'] * r.params['SF']});")
            conns += [("cfg_we", f"cfg_commit && cfg_ok_{i}"), ("cfg_addr", f"cfg_addr[{ex['cfg_aw'] - 1}:0]"),
                      ("cfg_data", f"cfg_data[{ww - 1}:0]")]
        comment = f"{n.kind} {n.name}: layers {', '.join(n.layers) or '-'}; PE={pe} SIMD={simd}; " \
                  f"{n.cycles(pe, simd)} cycles per frame"
        top.inst_of(r, f"u_{_sig(n.name)}", conns, comment)

    cfg_ok = " || ".join(f"cfg_ok_{c['index']}" for c in em.cfg_layers) or "1'b0"
    inp, outn = graph.node("input"), graph.node("output")
    in_bytes = regmap.in_frame_bytes(inp.params["N_ELEMS"])
    ns, ncls = outn.params["NUM_SCORES"], outn.params["NUM_CLASSES"]
    ctrl = shell.render_ctrl(design_hash=em.design_hash, in_bytes=in_bytes,
                             out_bytes=regmap.out_frame_bytes(ns, ncls), num_scores=ns, num_classes=ncls,
                             clock_khz=int(round(clock_mhz * 1000)), runtime_weights=runtime_weights)
    em.modules[ctrl.name] = ctrl
    em.accel_sv = _accel_sv(top, graph, cfg_ok, len(em.cfg_layers))
    bn, bc = graph.bottleneck(folding)
    em.info["_accel"] = dict(dma_bits=graph.dma_bits, has_class=bool(outn.params["HAS_CLASS"]), num_scores=ns,
                             num_classes=ncls,
                             in_frame_bytes=in_bytes, runtime_weights=runtime_weights, design_hash=em.design_hash,
                             bottleneck=bn, bottleneck_cycles=bc, clock_mhz=clock_mhz, cfg_layers=em.cfg_layers)
    em.top_v = shell.render_top_wrapper("accel", graph.dma_bits)
    return em


def _accel_sv(top: _Top, graph: HwGraph, cfg_ok: str, n_cfg: int) -> str:
    D = graph.dma_bits
    mw = clog2(META_DEPTH)
    return render_template("accel.sv.j2", name=graph.name, D=D, mw=mw, META_DEPTH=META_DEPTH,
                           kernels=[n.name for n in graph.nodes], axil_decls=shell.axil_port_decls(),
                           cfg_words=regmap.CFG_DATA_WORDS, decl=top.decl, body=top.body,
                           cfg_bad=f"!({cfg_ok})" if n_cfg else "1'b1")


# ------------------------------------------------------------------------------------------------ sim/ folder

_RUN_SIM = '''"""`make sim`: random frames through the Verilator model of ../rtl, every output frame compared \
with the golden
model (gen/golden/model.py), then LAST_INTERVAL read from the control block. Generated by gen/rtl/emit.py."""
import argparse
import sys
from pathlib import Path

try:
    from gen.ir.design import Design
    from gen.sim import accel
except ImportError as e:
    sys.exit(f"run_sim.py: {e} - {sys.executable} has no gen with its dev extras (cocotb, verilator); "
             "run make with PYTHON=<gen's venv>/bin/python")

HERE = Path(__file__).resolve().parent
p = argparse.ArgumentParser()
p.add_argument("--frames", type=int, default=32)
p.add_argument("--bp", type=float, default=0.3, help="sink back-pressure probability")
p.add_argument("--gap", type=float, default=0.3, help="input gap probability")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--lint", action="store_true", help="only lint the RTL (verilator --lint-only -Wall)")
a = p.parse_args()
rtl = HERE.parent / "rtl"
accel.lint_rtl(rtl)
print("lint: clean")
if a.lint:
    sys.exit(0)
design = Design.load(HERE.parent / "design.json")
info = accel.load_hwinfo(rtl)
r = accel.run_frames(design, accel.build_rtl(rtl), info, n=a.frames, bp=a.bp, gap=a.gap, seed=a.seed)
ok = not r["mismatches"]
print(f"{r['n_frames']} frames: {'all equal to the golden model' if ok else 'MISMATCH'}")
for m in r["mismatches"][:10]:
    print("  " + m)
print(f"LAST_INTERVAL {r['interval']} cycles per frame (analytic bottleneck {r['analytic']}, "
      f"{info['_accel']['bottleneck']}); registers {r['reads'][-1]}")
sys.exit(0 if ok else 1)
'''


def write_sim_dir(sim_dir: Path, python: str | None = None) -> None:
    """The per-design simulation folder: a Makefile (`make sim`, `make lint`) and run_sim.py. Nothing in it names
    a path outside the output folder: the Makefile runs `$(PYTHON)` (default `python3`), which must
    import gen (its venv active, or `make sim PYTHON=<venv>/bin/python`), and run_sim.py finds ../rtl and
    ../design.json next to itself, so a copied output folder simulates as well."""
    from importlib import resources
    sim_dir = Path(sim_dir)
    sim_dir.mkdir(parents=True, exist_ok=True)
    (sim_dir / "run_sim.py").write_text(_RUN_SIM)
    # the Verilator models of the Xilinx LUT primitives the RTL may instantiate (Vivado has them in unisim)
    (sim_dir / "xilinx_prims.v").write_bytes(resources.files("gen.sim").joinpath("xilinx_prims.v").read_bytes())
    (sim_dir / "Makefile").write_text(
        "# generated by gen/rtl/emit.py: simulate ../rtl with cocotb + Verilator against the golden model\n"
        "# PYTHON must import gen with its dev extras: activate gen's venv or give PYTHON=<venv>/bin/python\n"
        f"PYTHON ?= {python or 'python3'}\n"
        "FRAMES ?= 32\n\n"
        ".PHONY: sim lint\n"
        "sim:\n\t$(PYTHON) run_sim.py --frames $(FRAMES)\n\n"
        "lint:\n\t$(PYTHON) run_sim.py --lint\n")
