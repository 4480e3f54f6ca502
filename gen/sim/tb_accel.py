"""cocotb driver/recorder for a whole generated accelerator (`accel_top`): AXI-Stream frames in and out
(cocotbext-axi, optional random input gaps and sink back-pressure), AXI-Lite register reads/writes.

Spec ($GEN_SIM_SPEC): {"clock_ns": 10, "max_cycles": int, "seed": int, "gap": p, "bp": p, "steps": [...]}, steps:
  {"op": "send", "frames": [hex, ...]}   queue input frames (bytes, already padded to DMA beats)
  {"op": "recv", "n": k}                 wait until k more output frames have arrived
  {"op": "read", "regs": [name, ...]}    AXI-Lite reads (names from gen/shell/regmap.py), recorded
  {"op": "write", "reg": name, "value": v}
  {"op": "pause_after", "beats": k}      pause the input once k input beats (in total) were accepted; records the
                                         exact count accepted (the source may run ahead by a beat)
  {"op": "resume"} / {"op": "wait", "cycles": n} / {"op": "set", "gap": p, "bp": p}
Results ($GEN_SIM_RESULTS): received frames (hex) with their end cycles, reads, marks, errors. All checking
against the golden model is done by the caller (gen/sim/accel.py).
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_steps, get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from gen.shell import regmap


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


@cocotb.test()
async def run_spec(dut):
    with open(os.environ["GEN_SIM_SPEC"]) as f:
        spec = json.load(f)
    rng = random.Random(spec.get("seed", 1))
    step = get_sim_steps(spec.get("clock_ns", 10), "ns")
    cocotb.start_soon(Clock(dut.ap_clk, spec.get("clock_ns", 10), unit="ns").start())
    src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    for x in (src, sink, axil.write_if, axil.read_if):
        x.log.setLevel(logging.WARNING)

    def set_rates(gap, bp):
        src.set_pause_generator(_pauses(random.Random(rng.random()), gap) if gap > 0 else None)
        sink.set_pause_generator(_pauses(random.Random(rng.random()), bp) if bp > 0 else None)
        if gap <= 0:
            src.pause = False  # a stopped pause generator may leave the last pause set
        if bp <= 0:
            sink.pause = False

    set_rates(spec.get("gap", 0.0), spec.get("bp", 0.0))
    beats = [0]

    async def count_beats():
        while True:
            await RisingEdge(dut.ap_clk)
            if int(dut.s_axis_tvalid.value) and int(dut.s_axis_tready.value):
                beats[0] += 1

    res = dict(frames=[], frame_ends=[], reads=[], marks=[], errors=[])
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 8)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 4)
    cocotb.start_soon(count_beats())
    t0 = get_sim_time("step") / step
    max_cycles = spec.get("max_cycles", 10 ** 7)

    async def recv_one():
        fr = await sink.recv()
        res["frames"].append(bytes(fr.tdata).hex())
        res["frame_ends"].append(fr.sim_time_end / step - t0)

    async def body():
        for s in spec["steps"]:
            op = s["op"]
            if op == "send":
                for f in s["frames"]:
                    src.send_nowait(AxiStreamFrame(bytes.fromhex(f)))
            elif op == "recv":
                for _ in range(s["n"]):
                    await recv_one()
            elif op == "read":
                vals = {}
                for r in s["regs"]:
                    vals[r] = int.from_bytes((await axil.read(regmap.REG[r].offset, 4)).data, "little")
                res["reads"].append(vals)
            elif op == "write":
                await axil.write(regmap.REG[s["reg"]].offset, int(s["value"]).to_bytes(4, "little"))
            elif op == "pause_after":
                while beats[0] < s["beats"]:
                    await RisingEdge(dut.ap_clk)
                src.pause = True
                await ClockCycles(dut.ap_clk, 3)
                res["marks"].append(beats[0])
            elif op == "resume":
                src.pause = False
            elif op == "wait":
                await ClockCycles(dut.ap_clk, s["cycles"])
            elif op == "set":
                set_rates(s.get("gap", 0.0), s.get("bp", 0.0))

    task = cocotb.start_soon(body())
    while not task.done():
        await ClockCycles(dut.ap_clk, 100)
        if get_sim_time("step") / step - t0 > max_cycles:
            task.cancel()
            res["errors"].append(f"timeout after {max_cycles} cycles: {len(res['frames'])} frames received, "
                                 f"{beats[0]} input beats accepted")
            break
    res["cycles"] = get_sim_time("step") / step - t0
    res["in_beats"] = beats[0]
    with open(os.environ["GEN_SIM_RESULTS"], "w") as f:
        json.dump(res, f)
