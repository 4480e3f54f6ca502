"""Channels-last graphs (QKeras / TensorFlow via tf2onnx and qonnx.converters.from_keras) rewritten into the
N,C,H,W forms the lowering understands, exactly: every rewrite only inserts or moves Transposes and permutes an
axis attribute or a scales vector, so the graph computes the same values element for element.

TensorFlow keeps activations N,H,W,C. tf2onnx wraps each Conv / pool in Transpose(0,3,1,2) ...
Transpose(0,2,3,1) and its transpose optimiser removes the pairs it can move; it cannot move them through the
qonnx Quant op, so NHWC tensors remain between layers. Three forms need a rewrite (the lowering's index maps
handle plain Transposes and Reshapes by themselves):

* `Concat(axis=3 | -1)` of rank-4 tensors: Transpose each input to N,C,H,W, Concat(axis=1), Transpose back.
* `Resize` / `Upsample` with N,H,W,C scales (1, a, b, 1) or sizes: the same Transposes around a Resize with
  N,C,H,W scales (1, 1, a, b).
* NHWC input -> [Relu | scalar Quant | ...] -> Transpose(0,3,1,2): the lowering detects an NHWC input by the
  Transpose consuming it, so the Transpose is hoisted above the element-wise chain (element-wise ops with
  scalar parameters commute with a Transpose).

`to_channels_first(model)` runs on the graph after qonnx's cleanup (it needs tensor ranks) and before the
reference executor and the lowering see it; it returns the number of rewrites.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .common import node_attrs

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
# element-wise ops that commute with a Transpose when every parameter input is a scalar constant
_ELEMENTWISE = {"Relu", "Quant", "BipolarQuant", "Identity", "Clip", "LeakyRelu", "Mul", "Add", "Sub", "Div",
                "Trunc"}


class _Graph:
    """The bits of the graph the rewrites need: initialisers, ranks, producers, consumers, fresh names."""

    def __init__(self, model: onnx.ModelProto):
        self.g = model.graph
        self.nodes = [_copy(n) for n in self.g.node]   # edited here, written back once
        self.inits = {i.name: i for i in self.g.initializer}
        self.rank = {}
        for vi in list(self.g.input) + list(self.g.output) + list(self.g.value_info):
            if vi.type.tensor_type.HasField("shape"):
                self.rank[vi.name] = len(vi.type.tensor_type.shape.dim)
        self.names = {t for n in self.nodes for t in list(n.input) + list(n.output)} | set(self.inits)
        self.count = 0

    def const(self, name):
        i = self.inits.get(name)
        return None if i is None else numpy_helper.to_array(i)

    def consumers(self, tensor):
        return [n for n in self.nodes if tensor in n.input]

    def fresh(self, base):
        while True:
            self.count += 1
            name = f"{base}_cl{self.count}"
            if name not in self.names:
                self.names.add(name)
                return name

    def transpose(self, src, perm, base):
        out = self.fresh(base)
        return helper.make_node("Transpose", [src], [out], name=self.fresh("Transpose"), perm=perm), out


def to_channels_first(model: onnx.ModelProto) -> int:
    """Rewrite the channels-last forms above in place; returns how many nodes were rewritten."""
    gr = _Graph(model)
    done = _hoist_input_transpose(gr)
    new_nodes = []
    for node in gr.nodes:
        rewritten = _rewrite_concat(gr, node) or _rewrite_resize(gr, node)
        if rewritten:
            new_nodes.extend(rewritten)
            done += 1
        else:
            new_nodes.append(node)
    if done:
        del gr.g.node[:]
        gr.g.node.extend(new_nodes)
    return done


def _copy(node):
    c = onnx.NodeProto()
    c.CopyFrom(node)
    return c


def _rewrite_concat(gr: _Graph, node):
    if node.op_type != "Concat" or any(gr.rank.get(i) != 4 for i in node.input):
        return None
    axis = node_attrs(node).get("axis")
    if axis not in (3, -1):
        return None
    nodes, ins = [], []
    for i in node.input:
        t, out = gr.transpose(i, TO_NCHW, f"{i}_nchw")
        nodes.append(t)
        ins.append(out)
    cat_out = gr.fresh(f"{node.output[0]}_nchw")
    nodes.append(helper.make_node("Concat", ins, [cat_out], name=node.name or gr.fresh("Concat"), axis=1))
    nodes.append(helper.make_node("Transpose", [cat_out], [node.output[0]], name=gr.fresh("Transpose"),
                                  perm=TO_NHWC))
    return nodes


def _nhwc_factors(gr: _Graph, node):
    """The scales input index and N,C,H,W scales of a Resize / Upsample that scales N,H,W,C axes 1 and 2."""
    if node.op_type == "Upsample":
        idx = 1
    elif node.op_type == "Resize":
        idx = 2 if len(node.input) > 2 and node.input[2] else 3
        roi = gr.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if len(node.input) > 1 and node.input[1] and (roi is None or roi.size):
            return None     # a region of interest is in N,H,W,C order too: not rewritten
    else:
        return None
    if gr.rank.get(node.input[0]) != 4 or idx >= len(node.input):
        return None
    v = gr.const(node.input[idx])
    if v is None or v.size != 4:
        return None
    v = v.ravel()
    # N,C,H,W scales keep axis 1 (channels); a factor on axis 1 with axis 3 kept can only be N,H,W,C. (1,1,a,1)
    # is read as N,C,H,W, as onnx defines it.
    if idx == 3:
        shape = _shape(gr, node.input[0])
        if shape is None or v[0] != shape[0] or v[3] != shape[3] or v[1] == shape[1]:
            return None
    elif not (v[0] == 1 and v[3] == 1 and v[1] != 1):
        return None
    return idx, np.array([v[0], v[3], v[1], v[2]], dtype=v.dtype)


def _shape(gr: _Graph, name):
    for vi in list(gr.g.input) + list(gr.g.value_info) + list(gr.g.output):
        if vi.name == name:
            return [d.dim_value for d in vi.type.tensor_type.shape.dim]
    return None


def _rewrite_resize(gr: _Graph, node):
    found = _nhwc_factors(gr, node)
    if found is None:
        return None
    idx, nchw = found
    name = gr.fresh(f"{node.input[idx]}_nchw")
    gr.g.initializer.append(numpy_helper.from_array(nchw, name))
    t_in, x = gr.transpose(node.input[0], TO_NCHW, f"{node.input[0]}_nchw")
    ins = list(node.input)
    ins[0], ins[idx] = x, name
    out = gr.fresh(f"{node.output[0]}_nchw")
    resize = helper.make_node(node.op_type, ins, [out], name=node.name or gr.fresh(node.op_type),
                              domain=node.domain)
    resize.attribute.extend(node.attribute)
    back = helper.make_node("Transpose", [out], [node.output[0]], name=gr.fresh("Transpose"), perm=TO_NHWC)
    return [t_in, resize, back]


def _hoist_input_transpose(gr: _Graph) -> int:
    """graph input -> E1 -> ... -> Ek -> Transpose(0,3,1,2), each E element-wise with scalar parameters and
    one consumer: becomes input -> Transpose -> E1 -> ... -> Ek (Ek's output renamed to the Transpose's)."""
    init = set(gr.inits)
    inputs = [i.name for i in gr.g.input if i.name not in init]
    if len(inputs) != 1 or gr.rank.get(inputs[0]) != 4:
        return 0
    chain, tensor = [], inputs[0]
    outputs = {o.name for o in gr.g.output}
    while True:
        cons = gr.consumers(tensor)
        if len(cons) != 1 or tensor in outputs:   # a tensor seen elsewhere keeps its layout
            return 0
        n = cons[0]
        if n.op_type == "Transpose" and list(node_attrs(n).get("perm", [])) == TO_NCHW:
            break
        if n.op_type not in _ELEMENTWISE or n.input[0] != tensor or len(n.output) != 1 or not all(
                (gr.const(i) is not None and gr.const(i).size == 1) for i in n.input[1:] if i):
            return 0
        chain.append(n)
        tensor = n.output[0]
    if not chain:
        return 0
    t = n
    nchw = gr.fresh(f"{inputs[0]}_nchw")
    old_out = t.output[0]
    t.input[0], t.output[0] = inputs[0], nchw
    chain[0].input[0] = nchw
    stale = {c.output[0] for c in chain}
    chain[-1].output[0] = old_out
    # the chain's intermediate tensors change shape: drop their value_info (shape inference redoes it)
    keep = [vi for vi in gr.g.value_info if vi.name not in stale]
    del gr.g.value_info[:]
    gr.g.value_info.extend(keep)
    # topological order: the Transpose goes where the chain starts
    nodes = [x for x in gr.nodes if x is not t]
    pos = next(i for i, x in enumerate(nodes) if x is chain[0])
    nodes.insert(pos, t)
    gr.nodes[:] = nodes
    return 1


# ------------------------------------------------------------------------------------------------------------
# qonnx's channels-last ops (qonnx.transformation.channels_last.ConvertToChannelsLastAndClean; hls4ml's
# *_ch_last.onnx test models): Conv / MaxPool / BatchNormalization in the domain below compute on N,H,W,C (N,W,C)
# tensors, a Conv's weights stored O,H,W,I. qonnx executes each as Transpose -> the standard op -> Transpose
# (custom_op/channels_last/base_wrapped_op.py: input 0, and a Conv's input 1, moved channels-first). Written that
# way they need no qonnx shape function: qonnx 1.0.0's channels-last Conv / MaxPool shape functions read the
# input's shape from value_info before inferring it (custom_op/channels_last/conv.py `len(ishape)`), so its
# cleanup crashes ("object of type 'NoneType' has no len()") on a graph without value_info.
CHANNELS_LAST_DOMAIN = "qonnx.custom_op.channels_last"


def _to_first(ndim):
    return [0, ndim - 1, *range(1, ndim - 1)]


def _to_last(ndim):
    return [0, *range(2, ndim), 1]


def from_channels_last_domain(model: onnx.ModelProto) -> int:
    """Replace every qonnx channels-last op by Transposes around the standard op, in place; returns how many."""
    from ..errors import node_error
    gr = _Graph(model)
    new_nodes, done = [], 0
    for node in gr.nodes:
        if node.domain != CHANNELS_LAST_DOMAIN:
            new_nodes.append(node)
            continue
        if node.op_type not in ("Conv", "MaxPool", "BatchNormalization"):
            raise node_error(node, f"channels-last op {node.op_type} is not supported",
                             "Export the model channels-first (without ConvertToChannelsLast)")
        k = node_attrs(node).get("kernel_shape")
        ndim = len(k) + 2 if k is not None else gr.rank.get(node.input[0])
        if ndim is None or ndim < 3:
            raise node_error(node, "the rank of its input is unknown", "Keep the model's value_info")
        ins = list(node.input)
        for i in range(2 if node.op_type == "Conv" else 1):
            t, ins[i] = gr.transpose(ins[i], _to_first(ndim), f"{ins[i]}_cf")
            new_nodes.append(t)
        out = gr.fresh(f"{node.output[0]}_cf")
        std = helper.make_node(node.op_type, ins, [out, *node.output[1:]], name=node.name or gr.fresh(node.op_type))
        std.attribute.extend(node.attribute)
        new_nodes.append(std)
        new_nodes.append(helper.make_node("Transpose", [out], [node.output[0]], name=gr.fresh("Transpose"),
                                          perm=_to_last(ndim)))
        done += 1
    if done:
        del gr.g.node[:]
        gr.g.node.extend(new_nodes)
        keep = [o for o in model.opset_import if o.domain != CHANNELS_LAST_DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(keep)
    return done
