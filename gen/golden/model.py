"""Execute a Design on integer streams: the golden model every RTL simulation is compared with."""

from __future__ import annotations

import numpy as np

from ..ir import layers as L
from ..ir.design import Design
from ..ir.elementwise import chain_f32, op_from_json
from . import ops


def to_ir_layout(x: np.ndarray, layout: dict) -> np.ndarray:
    """ONNX-layout array (N, *shape) -> IR (N, H, W, C) via the tensor's {perm, shape} layout."""
    perm = layout["perm"]
    n = x.shape[0]
    ir_shape = layout["ir_shape"]
    tshape = [ir_shape[p] for p in perm]
    inv = np.argsort(perm)
    return x.reshape([n] + tshape).transpose([0] + [1 + i for i in inv])


def from_ir_layout(x: np.ndarray, layout: dict) -> np.ndarray:
    n = x.shape[0]
    return x.transpose([0] + [1 + p for p in layout["perm"]]).reshape([n] + list(layout["shape"]))


def encode_input(design: Design, x: np.ndarray) -> np.ndarray:
    """Float model input (ONNX layout, batch first) -> integer codes (N, H, W, C), exactly as the reference."""
    inp = design.layers[0]
    t = design.tensors[inp.output]
    layout = dict(inp.graph_layout, ir_shape=t.shape)
    xf = np.asarray(x, dtype=np.float32)
    xi = to_ir_layout(xf.reshape((xf.shape[0],) + tuple(layout["shape"])), layout)
    chain = [op_from_json(o) if isinstance(o, dict) else o for o in inp.chain]
    codes = chain_f32(chain, xi, axis=-1)
    return codes.astype(np.int64)


def run_layer(layer: L.Layer, xs: list[np.ndarray]) -> np.ndarray:
    if isinstance(layer, L.Conv):
        return ops.conv(xs[0], layer.weight, layer.stride, layer.pads, layer.groups, layer.pad_value,
                        layer.dilation, layer.bias)
    if isinstance(layer, L.Dense):
        return ops.dense(xs[0], layer.weight, layer.bias)
    if isinstance(layer, L.Requant):
        if layer.uses_multshift:
            return ops.requant_multshift(xs[0], layer.mult, layer.shift, layer.offset, layer.out_lo, layer.out_hi)
        codes = ops.requant_thresholds(xs[0], layer.thresholds, layer.negate, layer.out_lo)
        if layer.out_lo == -1 and layer.out_hi == 1 and layer.thresholds.shape[1] == 1:
            codes = 2 * codes + 1  # bipolar: count 0 / 1 -> -1 / +1
        return codes
    if isinstance(layer, L.MaxPool):
        return ops.maxpool(xs[0], layer.kernel, layer.stride, layer.pads)
    if isinstance(layer, L.AvgPool):
        return ops.pool_sum(xs[0], layer.kernel, layer.stride, layer.pads, layer.pad_value)
    if isinstance(layer, L.Add):
        return ops.add(xs[0], xs[1], layer.ka, layer.kb)
    if isinstance(layer, L.Concat):
        return ops.concat(xs)
    if isinstance(layer, L.Upsample):
        return ops.upsample(xs[0], layer.factor)
    if isinstance(layer, L.LabelSelect):
        return ops.label_select(xs[0], layer.k).reshape(xs[0].shape[0], 1, 1, layer.k)
    raise TypeError(f"no golden function for {type(layer).__name__}")


def run(design: Design, x: np.ndarray, feeds: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """All IR tensors for a batch of float inputs. `feeds` overrides tensors (layer-by-layer checking)."""
    env: dict[str, np.ndarray] = {}
    feeds = feeds or {}
    for layer in design.layers:
        if layer.output in feeds:
            env[layer.output] = feeds[layer.output]
        elif isinstance(layer, L.Input):
            env[layer.output] = encode_input(design, x)
        else:
            env[layer.output] = run_layer(layer, [env[i] for i in layer.inputs])
    return env


def output_float(design: Design, env: dict[str, np.ndarray]) -> np.ndarray:
    """The reference's float output tensor, replayed in float32 from the scores stream."""
    t = design.tensors[design.scores]
    b = design.output_boundary
    chain = [op_from_json(o) for o in b["chain"]]
    y = chain_f32(chain, env[design.scores], axis=-1)
    layout = dict(b["layout"], ir_shape=t.shape)
    return from_ir_layout(y, layout)


def infer(design: Design, x: np.ndarray) -> dict:
    env = run(design, x)
    res = {"codes": env[design.scores], "float": output_float(design, env), "env": env}
    if design.output != design.scores:
        res["label"] = env[design.output].reshape(env[design.output].shape[0], -1)
    return res
