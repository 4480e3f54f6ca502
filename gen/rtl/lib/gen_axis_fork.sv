// gen_axis_fork: AXI-Stream broadcast (static library module of gen, gen/rtl/lib; instantiated by
// gen/rtl/emit.py with named parameters). Every beat of s_axis goes to all N outputs; the input beat is consumed
// once every output has taken it (each output remembers that it already has the current beat, so a slow branch
// never duplicates or loses beats).
//
// Parameters
//   N      outputs (>= 1); output i is m_axis_tdata[i*WIDTH +: WIDTH], m_axis_tvalid[i], m_axis_tready[i],
//          m_axis_tlast[i].
//   WIDTH  tdata bits (>= 1).
`default_nettype none

module gen_axis_fork #(
  parameter int N = 2,
  parameter int WIDTH = 8
) (
  input  wire logic clk,
  input  wire logic rst,
  input  wire logic [WIDTH-1:0] s_axis_tdata,
  input  wire logic s_axis_tvalid,
  output logic s_axis_tready,
  input  wire logic s_axis_tlast,
  output logic [N*WIDTH-1:0] m_axis_tdata,
  output logic [N-1:0] m_axis_tvalid,
  input  wire logic [N-1:0] m_axis_tready,
  output logic [N-1:0] m_axis_tlast
);
  // ---- elaboration-time checks ----
  if (N < 1) begin : g_bad_n
    $error("gen_axis_fork: N=%0d, must be >= 1", N);
  end
  if (WIDTH < 1) begin : g_bad_width
    $error("gen_axis_fork: WIDTH=%0d, must be >= 1", WIDTH);
  end

  logic [N-1:0] done;  // output i already took the current beat
  assign s_axis_tready = &(done | m_axis_tready);
  assign m_axis_tdata = {N{s_axis_tdata}};
  assign m_axis_tlast = {N{s_axis_tlast}};
  assign m_axis_tvalid = {N{s_axis_tvalid}} & ~done;
  always_ff @(posedge clk) begin
    if (rst || (s_axis_tvalid && s_axis_tready)) done <= '0;
    else if (s_axis_tvalid) done <= done | m_axis_tready;
  end
endmodule

`default_nettype wire
