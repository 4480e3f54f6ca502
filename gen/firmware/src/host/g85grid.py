"""SEMI G85 XML wafer maps -> die grids of 0 (off the wafer), 1 (pass), 2 (fail). numpy and the standard library.

One reader for the host client (copied beside accel_client.py into OUT/firmware/host/) and for
examples/wafer/wafermap.py, so the client reads a lot file exactly as the example's training and evaluation do.
The null bin is off the wafer, bins of BinQuality Pass pass, every other code (listed as failing or not listed at
all) fails; short rows are off the wafer at their end. Bin codes compare as numbers for BinType Decimal /
HexaDecimal ("01" == "1"), as characters for ASCII / Integer2. The `g85` package (PyPI, GPL-3.0) is used when it
is installed (or asked for), else the small standard-library reader below; both give the same grids.
"""

from __future__ import annotations

import io
from xml.etree import ElementTree

import numpy as np

OFF, PASS, FAIL = 0, 1, 2


def norm_code(code, bin_type: str):
    if bin_type == "Decimal":
        return int(code)
    if bin_type == "HexaDecimal":
        return int(code, 16)
    return str(code)


def codes_to_grid(rows: list[list], null, bin_pass: dict) -> np.ndarray:
    """Bin codes (one list per row) -> (rows, cols) uint8 grid of OFF / PASS / FAIL."""
    if not rows:
        return np.zeros((0, 0), np.uint8)
    g = np.zeros((len(rows), max(len(r) for r in rows)), np.uint8)
    for i, row in enumerate(rows):
        for j, code in enumerate(row):
            g[i, j] = OFF if code == null else (PASS if bin_pass.get(code, False) else FAIL)
    return g


def read_g85(text: str, use_package: bool | None = None) -> list[tuple[str, np.ndarray, dict]]:
    """(wafer id, grid, {bin code: passes}) per <Device> of every <Map> of a G85 XML text."""
    if use_package is None:
        try:
            import g85  # noqa: F401
            use_package = True
        except ImportError:
            use_package = False
    return _read_package(text) if use_package else _read_stdlib(text)


def _read_package(text: str) -> list[tuple[str, np.ndarray, dict]]:
    import g85

    out = []
    for wmap in g85.read(io.StringIO(text)):
        wid = wmap.SubstrateId or wmap.misc.get("WaferId", "")
        for dev in wmap.devices:
            bt = dev.BinType
            bins = {norm_code(k, bt): bool(v) for k, v in dev.bin_pass.items()}
            rows = [[norm_code(c, bt) for c in row] for row in dev.map]
            out.append((str(wid), codes_to_grid(rows, norm_code(dev.NullBin, bt), bins), bins))
    return out


def _tag(el) -> str:
    return el.tag.split("}")[-1]


def _read_stdlib(text: str) -> list[tuple[str, np.ndarray, dict]]:
    root = ElementTree.fromstring(text)
    maps = [root] if _tag(root) == "Map" else [m for m in root if _tag(m) == "Map"]
    out = []
    for m in maps:
        wid = m.attrib.get("SubstrateId", m.attrib.get("WaferId", ""))
        for dev in (d for d in m if _tag(d) == "Device"):
            bt = dev.attrib.get("BinType", "ASCII")
            null = norm_code(dev.attrib.get("NullBin", "."), bt)
            bins, rows = {}, []
            for el in dev:
                t = _tag(el)
                if t == "Bin" and "BinCode" in el.attrib:
                    bins.setdefault(norm_code(el.attrib["BinCode"], bt),
                                    el.attrib.get("BinQuality", "").lower() == "pass")
                elif t == "Data":
                    for row in (r for r in el if _tag(r) == "Row"):
                        s = (row.text or "").strip()
                        toks = s.split() if (" " in s or "\t" in s) else list(s)
                        rows.append([norm_code(c, bt) for c in toks])
            out.append((str(wid), codes_to_grid(rows, null, bins), bins))
    return out
