"""Synthetic WM-811K-like wafer maps, real-map readers (SEMI G85 XML, WM-811K arrays) and the model input.

Everything here is numpy + the standard library (the `g85` package is used for G85 files when installed), so
the data side works without the `train` extra.

Values on a die grid (as in WM-811K): 0 = off the wafer (no die), 1 = passing die, 2 = failing die.

    from wafermap import generate, to_model_input, CLASSES
    maps, labels = generate(200, seed=1, variant="hard")     # (1800, 42, 42) uint8, (1800,) int64
    x = to_model_input(maps)                                   # (1800, 1, 42, 42) float32 in {0., 1., 2.}

Real maps go through the same path as the training data:

    grid = read_g85("wafer.xml")[0].grid          # die grid, values {0, 1, 2}
    x = prepare([grid])                            # resize (nearest, 42x42) + to_model_input
    x = prepare(df["waferMap"])                    # a WM-811K DataFrame column of 2-D arrays

The generator (one `numpy.random.Generator` per map, seeded from (seed, index), so a map does not depend on the
others) draws, per map:

* a die grid: the larger side 15..100 dies across, die aspect ratio (height/width) 0.6..1.6 so the grid is not
  square, the other side = larger / aspect (at least 15); dies whose centre lies inside the usable radius
  (1 - edge exclusion of 0..0.6 die) are on the wafer; with probability 0.5 a flat cuts the bottom
  (0.03..0.10 of the radius);
* background failures on every map: an independent fail probability p0 = 0..0.06 per die (0..0.08 for
  `none`), growing towards the edge as p0 * (1 + drift * r^4) with drift 0..3 (r = normalised radius), plus
  Poisson(0.8) small specks of 1..3 neighbouring dies;
* the class pattern (all lengths in wafer radii, failing dies inside the pattern drawn with a density of
  0.6..0.95 unless said otherwise, soft pattern borders of 0.01..0.04):

  | class | pattern |
  |---|---|
  | Center | disc of radius 0.12..0.35 around a centre offset by at most 0.10 |
  | Donut | ring, inner radius 0.18..0.45, width 0.10..0.25 (outer <= 0.82), covering 75..100 % of the turn |
  | Edge-Loc | band at the edge, depth 0.08..0.25 (at least 1.5 dies), angular span 25..110 degrees |
  | Edge-Ring | band at the edge, depth 0.04..0.14 (at least 1.2 dies), covering 300..360 degrees |
  | Loc | ellipse, semi-axes 0.08..0.2 and 0.5..1 times that, centred at radius 0.15..0.65, any angle |
  | Random | every die fails with probability 0.15..0.5 |
  | Scratch | polyline of 2..4 segments, total length 0.4..1.3, bends up to 30 degrees, 1..2 dies wide, \
density 0.7..1 with gaps |
  | Near-full | every die fails with probability 0.75..0.98 |
  | none | background only |

* a random flip (left-right, up-down) and a random number of 90-degree turns;
* the resize to 42x42 (`resize`): `variant="standard"` uses `nearest` (the values are categorical: nearest keeps
  exactly {0, 1, 2} and never invents a class); `variant="hard"` draws the mode per map from `nearest`,
  `linear` (bilinear on the codes, half-pixel centres as OpenCV/PyTorch `align_corners=False`, rounded half up:
  what `cv2.resize` of a WM-811K map gives - a pass/off-wafer border can become a spurious pass), `area`
  (box-filter average, rounded) and `max` (fail-priority: the largest code under the output pixel).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# the G85 reader the generated host client carries (gen/firmware/src/host/g85grid.py): one reader for both
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "gen" / "firmware" / "src" / "host"))
import g85grid  # noqa: E402

CLASSES = ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Random", "Scratch", "Near-full", "none")
NCLS = len(CLASSES)
DEFECT = tuple(range(8))  # the 8 defect classes (all but `none`)
SIZE = 42
RESIZE_MODES = ("nearest", "linear", "area", "max")
HARD_MODES = ("nearest", "linear", "area")  # the modes the "hard" variant mixes
OFF, PASS, FAIL = 0, 1, 2
# what the exported models' input means, for gen (ONNX metadata `gen.input_kind`, written by train.py): the host
# client then reads wafer-map files exactly as `prepare` does
INPUT_KIND = f"codes:off={OFF},pass={PASS},fail={FAIL}"


# ----------------------------------------------------------------------------------------------------------------
# die grid and patterns

@dataclass
class Grid:
    """Die-grid geometry in wafer coordinates (radius 1, y down, origin at the centre)."""
    rows: int
    cols: int
    x: np.ndarray       # (rows, cols) die centre x
    y: np.ndarray       # (rows, cols) die centre y
    on: np.ndarray      # (rows, cols) bool: die on the wafer
    die: float          # larger die side, in radii

    @property
    def r(self):
        return np.hypot(self.x, self.y)

    @property
    def theta(self):
        return np.arctan2(self.y, self.x)


def die_grid(rng: np.random.Generator) -> Grid:
    n_big = int(rng.integers(15, 101))
    aspect = float(rng.uniform(0.6, 1.6))  # die height / width
    if aspect >= 1:    # tall dies: fewer rows
        cols, rows = n_big, max(15, int(round(n_big / aspect)))
    else:
        rows, cols = n_big, max(15, int(round(n_big * aspect)))
    w, h = 2.0 / cols, 2.0 / rows
    x = -1 + (np.arange(cols) + 0.5) * w
    y = -1 + (np.arange(rows) + 0.5) * h
    yy, xx = np.meshgrid(y, x, indexing="ij")
    die = max(w, h)
    r_use = 1.0 - rng.uniform(0.0, 0.6) * die
    on = np.hypot(xx, yy) <= r_use
    if rng.random() < 0.5:  # flat at the bottom
        on &= yy <= 1.0 - rng.uniform(0.03, 0.10)
    return Grid(rows, cols, xx, yy, on, die)


def _soft(d, soft):
    """Membership 1 inside (d < 0), falling to 0 over `soft` outside."""
    return np.clip(1.0 - d / max(soft, 1e-9), 0.0, 1.0)


def _angle_in(theta, start, span):
    return np.mod(theta - start, 2 * np.pi) <= span


def _seg_dist(px, py, ax, ay, bx, by):
    vx, vy = bx - ax, by - ay
    t = np.clip(((px - ax) * vx + (py - ay) * vy) / max(vx * vx + vy * vy, 1e-12), 0, 1)
    return np.hypot(px - ax - t * vx, py - ay - t * vy)


def pattern(cls: int, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Fail probability per die of the class pattern (0 where the pattern is absent)."""
    name = CLASSES[cls]
    r, th, x, y = g.r, g.theta, g.x, g.y
    dens = rng.uniform(0.6, 0.95)
    soft = rng.uniform(0.01, 0.04)
    p = np.zeros_like(r)
    if name == "Center":
        cx, cy = rng.uniform(-0.1, 0.1, 2) / math.sqrt(2)
        rad = rng.uniform(0.12, 0.35)
        p = dens * _soft(np.hypot(x - cx, y - cy) - rad, soft)
    elif name == "Donut":
        cx, cy = rng.uniform(-0.06, 0.06, 2)
        ri = rng.uniform(0.18, 0.45)
        wd = min(rng.uniform(0.10, 0.25), 0.82 - ri)
        d = np.hypot(x - cx, y - cy)
        p = dens * _soft(np.maximum(ri - d, d - ri - wd), soft)
        p *= _angle_in(th, rng.uniform(0, 2 * np.pi), rng.uniform(0.75, 1.0) * 2 * np.pi)
    elif name == "Edge-Loc":
        depth = max(rng.uniform(0.08, 0.25), 1.5 * g.die)
        p = dens * _soft((1 - depth) - r, soft)
        p *= _angle_in(th, rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(25, 110)))
    elif name == "Edge-Ring":
        depth = max(rng.uniform(0.04, 0.14), 1.2 * g.die)
        p = dens * _soft((1 - depth) - r, soft)
        p *= _angle_in(th, rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(300, 360)))
    elif name == "Loc":
        a = rng.uniform(0.08, 0.2)
        b = a * rng.uniform(0.5, 1.0)
        rc, tc, phi = rng.uniform(0.15, 0.65), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
        cx, cy = rc * np.cos(tc), rc * np.sin(tc)
        u = (x - cx) * np.cos(phi) + (y - cy) * np.sin(phi)
        v = -(x - cx) * np.sin(phi) + (y - cy) * np.cos(phi)
        d = (np.hypot(u / a, v / b) - 1) * b
        p = dens * _soft(d, soft)
    elif name == "Random":
        p = np.full_like(r, rng.uniform(0.15, 0.5))
    elif name == "Scratch":
        nseg = int(rng.integers(2, 5))
        length = rng.uniform(0.4, 1.3)
        ang = rng.uniform(0, 2 * np.pi)
        rs, ts = math.sqrt(rng.uniform(0, 0.6 ** 2)), rng.uniform(0, 2 * np.pi)
        px, py = rs * math.cos(ts), rs * math.sin(ts)
        half_w = 0.5 * g.die * rng.uniform(1.0, 2.0)
        d = np.full_like(r, np.inf)
        for _ in range(nseg):
            qx, qy = px + length / nseg * math.cos(ang), py + length / nseg * math.sin(ang)
            d = np.minimum(d, _seg_dist(x, y, px, py, qx, qy))
            px, py = qx, qy
            ang += np.deg2rad(rng.uniform(-30, 30))
        p = rng.uniform(0.7, 1.0) * (d <= half_w)
    elif name == "Near-full":
        p = np.full_like(r, rng.uniform(0.75, 0.98))
    return p


def background(cls: int, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Background fails (bool): random fails with edge drift plus small specks."""
    p0 = rng.uniform(0.0, 0.08 if CLASSES[cls] == "none" else 0.06)
    drift = rng.uniform(0.0, 3.0)
    fail = rng.random(g.r.shape) < p0 * (1 + drift * g.r ** 4)
    for _ in range(int(rng.poisson(0.8))):
        i, j = int(rng.integers(0, g.rows)), int(rng.integers(0, g.cols))
        for _k in range(int(rng.integers(1, 4))):
            fail[i, j] = True
            di, dj = rng.integers(-1, 2, 2)
            i, j = int(np.clip(i + di, 0, g.rows - 1)), int(np.clip(j + dj, 0, g.cols - 1))
    return fail


def wafer(cls: int, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """One die grid (rows, cols) uint8 in {0, 1, 2} of class `cls`."""
    g = die_grid(rng)
    fail = background(cls, g, rng) | (rng.random(g.r.shape) < pattern(cls, g, rng))
    m = np.where(g.on, np.where(fail, FAIL, PASS), OFF).astype(np.uint8)
    if augment:
        if rng.random() < 0.5:
            m = m[:, ::-1]
        if rng.random() < 0.5:
            m = m[::-1, :]
        m = np.rot90(m, int(rng.integers(0, 4)))
    return np.ascontiguousarray(m)


# ----------------------------------------------------------------------------------------------------------------
# resize

def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear weights, half-pixel centres (align_corners=False), edges clamped."""
    src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = src - i0
    w = np.zeros((n_out, n_in))
    w[np.arange(n_out), i0] += 1 - f
    w[np.arange(n_out), i1] += f
    return w


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) box-filter weights: overlap of output cell [i, i+1)*n_in/n_out with each input cell."""
    edges = np.arange(n_out + 1) * n_in / n_out
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    ov = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return ov / ov.sum(1, keepdims=True)


def _cover(n_in: int, n_out: int):
    """Input index range [a, b) under each output cell (at least one index)."""
    edges = np.arange(n_out + 1) * n_in / n_out
    a = np.floor(edges[:-1] + 1e-9).astype(int)
    b = np.maximum(np.ceil(edges[1:] - 1e-9).astype(int), a + 1)
    return a, np.minimum(b, n_in)


def resize(m: np.ndarray, size: int = SIZE, mode: str = "nearest") -> np.ndarray:
    """Die grid (rows, cols) with codes {0, 1, 2} -> (size, size) uint8 codes {0, 1, 2}. Modes: RESIZE_MODES."""
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"a wafer map is 2-D, got shape {m.shape}")
    rows, cols = m.shape
    if mode == "nearest":
        ri = np.minimum(((np.arange(size) + 0.5) * rows / size).astype(int), rows - 1)
        ci = np.minimum(((np.arange(size) + 0.5) * cols / size).astype(int), cols - 1)
        return m[np.ix_(ri, ci)].astype(np.uint8)
    if mode in ("linear", "area"):
        wf = _linear_weights if mode == "linear" else _area_weights
        v = wf(rows, size) @ m.astype(np.float64) @ wf(cols, size).T
        return np.clip(np.floor(v + 0.5 + 1e-9), 0, 2).astype(np.uint8)
    if mode == "max":
        ra, rb = _cover(rows, size)
        ca, cb = _cover(cols, size)
        t = np.stack([m[a:b].max(0) for a, b in zip(ra, rb)])
        return np.stack([t[:, a:b].max(1) for a, b in zip(ca, cb)], axis=1).astype(np.uint8)
    raise ValueError(f"unknown resize mode {mode!r} (one of {RESIZE_MODES})")


# ----------------------------------------------------------------------------------------------------------------
# data sets and model input

def generate(n_per_class: int, seed: int, variant: str = "standard", size: int = SIZE,
             return_grids: bool = False):
    """Balanced data set: (maps (N, size, size) uint8, labels (N,) int64[, die grids, resize modes]).

    N = 9 * n_per_class, shuffled with `seed`. Map k of class c is drawn from default_rng([seed, c, k]), so the
    same (seed, c, k) always gives the same map. variant "standard": nearest resize; "hard": resize mode drawn
    per map from HARD_MODES.
    """
    if variant not in ("standard", "hard"):
        raise ValueError("variant is 'standard' or 'hard'")
    maps, labels, grids, modes = [], [], [], []
    for c in range(NCLS):
        for k in range(n_per_class):
            rng = np.random.default_rng([seed, c, k])
            g = wafer(c, rng)
            mode = "nearest" if variant == "standard" else HARD_MODES[int(rng.integers(0, len(HARD_MODES)))]
            maps.append(resize(g, size, mode))
            labels.append(c)
            grids.append(g)
            modes.append(mode)
    order = np.random.default_rng([seed, 999]).permutation(len(maps))
    X = np.stack(maps)[order]
    y = np.asarray(labels, np.int64)[order]
    if return_grids:
        return X, y, [grids[i] for i in order], [modes[i] for i in order]
    return X, y


def to_model_input(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) codes {0, 1, 2} -> the model's input (N, 1, H, W) float32 with the same values.

    The exported models start with a 2-bit unsigned input quantiser of scale 1, so these floats are exactly the
    integer codes the accelerator receives (one byte per die: 0 / 1 / 2).
    """
    a = np.asarray(maps)
    if a.ndim == 2:
        a = a[None]
    bad = ~np.isin(a, (OFF, PASS, FAIL))
    if bad.any():
        raise ValueError(f"wafer map values must be 0 (off wafer), 1 (pass), 2 (fail); got {np.unique(a[bad])[:5]}")
    return a.astype(np.float32)[:, None, :, :]


def prepare(grids: Iterable, size: int = SIZE, mode: str = "nearest") -> np.ndarray:
    """Die grids of any sizes (a list, a WM-811K `waferMap` DataFrame column, an object array) -> model input.

    Exactly the training path: `resize(grid, size, mode)` then `to_model_input`. WM-811K arrays already use the
    codes 0 / 1 / 2. Use mode="nearest" (the standard test set's mode) unless you know better.
    """
    if hasattr(grids, "to_numpy"):  # pandas Series
        grids = list(grids.to_numpy())
    elif isinstance(grids, np.ndarray) and grids.dtype != object:
        grids = [grids] if grids.ndim == 2 else list(grids)
    return to_model_input(np.stack([resize(np.asarray(g), size, mode) for g in grids]))


def wm811k_labels(column) -> np.ndarray:
    """WM-811K `failureType` entries (strings, or [['Center']]-style nested arrays; [] = unlabelled) -> class
    indices, -1 where unlabelled."""
    out = []
    for v in (column.to_numpy() if hasattr(column, "to_numpy") else column):
        while isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 and not isinstance(v, str):
            v = v[0]
        out.append(CLASSES.index(str(v)) if isinstance(v, str) and str(v) in CLASSES else -1)
    return np.asarray(out, np.int64)


# ----------------------------------------------------------------------------------------------------------------
# SEMI G85 XML

@dataclass
class G85Wafer:
    wafer_id: str
    grid: np.ndarray                      # (rows, cols) uint8 {0, 1, 2}
    bins: dict = field(default_factory=dict)  # bin code -> True if pass


def read_g85(source, use_package: bool | None = None) -> list[G85Wafer]:
    """Read a SEMI G85 XML file (path, file object or XML string) -> one G85Wafer per <Device> of every <Map>.

    The reader is gen/firmware/src/host/g85grid.py, the one the generated host client carries: the `g85` package (PyPI,
    GPL-3.0) when it is installed (or use_package=True), else its standard-library reader; both give the same
    grids. Bin codes are compared as numbers for BinType Decimal / HexaDecimal ("01" == "1"), as characters for
    ASCII / Integer2.
    """
    return [G85Wafer(wid, grid, bins) for wid, grid, bins in g85grid.read_g85(_read_text(source), use_package)]


def _read_text(source) -> str:
    if hasattr(source, "read"):
        t = source.read()
        return t.decode() if isinstance(t, bytes) else t
    if isinstance(source, (bytes, bytearray)):
        return bytes(source).decode()
    s = str(source)
    if s.lstrip().startswith("<"):
        return s
    with open(os.fspath(source), encoding="utf-8") as f:
        return f.read()


def write_g85(grids, stream=None, wafer_ids=None, lot_id: str = "LOT0") -> str:
    """Die grids {0, 1, 2} -> SEMI G85 XML text (HexaDecimal bins: FF null, 01 pass, 02 fail); also written to
    `stream` (a path or a text file) when given. One <Map> per grid."""
    if isinstance(grids, np.ndarray) and grids.ndim == 2:
        grids = [grids]
    code = {OFF: "FF", PASS: "01", FAIL: "02"}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<Maps>"]
    for k, g in enumerate(grids):
        g = np.asarray(g)
        wid = wafer_ids[k] if wafer_ids else f"W{k:02d}"
        cnt = {c: int((g == v).sum()) for v, c in code.items()}
        lines += [f'  <Map xmlns="http://www.semi.org" SubstrateType="Wafer" SubstrateId="{wid}" '
                  f'FormatRevision="SEMI G85 0703">',
                  f'    <Device ProductId="SYNTH" LotId="{lot_id}" Orientation="0" Rows="{g.shape[0]}" '
                  f'Columns="{g.shape[1]}" BinType="HexaDecimal" NullBin="FF" OriginLocation="2">',
                  f'      <Bin BinCode="01" BinCount="{cnt["01"]}" BinQuality="Pass" BinDescription="good die"/>',
                  f'      <Bin BinCode="02" BinCount="{cnt["02"]}" BinQuality="Fail" BinDescription="failing die"/>',
                  '      <Data MapName="Map" MapVersion="1">']
        for row in g:
            lines.append("        <Row><![CDATA[" + " ".join(code[int(v)] for v in row) + "]]></Row>")
        lines += ["      </Data>", "    </Device>", "  </Map>"]
    lines.append("</Maps>")
    text = "\n".join(lines) + "\n"
    if stream is not None:
        if hasattr(stream, "write"):
            stream.write(text)
        else:
            with open(os.fspath(stream), "w", encoding="utf-8") as f:
                f.write(text)
    return text


# ----------------------------------------------------------------------------------------------------------------
# pictures

def plot_samples(path, per_class: int = 6, seed: int = 0, variant: str = "standard"):
    """PNG grid: one row per class, `per_class` maps each (grey = pass, red = fail, white = off wafer)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    X, y = generate(per_class, seed, variant)
    cmap = ListedColormap(["white", "#9bb0c8", "#c0262d"])
    fig, axes = plt.subplots(NCLS, per_class, figsize=(per_class * 1.3, NCLS * 1.35))
    for c in range(NCLS):
        idx = np.flatnonzero(y == c)[:per_class]
        for k in range(per_class):
            ax = axes[c, k]
            ax.imshow(X[idx[k]], cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(CLASSES[c], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"synthetic wafer maps, 42x42 ({variant}: "
                 f"{'nearest resize' if variant == 'standard' else 'mixed resize modes'})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
