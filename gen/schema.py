"""The YAML door (board files, fold files): read any bytes into a checked value, or a GenError naming the file,
the key, the expected type and what was found.

    data = read_yaml(path, "board file")            # empty / non-UTF-8 / invalid YAML -> one clear error
    v = want(data, "clock_mhz", NUMBER, where)       # a typed key; booleans are never numbers
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from .errors import GenError

INT = "an integer"
NUMBER = "a number"
STRING = "a string"
MAPPING = "a mapping"
LIST = "a list"


def read_yaml(path, what: str):
    """The parsed YAML of `path` (`what` is e.g. "board file"); never None (an empty file is an error)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise GenError(f"{what} {path}: cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GenError(f"{what} {path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save the "
                       "file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise GenError(f"{what} {path}: not valid YAML{at} ({problem})") from None
    except RecursionError:
        raise GenError(f"{what} {path}: not valid YAML (nested too deeply)") from None
    if data is None:
        raise GenError(f"{what} {path}: empty file (no YAML content)")
    return data


def type_name(v) -> str:
    """What a YAML value is, in the user's words."""
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "mapping",
            type(None): "null"}.get(type(v), type(v).__name__)


def has_type(v, kind: str) -> bool:
    if isinstance(v, bool):      # YAML true/false are not 1/0 here
        return False
    return {INT: isinstance(v, int), NUMBER: isinstance(v, (int, float)), STRING: isinstance(v, str),
            MAPPING: isinstance(v, dict), LIST: isinstance(v, list)}[kind]


def bad_value(where: str, key: str, expected: str, got) -> GenError:
    shown = repr(got) if len(repr(got)) <= 60 else repr(got)[:57] + "..."
    return GenError(f"{where}: key '{key}': expected {expected}, got {type_name(got)} {shown}")


def want(data: dict, key: str, kind: str, where: str, prefix: str = "", required: bool = True, default=None):
    """data[key] checked to be of `kind` (INT, NUMBER, STRING, MAPPING, LIST); `prefix` names the parent keys."""
    full = f"{prefix}{key}"
    if key not in data:
        if required:
            raise GenError(f"{where}: key '{full}' is missing (expected {kind})")
        return default
    v = data[key]
    if not has_type(v, kind):
        raise bad_value(where, full, kind, v)
    if kind == NUMBER and not math.isfinite(v):
        raise bad_value(where, full, "a finite number", v)
    return v


def want_range(data: dict, key: str, kind: str, lo, hi, where: str, prefix: str = "", required: bool = True,
               default=None, unit: str = ""):
    """want() plus lo <= value <= hi (hi None: no upper bound); the message states the range."""
    v = want(data, key, kind, where, prefix, required, default)
    if v is None:
        return v
    if v < lo or (hi is not None and v > hi):
        rng = f"{lo:g} to {hi:g}" if hi is not None else f">= {lo:g}"
        raise bad_value(where, f"{prefix}{key}", f"{kind} from {rng}{unit}" if hi is not None else
                        f"{kind} {rng}{unit}", v)
    return v


def no_unknown_keys(data: dict, known, where: str, prefix: str = "") -> None:
    """A misspelt optional key would otherwise be ignored silently."""
    for k in data:
        if k not in known:
            raise GenError(f"{where}: unknown key '{prefix}{k}'; known keys: {', '.join(known)}")
