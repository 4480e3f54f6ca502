"""User-facing errors: one clear message, no traceback (the CLI prints `GenError`s and exits 2)."""


class GenError(Exception):
    """A problem with the user's input (model, board, options, output folder)."""


class UnsupportedError(GenError):
    """The model uses something gen does not lower (names the node, the op and what is supported)."""


def node_error(node, what: str, hint: str = "") -> UnsupportedError:
    """Build an error naming an ONNX node (name and op type) and what to do about it."""
    name = node.name or (node.output[0] if node.output else "?")
    msg = f"node '{name}' (op {node.op_type}): {what}"
    if hint:
        msg += f". {hint}"
    return UnsupportedError(msg)
