"""Per-layer figures of a Design (op, shapes, bit widths, MACs, weights) and the report files."""

from __future__ import annotations

import json

import numpy as np

from .ir import layers as L
from .ir.design import Design


def layer_rows(design: Design) -> list[dict]:
    rows = []
    for layer in design.layers:
        out = design.tensors[layer.output]
        ins = [design.tensors[i] for i in layer.inputs]
        macs = 0
        wbits = 0
        params = 0
        detail = ""
        if isinstance(layer, (L.Conv, L.Dense)):
            w = layer.weight
            macs = int(np.prod(out.shape[:2]) * w.size)
            lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
            from .ir.tensor import bits_for_range
            wbits = 1 if ins[0].bipolar and set(np.unique(w)) <= {-1, 1} else bits_for_range(lo, hi)[0]
            params = w.size * wbits
            if isinstance(layer, L.Conv):
                detail = (f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]} p{list(layer.pads)}"
                          + (f" g{layer.groups}" if layer.groups > 1 else ""))
        elif isinstance(layer, L.Requant):
            if layer.thresholds is None:
                params = 2 * layer.mult.size * out.bits
                detail = "exact integer rescale (mult/offset)"
            else:
                params = layer.thresholds.size * ins[0].bits
                detail = f"{layer.thresholds.shape[1]} thr/ch" + (" (mult/shift)" if layer.uses_multshift else "")
        elif isinstance(layer, (L.MaxPool, L.AvgPool)):
            detail = f"k{layer.kernel[0]}x{layer.kernel[1]} s{layer.stride[0]}"
        elif isinstance(layer, L.Upsample):
            detail = f"x{layer.factor[0]}"
        elif isinstance(layer, L.LabelSelect):
            detail = f"top-{layer.k}"
        rows.append({
            "layer": layer.name, "op": layer.op, "onnx": ",".join(layer.onnx_nodes),
            "in_shape": [list(t.shape) for t in ins], "out_shape": list(out.shape),
            "in_type": [t.dtype_name() for t in ins], "out_type": out.dtype_name(),
            "weight_bits": wbits, "macs": macs, "param_bits": int(params), "detail": detail,
        })
    return rows


def totals(rows) -> dict:
    return {"macs": sum(r["macs"] for r in rows), "param_bits": sum(r["param_bits"] for r in rows),
            "layers": len(rows)}


def write_markdown(design: Design, board: dict, rows: list[dict]) -> str:
    t = totals(rows)
    lines = [f"# {design.name} - gen report", "",
             f"- flavour: {design.flavour}", f"- board: {board['name']} ({board['part']}, {board['clock_mhz']} MHz)",
             f"- input: {design.tensors[design.input].shape} {design.tensors[design.input].dtype_name()}",
             f"- output: {design.tensors[design.output].shape} {design.tensors[design.output].dtype_name()}",
             f"- total MACs per frame: {t['macs']:,}", f"- parameter memory: {t['param_bits']:,} bits "
             f"({t['param_bits'] / 8 / 1024:.1f} KiB)", ""]
    if design.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in design.notes] + [""]
    lines += ["## Layers", "",
              "| layer | op | ONNX nodes | input | output | in type | out type | W bits | MACs | param bits | detail |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['op']} | {r['onnx']} | {' + '.join(str(tuple(s)) for s in r['in_shape'])} "
                     f"| {tuple(r['out_shape'])} | {', '.join(r['in_type'])} | {r['out_type']} | "
                     f"{r['weight_bits'] or ''} | {r['macs']:,} | {r['param_bits']:,} | {r['detail']} |")
    return "\n".join(lines) + "\n"


def write_json(design: Design, board: dict, rows) -> str:
    return json.dumps({"design": design.name, "board": board["name"], "layers": rows, "totals": totals(rows),
                       "notes": design.notes}, indent=1)
