"""The accelerator's contract with software, described once: AXI-Lite registers, frame formats, constants.

Everything that talks to the accelerator is generated from this module - the RTL control block, the C header
of the driver and libaccel, the Python client, the simulation model and the README's register table - so
there is no second hand-written copy to drift (DESIGN.md "Conventions").

Frames (byte formats, independent of the DMA width; a frame is padded with zeros to whole DMA beats and the
last beat carries `tlast`):
- input frame: the input tensor's integer codes in NHWC order, one byte per element (two's complement for
  signed codes; a bipolar input sends 1 for +1 and 0 for -1). A frame that ends early (`tlast` before the
  expected beat count) is padded with zeros and flagged SHORT_FRAME; extra beats after the expected count are
  dropped up to `tlast` and flagged LONG_FRAME. Either way the pipeline stays in step and the next frame is
  correct, no reset needed.
- output frame: an 8-byte header, little-endian: bits [31:0] class index (arg-max of the scores, ties to the
  lower index; 0xFFFFFFFF when the design has no class output), [55:32] frame sequence number (mod 2^24),
  [63:56] flags of the input frame (FLAG_SHORT, FLAG_LONG); then, for a top-k head (NUM_CLASSES = k > 1), the
  classes of ranks 2..k as unsigned 32-bit little-endian words (the header holds rank 1); then the output codes
  ("scores", the tensor the class is chosen from, in NHWC order) as signed 32-bit little-endian words (a bipolar
  tensor's codes as -1 and +1). The class is the model's own head (ArgMax, Softmax, TopK: indices largest
  first, ties to the lower index) over the real scores, or without one the arg-max of scores that one
  increasing map dequantises; what the codes mean is the design's (accel_proto.DESIGN["output"]: encoding,
  range, the ops to float). NUM_CLASSES is 0 for a design without a class, whose header says NO_CLASS.

`interrupt` on TOP_MODULE pulses high for one cycle when an output frame has been sent (optional for the
driver, which normally waits on the DMA's completion).

Run-time weight upload (designs generated with run-time writable weights): select the layer in CFG_LAYER,
the memory word in CFG_ADDR ({PE index, word address}, as the mvu's cfg port), write the word's bits into
CFG_DATA0.. (lowest 32 bits first), then write 1 to CFG_COMMIT. Words are SIMD weights, lane 0 at the LSBs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ID_MAGIC = 0x47454E31  # "GEN1"
VERSION = (1, 1)  # (major, minor) of this contract; 1.1 added NUM_CLASSES (top-k frames)
AXIL_ADDR_BITS = 8
CFG_DATA_WORDS = 8  # CFG_DATA0..7: up to 256-bit weight words
OUT_HEADER_BYTES = 8
SCORE_BYTES = 4
NO_CLASS = 0xFFFFFFFF
FLAG_SHORT = 0x01
FLAG_LONG = 0x02


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # "ro" read-only, "rw" read/write, "w1c" write 1 to clear, "wo" write-only (reads 0), "const"
    doc: str
    fields: tuple[Field, ...] = field(default_factory=tuple)


REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x00, "const", f"magic 0x{ID_MAGIC:08X} ('GEN1')"),
    Register("VERSION", 0x04, "const", "contract version: major * 65536 + minor"),
    Register("DESIGN_HASH", 0x08, "const",
             "first 32 bits of the SHA-256 of the design IR (canonical JSON, see gen.rtl.emit.design_hash)"),
    Register("CTRL", 0x0C, "wo", "control; bits self-clear", (
        Field("SOFT_RESET", 0, 1, "reset the datapath and counters (frames in flight are lost)"),
        Field("CLEAR_ERRORS", 1, 1, "clear ERRORS"),
    )),
    Register("STATUS", 0x10, "ro", "status", (
        Field("BUSY", 0, 1, "a frame has entered and not fully left"),
        Field("ERROR", 1, 1, "ERRORS != 0"),
        Field("RUNTIME_WEIGHTS", 2, 1, "the design accepts run-time weight uploads"),
    )),
    Register("ERRORS", 0x14, "w1c", "sticky error flags", (
        Field("SHORT_FRAME", 0, 1, "an input frame ended early (padded with zeros)"),
        Field("LONG_FRAME", 1, 1, "an input frame was too long (extra beats dropped)"),
        Field("CFG_ERROR", 2, 1, "CFG_COMMIT with an unknown layer or an address out of range"),
    )),
    Register("FRAMES_IN", 0x18, "ro", "input frames accepted since reset"),
    Register("FRAMES_OUT", 0x1C, "ro", "output frames sent since reset"),
    Register("LAST_LATENCY", 0x20, "ro", "cycles from the first input beat to the last output beat of the last frame"),
    Register("LAST_INTERVAL", 0x24, "ro", "cycles between the ends of the last two output frames"),
    Register("IN_FRAME_BYTES", 0x28, "const", "bytes of an input frame (before padding to DMA beats)"),
    Register("OUT_FRAME_BYTES", 0x2C, "const", "bytes of an output frame (before padding to DMA beats)"),
    Register("NUM_SCORES", 0x30, "const", "output codes per frame"),
    Register("CLOCK_KHZ", 0x34, "const", "design clock the report assumed, kHz"),
    Register("NUM_CLASSES", 0x38, "const", "class indices per output frame: 0 (header NO_CLASS), 1, or k (top-k)"),
    Register("CFG_LAYER", 0x40, "rw", "run-time weights: layer index (design.json order of writable layers)"),
    Register("CFG_ADDR", 0x44, "rw", "run-time weights: {PE index, word address}"),
    Register("CFG_COMMIT", 0x48, "wo", "write 1: write CFG_DATA* to CFG_LAYER/CFG_ADDR"),
) + tuple(Register(f"CFG_DATA{i}", 0x50 + 4 * i, "rw", f"run-time weights: word bits [{32 * i + 31}:{32 * i}]")
          for i in range(CFG_DATA_WORDS))

REG = {r.name: r for r in REGISTERS}

# The plain-Verilog top the vendor flow instantiates (module reference in Vivado): one clock, the vendor's
# active-low reset, AXI-Stream in/out at the board's DMA width (tkeep all ones / ignored) and AXI-Lite.
TOP_MODULE = "accel_top"


def axil_ports(full: bool = False) -> list[tuple[str, str, int]]:
    """(name, direction, width) of the AXI-Lite slave, in port order; `full` adds AWPROT, WSTRB and ARPROT
    (the top level's vendor interface; inside the design they are not used)."""
    a = AXIL_ADDR_BITS
    ports = [("s_axil_awaddr", "input", a), ("s_axil_awprot", "input", 3), ("s_axil_awvalid", "input", 1),
             ("s_axil_awready", "output", 1), ("s_axil_wdata", "input", 32), ("s_axil_wstrb", "input", 4),
             ("s_axil_wvalid", "input", 1), ("s_axil_wready", "output", 1), ("s_axil_bresp", "output", 2),
             ("s_axil_bvalid", "output", 1), ("s_axil_bready", "input", 1), ("s_axil_araddr", "input", a),
             ("s_axil_arprot", "input", 3), ("s_axil_arvalid", "input", 1), ("s_axil_arready", "output", 1),
             ("s_axil_rdata", "output", 32), ("s_axil_rresp", "output", 2), ("s_axil_rvalid", "output", 1),
             ("s_axil_rready", "input", 1)]
    return ports if full else [p for p in ports if not p[0].endswith(("prot", "strb"))]


def top_ports(dma_bits: int) -> list[tuple[str, str, int]]:
    """(name, direction, width) of TOP_MODULE's ports."""
    ports = [("ap_clk", "input", 1), ("ap_rst_n", "input", 1)]
    for bus, d_in, d_out in (("s_axis", "input", "output"), ("m_axis", "output", "input")):
        ports += [(f"{bus}_tdata", d_in, dma_bits), (f"{bus}_tkeep", d_in, dma_bits // 8), (f"{bus}_tlast", d_in, 1),
                  (f"{bus}_tvalid", d_in, 1), (f"{bus}_tready", d_out, 1)]
    ports += axil_ports(full=True) + [("interrupt", "output", 1)]
    return ports


def version_word() -> int:
    return VERSION[0] << 16 | VERSION[1]


def beats(nbytes: int, dma_bits: int) -> int:
    """DMA beats for a frame of `nbytes` bytes."""
    b = dma_bits // 8
    return -(-nbytes // b)


def in_frame_bytes(num_elements: int) -> int:
    return num_elements


def out_frame_bytes(num_scores: int, num_classes: int = 1) -> int:
    """Bytes of an output frame: the header (rank-1 class), ranks 2..num_classes, the scores."""
    return OUT_HEADER_BYTES + SCORE_BYTES * (max(num_classes, 1) - 1 + num_scores)


def pack_input(codes, *, bipolar: bool = False, dma_bits: int = 64) -> bytes:
    """Input codes (any shape, NHWC order when flattened) -> the padded input frame."""
    flat = np.asarray(codes).reshape(-1).astype(np.int64)
    if bipolar:
        flat = (flat > 0).astype(np.int64)
    if flat.min(initial=0) < -128 or flat.max(initial=0) > 255:
        raise ValueError("input codes must fit in one byte")
    raw = (flat & 0xFF).astype(np.uint8).tobytes()
    return raw + bytes(beats(len(raw), dma_bits) * dma_bits // 8 - len(raw))


@dataclass(frozen=True)
class OutputFrame:
    label: int | None            # the header's class (rank 1), None for NO_CLASS
    seq: int
    flags: int
    scores: tuple[int, ...]
    classes: tuple[int, ...] = ()  # every rank of a top-k head, largest first (classes[0] == label)


def unpack_output(data: bytes, num_scores: int, num_classes: int = 1) -> OutputFrame:
    """An output frame (padding allowed) -> class(es), sequence number, flags, scores."""
    need = out_frame_bytes(num_scores, num_classes)
    if len(data) < need:
        raise ValueError(f"output frame has {len(data)} bytes, expected at least {need}")
    head = int.from_bytes(data[:8], "little")
    label = head & 0xFFFFFFFF
    more = max(num_classes, 1) - 1
    words = [int.from_bytes(data[8 + 4 * i:12 + 4 * i], "little", signed=i >= more) for i in range(more + num_scores)]
    classes = () if label == NO_CLASS else (label, *words[:more])
    return OutputFrame(None if label == NO_CLASS else label, (head >> 32) & 0xFFFFFF, head >> 56,
                       tuple(words[more:]), classes)


def pack_output(label, seq: int, flags: int, scores, *, dma_bits: int = 64) -> bytes:
    """The output frame the hardware sends (used by simulation models and tests). `label`: None (NO_CLASS), a
    class, or the k classes of a top-k head, largest first."""
    classes = [] if label is None else [int(c) for c in np.atleast_1d(label)]
    head = (classes[0] if classes else NO_CLASS) | (seq & 0xFFFFFF) << 32 | (flags & 0xFF) << 56
    raw = head.to_bytes(8, "little") + b"".join(c.to_bytes(4, "little") for c in classes[1:]) + \
        b"".join(int(s).to_bytes(4, "little", signed=True) for s in scores)
    return raw + bytes(beats(len(raw), dma_bits) * dma_bits // 8 - len(raw))


def c_header(prefix: str = "ACCEL", constants: dict[str, int] | None = None) -> str:
    """C #defines for the registers, fields, frame format and the design's constants."""
    p = prefix.upper()
    out = ["/* generated by gen.shell.regmap - do not edit */", f"#ifndef {p}_REGS_H", f"#define {p}_REGS_H", "",
           f"#define {p}_ID_MAGIC 0x{ID_MAGIC:08X}u", f"#define {p}_VERSION 0x{version_word():08X}u",
           f"#define {p}_OUT_HEADER_BYTES {OUT_HEADER_BYTES}", f"#define {p}_SCORE_BYTES {SCORE_BYTES}",
           f"#define {p}_NO_CLASS 0x{NO_CLASS:08X}u", f"#define {p}_FLAG_SHORT 0x{FLAG_SHORT:02X}u",
           f"#define {p}_FLAG_LONG 0x{FLAG_LONG:02X}u", f"#define {p}_CFG_DATA_WORDS {CFG_DATA_WORDS}", ""]
    for r in REGISTERS:
        out.append(f"#define {p}_REG_{r.name} 0x{r.offset:02X}u /* {r.access}: {r.doc} */")
        for f in r.fields:
            out.append(f"#define {p}_{r.name}_{f.name} (0x{((1 << f.width) - 1) << f.lsb:X}u) /* {f.doc} */")
    if constants:
        out.append("")
        out += [f"#define {p}_{k.upper()} {int(v)}" for k, v in constants.items()]
    out += ["", f"#endif /* {p}_REGS_H */", ""]
    return "\n".join(out)


def markdown_table() -> str:
    """The register table for the README and the report."""
    rows = ["| offset | register | access | meaning |", "|---|---|---|---|"]
    for r in REGISTERS:
        doc = r.doc + "".join(f"; bit {f.lsb} {f.name}: {f.doc}" for f in r.fields)
        rows.append(f"| 0x{r.offset:02X} | {r.name} | {r.access} | {doc} |")
    return "\n".join(rows)
