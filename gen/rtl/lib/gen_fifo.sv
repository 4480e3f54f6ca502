// gen_fifo: AXI-Stream FIFO (static library module of gen, gen/rtl/lib; instantiated by gen/rtl/emit.py with
// named parameters). tdata and tlast pass through unchanged, in order.
//
// Parameters
//   WIDTH      tdata bits (>= 1); tlast travels beside them.
//   DEPTH      requested depth in beats (>= 0). 0: no storage, the ports are wired through (count = 0).
//   STYLE      "srl": DEPTH x (WIDTH + 1) shift registers read at address count-1 (SRL16/SRLC32 friendly);
//                     capacity DEPTH.
//              "ram": a memory of RAM_DEPTH = 2^ceil(log2(max(2, DEPTH - 4))) entries plus a 4-entry output queue
//                     (first-word fall-through over the memory's read latency); capacity RAM_DEPTH + 4.
//              "auto": "srl" when DEPTH <= 32, else "ram" (gen/rtl/elementwise.py render_fifo's rule).
//   RAM_STYLE  the memory's ram_style in "ram" style (UG901 values): "registers", "distributed" (LUTRAM),
//              "block" (BRAM), or "auto": registers when RAM_DEPTH <= 2 or <= 64 bits, distributed when
//              RAM_DEPTH <= 64 or <= 8192 bits, block beyond (gen/rtl/common.py ram_style_for). Unused by "srl".
//   CNTW       width of `count` (derived: bits of the capacity; do not override).
//
// Ports: clk, rst (synchronous, active high), s_axis_* in, m_axis_* out, `count` = the fill level (beats
// accepted and not yet delivered). s_axis_tready depends on registers only.
`default_nettype none

module gen_fifo #(
  parameter int WIDTH = 8,
  parameter int DEPTH = 16,
  parameter bit [8*11-1:0] STYLE = "auto",
  parameter bit [8*11-1:0] RAM_STYLE = "auto",
  parameter int CNTW = (DEPTH < 1) ? 1 :
                       (STYLE == "srl" || (STYLE == "auto" && DEPTH <= 32)) ? $clog2(DEPTH + 1) :
                       $clog2((2 ** $clog2((DEPTH - 4 > 2) ? DEPTH - 4 : 2)) + 4 + 1)
) (
  input  wire logic clk,
  input  wire logic rst,
  input  wire logic [WIDTH-1:0] s_axis_tdata,
  input  wire logic s_axis_tvalid,
  output logic s_axis_tready,
  input  wire logic s_axis_tlast,
  output logic [WIDTH-1:0] m_axis_tdata,
  output logic m_axis_tvalid,
  input  wire logic m_axis_tready,
  output logic m_axis_tlast,
  output logic [CNTW-1:0] count
);
  localparam bit SRL = (STYLE == "srl") || (STYLE == "auto" && DEPTH <= 32);
  localparam int RAM_DEPTH = 2 ** $clog2((DEPTH - 4 > 2) ? DEPTH - 4 : 2);
  localparam int RAW = $clog2(RAM_DEPTH);
  localparam int RAM_BITS = RAM_DEPTH * (WIDTH + 1);
  localparam bit [8*11-1:0] RSTYLE = (RAM_STYLE != "auto") ? RAM_STYLE :
                      (RAM_DEPTH <= 2 || RAM_BITS <= 64) ? "registers" :
                      (RAM_DEPTH <= 64 || RAM_BITS <= 8192) ? "distributed" : "block";
  localparam int CAPACITY = (DEPTH < 1) ? 0 : SRL ? DEPTH : RAM_DEPTH + 4;

  // ---- elaboration-time checks ----
  if (WIDTH < 1) begin : g_bad_width
    $error("gen_fifo: WIDTH=%0d, must be >= 1", WIDTH);
  end
  if (DEPTH < 0) begin : g_bad_depth
    $error("gen_fifo: DEPTH=%0d, must be >= 0", DEPTH);
  end
  if (STYLE != "auto" && STYLE != "srl" && STYLE != "ram") begin : g_bad_style
    $error("gen_fifo: STYLE=\"%0s\", must be \"auto\", \"srl\" or \"ram\"", STYLE);
  end
  if (RAM_STYLE != "auto" && RAM_STYLE != "registers" && RAM_STYLE != "distributed" && RAM_STYLE != "block")
  begin : g_bad_ram_style
    $error("gen_fifo: RAM_STYLE=\"%0s\", must be \"auto\", \"registers\", \"distributed\" or \"block\"", RAM_STYLE);
  end
  if (CNTW != ((CAPACITY < 1) ? 1 : $clog2(CAPACITY + 1))) begin : g_bad_cntw
    $error("gen_fifo: CNTW=%0d, must be %0d for a capacity of %0d (leave it at its default)", CNTW,
           (CAPACITY < 1) ? 1 : $clog2(CAPACITY + 1), CAPACITY);
  end

  if (DEPTH < 1) begin : g_wire
    // ---- DEPTH 0: a direct connection ----
    assign m_axis_tdata = s_axis_tdata;
    assign m_axis_tlast = s_axis_tlast;
    assign m_axis_tvalid = s_axis_tvalid;
    assign s_axis_tready = m_axis_tready;
    assign count = '0;
    wire _unused_clk_rst = &{1'b0, clk, rst};
  end else if (SRL) begin : g_srl
    // ---- shift registers: writes shift every entry, the head is read at address count-1 ----
    logic [CNTW-1:0] cnt;
    assign s_axis_tready = (cnt != CNTW'(DEPTH));
    assign m_axis_tvalid = (cnt != CNTW'(0));
    wire push = s_axis_tvalid && s_axis_tready;
    wire pop = m_axis_tvalid && m_axis_tready;
    wire [WIDTH:0] din = {s_axis_tlast, s_axis_tdata};
    wire [WIDTH:0] dout;
    assign {m_axis_tlast, m_axis_tdata} = dout;
    // one shift register per bit, read at a variable tap (SRL16E / SRLC32E)
    if (DEPTH > 1) begin : g_deep
      localparam int HW = $clog2(DEPTH);
      wire [HW-1:0] head = HW'(cnt - CNTW'(1));
      for (genvar b = 0; b <= WIDTH; b++) begin : g_bit
        logic [DEPTH-1:0] sr;
        always_ff @(posedge clk)
          if (push) sr <= {sr[DEPTH-2:0], din[b]};
        assign dout[b] = sr[head];
      end
    end else begin : g_one
      for (genvar b = 0; b <= WIDTH; b++) begin : g_bit
        logic sr;
        always_ff @(posedge clk)
          if (push) sr <= din[b];
        assign dout[b] = sr;
      end
    end
    always_ff @(posedge clk) begin
      if (rst) cnt <= '0;
      else cnt <= cnt + CNTW'(push) - CNTW'(pop);
    end
    assign count = cnt;
  end else begin : g_ram
    // ---- memory + output queue (credits reserved at read, written one cycle later) ----
    localparam int OQ_DEPTH = 4, OQ_AW = 2, OQ_CW = OQ_AW + 1, RCW = RAW + 1;
    logic [WIDTH:0] oq_mem [0:OQ_DEPTH-1];
    logic [OQ_AW:0] oq_wp, oq_rp, oq_cr;
    wire oq_pop = m_axis_tvalid && m_axis_tready;
    wire oq_space = (oq_cr != OQ_CW'(OQ_DEPTH));
    assign m_axis_tvalid = (oq_wp != oq_rp);
    assign {m_axis_tlast, m_axis_tdata} = oq_mem[oq_rp[OQ_AW-1:0]];

    logic [RAW-1:0] wp, rp;
    logic [RAW:0] ram_cnt;
    assign s_axis_tready = (ram_cnt != RCW'(RAM_DEPTH));
    wire push = s_axis_tvalid && s_axis_tready;
    wire rd = (ram_cnt != RCW'(0)) && oq_space;
    logic rd_v;
    logic [WIDTH:0] rd_q;
    // the memory, one branch per ram_style (synthesis attributes take constants only)
    if (RSTYLE == "block") begin : g_block
      (* ram_style = "block" *) logic [WIDTH:0] ram [0:RAM_DEPTH-1];
      always_ff @(posedge clk) begin
        if (push) ram[wp] <= {s_axis_tlast, s_axis_tdata};
        if (rd) rd_q <= ram[rp];
      end
    end else if (RSTYLE == "distributed") begin : g_distributed
      (* ram_style = "distributed" *) logic [WIDTH:0] ram [0:RAM_DEPTH-1];
      always_ff @(posedge clk) begin
        if (push) ram[wp] <= {s_axis_tlast, s_axis_tdata};
        if (rd) rd_q <= ram[rp];
      end
    end else begin : g_registers
      (* ram_style = "registers" *) logic [WIDTH:0] ram [0:RAM_DEPTH-1];
      always_ff @(posedge clk) begin
        if (push) ram[wp] <= {s_axis_tlast, s_axis_tdata};
        if (rd) rd_q <= ram[rp];
      end
    end
    always_ff @(posedge clk) begin
      rd_v <= rst ? 1'b0 : rd;
      if (rst) begin
        wp <= '0;
        rp <= '0;
        ram_cnt <= '0;
      end else begin
        if (push) wp <= wp + RAW'(1);
        if (rd) rp <= rp + RAW'(1);
        ram_cnt <= ram_cnt + RCW'(push) - RCW'(rd);
      end
    end
    assign count = CNTW'(ram_cnt) + CNTW'(oq_cr);

    always_ff @(posedge clk) begin
      if (rd_v) oq_mem[oq_wp[OQ_AW-1:0]] <= rd_q;
      if (rst) begin
        oq_wp <= '0;
        oq_rp <= '0;
        oq_cr <= '0;
      end else begin
        if (rd_v) oq_wp <= oq_wp + OQ_CW'(1);
        if (oq_pop) oq_rp <= oq_rp + OQ_CW'(1);
        oq_cr <= oq_cr + OQ_CW'(rd) - OQ_CW'(oq_pop);
      end
    end
  end
endmodule

`default_nettype wire
