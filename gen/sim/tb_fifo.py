"""cocotb test of FIFO fill levels: with the output stalled, a FIFO accepts exactly its capacity and `count`
follows every push and pop. Spec: {"instances": [{"name", "prefix", "capacity", "width"}]}."""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge


async def _check(dut, inst, res):
    p = inst["prefix"]
    g = lambda n: getattr(dut, p + n)  # noqa: E731
    cap, errs = inst["capacity"], []
    g("m_axis_tready").value = 0
    accepted = 0
    for i in range(cap + 4):  # offer more than the capacity
        g("s_axis_tvalid").value = 1
        g("s_axis_tdata").value = (i * 37 + 5) & ((1 << inst["width"]) - 1)
        g("s_axis_tlast").value = 0
        await RisingEdge(dut.clk)
        if int(g("s_axis_tready").value):
            accepted += 1
        await FallingEdge(dut.clk)
        if int(g("count").value) != accepted:
            errs.append(f"count {int(g('count').value)} after {accepted} pushes")
    g("s_axis_tvalid").value = 0
    if accepted != cap:
        errs.append(f"accepted {accepted} beats, capacity {cap}")
    g("m_axis_tready").value = 1
    got = []
    for _ in range(cap + 8):
        await RisingEdge(dut.clk)
        if int(g("m_axis_tvalid").value):
            got.append(int(g("m_axis_tdata").value))
        await FallingEdge(dut.clk)
        if int(g("count").value) != accepted - len(got):
            errs.append(f"count {int(g('count').value)} after {len(got)} pops")
    exp = [(i * 37 + 5) & ((1 << inst["width"]) - 1) for i in range(accepted)]
    if got != exp:
        errs.append(f"data {got[:8]} expected {exp[:8]}")
    res.update(ok=not errs, errors=errs[:5])


@cocotb.test()
async def fifo_levels(dut):
    with open(os.environ["GEN_SIM_SPEC"]) as f:
        spec = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for inst in spec["instances"]:
        getattr(dut, inst["prefix"] + "s_axis_tvalid").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    results = [dict(name=i["name"]) for i in spec["instances"]]
    tasks = [cocotb.start_soon(_check(dut, i, r)) for i, r in zip(spec["instances"], results)]
    for t in tasks:
        await t
    with open(os.environ["GEN_SIM_RESULTS"], "w") as f:
        json.dump(dict(instances=results, cycles=0), f)
