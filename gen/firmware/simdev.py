"""A simulated accelerator for libaccel, the server and the client on a PC (no board, no FPGA).

A *device backend* is any object with
    infer(frame: bytes) -> bytes          one padded input frame in, its padded output frame out (regmap formats)
    read_reg(offset: int) -> int          the AXI-Lite registers of gen/shell/regmap.py
    write_reg(offset: int, value: int)
GoldenBackend computes with the golden model; the Verilator model of the generated accelerator plugs in
through make_backend("verilator", ...) (it drives accel_top's s_axis/m_axis/s_axil ports), so every test of
the software stack can run against the real RTL without changing anything above this file.

SimDeviceServer serves a backend on a Unix socket in the SIMDEV protocol (gen/firmware/protocol.py) that
libaccel speaks when opened with "unix:PATH":

    python -m gen.firmware.simdev OUT/design.json --board zybo-z7 --socket /tmp/accel.sock
    OUT/firmware/accel_server -d unix:/tmp/accel.sock -p 7878
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import GenError
from ..shell import regmap
from . import protocol
from .spec import make_spec

R = regmap.REG


class DeviceBackend(Protocol):
    def infer(self, frame: bytes) -> bytes: ...

    def read_reg(self, offset: int) -> int: ...

    def write_reg(self, offset: int, value: int) -> None: ...


def input_codes(raw: np.ndarray, design) -> np.ndarray:
    """Frame bytes -> input codes exactly as the RTL's input adapter and first kernel read them
    (gen/rtl/templates/accel_input.sv.j2): only the low A_BITS of each byte (the input tensor's bits), two's
    complement when signed, bipolar 1 -> +1 and 0 -> -1. A byte above the code range is therefore not an error
    here but the code its low bits spell, as on the device."""
    t = design.tensors[design.input]
    bits = t.bits
    c = np.asarray(raw, np.int64) & ((1 << bits) - 1)
    if t.bipolar:
        return 2 * c - 1
    if t.signed:
        c = np.where(c >= 1 << (bits - 1), c - (1 << bits), c)
    return c


class GoldenBackend:
    """regmap's registers and frame handling around the golden model (gen/golden/model.py).

    Run-time weight words are checked (layer index) and recorded in `cfg_log`, not applied: how a word maps
    onto the weight tensor depends on the folding the RTL chose, which the Verilator backend has.
    `swallow` frames are dropped without an answer (a hung accelerator: the caller's timeout must fire).
    """

    def __init__(self, design, board: dict, *, runtime_weights: bool | None = None):
        self.design = design
        self.spec = make_spec(design, board, runtime_weights=runtime_weights)
        self.cfg = {name: 0 for name in ("CFG_LAYER", "CFG_ADDR")}
        self.cfg.update({f"CFG_DATA{i}": 0 for i in range(regmap.CFG_DATA_WORDS)})
        self.cfg_log: list[tuple[int, int, tuple[int, ...]]] = []
        self.swallow = 0
        self.soft_reset()
        self.errors = 0

    def soft_reset(self) -> None:
        self.frames_in = self.frames_out = 0

    def _const(self) -> dict[str, int]:
        s = self.spec
        return {"ID": regmap.ID_MAGIC, "VERSION": regmap.version_word(), "DESIGN_HASH": s.design_hash,
                "IN_FRAME_BYTES": s.in_frame_bytes, "OUT_FRAME_BYTES": s.out_frame_bytes,
                "NUM_SCORES": s.num_scores, "CLOCK_KHZ": s.clock_khz,
                "NUM_CLASSES": s.num_classes}

    def read_reg(self, offset: int) -> int:
        reg = next((r for r in regmap.REGISTERS if r.offset == offset), None)
        if reg is None or reg.access == "wo":
            return 0
        if reg.name in self._const():
            return self._const()[reg.name]
        if reg.name == "STATUS":
            return (1 << 1 if self.errors else 0) | (1 << 2 if self.spec.runtime_weights else 0)
        return {"ERRORS": self.errors, "FRAMES_IN": self.frames_in, "FRAMES_OUT": self.frames_out,
                "LAST_LATENCY": 0, "LAST_INTERVAL": 0}.get(reg.name, self.cfg.get(reg.name, 0))

    def write_reg(self, offset: int, value: int) -> None:
        reg = next((r for r in regmap.REGISTERS if r.offset == offset), None)
        if reg is None:
            return
        if reg.name == "CTRL":
            if value & 1:
                self.soft_reset()
            if value & 2:
                self.errors = 0
        elif reg.name == "ERRORS":
            self.errors &= ~value
        elif reg.name == "CFG_COMMIT" and value & 1:
            layer = self.cfg["CFG_LAYER"]
            if layer >= len(self.spec.runtime_weights):
                self.errors |= 1 << 2  # CFG_ERROR
            else:
                data = tuple(self.cfg[f"CFG_DATA{i}"] for i in range(regmap.CFG_DATA_WORDS))
                self.cfg_log.append((layer, self.cfg["CFG_ADDR"], data))
        elif reg.name in self.cfg:
            self.cfg[reg.name] = value & 0xFFFFFFFF

    def codes(self, frame: bytes) -> tuple[np.ndarray, int]:
        """Input frame -> (H, W, C) codes and the SHORT/LONG flags, as the accelerator's input stage sees it."""
        s = self.spec
        n = s.in_frame_bytes
        flags = 0
        if regmap.beats(len(frame), s.dma_bits) < regmap.beats(n, s.dma_bits):
            flags |= regmap.FLAG_SHORT
        elif regmap.beats(len(frame), s.dma_bits) > regmap.beats(n, s.dma_bits):
            flags |= regmap.FLAG_LONG
        raw = np.frombuffer((bytes(frame) + bytes(n))[:n], np.uint8)
        return input_codes(raw, self.design).reshape(s.in_shape), flags

    def infer(self, frame: bytes) -> bytes:
        from ..golden.model import run

        codes, flags = self.codes(frame)
        if flags:
            self.errors |= flags  # SHORT_FRAME = bit 0, LONG_FRAME = bit 1, as FLAG_SHORT / FLAG_LONG
        d = self.design
        env = run(d, None, feeds={d.input: codes[None]})
        scores = env[d.scores].reshape(-1)
        if d.output != d.scores:  # the model's head: k classes, largest first
            label = [int(c) for c in env[d.output].reshape(-1)]
        elif self.spec.has_class:
            label = int(np.argmax(scores))  # ties to the lower index, as the hardware
        else:
            label = None
        seq = self.frames_out
        self.frames_in += 1
        self.frames_out += 1
        return regmap.pack_output(label, seq, flags, scores, dma_bits=self.spec.dma_bits)


def make_backend(kind: str, design, board: dict, **opts) -> DeviceBackend:
    """"golden" (fast, always available) or "verilator" (the generated RTL through gen/sim)."""
    if kind == "golden":
        return GoldenBackend(design, board, **opts)
    if kind == "verilator":
        try:
            from ..sim.accel_device import VerilatorBackend  # the hook: infer / read_reg / write_reg on accel_top
        except ImportError as e:
            raise GenError(f"the Verilator device backend is not available (gen/sim/accel_device.py: {e}; it needs "
                           f"gen's dev extras: cocotb, cocotbext-axi, verilator)") from None
        return VerilatorBackend(design, board, **opts)
    raise GenError(f"unknown device backend '{kind}' (golden, verilator)")


class SimDeviceServer:
    """Serves one backend on a Unix socket (SIMDEV protocol); one thread per connection, calls serialised."""

    def __init__(self, path, backend: DeviceBackend):
        self.path = str(path)
        self.backend = backend
        self.lock = threading.Lock()
        self._stop = threading.Event()
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> SimDeviceServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:
        ops = protocol.SIM_OP
        with conn:
            while True:
                head = protocol.recv_exact(conn, protocol.SIM_REQ.size)
                if head is None:
                    return
                op, rid, arg0, arg1, length = protocol.SIM_REQ.unpack(head)
                payload = protocol.recv_exact(conn, length) if length else b""
                if payload is None:
                    return
                result, value, out = 0, 0, b""
                with self.lock:
                    b = self.backend
                    if op == ops["INFER"]:
                        if getattr(b, "swallow", 0) > 0:
                            b.swallow -= 1  # the frame is lost: no answer, the caller times out
                            continue
                        out = b.infer(payload)
                    elif op == ops["READ_REG"]:
                        value = b.read_reg(arg0)
                    elif op == ops["WRITE_REG"]:
                        b.write_reg(arg0, arg1)
                    elif op == ops["RESET"]:
                        b.write_reg(R["CTRL"].offset, 3)
                    else:
                        result = -protocol.ERROR["ARG"].code
                try:
                    conn.sendall(protocol.SIM_RESP.pack(op, rid, result, value, len(out)) + out)
                except OSError:
                    return


def main(argv=None) -> int:
    from ..boards import load_board
    from ..ir.design import Design

    p = argparse.ArgumentParser(prog="python -m gen.firmware.simdev", description="Serve a simulated accelerator "
                                "on a Unix socket for libaccel (device path unix:SOCKET)")
    p.add_argument("design", help="design.json (or the gen output folder)")
    p.add_argument("--board", default="zybo-z7")
    p.add_argument("--socket", default="/tmp/accel.sock")
    p.add_argument("--backend", default="golden", choices=("golden", "verilator"))
    p.add_argument("--runtime-weights", action="store_true", help="accept run-time weight uploads")
    a = p.parse_args(argv)
    path = Path(a.design)
    try:
        design = Design.load(path / "design.json" if path.is_dir() else path)
        backend = make_backend(a.backend, design, load_board(a.board),
                               runtime_weights=a.runtime_weights or None)
    except (OSError, ValueError, GenError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    srv = SimDeviceServer(a.socket, backend).start()
    print(f"simdev: {design.name} ({a.backend}) on unix:{a.socket}", flush=True)
    try:
        srv.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
