"""Simulation harness: cocotb + Verilator, builds cached by content hash (gen.sim.runner), generic AXI-Stream
testbench (gen.sim.tb_axis) driving many kernel instances of one build at once."""
