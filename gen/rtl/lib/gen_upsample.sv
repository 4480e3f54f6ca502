// gen_upsample: nearest-neighbour upsampling by integer factors (static library module of gen, gen/rtl/lib;
// instantiated by gen/rtl/emit.py with named parameters); gen/golden/ops.py upsample(x, (FACTOR_H, FACTOR_W)):
// IFM_DIM_H x IFM_DIM_W x IFM_CH -> (IFM_DIM_H * FACTOR_H) x (IFM_DIM_W * FACTOR_W) x IFM_CH, NHWC order, SIMD
// elements per beat. One input row (IFM_DIM_W * IFM_CH / SIMD beats) is kept and replayed.
//
// Parameters
//   IFM_CH     channels (a multiple of SIMD).
//   SIMD       elements per beat (>= 1).
//   A_BITS     bits per element (>= 1).
//   IFM_DIM_H  input height (>= 1).
//   IFM_DIM_W  input width (>= 1).
//   FACTOR_H   vertical factor (>= 1).
//   FACTOR_W   horizontal factor (>= 1).
//   RAM_STYLE  the row buffer's ram_style (UG901 values): "registers", "distributed" (LUTRAM), "block" (BRAM), or
//              "auto": gen/rtl/common.py ram_style_for(ROWLEN * SIMD * A_BITS bits, ROWLEN words).
// m_axis_tlast marks a frame's last output beat (s_axis_tlast is not used: frames are counted). Output through a
// 4-entry output queue: s_axis_tready depends on registers only. Cycles per frame: the output beats.
`default_nettype none

module gen_upsample #(
  parameter int IFM_CH = 1,
  parameter int SIMD = 1,
  parameter int A_BITS = 8,
  parameter int IFM_DIM_H = 1,
  parameter int IFM_DIM_W = 1,
  parameter int FACTOR_H = 2,
  parameter int FACTOR_W = 2,
  parameter bit [8*11-1:0] RAM_STYLE = "auto"
) (
  input  wire logic clk,
  input  wire logic rst,
  input  wire logic [SIMD*A_BITS-1:0] s_axis_tdata,
  input  wire logic s_axis_tvalid,
  output logic s_axis_tready,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire logic s_axis_tlast,  // frames are counted internally
  /* verilator lint_on UNUSEDSIGNAL */
  output logic [SIMD*A_BITS-1:0] m_axis_tdata,
  output logic m_axis_tvalid,
  input  wire logic m_axis_tready,
  output logic m_axis_tlast
);
  localparam int CF = IFM_CH / SIMD;           // beats per pixel
  localparam int W = SIMD * A_BITS;
  localparam int ROWLEN = IFM_DIM_W * CF;      // row buffer words
  localparam int AW = (ROWLEN > 1) ? $clog2(ROWLEN) : 1;
  localparam int ROW_BITS = ROWLEN * W;
  localparam bit [8*11-1:0] RSTYLE = (RAM_STYLE != "auto") ? RAM_STYLE :
                                     (ROWLEN <= 2 || ROW_BITS <= 64) ? "registers" :
                                     (ROWLEN <= 64 || ROW_BITS <= 8192) ? "distributed" : "block";

  // ---- elaboration-time checks ----
  if (SIMD < 1) begin : g_bad_simd
    $error("gen_upsample: SIMD=%0d, must be >= 1", SIMD);
  end
  if (IFM_CH < 1 || IFM_CH % SIMD != 0) begin : g_bad_ifm_ch
    $error("gen_upsample: IFM_CH=%0d, must be a positive multiple of SIMD=%0d", IFM_CH, SIMD);
  end
  if (A_BITS < 1) begin : g_bad_a_bits
    $error("gen_upsample: A_BITS=%0d, must be >= 1", A_BITS);
  end
  if (IFM_DIM_H < 1 || IFM_DIM_W < 1) begin : g_bad_ifm_dim
    $error("gen_upsample: IFM_DIM_H=%0d, IFM_DIM_W=%0d, must be >= 1", IFM_DIM_H, IFM_DIM_W);
  end
  if (FACTOR_H < 1 || FACTOR_W < 1) begin : g_bad_factor
    $error("gen_upsample: FACTOR_H=%0d, FACTOR_W=%0d, must be >= 1", FACTOR_H, FACTOR_W);
  end
  if (RAM_STYLE != "auto" && RAM_STYLE != "registers" && RAM_STYLE != "distributed" && RAM_STYLE != "block")
  begin : g_bad_ram_style
    $error("gen_upsample: RAM_STYLE=\"%0s\", must be \"auto\", \"registers\", \"distributed\" or \"block\"",
           RAM_STYLE);
  end

  // ---- output queue: 4 entries, credits reserved at issue, written one cycle later ----
  localparam int OQ_DEPTH = 4, OQ_AW = 2, OQ_CW = OQ_AW + 1;
  logic [W:0] oq_mem [0:OQ_DEPTH-1];
  logic [OQ_AW:0] oq_wp, oq_rp, oq_cr;
  wire oq_pop = m_axis_tvalid && m_axis_tready;
  wire oq_space = (oq_cr != OQ_CW'(OQ_DEPTH));
  assign m_axis_tvalid = (oq_wp != oq_rp);
  assign {m_axis_tlast, m_axis_tdata} = oq_mem[oq_rp[OQ_AW-1:0]];

  // ---- position counters, outermost first: input row iy, row repeat ry, input column ix, column repeat rx,
  //      channel fold cf; a counter of one position is a constant 0 ----
  localparam int IYW = (IFM_DIM_H > 1) ? $clog2(IFM_DIM_H) : 1;
  localparam int RYW = (FACTOR_H > 1) ? $clog2(FACTOR_H) : 1;
  localparam int IXW = (IFM_DIM_W > 1) ? $clog2(IFM_DIM_W) : 1;
  localparam int RXW = (FACTOR_W > 1) ? $clog2(FACTOR_W) : 1;
  localparam int CFW = (CF > 1) ? $clog2(CF) : 1;
  logic [IYW-1:0] iy;
  logic [RYW-1:0] ry;
  logic [IXW-1:0] ix;
  logic [RXW-1:0] rx;
  logic [CFW-1:0] cf;
  wire last_iy = (iy == IYW'(IFM_DIM_H - 1));
  wire last_ry = (ry == RYW'(FACTOR_H - 1));
  wire last_ix = (ix == IXW'(IFM_DIM_W - 1));
  wire last_rx = (rx == RXW'(FACTOR_W - 1));
  wire last_cf = (cf == CFW'(CF - 1));
  wire take_in = (ry == RYW'(0)) && (rx == RXW'(0));
  assign s_axis_tready = take_in && oq_space;
  wire issue = oq_space && (!take_in || s_axis_tvalid);
  wire frame_last = last_iy && last_ry && last_ix && last_rx && last_cf;
  if (IFM_DIM_H > 1) begin : g_iy
    always_ff @(posedge clk)
      if (rst) iy <= '0;
      else if (issue && last_ry && last_ix && last_rx && last_cf) iy <= last_iy ? '0 : iy + IYW'(1);
  end else begin : g_iy1
    assign iy = '0;
  end
  if (FACTOR_H > 1) begin : g_ry
    always_ff @(posedge clk)
      if (rst) ry <= '0;
      else if (issue && last_ix && last_rx && last_cf) ry <= last_ry ? '0 : ry + RYW'(1);
  end else begin : g_ry1
    assign ry = '0;
  end
  if (IFM_DIM_W > 1) begin : g_ix
    always_ff @(posedge clk)
      if (rst) ix <= '0;
      else if (issue && last_rx && last_cf) ix <= last_ix ? '0 : ix + IXW'(1);
  end else begin : g_ix1
    assign ix = '0;
  end
  if (FACTOR_W > 1) begin : g_rx
    always_ff @(posedge clk)
      if (rst) rx <= '0;
      else if (issue && last_cf) rx <= last_rx ? '0 : rx + RXW'(1);
  end else begin : g_rx1
    assign rx = '0;
  end
  if (CF > 1) begin : g_cf
    always_ff @(posedge clk)
      if (rst) cf <= '0;
      else if (issue) cf <= last_cf ? '0 : cf + CFW'(1);
  end else begin : g_cf1
    assign cf = '0;
  end

  // ---- the row buffer: written when a beat is taken in, read at every issue ----
  wire [AW-1:0] baddr;
  if (ROWLEN > 1) begin : g_baddr
    wire [AW-1:0] col = (IFM_DIM_W > 1) ? ((CF > 1) ? AW'(ix) * AW'(CF) : AW'(ix)) : AW'(0);
    assign baddr = col + ((CF > 1) ? AW'(cf) : AW'(0));
  end else begin : g_baddr1
    assign baddr = 1'b0;
  end
  logic [W-1:0] in_q, rbuf_q;
  logic v1, from_in, t1;
  // one branch per ram_style (synthesis attributes take constants only)
  if (RSTYLE == "block") begin : g_block
    (* ram_style = "block" *) logic [W-1:0] rbuf [0:ROWLEN-1];
    always_ff @(posedge clk) begin
      if (issue && take_in) rbuf[baddr] <= s_axis_tdata;
      if (issue) rbuf_q <= rbuf[baddr];
    end
  end else if (RSTYLE == "distributed") begin : g_distributed
    (* ram_style = "distributed" *) logic [W-1:0] rbuf [0:ROWLEN-1];
    always_ff @(posedge clk) begin
      if (issue && take_in) rbuf[baddr] <= s_axis_tdata;
      if (issue) rbuf_q <= rbuf[baddr];
    end
  end else begin : g_registers
    (* ram_style = "registers" *) logic [W-1:0] rbuf [0:ROWLEN-1];
    always_ff @(posedge clk) begin
      if (issue && take_in) rbuf[baddr] <= s_axis_tdata;
      if (issue) rbuf_q <= rbuf[baddr];
    end
  end
  always_ff @(posedge clk) begin
    if (issue) begin
      in_q <= s_axis_tdata;
      from_in <= take_in;
      t1 <= frame_last;
    end
    v1 <= rst ? 1'b0 : issue;
  end
  wire [W-1:0] dout = from_in ? in_q : rbuf_q;

  always_ff @(posedge clk) begin
    if (v1) oq_mem[oq_wp[OQ_AW-1:0]] <= {t1, dout};
    if (rst) begin
      oq_wp <= '0;
      oq_rp <= '0;
      oq_cr <= '0;
    end else begin
      if (v1) oq_wp <= oq_wp + OQ_CW'(1);
      if (oq_pop) oq_rp <= oq_rp + OQ_CW'(1);
      oq_cr <= oq_cr + OQ_CW'(issue) - OQ_CW'(oq_pop);
    end
  end
endmodule

`default_nettype wire
