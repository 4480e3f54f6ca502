"""Compressor tree: the sum of many small unsigned values (an mvu PE's group sums) with LUT6 counters.

A binary adder tree spends most of its LUTs in its first, narrow levels (a 2-bit adder: two LUTs to save one
bit). Counters do better on 6-input LUTs: a 6:3 counter (the number of ones among six bits of equal weight, one
LUT per output bit) turns six bits into three - one LUT per bit removed. The plan works on columns of bits by
weight (Dadda style): each stage counts every column's bits in groups of (at most) six until every column
holds at most two bits, then one carry-chain adder adds the two remaining rows. Everything is unsigned: the sum
is bounded, so a bit of weight >= 2^out_w is always 0 and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import ubits

MAX_IN = 6  # counter inputs: one LUT6 per output bit


@dataclass
class Stage:
    """One counting stage: `counters` [(input bit indices of the previous vector, weight)], and the stage's output
    vector as sources [("k", counter index, bit) or ("b", previous bit index)] with their weights."""
    counters: list = field(default_factory=list)
    src: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    reg: bool = False


@dataclass
class Plan:
    n_in: int
    in_w: int
    out_w: int
    stages: list
    rows: tuple  # final two rows: per row, [(weight, bit index of the last vector)]
    luts: int    # counter LUTs (one per counter output bit)

    @property
    def regs(self) -> int:
        """Registered stages, the final adder (always registered) included."""
        return sum(1 for s in self.stages if s.reg) + 1

    @property
    def reg_bits(self) -> int:
        return sum(len(s.src) for s in self.stages if s.reg) + self.out_w


def plan(n_in: int, in_w: int, out_w: int, reg_every: int = 2) -> Plan:
    """Sum of `n_in` unsigned `in_w`-bit values into `out_w` bits (>= the bits of the largest possible sum)."""
    weights = [b for _ in range(n_in) for b in range(in_w)]
    stages: list[Stage] = []
    luts = 0
    while True:
        cols: dict[int, list[int]] = {}
        for i, w in enumerate(weights):
            cols.setdefault(w, []).append(i)
        if max(len(c) for c in cols.values()) <= 2:
            break
        st = Stage()
        for w in sorted(cols):
            bits = cols[w]
            if len(bits) <= 2:
                for i in bits:
                    st.src.append(("b", i))
                    st.weights.append(w)
                continue
            k = 0
            while len(bits) - k >= 3:
                n = min(MAX_IN, len(bits) - k)  # (a remainder of 1-2 bits passes through)
                grp = bits[k:k + n]
                k += n
                m = len(st.counters)
                st.counters.append((grp, w))
                for j in range(ubits(n)):
                    if w + j < out_w:
                        st.src.append(("k", m, j))
                        st.weights.append(w + j)
                luts += sum(1 for j in range(ubits(n)) if w + j < out_w)
            for i in bits[k:]:
                st.src.append(("b", i))
                st.weights.append(w)
        st.reg = (len(stages) % reg_every) == reg_every - 1
        stages.append(st)
        weights = st.weights
    rows: tuple = ([], [])
    seen: dict[int, int] = {}
    for i, w in enumerate(weights):
        r = seen.get(w, 0)
        rows[r].append((w, i))
        seen[w] = r + 1
    return Plan(n_in, in_w, out_w, stages, rows, luts)


def counter_tables() -> dict[int, str]:
    """Sized hex literals POP<n> (n = 3..6): entry x at bits [x*ubits(n) +: ubits(n)] = the ones in x."""
    out = {}
    for n in range(3, MAX_IN + 1):
        w = ubits(n)
        v = 0
        for x in range(1 << n):
            v |= bin(x).count("1") << (x * w)
        out[n] = f"{(1 << n) * w}'h{v:x}"
    return out


def counter_init(n: int, j: int) -> int:
    """LUT6 INIT of bit j of the number of ones among inputs I0..I(n-1) (the others tied to 0)."""
    from .luts import bit_column
    return bit_column([bin(x).count("1") for x in range(1 << n)], j)


def verilog(p: Plan, src: str, dst: str, indent: str = "    ", prims: bool = True) -> str:
    """Per-PE Verilog: the values are the `in_w`-bit slices of vector `src` (value i at [i*in_w +: in_w]); the
    sum is registered into `dst` (declared here, `out_w` bits). Counters are LUT6 primitives, one per output bit
    that can be non-zero (what synthesis maps them to anyway; as instances Verilator builds them in a fraction
    of the time a table function takes), or with prims=False the functions pop<n>(x) (see counter_tables)."""
    L = []
    prev = src
    for s, st in enumerate(p.stages):
        cur = f"cs{s + 1}"
        used: dict[int, int] = {}
        for x in st.src:
            if x[0] == "k":
                used[x[1]] = max(used.get(x[1], 0), x[2] + 1)
        for m, (grp, _) in enumerate(st.counters):
            n = len(grp)
            if not prims:
                bits = ", ".join(f"{prev}[{i}]" for i in reversed(grp))
                L.append(f"wire [{ubits(n) - 1}:0] k{s + 1}_{m} = pop{n}({{{bits}}});")
                continue
            nb = used.get(m, 0)
            if not nb:
                continue
            L.append(f"wire [{nb - 1}:0] k{s + 1}_{m};  // ones among {n} bits")
            pins = [f"{prev}[{i}]" for i in grp] + ["1'b0"] * (MAX_IN - n)
            conn = ", ".join(f".I{i}({q})" for i, q in enumerate(pins))
            for j in range(nb):
                L.append(f"LUT6 #(.INIT(64'h{counter_init(n, j):016x})) u_k{s + 1}_{m}_{j} ({conn}, "
                         f".O(k{s + 1}_{m}[{j}]));")
        parts = [f"k{s + 1}_{x[1]}[{x[2]}]" if x[0] == "k" else f"{prev}[{x[1]}]" for x in st.src]
        cat = "{" + ", ".join(reversed(parts)) + "}"
        L.append(f"logic [{len(st.src) - 1}:0] {cur};  // stage {s + 1}: {len(st.counters)} counters")
        if st.reg:
            L.append(f"always_ff @(posedge clk) {cur} <= {cat};")
        else:
            L.append(f"assign {cur} = {cat};")
        prev = cur

    def row(r):
        if not r:
            return f"{p.out_w}'d0"
        return " | ".join(f"({p.out_w}'({prev}[{i}]) << {w})" for w, i in r)
    L.append(f"logic [{p.out_w - 1}:0] {dst};")
    L.append(f"always_ff @(posedge clk) {dst} <= ({row(p.rows[0])}) + ({row(p.rows[1])});")
    return "\n".join(indent + ln for ln in L)


def evaluate(p: Plan, values) -> int:
    """The plan's sum of `values` computed bit by bit (for tests)."""
    vec = [(v >> b) & 1 for v in values for b in range(p.in_w)]
    for st in p.stages:
        ks = [sum(vec[i] for i in grp) for grp, _ in st.counters]
        vec = [(ks[x[1]] >> x[2]) & 1 if x[0] == "k" else vec[x[1]] for x in st.src]
    return sum(vec[i] << w for r in p.rows for w, i in r) & ((1 << p.out_w) - 1)
