"""The seed system's wire formats and error codes, described once in Python data.

- NET: the TCP protocol between the host client (STM32MP1) and the inference server on the board.
- SIMDEV: the Unix-socket protocol between libaccel and a simulated device (golden model now, the Verilator
  model of the generated accelerator later); on the board libaccel talks to the kernel driver instead.
- ERRORS: libaccel's error codes (returned negated) and, the same numbers, the NET reply status codes.

From this data come the C header `accel_proto.h` (server, libaccel), the Python module `accel_proto.py` (host
client, ctypes wrapper) and PROTOCOL.md. Frame contents (input codes, output scores) are regmap's formats.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..shell import regmap


@dataclass(frozen=True)
class Error:
    name: str
    code: int
    text: str


ERRORS: tuple[Error, ...] = (
    Error("OK", 0, "success"),
    Error("ARG", 1, "invalid argument"),
    Error("FRAME_SIZE", 2, "wrong frame size"),
    Error("OPEN", 3, "cannot open the device"),
    Error("IO", 4, "device I/O error"),
    Error("TIMEOUT", 5, "device timeout (no result in time; the device was reset)"),
    Error("MISMATCH", 6, "the device is not this design (ID, VERSION or DESIGN_HASH differ)"),
    Error("NO_WEIGHTS", 7, "this design has no run-time writable weights"),
    Error("CFG", 8, "weight upload rejected by the accelerator (CFG_ERROR: unknown layer or address)"),
    Error("DEVICE", 9, "the accelerator flagged the frame (short or long frame)"),
    Error("NOMEM", 10, "out of memory"),
    Error("UNAVAILABLE", 11, "device unavailable (it went away; reopened with back-off, retry later)"),
    Error("BAD_FRAME", 12, "input frame byte outside the design's input code range"),
    Error("BAD_MAGIC", 20, "not a message of this protocol (bad magic or version)"),
    Error("UNKNOWN_TYPE", 21, "unknown message type"),
    Error("BAD_LENGTH", 22, "payload length is wrong for this message type"),
    Error("TOO_LARGE", 23, "message larger than the server accepts"),
    Error("TRUNCATED", 24, "message incomplete: the rest did not arrive in time"),
    Error("BUSY", 25, "server has too many clients"),
)
ERROR = {e.name: e for e in ERRORS}

# ---- NET: client <-> server (TCP, little-endian) -------------------------------------------------------------
NET_MAGIC = int.from_bytes(b"GENP", "little")
NET_VERSION = 2  # 2: INFER_RESULT carries the classes of a top-k head (num_classes)
NET_HEADER = struct.Struct("<IBBHI")  # magic, version, type, status (ERRORS code, 0 in requests), payload length
NET_MAX_PAYLOAD = 1 << 22             # 4 MiB: the server closes the connection on anything larger
NET_MAX_BATCH = 256                   # frames in one INFER request
NET_DEFAULT_PORT = 7878


@dataclass(frozen=True)
class Message:
    name: str
    code: int
    payload: str   # layout of the payload
    reply: str     # name of the reply message


NET_MESSAGES: tuple[Message, ...] = (
    Message("INFER", 0x01, "n >= 1 input frames of IN_FRAME_BYTES each (regmap input format, no padding), "
            f"n <= {NET_MAX_BATCH}; every byte one input code of the design's range (else BAD_FRAME, naming the "
            "first bad byte)", "INFER_RESULT"),
    Message("CONFIG", 0x02, "weight words: records of u32 layer, u32 addr, u32 data[CFG_DATA_WORDS] "
            "(regmap run-time weight upload)", "CONFIG_RESULT"),
    Message("STATUS", 0x03, "empty", "STATUS_RESULT"),
    Message("INFO", 0x04, "empty", "INFO_RESULT"),
    Message("INFER_RESULT", 0x81, "u32 n, u32 num_scores, u32 num_classes, then n records of i32 class (-1: "
            "none), u32 seq, u32 flags, i32 classes[num_classes - 1] (ranks 2.. of a top-k head; none when "
            "num_classes <= 1), i32 scores[num_scores]", ""),
    Message("CONFIG_RESULT", 0x82, "u32 records written", ""),
    Message("STATUS_RESULT", 0x83, "u32 values of the STATUS_REGS registers in order, then u32 server counters "
            "(requests, errors, clients)", ""),
    Message("INFO_RESULT", 0x84, "u32 values of INFO_FIELDS in order", ""),
    Message("ERROR", 0xFF, "UTF-8 text; the header's status is the ERRORS code", ""),
)
NET = {m.name: m for m in NET_MESSAGES}

# Registers a STATUS query returns: every readable register except the run-time weight ones (regmap order)
STATUS_REGS: tuple[str, ...] = tuple(r.name for r in regmap.REGISTERS
                                     if r.access in ("ro", "const", "w1c") and not r.name.startswith("CFG_"))
SERVER_COUNTERS: tuple[str, ...] = ("requests", "errors", "clients")
INFO_FIELDS: tuple[str, ...] = ("design_hash", "in_frame_bytes", "num_scores", "in_height", "in_width",
                                "in_channels", "in_signed", "has_class", "runtime_layers", "num_classes")
CFG_RECORD = struct.Struct(f"<II{regmap.CFG_DATA_WORDS}I")
RESULT_HEAD = struct.Struct("<III")    # n, num_scores, num_classes
RESULT_REC = struct.Struct("<iII")     # class, seq, flags (then max(num_classes, 1) - 1 + num_scores i32)

# ---- SIMDEV: libaccel <-> simulated device (Unix stream socket, little-endian) --------------------------------
SIM_REQ = struct.Struct("<IIIII")   # op, id, arg0, arg1, payload length
SIM_RESP = struct.Struct("<IIiII")  # op, id, result (0 or -ERRORS code), value, payload length
SIM_OPS: tuple[tuple[str, int, str], ...] = (
    ("INFER", 1, "payload: one padded input frame; reply payload: the padded output frame"),
    ("READ_REG", 2, "arg0: register offset; reply value"),
    ("WRITE_REG", 3, "arg0: register offset, arg1: value"),
    ("RESET", 4, "CTRL SOFT_RESET | CLEAR_ERRORS, as the driver does after a timeout"),
)
SIM_OP = {name: code for name, code, _ in SIM_OPS}


def recv_exact(conn, n: int) -> bytes | None:
    """Exactly n bytes from a socket, or None when the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def c_header() -> str:
    out = ["/* generated by gen.firmware.protocol - do not edit */", "#ifndef ACCEL_PROTO_H", "#define ACCEL_PROTO_H",
           "", "/* libaccel error codes (functions return the negated code) = NET reply status codes */"]
    out += [f"#define ACCEL_E_{e.name} {e.code} /* {e.text} */" for e in ERRORS]
    out += ["", "#define ACCEL_ERROR_TEXTS { \\"]
    out += [f"    [{e.code}] = \"{e.text}\", \\" for e in ERRORS]
    out += ["}", "", "/* NET: client <-> server, TCP, little-endian */",
            f"#define NET_MAGIC 0x{NET_MAGIC:08X}u", f"#define NET_VERSION {NET_VERSION}",
            f"#define NET_HEADER_BYTES {NET_HEADER.size} /* u32 magic, u8 version, u8 type, u16 status, u32 length */",
            f"#define NET_MAX_PAYLOAD {NET_MAX_PAYLOAD}", f"#define NET_MAX_BATCH {NET_MAX_BATCH}",
            f"#define NET_DEFAULT_PORT {NET_DEFAULT_PORT}"]
    out += [f"#define NET_MSG_{m.name} 0x{m.code:02X} /* {m.payload} */" for m in NET_MESSAGES]
    out += [f"#define NET_STATUS_REGS {{ {', '.join(f'ACCEL_REG_{r}' for r in STATUS_REGS)} }}",
            f"#define NET_NUM_STATUS_REGS {len(STATUS_REGS)}",
            f"#define NET_NUM_SERVER_COUNTERS {len(SERVER_COUNTERS)}",
            f"#define NET_NUM_INFO_FIELDS {len(INFO_FIELDS)}",
            f"#define NET_CFG_RECORD_BYTES {CFG_RECORD.size}",
            "", "/* SIMDEV: libaccel <-> simulated device, Unix stream socket, little-endian */",
            f"#define SIM_REQ_BYTES {SIM_REQ.size} /* u32 op, id, arg0, arg1, length */",
            f"#define SIM_RESP_BYTES {SIM_RESP.size} /* u32 op, id, i32 result, u32 value, u32 length */"]
    out += [f"#define SIM_OP_{name} {code} /* {doc} */" for name, code, doc in SIM_OPS]
    out += ["", "#endif /* ACCEL_PROTO_H */", ""]
    return "\n".join(out)


def python_module(constants: dict[str, int]) -> str:
    """accel_proto.py for the host: the protocol's data and the design's constants, nothing to import."""
    lines = ['"""generated by gen.firmware.protocol - do not edit: wire formats, error codes, design constants."""',
             "", "import struct", "",
             f"NET_MAGIC = 0x{NET_MAGIC:08X}", f"NET_VERSION = {NET_VERSION}",
             f"NET_HEADER = struct.Struct({NET_HEADER.format!r})", f"NET_MAX_PAYLOAD = {NET_MAX_PAYLOAD}",
             f"NET_MAX_BATCH = {NET_MAX_BATCH}", f"NET_DEFAULT_PORT = {NET_DEFAULT_PORT}",
             "MSG = {" + ", ".join(f"{m.name!r}: 0x{m.code:02X}" for m in NET_MESSAGES) + "}",
             "ERRORS = {" + ", ".join(f"{e.code}: ({e.name!r}, {e.text!r})" for e in ERRORS) + "}",
             f"STATUS_REGS = {STATUS_REGS!r}", f"SERVER_COUNTERS = {SERVER_COUNTERS!r}",
             f"INFO_FIELDS = {INFO_FIELDS!r}", f"CFG_RECORD = struct.Struct({CFG_RECORD.format!r})",
             f"RESULT_HEAD = struct.Struct({RESULT_HEAD.format!r})",
             f"RESULT_REC = struct.Struct({RESULT_REC.format!r})",
             f"CFG_DATA_WORDS = {regmap.CFG_DATA_WORDS}", "", "# the design this firmware was generated for",
             "DESIGN = {" + ", ".join(f"{k!r}: {v!r}" for k, v in constants.items()) + "}", ""]
    return "\n".join(lines)


def markdown() -> str:
    rows = ["# Inference server protocol (generated by gen.firmware.protocol)", "",
            f"TCP, default port {NET_DEFAULT_PORT}. Every message, both ways, is a {NET_HEADER.size}-byte "
            "little-endian header - u32 magic `GENP`, u8 version "
            f"{NET_VERSION}, u8 type, u16 status, u32 payload length - then the payload. Requests carry status 0; "
            "a reply has the request's answer type, or ERROR with the status code and a text. After a bad magic, a "
            "too large or a truncated message the server closes the connection (it cannot find the next message); "
            "after an unknown type, a wrong length or a bad frame it skips the payload and keeps the connection. "
            "A request must arrive whole, and its reply be taken whole, within the server's message timeout (-r); "
            "a connection idle between messages for longer than the idle timeout (-i) is closed without a "
            "message. While the device is gone (restarted, driver reloaded) requests that need it get "
            "UNAVAILABLE; the server reopens it with back-off and serves again on its own.", "",
            "| type | code | payload | reply |", "|---|---|---|---|"]
    rows += [f"| {m.name} | 0x{m.code:02X} | {m.payload} | {m.reply} |" for m in NET_MESSAGES]
    rows += ["", f"STATUS_REGS: {', '.join(STATUS_REGS)}. INFO_FIELDS: {', '.join(INFO_FIELDS)}.", "",
             "| status | code | meaning |", "|---|---|---|"]
    rows += [f"| {e.name} | {e.code} | {e.text} |" for e in ERRORS]
    return "\n".join(rows) + "\n"
