// gen_dwc: AXI-Stream width converter (static library module of gen, gen/rtl/lib; instantiated by
// gen/rtl/emit.py with named parameters). Identity on the element stream: IN_SIMD -> OUT_SIMD elements of A_BITS
// bits per beat, element i of a beat at tdata[i*A_BITS +: A_BITS], the first element first.
//
// Parameters
//   IN_SIMD   elements per input beat (>= 1).
//   OUT_SIMD  elements per output beat (>= 1).
//   A_BITS    bits per element (>= 1).
//   N_ELEMS   elements per frame (a multiple of IN_SIMD and OUT_SIMD); m_axis_tlast marks every
//             N_ELEMS / OUT_SIMD-th output beat (s_axis_tlast is not used: frames are counted).
// With G = gcd(IN_SIMD, OUT_SIMD), IU = IN_SIMD / G, OU = OUT_SIMD / G, one of three implementations:
//   gather (IU = 1, OU > 1): OU slots of flip-flops with enables, each loading only its own input beat; the
//           full word is offered until taken and the next word's first beat may arrive in the cycle it is taken.
//   split (OU = 1, IU > 1): the input word is held and offered as IU slices, slice 0 first (the word's
//           flip-flops and one slice multiplexer); the next word may arrive as the last slice is taken.
//   shift buffer (otherwise): IU + OU units of G elements, unit 0 leaves first, and a 2-entry output queue.
// Cycles per frame: max(input beats, output beats). s_axis_tready depends on registers and m_axis_tready only.
`default_nettype none

module gen_dwc #(
  parameter int IN_SIMD = 1,
  parameter int OUT_SIMD = 1,
  parameter int A_BITS = 8,
  parameter int N_ELEMS = 1
) (
  input  wire logic clk,
  input  wire logic rst,
  input  wire logic [IN_SIMD*A_BITS-1:0] s_axis_tdata,
  input  wire logic s_axis_tvalid,
  output logic s_axis_tready,
  /* verilator lint_off UNUSEDSIGNAL */
  input  wire logic s_axis_tlast,  // frames are counted internally
  /* verilator lint_on UNUSEDSIGNAL */
  output logic [OUT_SIMD*A_BITS-1:0] m_axis_tdata,
  output logic m_axis_tvalid,
  input  wire logic m_axis_tready,
  output logic m_axis_tlast
);
  function automatic int gcd(input int a, input int b);
    int x, y, t;
    x = a;
    y = b;
    for (int i = 0; i < 64; i++)
      if (y != 0) begin
        t = x % y;
        x = y;
        y = t;
      end
    gcd = x;
  endfunction

  localparam int G = gcd(IN_SIMD, OUT_SIMD);
  localparam int IU = IN_SIMD / G;          // input beat = IU units of G elements
  localparam int OU = OUT_SIMD / G;         // output beat = OU units
  localparam int CAPU = IU + OU;            // shift buffer units
  localparam int UW = G * A_BITS;           // bits per unit
  localparam int IW = IN_SIMD * A_BITS;
  localparam int OW = OUT_SIMD * A_BITS;
  localparam int CNTW = $clog2(CAPU + 1);
  localparam int NBEATS = N_ELEMS / OUT_SIMD;  // output beats per frame
  localparam bit GATHER = (IU == 1) && (OU > 1);
  localparam bit SPLIT = (OU == 1) && (IU > 1);

  // ---- elaboration-time checks ----
  if (IN_SIMD < 1) begin : g_bad_in_simd
    $error("gen_dwc: IN_SIMD=%0d, must be >= 1", IN_SIMD);
  end
  if (OUT_SIMD < 1) begin : g_bad_out_simd
    $error("gen_dwc: OUT_SIMD=%0d, must be >= 1", OUT_SIMD);
  end
  if (A_BITS < 1) begin : g_bad_a_bits
    $error("gen_dwc: A_BITS=%0d, must be >= 1", A_BITS);
  end
  if (N_ELEMS < 1 || N_ELEMS % IN_SIMD != 0 || N_ELEMS % OUT_SIMD != 0) begin : g_bad_n_elems
    $error("gen_dwc: N_ELEMS=%0d, must be a positive multiple of IN_SIMD=%0d and OUT_SIMD=%0d", N_ELEMS, IN_SIMD,
           OUT_SIMD);
  end

  // ---- output beat counter (tlast) ----
  logic out_fire, olast;
  if (NBEATS > 1) begin : g_obeat
    localparam int BW = $clog2(NBEATS);
    logic [BW-1:0] obeat;
    assign olast = (obeat == BW'(NBEATS - 1));
    always_ff @(posedge clk)
      if (rst) obeat <= '0;
      else if (out_fire) obeat <= olast ? '0 : obeat + BW'(1);
  end else begin : g_obeat1
    assign olast = 1'b1;
  end

  if (GATHER) begin : g_gather
    // ---- gather: OU input beats fill slots 0..OU-1 of the output word ----
    logic [IW-1:0] slot [0:OU-1];
    logic [CNTW-1:0] cnt;  // slots filled
    wire full = (cnt == CNTW'(OU));
    assign out_fire = full && m_axis_tready;
    assign s_axis_tready = !full || m_axis_tready;
    wire in_fire = s_axis_tvalid && s_axis_tready;
    wire [CNTW-1:0] wslot = full ? '0 : cnt;
    always_ff @(posedge clk) begin
      for (int k = 0; k < OU; k++)
        if (in_fire && wslot == CNTW'(k)) slot[k] <= s_axis_tdata;
      if (rst) cnt <= '0;
      else cnt <= (out_fire ? '0 : cnt) + (in_fire ? CNTW'(1) : CNTW'(0));
    end
    assign m_axis_tvalid = full;
    assign m_axis_tlast = olast;
    for (genvar k = 0; k < OU; k++) begin : g_out
      assign m_axis_tdata[k*IW +: IW] = slot[k];
    end
  end else if (SPLIT) begin : g_split
    // ---- split: the held input word offered as IU slices ----
    localparam int XW = $clog2(IU);
    logic [IW-1:0] word;
    logic have;
    logic [XW-1:0] idx;
    wire last_slice = (idx == XW'(IU - 1));
    assign out_fire = have && m_axis_tready;
    assign s_axis_tready = !have || (m_axis_tready && last_slice);
    wire in_fire = s_axis_tvalid && s_axis_tready;
    always_ff @(posedge clk) begin
      if (in_fire) word <= s_axis_tdata;
      if (rst) begin
        have <= 1'b0;
        idx <= '0;
      end else begin
        have <= in_fire || (have && !(out_fire && last_slice));
        if (out_fire) idx <= last_slice ? '0 : idx + XW'(1);
      end
    end
    assign m_axis_tvalid = have;
    assign m_axis_tlast = olast;
    if (2 ** XW == IU) begin : g_pow2
      assign m_axis_tdata = word[idx*OW +: OW];
    end else begin : g_mux
      always_comb begin
        m_axis_tdata = word[OW-1:0];
        for (int k = 1; k < IU; k++)
          if (idx == XW'(k)) m_axis_tdata = word[k*OW +: OW];
      end
    end
  end else begin : g_shift
    // ---- shift buffer of CAPU units + output queue (2 entries, credits reserved and written at out_fire) ----
    localparam int OQ_DEPTH = 2, OQ_AW = 1, OQ_CW = OQ_AW + 1;
    logic [OW:0] oq_mem [0:OQ_DEPTH-1];
    logic [OQ_AW:0] oq_wp, oq_rp, oq_cr;
    wire oq_pop = m_axis_tvalid && m_axis_tready;
    wire oq_space = (oq_cr != OQ_CW'(OQ_DEPTH));
    assign m_axis_tvalid = (oq_wp != oq_rp);
    assign {m_axis_tlast, m_axis_tdata} = oq_mem[oq_rp[OQ_AW-1:0]];

    logic [CAPU*UW-1:0] buf_q;  // CAPU units of G elements, unit 0 leaves first
    logic [CNTW-1:0] cnt;       // valid units in buf_q
    assign out_fire = (cnt >= CNTW'(OU)) && oq_space;
    wire [CNTW-1:0] keep = out_fire ? cnt - CNTW'(OU) : cnt;
    assign s_axis_tready = (keep <= CNTW'(CAPU - IU));
    wire in_fire = s_axis_tvalid && s_axis_tready;
    logic [CAPU*UW-1:0] shifted, merged;
    always_comb begin
      shifted = out_fire ? (CAPU*UW)'(buf_q >> (OU*UW)) : buf_q;
      merged = shifted;
      if (in_fire)
        for (int p = 0; p <= CAPU - IU; p++)
          if (keep == CNTW'(p)) merged[p*UW +: IU*UW] = s_axis_tdata;
    end
    always_ff @(posedge clk) begin
      buf_q <= merged;
      if (rst) cnt <= '0;
      else cnt <= keep + (in_fire ? CNTW'(IU) : CNTW'(0));
    end
    wire [OW-1:0] dout = buf_q[OW-1:0];

    always_ff @(posedge clk) begin
      if (out_fire) oq_mem[oq_wp[OQ_AW-1:0]] <= {olast, dout};
      if (rst) begin
        oq_wp <= '0;
        oq_rp <= '0;
        oq_cr <= '0;
      end else begin
        if (out_fire) oq_wp <= oq_wp + OQ_CW'(1);
        if (oq_pop) oq_rp <= oq_rp + OQ_CW'(1);
        oq_cr <= oq_cr + OQ_CW'(out_fire) - OQ_CW'(oq_pop);
      end
    end
  end
endmodule

`default_nettype wire
