"""Pooling and resampling (MaxPool, AveragePool, GlobalAveragePool, Resize / Upsample nearest)."""

from __future__ import annotations

import numpy as np

from ...errors import node_error
from ...golden import ops as gops
from ...ir.elementwise import Affine, chain_direction
from ...ir.layers import AvgPool, MaxPool, Upsample
from ..common import attr_str, node_attrs
from ..values import Lin, canonical_index


class PoolOps:
    """Mixed into gen.frontend.lowering.Lowering (uses its helpers: values, const, requant, new_tensor...)."""

    def _pool_attrs(self, node, t):
        at = node_attrs(node)
        if at.get("ceil_mode", 0):
            raise node_error(node, "ceil_mode=1 is not supported")
        if any(d != 1 for d in at.get("dilations", (1, 1))):
            raise node_error(node, "dilated pooling is not supported")
        k = tuple(at["kernel_shape"])
        stride = tuple(at.get("strides", (1, 1)))
        pads = tuple(at.get("pads", (0, 0, 0, 0)))
        if attr_str(at.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise node_error(node, "auto_pad SAME is not supported for pooling")
        return k, stride, pads

    def op_MaxPool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        if any(chain_direction(lin.ops, c) < 0 for c in range(t.channels)):
            raise node_error(node, "MaxPool of a decreasing function of the stream is not supported")
        if len(node.output) > 1 and node.output[1]:
            raise node_error(node, "MaxPool indices output is not supported")
        k, s, p = self._pool_attrs(node, t)
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3])
        out = self.new_tensor("maxpool", (oh, ow, t.channels), t.lo, t.hi, bipolar=t.bipolar, scale=t.scale,
                              zp=t.zero_point)
        self.design.add_layer(MaxPool(name=self.fresh("maxpool"), inputs=(t.name,), output=out.name, kernel=k,
                                      stride=s, pads=p, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(out.shape, 3), list(lin.ops))

    def _avg(self, node, lin, k, s, p, count_include_pad):
        t = self.t(lin.tensor)
        a, b = self.exact_affine(node, lin)
        zp = [-bb / aa for aa, bb in zip(a, b)]
        if any(p):
            if not count_include_pad:
                raise node_error(node, "AveragePool with padding and count_include_pad=0 is not supported")
            if any(z.denominator != 1 for z in zp):
                raise node_error(node, "padding needs an integer zero point on its input")
        pad_value = int(zp[0]) if zp[0].denominator == 1 else 0
        if len(set(zp)) > 1 and any(p):
            raise node_error(node, "padding needs one zero point for all channels")
        oh = gops.out_size(t.shape[0], k[0], s[0], p[0], p[2])
        ow = gops.out_size(t.shape[1], k[1], s[1], p[1], p[3])
        n = k[0] * k[1]
        out = self.new_tensor("poolsum", (oh, ow, t.channels), t.lo * n, t.hi * n)
        self.design.add_layer(AvgPool(name=self.fresh("avgpool"), inputs=(t.name,), output=out.name, kernel=k,
                                      stride=s, pads=p, pad_value=pad_value, onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(out.shape, 3),
                                          [Affine([x / n for x in a], b)])

    def op_AveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        k, s, p = self._pool_attrs(node, self.t(lin.tensor))
        self._avg(node, lin, k, s, p, node_attrs(node).get("count_include_pad", 0))

    def op_GlobalAveragePool(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        h, w, _ = self.t(lin.tensor).shape
        self._avg(node, lin, (h, w), (1, 1), (0, 0, 0, 0), 0)


    def op_Resize(self, node):
        at = node_attrs(node)
        if attr_str(at.get("mode", "nearest")) != "nearest":
            raise node_error(node, "only nearest-neighbour Resize is supported")
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        scales = self.const(node, 2) if len(node.input) > 2 and node.input[2] else None
        sizes = self.const(node, 3) if len(node.input) > 3 and node.input[3] else None
        if scales is not None and np.asarray(scales).size == 4:
            f = (float(scales[2]), float(scales[3]))
        elif sizes is not None and np.asarray(sizes).size == 4:
            f = (sizes[2] / t.shape[0], sizes[3] / t.shape[1])
        else:
            raise node_error(node, "Resize needs constant scales or sizes")
        if any(x != int(x) or x < 1 for x in f):
            raise node_error(node, f"Resize by {f}: only integer upsampling factors are supported")
        f = (int(f[0]), int(f[1]))
        self._upsample(node, lin, t, f)

    def op_Upsample(self, node):
        lin = self._conv_input(node, self.lin_in(node))
        t = self.t(lin.tensor)
        sc = self.const(node, 1)
        self._upsample(node, lin, t, (int(sc[2]), int(sc[3])))

    def _upsample(self, node, lin, t, f):
        shape = (t.shape[0] * f[0], t.shape[1] * f[1], t.channels)
        out = self.new_tensor("upsample", shape, t.lo, t.hi, bipolar=t.bipolar, scale=t.scale, zp=t.zero_point)
        self.design.add_layer(Upsample(name=self.fresh("upsample"), inputs=(t.name,), output=out.name, factor=f,
                                       onnx_nodes=(node.name,)))
        self.values[node.output[0]] = Lin(out.name, canonical_index(shape, 3), list(lin.ops))
