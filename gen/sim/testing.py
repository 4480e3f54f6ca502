"""pytest helpers shared by tests/test_kernel_*.py."""

from __future__ import annotations

import functools

from .harness import Case, failures, frame_period, run_cases
from .runner import lint_rendered


def check_sim(top: str, cases: list[Case], *, bp: float = 0.0, gap: float = 0.0, cycles_tol: float | None = None,
              select: list[int] | None = None, seed: int = 1, tag: str = "run") -> dict:
    """Simulate the selected cases (all in one build) and assert bit-exact outputs; with `cycles_tol`, also the
    steady-state cycles per frame against the analytic count."""
    res = run_cases(top, cases, bp=bp, gap=gap, select=select, seed=seed, tag=tag)
    errs = failures(res)
    if cycles_tol is not None:
        for k in (range(len(cases)) if select is None else select):
            c = cases[k]
            r = res[c.name]
            if not r.get("ok") or not c.cycles_per_frame:
                continue
            port, frames0 = next(iter(c.phases[0]["out"].items()))
            per = frame_period(r["frame_ends"][port][:len(frames0)])
            r["period"] = per
            if per is None:
                continue
            if abs(per - c.cycles_per_frame) > cycles_tol * c.cycles_per_frame:
                errs.append(f"{c.name}: {per:.1f} cycles per frame, analytic {c.cycles_per_frame} "
                            f"(> {cycles_tol:.0%} off) {c.info}")
    assert not errs, f"{len(errs)} failing case(s) [log: {res['_meta']['log']}]:\n" + "\n".join(errs)
    return res


def shards(n: int, k: int) -> list[list[int]]:
    """Split range(n) into k interleaved shards."""
    return [list(range(i, n, k)) for i in range(k)]


def cached(fn):
    """Cache a case-list factory per process (pytest-xdist workers each build their own, deterministically)."""
    return functools.lru_cache(maxsize=None)(fn)


__all__ = ["check_sim", "shards", "cached", "lint_rendered", "Case"]
