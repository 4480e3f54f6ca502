"""cocotb side of the simulated device (gen/sim/accel_device.py): a persistent accel_top simulation that serves
requests from its parent over a Unix socket until told to quit (or the parent goes away).

Spec ($GEN_SIM_SPEC): {"clock_ns": 10, "socket": path, "timeout_cycles": n}. Requests (REQ) and replies (RESP):
  INFER  payload = one input frame   -> payload = its output frame (empty after timeout_cycles)
  READ   arg = register offset       -> value
  WRITE  arg = offset, value         -> (nothing)
  QUIT                               -> (nothing), the test ends
Simulated time stands still while the test waits for a request.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_steps, get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from gen.firmware.protocol import recv_exact

REQ = struct.Struct("<BIII")    # op, arg, value, payload length
RESP = struct.Struct("<BIQI")   # status (0 ok, 1 timeout), value, end cycle, payload length
OPS = dict(INFER=1, READ=2, WRITE=3, QUIT=4)


@cocotb.test()
async def serve(dut):
    with open(os.environ["GEN_SIM_SPEC"]) as f:
        spec = json.load(f)
    clock_ns = spec.get("clock_ns", 10)
    step = get_sim_steps(clock_ns, "ns")
    cocotb.start_soon(Clock(dut.ap_clk, clock_ns, unit="ns").start())
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    for x in (src, sink, axil.write_if, axil.read_if):
        x.log.setLevel(logging.WARNING)
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 4)
    timeout = int(spec.get("timeout_cycles", 10 ** 7))
    served = 0
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(spec["socket"])
    with conn:
        while True:
            head = recv_exact(conn, REQ.size)
            if head is None:
                break
            op, arg, value, length = REQ.unpack(head)
            payload = recv_exact(conn, length) if length else b""
            if payload is None:
                break
            status, rvalue, out = 0, 0, b""
            if op == OPS["INFER"]:
                src.send_nowait(AxiStreamFrame(payload))
                task = cocotb.start_soon(sink.recv())
                waited = 0
                while not task.done() and waited < timeout:
                    await ClockCycles(dut.ap_clk, 16)
                    waited += 16
                if task.done():
                    out = bytes(task.result().tdata)
                else:
                    task.cancel()
                    status = 1
            elif op == OPS["READ"]:
                rvalue = int.from_bytes((await axil.read(arg, 4)).data, "little")
            elif op == OPS["WRITE"]:
                await axil.write(arg, int(value).to_bytes(4, "little"))
            elif op == OPS["QUIT"]:
                conn.sendall(RESP.pack(0, 0, 0, 0))
                break
            served += 1
            cycle = int(get_sim_time("step") / step)
            conn.sendall(RESP.pack(status, rvalue, cycle, len(out)) + out)
    with open(os.environ["GEN_SIM_RESULTS"], "w") as f:
        json.dump(dict(served=served, cycles=get_sim_time("step") / step), f)
