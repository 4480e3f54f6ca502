// gen_concat: channel concatenation of two AXI-Streams (static library module of gen, gen/rtl/lib; instantiated
// by gen/rtl/emit.py with named parameters); gen/golden/ops.py concat([a, b]) on the channel axis of NHWC
// tensors: per pixel CH_A / SIMD beats of a, then CH_B / SIMD beats of b.
//
// Parameters
//   CH_A     channels of input a (a multiple of SIMD).
//   CH_B     channels of input b (a multiple of SIMD).
//   SIMD     elements per beat, on both inputs and the output (>= 1).
//   A_BITS   bits per element (>= 1), the same on both inputs.
//   NUM_PIX  pixels per frame (>= 1); m_axis_tlast marks a frame's last beat (the inputs' tlast is not used).
// Output through a 2-entry output queue: s_axis_*_tready depend on registers only. Cycles per frame:
// NUM_PIX * (CH_A + CH_B) / SIMD.
`default_nettype none

module gen_concat #(
  parameter int CH_A = 1,
  parameter int CH_B = 1,
  parameter int SIMD = 1,
  parameter int A_BITS = 8,
  parameter int NUM_PIX = 1
) (
  input  wire logic clk,
  input  wire logic rst,
  input  wire logic [SIMD*A_BITS-1:0] s_axis_a_tdata,
  input  wire logic s_axis_a_tvalid,
  output logic s_axis_a_tready,
  input  wire logic [SIMD*A_BITS-1:0] s_axis_b_tdata,
  input  wire logic s_axis_b_tvalid,
  output logic s_axis_b_tready,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire logic s_axis_a_tlast,  // frames are counted internally
  input  wire logic s_axis_b_tlast,
  /* verilator lint_on UNUSEDSIGNAL */
  output logic [SIMD*A_BITS-1:0] m_axis_tdata,
  output logic m_axis_tvalid,
  input  wire logic m_axis_tready,
  output logic m_axis_tlast
);
  localparam int CFA = CH_A / SIMD;  // beats of a per pixel
  localparam int CFB = CH_B / SIMD;  // beats of b per pixel
  localparam int W = SIMD * A_BITS;
  localparam int BW = $clog2(CFA + CFB);

  // ---- elaboration-time checks ----
  if (SIMD < 1) begin : g_bad_simd
    $error("gen_concat: SIMD=%0d, must be >= 1", SIMD);
  end
  if (CH_A < 1 || CH_A % SIMD != 0) begin : g_bad_ch_a
    $error("gen_concat: CH_A=%0d, must be a positive multiple of SIMD=%0d", CH_A, SIMD);
  end
  if (CH_B < 1 || CH_B % SIMD != 0) begin : g_bad_ch_b
    $error("gen_concat: CH_B=%0d, must be a positive multiple of SIMD=%0d", CH_B, SIMD);
  end
  if (A_BITS < 1) begin : g_bad_a_bits
    $error("gen_concat: A_BITS=%0d, must be >= 1", A_BITS);
  end
  if (NUM_PIX < 1) begin : g_bad_num_pix
    $error("gen_concat: NUM_PIX=%0d, must be >= 1", NUM_PIX);
  end

  // ---- output queue: 2 entries, credits reserved and written at `fire` ----
  localparam int OQ_DEPTH = 2, OQ_AW = 1, OQ_CW = OQ_AW + 1;
  logic [W:0] oq_mem [0:OQ_DEPTH-1];
  logic [OQ_AW:0] oq_wp, oq_rp, oq_cr;
  wire oq_pop = m_axis_tvalid && m_axis_tready;
  wire oq_space = (oq_cr != OQ_CW'(OQ_DEPTH));
  assign m_axis_tvalid = (oq_wp != oq_rp);
  assign {m_axis_tlast, m_axis_tdata} = oq_mem[oq_rp[OQ_AW-1:0]];

  logic [BW-1:0] beat;
  wire sel_b = (beat >= BW'(CFA));
  wire last_beat = (beat == BW'(CFA + CFB - 1));
  logic last_pix;
  assign s_axis_a_tready = !sel_b && oq_space;
  assign s_axis_b_tready = sel_b && oq_space;
  wire fire = oq_space && (sel_b ? s_axis_b_tvalid : s_axis_a_tvalid);
  wire [W-1:0] din = sel_b ? s_axis_b_tdata : s_axis_a_tdata;
  always_ff @(posedge clk)
    if (rst) beat <= '0;
    else if (fire) beat <= last_beat ? '0 : beat + BW'(1);
  if (NUM_PIX > 1) begin : g_pix
    localparam int PW = $clog2(NUM_PIX);
    logic [PW-1:0] pix;
    assign last_pix = (pix == PW'(NUM_PIX - 1));
    always_ff @(posedge clk)
      if (rst) pix <= '0;
      else if (fire && last_beat) pix <= last_pix ? '0 : pix + PW'(1);
  end else begin : g_pix1
    assign last_pix = 1'b1;
  end
  wire dlast = last_beat && last_pix;

  always_ff @(posedge clk) begin
    if (fire) oq_mem[oq_wp[OQ_AW-1:0]] <= {dlast, din};
    if (rst) begin
      oq_wp <= '0;
      oq_rp <= '0;
      oq_cr <= '0;
    end else begin
      if (fire) oq_wp <= oq_wp + OQ_CW'(1);
      if (oq_pop) oq_rp <= oq_rp + OQ_CW'(1);
      oq_cr <= oq_cr + OQ_CW'(fire) - OQ_CW'(oq_pop);
    end
  end
endmodule

`default_nettype wire
