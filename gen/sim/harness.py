"""Test cases (rendered kernel + input frames + golden output frames) and running many of them in one build."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import runner


@dataclass
class Case:
    name: str
    rendered: object                  # gen.rtl.common.Rendered
    phases: list[dict]                # see gen/sim/tb_axis.py
    cycles_per_frame: int | None = None  # analytic steady-state cycles per frame (no back-pressure)
    info: dict = field(default_factory=dict)

    @property
    def streams(self) -> dict:
        return {s.prefix: {"dir": s.direction, "lanes": s.lanes, "bits": s.bits} for s in self.rendered.streams}

    @property
    def n_out_frames(self) -> int:
        return sum(len(fr) for ph in self.phases for fr in ph.get("out", {}).values())


def instance_spec(case: Case, prefix: str, bp: float = 0.0, gap: float = 0.0) -> dict:
    # with back-pressure, also check that stalled outputs hold tvalid/tdata/tlast
    return dict(name=case.name, prefix=prefix, streams=case.streams, bp=bp, gap=gap, phases=case.phases,
                check_protocol=bp > 0)


def lint_cases(top: str, cases: list[Case]) -> str:
    """verilator --lint-only -Wall of one wrapper `top` instantiating every case's kernel (with the library
    modules they use): each instance's parameters elaborate cleanly."""
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory(dir=runner._mkdir(runner.RUNS_ROOT)) as d:
        files = {}
        for c in cases:
            files.update(c.rendered.sources())
        files[f"{top}.sv"] = runner.wrapper(top, [(f"i{k}_", c.rendered) for k, c in enumerate(cases)])
        for f, text in files.items():
            (Path(d) / f).write_text(text)
        return runner.lint([Path(d) / f for f in files], top)


def build_cases(top: str, cases: list[Case]) -> runner.Build:
    return runner.build(top, [(f"i{k}_", c.rendered) for k, c in enumerate(cases)])


def run_cases(top: str, cases: list[Case], *, bp: float = 0.0, gap: float = 0.0, seed: int = 1,
              select: list[int] | None = None, max_cycles: int | None = None, tag: str = "run") -> dict:
    """Build a wrapper of all `cases`, drive the selected ones; returns {case name: instance result}."""
    b = build_cases(top, cases)
    idx = list(range(len(cases))) if select is None else list(select)
    insts = [instance_spec(cases[k], f"i{k}_", bp, gap) for k in idx]
    if max_cycles is None:
        est = max(((cases[k].cycles_per_frame or 1000) + 200) * max(1, cases[k].n_out_frames) for k in idx)
        max_cycles = int(est * (1 + 8 * (bp + gap))) * 3 + 20000
    res = runner.run(b, dict(seed=seed, clock_ns=10, max_cycles=max_cycles, instances=insts), name=tag)
    out = {r["name"]: r for r in res["instances"]}
    out["_meta"] = dict(cycles=res["cycles"], wall_s=res["wall_s"], sim_wall_s=res.get("sim_wall_s"), log=res["log"],
                        build=str(b.dir), build_s=_build_time(b))
    return out


def _build_time(b) -> float | None:
    p = b.dir / "build_time.txt"
    return float(p.read_text()) if p.exists() else None


def failures(results: dict) -> list[str]:
    return [f"{name}: {'; '.join(r.get('errors', []))[:2000]}" for name, r in results.items()
            if name != "_meta" and not r.get("ok")]


def frame_period(ends: list[float]) -> float | None:
    """Steady-state cycles per frame from consecutive frame-end times."""
    if len(ends) < 2:
        return None
    return (ends[-1] - ends[0]) / (len(ends) - 1)
