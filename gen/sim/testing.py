"""pytest helpers shared by tests/test_kernel_*.py."""

from __future__ import annotations

import functools

from .harness import Case, failures, frame_period, lint_cases, run_cases
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


def kernel_tests(kind: str, default_cases, slow_cases, n_default: int | None = None) -> dict:
    """The standard test set of one kernel over its case lists, for tests/test_kernel_<kind>.py to put into its
    namespace (`globals().update(kernel_tests(...))`): lint; bit-exact with the cycles per frame within 5 % of the
    analytic count without back-pressure; bit-exact under random sink back-pressure and source gaps; and
    (`-m slow`) both over the slow sweep. `default_cases` / `slow_cases` are `cached` factories; the cocotb top is
    `tb_<kind>` (`tb_<kind>_slow` for the sweep). `n_default`: lint each of that many default cases on its own
    (a kernel rendered per instance); None: lint the cases together, as the build's wrapper instantiates them (a
    library module, gen/rtl/lib)."""
    import pytest  # a test helper: the package itself does not need pytest

    top = f"tb_{kind}"

    def lint_all(top_name: str, cases: list[Case]) -> None:
        if n_default is None:
            lint_cases(top_name, cases)
        else:
            for c in cases:
                lint_rendered(c.rendered)

    if n_default is None:
        def lint():
            lint_all(top, default_cases())
    else:
        @pytest.mark.parametrize("idx", range(n_default))
        def lint(idx):
            lint_rendered(default_cases()[idx].rendered)

    def exact_and_cycles():
        """No back-pressure: bit-exact; cycles per frame within 5% of the analytic count."""
        check_sim(top, default_cases(), cycles_tol=0.05, tag="nobp")

    def backpressure():
        """Random sink back-pressure and source gaps: still bit-exact."""
        check_sim(top, default_cases(), bp=0.5, gap=0.3, seed=9, tag="bp")

    @pytest.mark.slow
    @pytest.mark.parametrize("mode", ["nobp", "bp"])
    def sweep_slow(mode):
        cases = slow_cases()
        lint_all(f"{top}_slow", cases)
        if mode == "nobp":
            check_sim(f"{top}_slow", cases, cycles_tol=0.05, tag=mode)
        else:
            check_sim(f"{top}_slow", cases, bp=0.6, gap=0.4, seed=29, tag=mode)

    tests = {"lint": lint, "exact_and_cycles": exact_and_cycles, "backpressure": backpressure,
             "sweep_slow": sweep_slow}
    for what, fn in tests.items():
        fn.__name__ = fn.__qualname__ = f"test_{kind}_{what}"
    return {fn.__name__: fn for fn in tests.values()}


def shards(n: int, k: int) -> list[list[int]]:
    """Split range(n) into k interleaved shards."""
    return [list(range(i, n, k)) for i in range(k)]


def cached(fn):
    """Cache a case-list factory per process (pytest-xdist workers each build their own, deterministically)."""
    return functools.lru_cache(maxsize=None)(fn)


__all__ = ["check_sim", "kernel_tests", "shards", "cached", "lint_rendered", "Case"]
