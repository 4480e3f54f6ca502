"""Generic cocotb testbench: drives AXI-Stream kernel instances of a wrapper from a JSON spec.

Spec (path in $GEN_SIM_SPEC):
  {"seed": int, "clock_ns": 10, "max_cycles": int,
   "instances": [{"name": str, "prefix": "i0_",
                  "streams": {"s_axis": {"dir": "in", "lanes": L, "bits": W}, "m_axis": {"dir": "out", ...}},
                  "bp": p_sink_pause, "gap": p_source_pause, "check_protocol": bool,
                  "phases": [{"cfg": [[addr, data], ...],            # optional writes on <prefix>cfg_*
                              "in": {"s_axis": [[elem, ...], ...]},  # frames of raw element codes
                              "out": {"m_axis": [[elem, ...], ...]}}]}]}
Every instance runs its phases in order (a phase ends when all its expected frames have arrived), all
instances concurrently. Results (path in $GEN_SIM_RESULTS): per instance ok, errors, frame end cycles per
output port, cycle of the first input beat.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_steps, get_sim_time
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


async def _protocol_check(dut, prefix: str, port: str, errors: list):
    """AXI-Stream rule on an output: once tvalid is high it stays high, with tdata/tlast unchanged, until tready."""
    valid = getattr(dut, f"{prefix}{port}_tvalid")
    ready = getattr(dut, f"{prefix}{port}_tready")
    data = getattr(dut, f"{prefix}{port}_tdata")
    last = getattr(dut, f"{prefix}{port}_tlast")
    held = None
    edge = RisingEdge(dut.clk)
    while True:
        await edge
        v = int(valid.value)
        if held is not None and (not v or (int(data.value), int(last.value)) != held):
            errors.append(f"{port}: tvalid/tdata/tlast changed while stalled at {get_sim_time('ns')} ns")
            return
        held = (int(data.value), int(last.value)) if (v and not int(ready.value)) else None


async def _cfg_writes(dut, prefix: str, writes):
    we = getattr(dut, f"{prefix}cfg_we")
    addr = getattr(dut, f"{prefix}cfg_addr")
    data = getattr(dut, f"{prefix}cfg_data")
    for a, d in writes:
        await RisingEdge(dut.clk)
        we.value = 1
        addr.value = int(a)
        data.value = int(d)
    await RisingEdge(dut.clk)
    we.value = 0


async def _instance(dut, inst: dict, res: dict, step_per_cycle: int, seed: int):
    try:
        await _instance_body(dut, inst, res, step_per_cycle, seed)
    except Exception as e:  # noqa: BLE001 - report, do not abort the other instances
        res["ok"] = False
        res.setdefault("errors", []).append(f"exception: {e!r}")


async def _instance_body(dut, inst: dict, res: dict, step_per_cycle: int, seed: int):
    rng = random.Random(seed)
    prefix = inst["prefix"]
    srcs, sinks = {}, {}
    for port, st in inst["streams"].items():
        bus = AxiStreamBus.from_prefix(dut, prefix + port)
        if st["dir"] == "in":
            s = AxiStreamSource(bus, dut.clk, dut.rst, byte_lanes=st["lanes"])
            if inst.get("gap", 0) > 0:
                s.set_pause_generator(_pauses(random.Random(rng.random()), inst["gap"]))
            srcs[port] = s
        else:
            s = AxiStreamSink(bus, dut.clk, dut.rst, byte_lanes=st["lanes"])
            if inst.get("bp", 0) > 0:
                s.set_pause_generator(_pauses(random.Random(rng.random()), inst["bp"]))
            sinks[port] = s
        s.log.setLevel(logging.WARNING)
    res.update(ok=False, errors=[], frame_ends={p: [] for p in sinks}, frames_ok=0)
    proto_errors: list = []
    checkers = [cocotb.start_soon(_protocol_check(dut, prefix, p, proto_errors)) for p in sinks] \
        if inst.get("check_protocol") else []
    await ClockCycles(dut.clk, 1)
    while int(dut.rst.value):
        await RisingEdge(dut.clk)
    for ph, phase in enumerate(inst["phases"]):
        if phase.get("cfg"):
            await _cfg_writes(dut, prefix, phase["cfg"])
        for port, frames in phase.get("in", {}).items():
            for f in frames:
                srcs[port].send_nowait(AxiStreamFrame(list(f)))
        for port, frames in phase.get("out", {}).items():
            for k, exp in enumerate(frames):
                fr = await sinks[port].recv()
                got = list(fr.tdata)
                res["frame_ends"][port].append(fr.sim_time_end / step_per_cycle)
                if got != list(exp):
                    bad = [i for i in range(min(len(got), len(exp))) if got[i] != exp[i]]
                    res["errors"].append(
                        f"phase {ph} port {port} frame {k}: {len(got)} elements (expected {len(exp)}), "
                        f"{len(bad)} mismatches" + (f", first at {bad[0]}: got {got[bad[0]]} expected {exp[bad[0]]}"
                                                    if bad else "") + f"; got[:16]={got[:16]} "
                        f"exp[:16]={list(exp)[:16]}")
                else:
                    res["frames_ok"] += 1
    for c in checkers:
        c.cancel()
    res["errors"] += proto_errors
    res["ok"] = not res["errors"]


@cocotb.test()
async def run_spec(dut):
    with open(os.environ["GEN_SIM_SPEC"]) as f:
        spec = json.load(f)
    clock_ns = spec.get("clock_ns", 10)
    step_per_cycle = get_sim_steps(clock_ns, "ns")
    cocotb.start_soon(Clock(dut.clk, clock_ns, unit="ns").start())
    dut.rst.value = 1
    for inst in spec["instances"]:  # idle the configuration ports
        if hasattr(dut, f"{inst['prefix']}cfg_we"):
            getattr(dut, f"{inst['prefix']}cfg_we").value = 0
    results = [dict(name=inst["name"]) for inst in spec["instances"]]
    tasks = [cocotb.start_soon(_instance(dut, inst, res, step_per_cycle, spec.get("seed", 1) * 7919 + i))
             for i, (inst, res) in enumerate(zip(spec["instances"], results))]
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    t0 = get_sim_time("step") / step_per_cycle
    w0 = time.perf_counter()
    max_cycles = spec.get("max_cycles", 10 ** 6)
    while not all(t.done() for t in tasks):
        await ClockCycles(dut.clk, 200)
        if get_sim_time("step") / step_per_cycle - t0 > max_cycles:
            break
    for t, res in zip(tasks, results):
        if not t.done():
            t.cancel()
            res["ok"] = False
            res.setdefault("errors", []).append(
                f"timeout after {max_cycles} cycles: {res.get('frames_ok', 0)} frames ok, "
                f"frame ends so far {res.get('frame_ends')}")
        for port, ends in res.get("frame_ends", {}).items():
            res["frame_ends"][port] = [e - t0 for e in ends]
    out = dict(instances=results, cycles=get_sim_time("step") / step_per_cycle - t0,
               sim_wall_s=time.perf_counter() - w0)
    with open(os.environ["GEN_SIM_RESULTS"], "w") as f:
        json.dump(out, f)
    # pass/fail is judged by the caller from the results file (per instance, with details)
    bad = [r["name"] for r in results if not r.get("ok")]
    if bad:
        dut._log.warning("failing instances: %s", bad)
