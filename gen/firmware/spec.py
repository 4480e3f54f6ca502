"""What the firmware needs to know about one design on one board, derived from the Design, the board YAML and
gen/shell/regmap.py (the frame formats and registers are regmap's; this module only evaluates them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..ir import layers as L
from ..ir.design import Design
from ..rtl.emit import design_hash as rtl_design_hash
from ..shell import regmap
from ..vendor.system import c_name, design_clock_mhz, system


@dataclass(frozen=True)
class Spec:
    name: str                 # C identifier and device name: /dev/<name>
    compatible: str           # device-tree compatible the platform driver binds to
    design_hash: int          # regmap DESIGN_HASH, as the RTL emitter puts it into the control block
    in_shape: tuple[int, int, int]   # (H, W, C) of the input codes, NHWC
    in_lo: int
    in_hi: int
    in_signed: bool
    in_bipolar: bool
    in_frame_bytes: int       # regmap IN_FRAME_BYTES
    num_scores: int
    out_frame_bytes: int
    dma_bits: int
    clock_khz: int
    has_class: bool           # the output header carries an arg-max class (else NO_CLASS)
    num_classes: int          # regmap NUM_CLASSES: 0 (no class), 1, or k of a top-k head (ranks 2.. after the header)
    runtime_weights: tuple[str, ...]  # names of the layers writable at run time (CFG_LAYER index order)
    dma_base: int             # AXI DMA register block (M_AXI_GP0 address map, boards/*.yaml)
    accel_base: int           # the accelerator's AXI-Lite block
    reg_span: int             # bytes mapped for each block

    @property
    def dma_bytes(self) -> int:
        return self.dma_bits // 8

    def padded(self, nbytes: int) -> int:
        return regmap.beats(nbytes, self.dma_bits) * self.dma_bytes

    @property
    def in_frame_padded(self) -> int:
        return self.padded(self.in_frame_bytes)

    @property
    def out_frame_padded(self) -> int:
        return self.padded(self.out_frame_bytes)

    def constants(self) -> dict[str, int]:
        """The design's numbers for regmap.c_header(constants=...)."""
        h, w, c = self.in_shape
        return {"design_hash": self.design_hash, "in_frame_bytes": self.in_frame_bytes,
                "in_frame_padded": self.in_frame_padded, "out_frame_bytes": self.out_frame_bytes,
                "out_frame_padded": self.out_frame_padded, "num_scores": self.num_scores,
                "in_height": h, "in_width": w, "in_channels": c, "in_signed": int(self.in_signed),
                "dma_bits": self.dma_bits, "clock_khz": self.clock_khz, "has_class": int(self.has_class),
                "num_classes": self.num_classes,
                "runtime_layers": len(self.runtime_weights), "dma_base": self.dma_base,
                "accel_base": self.accel_base, "reg_span": self.reg_span}


def has_class_output(design: Design) -> bool:
    """As gen/hw.py decides: the model's own class head, or the arg-max of (1, 1, C) scores that one increasing
    map dequantises (otherwise the arg-max of the codes would not be the model's, and the header says NO_CLASS)."""
    from ..hw import _one_increasing_map

    if any(isinstance(layer, L.LabelSelect) for layer in design.layers):
        return True
    h, w, c = design.tensors[design.scores].shape
    return h == 1 and w == 1 and c > 1 and _one_increasing_map(design)


def num_classes(design: Design) -> int:
    """regmap NUM_CLASSES of the design: k of its TopK head, 1 for any other class output, 0 without one."""
    label = next((layer for layer in design.layers if isinstance(layer, L.LabelSelect)), None)
    if label is not None:
        return int(label.k)
    return int(has_class_output(design))


def output_description(design: Design) -> dict:
    """What an output frame's scores and class mean, for the host (accel_proto.DESIGN["output"]) and the README:
    the scores' encoding and range (bipolar codes arrive as -1 / +1 words), the element-wise ops that turn them
    into the model's float output (gen/ir/elementwise.py JSON, in the ONNX `layout`), and the class."""
    t = design.tensors[design.scores]
    b = design.output_boundary or {}
    label = next((layer for layer in design.layers if isinstance(layer, L.LabelSelect)), None)
    if label is not None and b.get("kind") == "TopK":
        cls = f"TopK k={label.k} (indices, largest first, ties to the lower index)"
    elif label is not None:
        cls = f"{b.get('kind', 'ArgMax')} of the model: its arg-max class (ties to the lower index)"
    else:
        cls = "arg-max of the scores (ties to the lower index)" if has_class_output(design) else None
    return {"encoding": "bipolar" if t.bipolar else ("signed" if t.signed else "unsigned"), "lo": int(t.lo),
            "hi": int(t.hi), "shape": list(t.shape), "onnx_name": b.get("onnx_name"), "layout": b.get("layout"),
            "to_float": list(b.get("chain", [])), "class": cls}


def make_spec(design: Design, board: dict, *, runtime_weights: bool | None = None,
              design_hash: int | None = None) -> Spec:
    t = design.tensors[design.input]
    scores = design.tensors[design.scores]
    if runtime_weights is None:
        runtime_weights = bool(design.folding.get("runtime_weights", False))
    writable = tuple(layer.name for layer in design.layers if isinstance(layer, (L.Conv, L.Dense))) \
        if runtime_weights else ()
    sysmap = system(board)
    name = c_name(design.name)
    return Spec(name=name, compatible=f"gen,{name.replace('_', '-')}",
                design_hash=rtl_design_hash(design) if design_hash is None else design_hash,
                in_shape=tuple(t.shape), in_lo=t.lo, in_hi=t.hi, in_signed=t.signed, in_bipolar=t.bipolar,
                in_frame_bytes=regmap.in_frame_bytes(t.elements), num_scores=scores.elements,
                out_frame_bytes=regmap.out_frame_bytes(scores.elements, num_classes(design)),
                dma_bits=board["dma"]["width_bits"],
                clock_khz=int(round(design_clock_mhz(design, board) * 1000)), has_class=has_class_output(design),
                num_classes=num_classes(design),
                runtime_weights=writable, dma_base=sysmap.dma_base, accel_base=sysmap.accel_base,
                reg_span=sysmap.span)
