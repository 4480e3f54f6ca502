"""Small helpers shared by the lowering and its op modules (gen/frontend/ops/)."""

from __future__ import annotations

import onnx

MAX_BITS = 8  # widest activation / weight code the hardware library builds


def node_attrs(node) -> dict:
    """An ONNX node's attributes as plain Python values."""
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def attr_str(v):
    """A string attribute (onnx returns bytes)."""
    return v.decode() if isinstance(v, bytes) else v
