"""Folding: PE / SIMD per hardware node for a target frame rate, or the fastest design that fits the board.

    folding = fold_design(design, graph, board, fps=None, fold_file=None, clock_mhz=None)

The result is the plain dict design.json keeps: {node name: {"pe": P, "simd": S, "fifo": [depth per input]}}
(an mvu may add "ram_style": "block" for its weight memory)
plus one bookkeeping entry "_fold" (target, achieved cycles and fps, the limiting node and why, the
resource estimate against the board). gen.hw.HwGraph.fold_of / check_folding read the node entries only.

Algorithm (FINN's balancing, made resource-aware): nodes whose SIMD is tied (a depthwise-order swg and its
pool / depthwise mvu) fold as one group. For a budget of T cycles per frame every group takes its cheapest
legal (PE, SIMD) whose cycles are <= T (cheapest: LUT, FF, BRAM18 and DSP estimates, each as a fraction of the
board); divisibility holds by construction (legal values are divisors). With --fps, T = clock / fps; without,
T is lowered step by step over the cycle counts the groups can reach (bisection) while the estimate (kernels,
width converters, FIFOs, shell) stays within the board's capacity times a margin. A fold file fixes any node.
Afterwards an swg feeding an mvu takes the mvu's SIMD where legal and no slower (no width converter needed),
and LUT-ROM weight memories move to block RAM while that lowers the board's highest utilisation (a LUT-bound
design spends spare block RAM; FINN's ram_style per layer, chosen instead of left to the vendor tool).
"""

from __future__ import annotations

import math

from ..boards import clock_mhz_of
from ..errors import GenError
from ..schema import INT, has_type, read_yaml, type_name, want
from . import estimate as E
from .fifo import size_fifos

MARGIN = dict(lut=0.85, ff=0.85, bram18=0.95, dsp=0.95)
META = "_fold"
RAM_STYLES = ("auto", "block", "distributed", "registers")
# a LUT-ROM weight memory moves to block RAM only when that saves at least this many LUTs per RAMB18: shallow
# ROMs are nearly free in LUTs (synthesis shares identical columns; <=32-word columns pack two per LUT6_2) and would
# waste most of a RAMB18, while a 32-word packed ROM saves ~18 LUTs per RAMB18. Moves are also made only while they
# lower the highest utilisation of the board, so block RAM is spent only where LUTs bind and block RAM is spare.
MIN_LUT_PER_BRAM18 = 16.0
LUT_BOUND = 0.5  # ... and only in a design using at least this share of its LUT budget
MAX_FIFO_DEPTH = 1 << 20  # a fold file's FIFO depth: more than a million words fits no Zynq-7000's block RAM


# ------------------------------------------------------------------------------------------------ fold file

def read_fold_file(path, graph) -> dict:
    """YAML {node: {pe: P, simd: S}} (either key optional; also fifo, ram_style) -> validated overrides. `path` may
    also be the dict itself (tests)."""
    data = path if isinstance(path, dict) else read_yaml(path, "fold file")
    where = f"fold file {path}" if not isinstance(path, dict) else "fold overrides"
    if not isinstance(data, dict):
        raise GenError(f"{where}: expected a mapping {{node: {{pe: P, simd: S}}}}, got {type_name(data)}")
    names = [n.name for n in graph.nodes]
    return {name: _fold_entry(graph, names, name, v, where) for name, v in data.items()}


def _fold_entry(graph, names, name, v, where) -> dict:
    """One node's overrides, each value type- and range-checked (booleans are not integers)."""
    if name not in names:
        raise GenError(f"{where}: unknown node {name!r}. Nodes: {', '.join(names)}")
    if not isinstance(v, dict) or not set(v) <= {"pe", "simd", "fifo", "ram_style"}:
        raise GenError(f"{where}: node '{name}': expected {{pe: P, simd: S}} (optional fifo, ram_style), got {v!r}")
    node = graph.node(name)
    rs = v.get("ram_style")
    if rs is not None and (node.kind != "mvu" or rs not in RAM_STYLES):
        raise GenError(f"{where}: node '{name}' ({node.kind}): ram_style={rs!r}: only an mvu's weight memory has "
                       f"one, and it is one of {', '.join(RAM_STYLES)}")
    pe = want(v, "pe", INT, where, f"{name}.", required=False)
    if pe is not None and pe not in node.legal_pe():
        raise GenError(f"{where}: node '{name}' ({node.kind}): PE={pe!r} is not legal; legal PE values: "
                       f"{node.legal_pe()}")
    simd = want(v, "simd", INT, where, f"{name}.", required=False)
    if simd is not None:
        legal = node.legal_simd(pe) if pe is not None else node.legal_simd()
        if simd not in legal:
            raise GenError(f"{where}: node '{name}' ({node.kind}): SIMD={simd!r} is not legal; legal SIMD values"
                           f"{f' at PE={pe}' if pe is not None else ''}: {legal}")
    if "fifo" in v:
        f = v["fifo"]
        if not (isinstance(f, list) and len(f) == len(node.inputs)
                and all(has_type(x, INT) and 1 <= x <= MAX_FIFO_DEPTH for x in f)):
            raise GenError(f"{where}: node '{name}': fifo must be a list of {len(node.inputs)} integer depths from 1 "
                           f"to {MAX_FIFO_DEPTH} (one per input), got {f!r}")
    return {k: v[k] for k in ("pe", "simd", "fifo", "ram_style") if v.get(k) is not None}


# ------------------------------------------------------------------------------------------------ groups

def _groups(graph) -> list[list]:
    parent = {n.name: n.name for n in graph.nodes}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    for n in graph.nodes:
        if n.tie is not None and n.tie in parent:
            parent[find(n.name)] = find(n.tie)
    groups: dict[str, list] = {}
    for n in graph.nodes:
        groups.setdefault(find(n.name), []).append(n)
    return list(groups.values())


def _cost(res: dict, cap: dict) -> float:
    return sum(res[q] / cap[q] for q in E.QUANTITIES if cap[q] > 0)


class _Group:
    """Tied nodes (shared SIMD) and their candidate foldings: [(cycles, cost, {name: (pe, simd)}, estimate)]."""

    def __init__(self, nodes, design, cap, fixed, rt):
        self.nodes = nodes
        self.names = [n.name for n in nodes]
        self.cands = []
        mvus = [n for n in nodes if n.kind == "mvu"]
        simds = None
        for n in nodes:
            if n.kind == "mvu" and n.params.get("DEPTHWISE"):
                legal = set(n.legal_pe())
            else:
                legal = set(n.legal_simd())
            simds = legal if simds is None else simds & legal
        simds = sorted(simds or {1})
        for name in self.names:
            f = fixed.get(name, {})
            if "simd" in f:
                simds = [s for s in simds if s == f["simd"]]
        for s in simds:
            pe_opts = [[1]]
            if mvus:
                pe_opts = []
                for m in mvus:
                    if m.params.get("DEPTHWISE"):
                        pe_opts.append([s])
                    else:
                        pe_opts.append([p for p in m.legal_pe() if "pe" not in fixed.get(m.name, {})
                                        or p == fixed[m.name]["pe"]])
            for combo in _product(pe_opts):
                fold, res, cyc = {}, dict(lut=0.0, ff=0.0, bram18=0, dsp=0), 0
                for n in nodes:
                    pe = combo[mvus.index(n)] if n in mvus else 1
                    fold[n.name] = (pe, s)
                    res = E.add(res, E.node_estimate(n, pe, s, design, rt))
                    cyc = max(cyc, n.cycles(pe, s))
                self.cands.append((cyc, _cost(res, cap), fold, res))
        if not self.cands:
            raise GenError(f"folding of {', '.join(self.names)}: the fold file leaves no legal (PE, SIMD)")
        self.cands.sort(key=lambda c: (c[0], c[1]))
        self.min_cycles = self.cands[0][0]

    def pick(self, budget: float):
        """Cheapest candidate with cycles <= budget (else the fastest)."""
        ok = [c for c in self.cands if c[0] <= budget]
        if not ok:
            return min(self.cands, key=lambda c: (c[0], c[1]))
        return min(ok, key=lambda c: (c[1], c[0]))


def _product(lists):
    out = [[]]
    for options in lists:
        out = [o + [x] for o in out for x in options]
    return out


# ------------------------------------------------------------------------------------------------ fold

def _assemble(groups, budget, fixed_fifo):
    folding = {}
    for g in groups:
        c = g.pick(budget)
        for name, (pe, s) in c[2].items():
            folding[name] = {"pe": int(pe), "simd": int(s)}
    return folding


def _align_swg(graph, folding, budget, fixed=None):
    """An swg feeding an mvu (not tied, SIMD not fixed by the fold file) takes the mvu's SIMD where legal and
    not slower than `budget`."""
    for n in graph.nodes:
        if n.kind != "swg" or n.tie is not None or "simd" in (fixed or {}).get(n.name, {}):
            continue
        for c, _ in graph.consumers(n.output.tensor):
            if c.kind != "mvu":
                continue
            want = folding[c.name]["simd"]
            if want in n.legal_simd() and want != folding[n.name]["simd"] and n.cycles(1, want) <= budget:
                folding[n.name]["simd"] = want


def _utilisation(total, cap, margin):
    return max(total[q] / (cap[q] * margin[q]) for q in E.QUANTITIES if cap[q] > 0)


def _weights_to_bram(graph, folding, design, est, cap, margin, fixed, rt) -> bool:
    """Balance LUT against block RAM: move constant LUT-ROM weight memories into block RAM, best LUT saving per
    RAMB18 first, while each move lowers the highest utilisation of the board (so a LUT-bound design uses its
    spare block RAM and a BRAM-bound one is left alone)."""
    if rt:
        return False
    total = est["total"]
    moves = []
    for n in graph.nodes:
        if n.kind != "mvu" or "ram_style" in fixed.get(n.name, {}):
            continue
        pe, simd = graph.fold_of(folding, n.name)
        now = est["nodes"][n.name]["kernel"]
        blk = E.node_estimate(n, pe, simd, design, rt, "block")
        d_bram, d_lut = blk["bram18"] - now["bram18"], now["lut"] - blk["lut"]
        if d_bram > 0 and d_lut >= MIN_LUT_PER_BRAM18 * d_bram:
            moves.append((d_lut / d_bram, n.name, {q: blk[q] - now[q] for q in E.QUANTITIES}))
    moved = False
    # best saving per RAMB18 first (savings within 10% of each other: the bigger one first); a move that would
    # raise the highest utilisation is skipped, a smaller one may still fit
    for _, name, delta in sorted(moves, key=lambda m: (-round(math.log(m[0], 1.1)), m[2]["lut"])):
        after = E.add(total, delta)
        if total["lut"] < LUT_BOUND * cap["lut"] * margin["lut"]:
            break
        if _utilisation(after, cap, margin) >= _utilisation(total, cap, margin):
            continue
        folding[name]["ram_style"] = "block"
        total, moved = after, True
    return moved


def _finish(graph, folding, design, fixed):
    depths = size_fifos(graph, folding)
    for name, f in folding.items():
        f["fifo"] = list(fixed.get(name, {}).get("fifo") or depths.get(name, []))
    return E.graph_estimate(graph, folding, design)


def _fits(total, cap, margin=MARGIN):
    return all(total[q] <= cap[q] * margin[q] for q in E.QUANTITIES)


def resource_table(est: dict, cap: dict) -> str:
    rows = [f"  {'node':28s} {'LUT':>8s} {'FF':>8s} {'BRAM18':>7s} {'DSP':>5s}"]
    for name, r in est["nodes"].items():
        t = r["total"]
        rows.append(f"  {name:28s} {t['lut']:8.0f} {t['ff']:8.0f} {t['bram18']:7.0f} {t['dsp']:5.0f}")
    s = est["shell"]
    rows.append(f"  {'(shell)':28s} {s['lut']:8.0f} {s['ff']:8.0f} {s['bram18']:7.0f} {s['dsp']:5.0f}")
    t = est["total"]
    rows.append(f"  {'total':28s} {t['lut']:8.0f} {t['ff']:8.0f} {t['bram18']:7.0f} {t['dsp']:5.0f}")
    rows.append(f"  {'board':28s} {cap['lut']:8.0f} {cap['ff']:8.0f} {cap['bram18']:7.0f} {cap['dsp']:5.0f}")
    rows.append("  " + " ".join(f"{q}: {100 * t[q] / cap[q]:.0f}%" for q in E.QUANTITIES if cap[q]))
    return "\n".join(rows)


def _over(total, cap, margin=MARGIN):
    return [q for q in E.QUANTITIES if total[q] > cap[q] * margin[q]]


def fold_design(design, graph, board: dict, fps: float | None = None, fold_file=None,
                clock_mhz: float | None = None, margin: dict | None = None) -> dict:
    """Choose PE/SIMD (and FIFO depths) for every node of `graph` (a gen.hw.HwGraph). See the module doc."""
    margin = dict(MARGIN, **(margin or {}))
    clock = clock_mhz_of(board, requested=clock_mhz)
    cap = E.board_capacity(board)
    fixed = read_fold_file(fold_file, graph) if fold_file else {}
    rt = bool(getattr(graph, "runtime_weights", False))
    groups = [_Group(g, design, cap, fixed, rt) for g in _groups(graph)]
    floor = max(g.min_cycles for g in groups)  # the fastest any folding can go
    floor_node = max(groups, key=lambda g: g.min_cycles)

    def build(budget):
        f = _assemble(groups, budget, fixed)
        _align_swg(graph, f, max(budget, floor), fixed)
        for name, fx in fixed.items():
            if "ram_style" in fx:
                f[name]["ram_style"] = fx["ram_style"]
        est = _finish(graph, f, design, fixed)
        if _weights_to_bram(graph, f, design, est, cap, margin, fixed, rt):
            est = E.graph_estimate(graph, f, design)
        return f, est

    values = sorted({c[0] for g in groups for c in g.cands if c[0] >= floor})
    target = None if not fps else clock * 1e6 / float(fps)
    if target is not None:
        # the slowest budget meeting the target (cheapest), or the floor when the target is out of reach
        start = max([v for v in values if v <= target] or [values[0]])
        values = [v for v in values if v >= start]
    # bisection over budgets: the smallest that fits (fits() is monotone up to estimation noise)
    lo, hi = 0, len(values) - 1
    f_hi, est_hi = build(values[-1])
    if not _fits(est_hi["total"], cap, margin):
        over = _over(est_hi["total"], cap, margin)
        raise GenError(
            f"{design.name if design is not None else graph.name} does not fit {board.get('name', 'the board')} "
            f"even at the smallest folding{' allowed by the fold file' if fixed else ''} (over: "
            f"{', '.join(over)}; margins {', '.join(f'{q} {100 * margin[q]:.0f}%' for q in over)}):\n"
            f"{resource_table(est_hi, cap)}\n"
            f"What to change: fewer weight / activation bits (smaller weight memories and multipliers), fewer or "
            f"narrower layers, {'less parallelism in the fold file, ' if fixed else ''}or a bigger board "
            f"(--board).")
    best = (values[-1], f_hi, est_hi)
    while lo <= hi:
        mid = (lo + hi) // 2
        f, est = build(values[mid])
        if _fits(est["total"], cap, margin):
            best = (values[mid], f, est)
            hi = mid - 1
        else:
            lo = mid + 1
    budget, folding, est = best
    cyc = graph.cycles(folding)
    bn = max(cyc, key=lambda k: cyc[k])
    achieved = cyc[bn]
    if target is not None and achieved <= target:
        limited = None
        why = f"target {fps:g} fps met"
    elif achieved <= floor:
        limited = bn
        why = (f"{bn} is at its maximum parallelism ({achieved:,} cycles per frame"
               + (", fixed by the fold file" if bn in fixed else "") + ")")
    else:
        limited = bn
        nxt = [v for v in values if v < budget]
        over = _over(build(nxt[-1])[1]["total"], cap, margin) if nxt else []
        why = (f"{bn} ({achieved:,} cycles per frame) cannot go faster within the board's resources"
               + (f" ({', '.join(over)} would exceed {', '.join(f'{100 * margin[q]:.0f}%' for q in over)} of "
                  f"the board)" if over else ""))
    folding[META] = dict(
        clock_mhz=clock, target_fps=float(fps) if fps else None,
        target_cycles=int(math.ceil(target)) if target else None, cycles=int(achieved), bottleneck=bn,
        fps=clock * 1e6 / achieved, limited_by=limited, reason=why, fixed=sorted(fixed),
        min_cycles=int(floor), min_cycles_node=floor_node.names[0], margin=margin,
        estimate={"total": est["total"], "capacity": cap,
                  "nodes": {k: v["total"] for k, v in est["nodes"].items()}})
    return folding


def fold_summary(folding: dict) -> dict:
    return dict(folding.get(META) or {})


def strip_meta(folding: dict) -> dict:
    return {k: v for k, v in folding.items() if k != META}
