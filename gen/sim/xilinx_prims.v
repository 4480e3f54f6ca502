// Simulation models of the Xilinx 7-series primitives the generated RTL instantiates (gen/rtl/luts.py), with
// the INIT semantics of Xilinx's unisim library: LUT6 O = INIT[{I5..I0}]; LUT6_2 O6 = INIT[{I5..I0}],
// O5 = INIT[{1'b0, I4..I0}]. For Verilator (simulation, lint) only: Vivado uses unisim, Yosys its own cells,
// so this file is not in rtl/filelist.f.
/* verilator lint_off DECLFILENAME */
module LUT6 #(parameter logic [63:0] INIT = 64'h0) (
  output logic O,
  input  logic I0, I1, I2, I3, I4, I5
);
  assign O = INIT[{I5, I4, I3, I2, I1, I0}];
endmodule

module LUT6_2 #(parameter logic [63:0] INIT = 64'h0) (
  output logic O6,
  output logic O5,
  input  logic I0, I1, I2, I3, I4, I5
);
  assign O6 = INIT[{I5, I4, I3, I2, I1, I0}];
  assign O5 = INIT[{1'b0, I4, I3, I2, I1, I0}];
endmodule
/* verilator lint_on DECLFILENAME */
