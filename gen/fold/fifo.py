"""FIFO depths in front of every node input, by analysis of the kernels' production / consumption patterns.

Three effects are sized:

1. Fork / join skew (deadlock). A stream consumed by several nodes (a fork) whose branches meet again at a
   join (add, concat, the output adapter) advances only while every branch accepts. A branch through a sliding
   window generator holds ~(K-1) rows before its first output; the join consumes both branches beat by beat.
   If the short branch cannot hold what the fork must send before the long branch delivers, the fork stops,
   the long branch never fills its window and the join waits forever. For every join input we compute, per
   output pixel j of the join, how many pixels of the fork stream each branch needs (`need` maps composed
   along the branch: swg windows, pooling, upsampling, dense layers needing the whole frame), and give the
   short branch a FIFO of max_j(need_long(j) - need_short(j)) pixels (+ one pixel and a few beats of slack).
   Throughput: besides the pixel lead, the short branch holds what the fork sends (at the steady rate, one
   frame per bottleneck period) while the long branch's kernels turn pixels into output (its latency: time
   per output pixel + pipeline latency per kernel); without it the fork stalls and the join loses rate.
2. Burst absorption (throughput). An mvu with NF > 1 takes a pixel's SF input beats and then replays them
   for (NF - 1) * SF cycles without accepting input; its FIFO holds what the producer delivers meanwhile at
   the steady rate (in-beats per frame / bottleneck period), at most SF beats. A dense layer fed slowly
   (e.g. after a conv whose rate sets the period) needs a deep FIFO here, or its producer stalls for the
   replay every frame. Elsewhere a 2-deep SRL FIFO decouples the handshakes.
3. Window-parallel swg (`_window_gap`). It cannot emit ahead of its output register, so its gaps between
   windows starve a slow consumer and a consumer slower than the stride stalls it: the FIFOs on both sides are
   the smallest that keep the bottleneck rate in a simulation of the pair, down to none between it and an mvu
   (the widest streams of a design).

Depths are rounded to what the fifo kernel implements: <= 32 beats: shift registers (SRL); deeper: a
power-of-two memory + a 4-entry output queue (capacity 2^k + 4), in LUTRAM or block RAM by size.
"""

from __future__ import annotations

import functools

import numpy as np

from ..rtl.common import pow2_at_least

MIN_DEPTH = 2
SRL_MAX = 32
LAT_NODE = 6  # pipeline + FIFO latency of one kernel on a branch (cycles; conservative)


def round_depth(depth: int) -> int:
    """The capacity render_fifo gives for a requested depth (SRL up to 32; else 2^k + 4); 0: no FIFO."""
    if int(depth) == 0:
        return 0
    depth = max(MIN_DEPTH, int(depth))
    if depth <= SRL_MAX:
        return depth
    return pow2_at_least(max(2, depth - 4)) + 4


def _pixels(s) -> int:
    h, w, _ = s.shape
    return int(h * w)


def _node_need(node, out_pix: int, in_idx: int) -> np.ndarray:
    """need[j] = input pixels (of input `in_idx`, raster order) the node needs before output pixel j."""
    k, p = node.kind, node.params
    src = node.inputs[in_idx]
    n_in = _pixels(src)
    j = np.arange(out_pix)
    if k == "swg":
        ih, iw = p["IFM_DIM_H"], p["IFM_DIM_W"]
        ow = p["OFM_DIM_W"]
        pads = tuple(p.get("PADS", (0, 0, 0, 0)))
        oy, ox = j // ow, j % ow
        ry = np.clip(oy * p["STRIDE_H"] - pads[0] + p["K_H"] - 1, 0, ih - 1)
        # the window's last row must be complete up to its last column; rows are written in full
        rx = np.clip(ox * p["STRIDE_W"] - pads[1] + p["K_W"] - 1, 0, iw - 1)
        return np.minimum(ry * iw + rx + 1, n_in)
    if k == "upsample":
        ow = node.output.shape[1]
        fh, fw = p["FACTOR_H"], p["FACTOR_W"]
        iw = p["IFM_DIM_W"]
        return (j // ow // fh) * iw + (j % ow) // fw + 1
    if k in ("mvu", "pool", "label_select") and n_in != out_pix:
        return np.full(out_pix, n_in)
    if k == "pool" and p.get("GLOBAL"):
        return np.full(out_pix, n_in)
    if n_in == out_pix:
        return j + 1
    # any other reshaping kernel: proportional, rounded up (conservative: whole rows)
    return np.minimum(n_in, np.ceil((j + 1) * n_in / out_pix).astype(np.int64) + 1)


class _Needs:
    def __init__(self, graph, cycles=None):
        self.g = graph
        self.memo = {}
        self.lat_memo = {}
        self.cyc = cycles or {}

    def latency(self, tensor: str, fork: str) -> int:
        """Cycles from the fork emitting the pixels that pixel j of `tensor` needs to pixel j appearing (longest
        path): per node its time per output pixel + pipeline and FIFO latency (LAT_NODE)."""
        key = (tensor, fork)
        if key in self.lat_memo:
            return self.lat_memo[key]
        self.lat_memo[key] = 0  # cycle guard
        if tensor == fork:
            return 0
        try:
            prod = self.g.producer(tensor)
        except KeyError:
            return 0
        ups = [self.latency(s.tensor, fork) for s in prod.inputs if self.need(s.tensor, fork) is not None]
        per_px = -(-int(self.cyc.get(prod.name, 0)) // max(1, _pixels(prod.output)))
        res = (max(ups) if ups else 0) + per_px + LAT_NODE
        self.lat_memo[key] = res
        return res

    def need(self, tensor: str, fork: str) -> np.ndarray | None:
        """need[j]: pixels of stream `fork` required before pixel j of stream `tensor` (None: not downstream)."""
        key = (tensor, fork)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = None  # cycle guard
        if tensor == fork:
            s = self._stream(tensor)
            res = np.arange(_pixels(s)) + 1
        else:
            try:
                prod = self.g.producer(tensor)
            except KeyError:
                return None
            res = None
            out_pix = _pixels(prod.output)
            for i, s in enumerate(prod.inputs):
                up = self.need(s.tensor, fork)
                if up is None:
                    continue
                loc = _node_need(prod, out_pix, i)
                v = up[np.clip(loc - 1, 0, len(up) - 1)]
                res = v if res is None else np.maximum(res, v)
        self.memo[key] = res
        return res

    def _stream(self, tensor):
        for n in self.g.nodes:
            if n.output is not None and n.output.tensor == tensor:
                return n.output
        raise KeyError(tensor)

    def ancestors(self, tensor: str, acc=None) -> list[str]:
        """Streams upstream of `tensor` (breadth first, nearest first), `tensor` included."""
        order, seen, frontier = [], set(), [tensor]
        while frontier:
            nxt = []
            for t in frontier:
                if t in seen:
                    continue
                seen.add(t)
                order.append(t)
                try:
                    prod = self.g.producer(t)
                except KeyError:
                    continue
                nxt += [s.tensor for s in prod.inputs]
            frontier = nxt
        return order


@functools.lru_cache(maxsize=4096)
def _pair_interval(real: tuple, emit: tuple, r: float, din: int, c: int, held: int, frames: int = 4) -> float:
    """Cycles per frame, in steady state, of a window-parallel swg and its consumer: the swg steps one padded
    position per cycle (`real` positions take an input pixel, which arrives every `r` cycles into a FIFO of `din`
    pixels; `emit` positions put a window into `held` slots: its output register and the FIFO after it); the
    consumer takes a window whenever it is free and is then busy for `c` cycles."""
    n = len(real)
    t, pos, avail, credit, buf, busy, done = 0, 0, 0, 0.0, 0, 0, []
    taken = 0
    per_frame = sum(emit)
    limit = frames * (n + per_frame * c) * 4 + 1000
    while len(done) < frames and t < limit:
        if buf and t >= busy:  # the consumer takes a window (the same cycle the swg may put one)
            buf -= 1
            busy = t + c
            taken += 1
            if taken % per_frame == 0:
                done.append(t)
        credit += 1.0 / r  # the producer upstream: one pixel every r cycles while the input FIFO has room
        if credit >= 1.0:
            if avail < din:
                avail += 1
            credit -= 1.0
        if (not real[pos] or avail) and (not emit[pos] or buf < held):
            if real[pos]:
                avail -= 1
            if emit[pos]:
                buf += 1
            pos = (pos + 1) % n
        t += 1
    return float(done[-1] - done[-2]) if len(done) >= 2 else float("inf")


def _window_gap(graph, folding, cyc, period, node, idx) -> tuple[int, bool, int] | None:
    """For an input fed by a window-parallel swg: (FIFO depth in windows, whether a direct connection will do,
    the swg's input FIFO depth), else None. The swg walks on through positions that end no window while its
    output register holds one, but it cannot emit ahead, so gaps between windows (row and frame changes) starve
    its consumer, and a consumer slower than the stride stalls the walk, unless windows are buffered. The
    smallest buffer whose simulated rate (_pair_interval, frames back to back) keeps up with the bottleneck
    period is taken: the swg's output register alone (a direct connection: the widest streams of a design; the
    consumer must take the swg's width, be an mvu - its ready is its own state - and be the stream's only
    consumer), or a FIFO of 2, 4, ... 32."""
    s = node.inputs[idx]
    prod = graph.producer(s.tensor)
    ppe, psimd = graph.fold_of(folding, prod.name)
    if prod.kind != "swg" or psimd != prod.wide_simd():
        return None
    p = prod.params
    g = prod.wide_geometry()
    real, emit = g["REAL"], g["EMIT"]
    windows = sum(emit)
    pixels = p["IFM_DIM_H"] * p["IFM_DIM_W"]
    up = graph.producer(prod.inputs[0].tensor)
    r = max(1.0, cyc[up.name] / pixels)
    c = max(1, round(cyc[node.name] / windows))
    pe, simd = graph.fold_of(folding, node.name)
    bpw = max(1, -(-prod.out_lanes(ppe, psimd) // max(1, simd)))  # consumer beats per window
    direct_ok = (node.kind == "mvu" and not node.params.get("DEPTHWISE") and bpw == 1
                 and len(graph.consumers(s.tensor)) == 1)
    target = period * 1.005
    # the swg's input FIFO: 2 deep, or the next frame's first K_H - 1 - PAD_TOP rows and a few pixels, which
    # its walk to the first window takes in one go (held there, the producer delivers them meanwhile)
    deep = max(0, p["K_H"] - 1 - p["PADS"][0]) * p["IFM_DIM_W"] + max(0, p["K_W"] - p["PADS"][1]) + 2
    # (a swg near the bottleneck rate gets the deep one anyway: the producer's own bubbles would cost rate)
    for din in sorted({MIN_DEPTH, deep}) if cyc[prod.name] < 0.9 * period else [deep]:
        if direct_ok and _pair_interval(real, emit, r, din, c, 1) <= target:
            return 0, True, din
        for d in (MIN_DEPTH, 4, 8, 16, SRL_MAX):
            if _pair_interval(real, emit, r, din, c, 1 + d // bpw) <= target:
                return d // bpw, False, din
    return SRL_MAX // bpw, False, deep


def _swg_input_depth(graph, folding, cyc, period, swg) -> int:
    """A window-parallel swg's input FIFO depth, as its consumers' buffering needs it (see _window_gap)."""
    return max([MIN_DEPTH] + [gap[2] for c, i in graph.consumers(swg.output.tensor)
                              if (gap := _window_gap(graph, folding, cyc, period, c, i)) is not None])


def size_fifos(graph, folding: dict) -> dict[str, list[int]]:
    """{node name: [depth per input stream]} (beats of the consumer's input width)."""
    depths: dict[str, list[int]] = {}
    cyc = graph.cycles(folding)
    needs = _Needs(graph, cyc)
    period = max(1, max(cyc.values()))  # steady state: every stream advances one frame per bottleneck period
    why: dict[str, list[str]] = {}
    for n in graph.nodes:
        pe, simd = graph.fold_of(folding, n.name)
        lanes = n.in_lanes(pe, simd)
        d, w = [], []
        for i, s in enumerate(n.inputs):
            depth, reason = MIN_DEPTH, "decoupling"
            bpp = max(1, -(-(s.channels * s.window[0] * s.window[1]) // max(1, lanes[i])))  # beats per pixel
            if n.kind == "mvu" and not n.params.get("DEPTHWISE"):
                nf = n.params["MH"] // pe
                sf = n.params["MW"] // simd
                if nf > 1 and sf > 1:
                    # the mvu takes a pixel's SF beats, then replays them for (NF-1)*SF cycles without accepting
                    # input; the producer (one frame of in-beats per bottleneck period) keeps delivering meanwhile
                    in_beats = -(-(s.channels * s.window[0] * s.window[1] * _pixels(s)) // max(1, lanes[i]))
                    burst = min(sf, -(-(nf - 1) * sf * in_beats // period) + 2)
                    if burst > depth:
                        depth, reason = burst, f"burst (input replayed for {nf - 1} folds of {sf} beats)"
            if n.kind == "swg" and simd == n.wide_simd():
                din = _swg_input_depth(graph, folding, cyc, period, n)
                if din > depth:
                    depth, reason = din, "window-parallel swg: the next frame's first rows"
            gap = _window_gap(graph, folding, cyc, period, n, i)
            if gap is not None and gap[1] and depth == MIN_DEPTH and len(n.inputs) == 1:
                depth, reason = 0, "none: the window generator's output register holds the next window"
            elif gap is not None and gap[0] * bpp > depth:
                depth, reason = gap[0] * bpp, f"window gaps ({gap[0]} windows buffered for the consumer's pace)"
            if len(n.inputs) > 1:
                # join: this input must hold the other inputs' lead over it, measured at the common fork
                for o, so in enumerate(n.inputs):
                    if o == i:
                        continue
                    anc_o = set(needs.ancestors(so.tensor))
                    fork = next((t for t in needs.ancestors(s.tensor) if t in anc_o), None)
                    if fork is None:
                        continue
                    ni, no = needs.need(s.tensor, fork), needs.need(so.tensor, fork)
                    if ni is None or no is None or len(ni) != len(no):
                        continue
                    lead_fork = int(np.max(no - ni))
                    if lead_fork <= 0:
                        continue
                    fork_pix = len(needs.need(fork, fork))
                    # while the longer branch turns the fork's pixels into its output pixel (its latency), the
                    # fork keeps sending at the steady rate (fork_pix per period) into this branch as well
                    lat = needs.latency(so.tensor, fork)
                    lead_fork += -(-lat * fork_pix // period)
                    lead = -(-lead_fork * _pixels(s) // max(1, fork_pix))  # in this stream's pixels
                    need_beats = (lead + 1) * bpp + 4
                    if need_beats > depth:
                        depth, reason = need_beats, f"join skew: {lead} px behind {so.tensor} (fork {fork})"
            d.append(round_depth(depth))
            w.append(reason)
        depths[n.name] = d
        why[n.name] = w
    size_fifos.last_reasons = why
    return depths


def fifo_reasons(graph, folding: dict) -> dict[str, list[str]]:
    size_fifos(graph, folding)
    return size_fifos.last_reasons
