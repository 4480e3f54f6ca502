"""The simulated device's Verilator backend (gen/firmware/simdev.py, make_backend("verilator")): the generated
accelerator (rtl/ emitted by gen's own passes, built by gen/sim/runner.py's cache) in one persistent cocotb
simulation (gen/sim/tb_device.py) that serves infer / read_reg / write_reg over a Unix socket.

    b = VerilatorBackend(design, board)       # emit + build (cached) + start the simulation
    out = b.infer(frame)                      # AXI-Stream frame in, output frame out
    b.read_reg(regmap.REG["ID"].offset)       # AXI-Lite
    b.close()
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path

from gen.firmware.protocol import recv_exact
from gen.shell import regmap

from . import accel, runner
from .tb_device import OPS, REQ, RESP


def emit_rtl(design, board: dict, out: Path, *, runtime_weights: bool = False, folding: dict | None = None) -> Path:
    """gen's passes (hardware graph, fold, emit) into out/rtl, leaving design.folding as it was (DESIGN_HASH)."""
    from gen.hw import build_hw_graph
    from gen.rtl.emit import emit
    graph = build_hw_graph(design, dma_bits=int(board["dma"]["width_bits"]), runtime_weights=runtime_weights)
    if folding is None:
        folding = design.folding or None
    if folding is None:
        try:
            from gen.fold import fold_design
            folding = fold_design(design, graph, board)
        except ImportError:
            folding = graph.default_folding()
    em = emit(design, graph, folding, clock_mhz=board["clock_mhz"], runtime_weights=runtime_weights)
    em.write(Path(out) / "rtl")
    return Path(out) / "rtl"


class VerilatorBackend:
    """infer / read_reg / write_reg on accel_top in Verilator (one simulation per backend, calls serialised)."""

    def __init__(self, design, board: dict, *, runtime_weights: bool | None = None, rtl_dir: Path | None = None,
                 timeout_cycles: int = 2_000_000, start_timeout_s: float = 600):
        from gen.firmware.spec import make_spec
        self.design = design
        self.spec = make_spec(design, board, runtime_weights=runtime_weights)
        self.tmp = Path(tempfile.mkdtemp(prefix="gen-vdev-"))
        if rtl_dir is None:
            rtl_dir = emit_rtl(design, board, self.tmp, runtime_weights=bool(self.spec.runtime_weights))
        self.build = accel.build_rtl(rtl_dir)
        self.swallow = 0          # SimDeviceServer: frames to drop unanswered (the frame never reaches the RTL)
        self.cycle = 0            # simulated cycle of the last reply
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(str(self.tmp / "sim.sock"))
        lsock.listen(1)
        lsock.settimeout(1.0)
        spec = dict(clock_ns=1000.0 / board["clock_mhz"], socket=str(self.tmp / "sim.sock"),
                    timeout_cycles=timeout_cycles)
        self.thread = threading.Thread(target=self._run_sim, args=(spec,), daemon=True)
        self.thread.start()
        import time
        t0 = time.monotonic()
        try:
            while True:
                try:
                    self.conn, _ = lsock.accept()
                    break
                except TimeoutError:
                    if self.error or not self.thread.is_alive() or time.monotonic() - t0 > start_timeout_s:
                        raise RuntimeError(f"the Verilator device did not start: {self.error}") from self.error
        finally:
            lsock.close()

    def _run_sim(self, spec: dict) -> None:
        try:
            self.result = runner.run(self.build, spec, name="device", test_module="gen.sim.tb_device")
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            self.error = e

    def _call(self, op: str, arg: int = 0, value: int = 0, payload: bytes = b"") -> tuple[int, int, bytes]:
        with self.lock:
            if self.error:
                raise RuntimeError(f"the Verilator device stopped: {self.error}")
            self.conn.sendall(REQ.pack(OPS[op], arg, value & 0xFFFFFFFF, len(payload)) + payload)
            head = recv_exact(self.conn, RESP.size)
            if head is None:
                raise RuntimeError(f"the Verilator device went away: {self.error}")
            status, rvalue, self.cycle, n = RESP.unpack(head)
            out = recv_exact(self.conn, n) if n else b""
            return status, rvalue, out

    def infer(self, frame: bytes) -> bytes:
        status, _, out = self._call("INFER", payload=bytes(frame))
        return out if status == 0 else b""   # no answer within timeout_cycles: a hung accelerator

    def read_reg(self, offset: int) -> int:
        return self._call("READ", offset)[1]

    def write_reg(self, offset: int, value: int) -> None:
        self._call("WRITE", offset, value)

    def close(self) -> None:
        if getattr(self, "conn", None) is not None:
            try:
                self._call("QUIT")
            except (OSError, RuntimeError):
                pass
            self.conn.close()
            self.conn = None
        self.thread.join(timeout=30)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["VerilatorBackend", "emit_rtl", "regmap"]
