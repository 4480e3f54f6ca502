"""Calls into third-party libraries (qonnx, onnxruntime, onnx) that may fail on a model: one GenError line.

Those libraries raise whatever they like (Exception, AssertionError, TypeError from deep inside a transformation,
onnxruntime's own exception types) with multi-line messages; the CLI promises one `error:` line naming the step
and, where it can be found, the node. `third_party(step)` wraps such a call site.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from ..errors import GenError

MAX_DETAIL = 300   # characters of the library's message kept: one readable line, not a dump of the graph


@contextmanager
def third_party(step: str, node=None):
    """Run the body; a library exception becomes GenError("{step} failed[ on node 'N' (op T)]: {Type}: {msg}").

    `node`: the ONNX node being processed when the caller knows it; otherwise it is looked up in the exception
    (the NodeProto the failing library frame was working on, or the node onnxruntime / onnx name in their text).
    GenError passes through (it is already ours); KeyboardInterrupt and MemoryError are left alone: they are not
    about the model, and the CLI handles an interrupt itself."""
    try:
        yield
    except (GenError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - the libraries raise many types, all of them about the model
        raise GenError(third_party_message(step, e, node)) from None


def third_party_message(step: str, exc: BaseException, node=None) -> str:
    where = _node_text(node if node is not None else _node_in_traceback(exc)) or _node_in_message(str(exc))
    return f"{step} failed{where}: {type(exc).__name__}: {_one_line(str(exc))}"


def _one_line(text: str) -> str:
    """The message on one line (libraries indent continuation lines), at most MAX_DETAIL characters."""
    text = " ".join(text.split()) or "(no message)"
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."


def _node_text(node) -> str:
    if node is None:
        return ""
    name = node.name or (node.output[0] if len(node.output) else "?")
    return f" on node '{name}' (op {node.op_type})"


def _node_in_traceback(exc: BaseException):
    """The innermost ONNX node a library frame was handling when it raised: qonnx's executor and transformations
    loop over `node` (or hold it as a custom op's `onnx_node`) without putting it in their messages."""
    from onnx import NodeProto
    found = None
    tb = exc.__traceback__
    while tb is not None:   # outermost to innermost: keep the last (innermost) match
        loc = tb.tb_frame.f_locals
        cand = loc.get("node")
        if not isinstance(cand, NodeProto):
            cand = getattr(loc.get("self"), "onnx_node", None)
        if isinstance(cand, NodeProto):
            found = cand
        tb = tb.tb_next
    return found


# onnxruntime running: "... running Conv node. Name:'conv_1' Status Message: ...", loading: "In Node, ("conv_1",
# Conv, "", -1) : ..."; onnx shape inference: "(op_type:Conv, node name: conv_1)"
_ORT_NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")
_ORT_LOAD_NODE = re.compile(r'In Node, \("([^"]*)", (\w+),')
_ONNX_NODE = re.compile(r"\(op_type:(\w+), node name: ([^)]*)\)")


def _node_in_message(text: str) -> str:
    m = _ORT_NODE.search(text)
    if m:
        return f" on node '{m.group(2)}' (op {m.group(1)})"
    m = _ORT_LOAD_NODE.search(text)
    if m:
        return f" on node '{m.group(1)}' (op {m.group(2)})"
    m = _ONNX_NODE.search(text)
    if m:
        return f" on node '{m.group(2).strip()}' (op {m.group(1)})"
    return ""
