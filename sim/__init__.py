"""Simulation harness: cocotb + Verilator, builds cached by content hash (sim.runner), generic AXI-Stream
testbench (sim.tb_axis) driving many kernel instances of one build at once."""
