"""Real-world export families (issue 14): how many models of each family x flavour convert and verify.

usage: .venv/bin/python bench/families.py [--seeds 8] [--frames 16] [--family NAME]

For each family, the random models of its kinds (tests/modelgen, `--seeds` seeds per kind) and the real exports
committed under tests/data/exports/<dir>/ (made by tests/exports/make_*.py with the real tools) are loaded,
lowered and checked against the reference executor (`gen check`'s `check`) on `--frames` frames each.
Per family x flavour it reports: models converted / tried, values compared, unexplained mismatches (must be 0),
near-tie rate (proven near-ties / values compared on float-defined layers), and the refusals' first lines.
Writes bench/results/families.json and families.md. The RTL column is filled from the slow RTL tests' figures
(`make -C OUT/sim sim`, 32+ frames under back-pressure) quoted in the README, not run here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "results"
EXPORTS = REPO / "tests" / "data" / "exports"

# family -> (title, {flavour: [(generator, kind)]}, [export folders under tests/data/exports])
def _families():
    import tests.modelgen as M

    def std(flavour, kinds):
        return [({"qonnx": M.qonnx_model, "qdq": M.qdq_model, "qop": M.qop_model}[flavour], k) for k in kinds]

    def per_flavour(gen, kinds_of):
        return {fl: [(lambda k, rng, fl=fl: gen(fl, k, rng), k) for k in ks] for fl, ks in kinds_of.items()}

    return {
        "1-avgpool": ("float average pools / means between quantisers",
                      {"qonnx": std("qonnx", ["reducemean"]),
                       "qdq": std("qdq", ["reducemean", "avgpool", "globalavgpool"]),
                       "qop": std("qop", ["reducemean", "floatpool", "avgpool", "globalavgpool"])}, ["avgpool"]),
        "2-brevitas-qcdq": ("Brevitas QCDQ layout patterns", {"qdq": std("qdq", ["qcdq", "qcdq_layout"])},
                            ["brevitas"]),
        "3-channels-last": ("channels-last QONNX (QKeras / from_keras, qonnx channels-last ops)",
                            {"qonnx": [(M.channels_last_model, k) for k in M.CHANNELS_LAST_KINDS]
                             + [(M.qonnx_channels_last_model, k) for k in M.QONNX_CHANNELS_LAST_KINDS]},
                            ["channels_last"]),
        "4-input-grid": ("inputs on a non-integer grid", {"qonnx": std("qonnx", ["bipolar_input", "scaled_input"])},
                         []),
        "5-concat": ("Concat of differently quantised inputs",
                     per_flavour(M.concat_model, {fl: list(M.CONCAT_KINDS) for fl in ("qonnx", "qdq", "qop")}),
                     ["concat"]),
        "6-bipolar-out": ("binarized outputs, arg-max over non-standard scores",
                          per_flavour(M.bipolar_out_model, M.BIPOLAR_OUT_KINDS), ["bipolar"]),
    }


FAMILY_KEYS = ["1-avgpool", "2-brevitas-qcdq", "3-channels-last", "4-input-grid", "5-concat", "6-bipolar-out"]


def _check_model(model, flavour: str, name: str, frames: int, seed: int) -> dict:
    """Lower + check one model; a refusal (GenError) is recorded with its first line."""
    from gen.errors import GenError
    from gen.frontend import Loaded, lower, prepare
    from gen.golden.check import check, sample_inputs
    try:
        m = prepare(model, flavour)
        d = lower(Loaded(m, flavour, name, None))
    except GenError as e:
        return {"converted": False, "error": str(e).splitlines()[0]}
    x = sample_inputs(d, frames, np.random.default_rng(seed), m)
    rep = check(d, m, x)
    compared = sum(s.compared for s in rep.layers.values())
    ties = sum(s.near_ties for s in rep.layers.values())
    return {"converted": True, "compared": compared, "near_ties": ties, "unexplained": rep.unexplained,
            "argmax_agree": rep.argmax_agree, "argmax_total": rep.argmax_total}


def _export_models(folder: str):
    from gen.frontend import detect_flavour, read_model
    for p in sorted((EXPORTS / folder).glob("*.onnx")):
        m = read_model(p)
        yield detect_flavour(m), p.stem, m


def run_family(family: tuple, seeds: int, frames: int) -> dict:
    _, kinds, folders = family
    rows = defaultdict(list)
    for flavour, gens in kinds.items():
        for gen, kind in gens:
            for s in range(seeds):
                gm = gen(kind, np.random.default_rng(5000 + s))
                rows[flavour].append({"model": f"{kind}/{s}", **_check_model(gm.model, flavour, kind, frames, s)})
    for folder in folders:
        for flavour, name, m in _export_models(folder):
            rows[flavour].append({"model": f"export:{name}", **_check_model(m, flavour, name, frames, 0)})
    return rows


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["converted"]]
    compared = sum(r["compared"] for r in ok)
    ties = sum(r["near_ties"] for r in ok)
    return {"tried": len(rows), "converted": len(ok), "exports": sum(r["model"].startswith("export:") for r in rows),
            "compared": compared, "unexplained": sum(r["unexplained"] for r in ok),
            "near_tie_rate": ties / compared if compared else 0.0, "near_ties": ties,
            "refusals": sorted({r["error"] for r in rows if not r["converted"]})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--family", choices=FAMILY_KEYS)
    a = ap.parse_args(argv)
    families = _families()
    result = {}
    for key in ([a.family] if a.family else FAMILY_KEYS):
        t0 = time.time()
        rows = run_family(families[key], a.seeds, a.frames)
        result[key] = {fl: {**summarise(r), "rows": r} for fl, r in rows.items()}
        print(f"{key}: {time.time() - t0:.0f} s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "families.json").write_text(json.dumps(result, indent=1))
    lines = [f"Issue 14 families: random models ({a.seeds} seeds per kind) + committed real exports, {a.frames} "
             "frames each, golden vs reference (`bench/families.py`).", "",
             "| family | flavour | converted / tried | of which real exports | values compared | unexplained | "
             "near-tie rate |", "|---|---|---|---|---|---|---|"]
    for key, per in result.items():
        for fl, s in per.items():
            lines.append(f"| {key} {families[key][0]} | {fl} | {s['converted']} / {s['tried']} | {s['exports']} | "
                         f"{s['compared']:,} | {s['unexplained']} | {100 * s['near_tie_rate']:.4f} % |")
    refusals = [(k, fl, e) for k, per in result.items() for fl, s in per.items() for e in s["refusals"]]
    if refusals:
        lines += ["", "Refusals:", ""] + [f"- {k} {fl}: {e}" for k, fl, e in refusals]
    (OUT / "families.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if any(s["unexplained"] for per in result.values() for s in per.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
