"""The input contract: what the model's float input tensor means, so the host client can turn files into frames
exactly as the model's own training and evaluation code turns them into input tensors.

The user states the meaning at generation time (`python -m gen MODEL --input-kind KIND`), else the ONNX model
does (metadata_props key `gen.input_kind`, same syntax), else it is `tensor`:

    tensor                      the files hold the model's float input tensor as is (no convention at all)
    image[:DIV[:OFFSET]]        8-bit pixels k -> float32(k) / float32(DIV) + float32(OFFSET) (default 255, 0)
    codes:NAME=V,NAME=V,...     categorical grids of the integer codes V (one channel), resized by nearest neighbour
    wafer                       codes:off=0,pass=1,fail=2 (wafer maps: off the wafer / passing die / failing die)

The contract goes into design.json (Design.input_contract) and the generated firmware (accel_proto.DESIGN
["input"]), with the design's input quantiser exported as exact float32 decision thresholds (`quantiser`): the
client needs no copy of the quantiser and no pixel convention of its own.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import GenError
from ..shell import regmap

METADATA_KEY = "gen.input_kind"
WAFER = "codes:off=0,pass=1,fail=2"
KINDS = "tensor, image[:DIV[:OFFSET]], codes:NAME=V,... or wafer"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*$")


def parse_input_kind(text: str, *, origin: str = "--input-kind") -> dict:
    """`--input-kind` text -> the contract (JSON-able dict); a GenError naming `origin` if it is malformed."""
    def bad(why: str):
        return GenError(f"{origin} {text!r}: {why} (one of {KINDS})")

    text = str(text).strip()
    kind, sep, rest = text.partition(":")
    if kind in ("tensor", "wafer"):
        if sep:
            raise bad(f"'{kind}' takes no parameters")
        return {"kind": "tensor", "spec": "tensor"} if kind == "tensor" else \
            dict(parse_input_kind(WAFER, origin=origin), spec="wafer")
    if kind == "image":
        parts = rest.split(":") if sep else []
        if len(parts) > 2:
            raise bad("image takes at most DIV and OFFSET")
        try:
            div, offset = (float(p) for p in parts + ["255", "0"][len(parts):])
        except ValueError:
            raise bad("DIV and OFFSET are numbers") from None
        # the client computes in float32: the values must be finite there, and DIV non-zero
        with np.errstate(over="ignore"):
            d32, o32 = np.float32(div), np.float32(offset)
        if not (np.isfinite(d32) and np.isfinite(o32) and d32 != 0):
            raise bad("DIV and OFFSET must be finite float32 numbers, DIV not 0")
        return {"kind": "image", "div": div, "offset": offset, "spec": f"image:{_num(div)}:{_num(offset)}"}
    if kind == "codes":
        codes: dict[str, int] = {}
        for item in rest.split(",") if rest else []:
            name, eq, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not eq or not _NAME.match(name):
                raise bad(f"{item!r} is not NAME=V")
            if not re.fullmatch(r"[+-]?\d+", value) or abs(int(value)) > 1 << 24:  # exact in float32
                raise bad(f"code {value!r} of {name} is not an integer within +-2^24")
            if name in codes or int(value) in codes.values():
                raise bad(f"{name}={value} repeats a name or a code")
            codes[name] = int(value)
        if len(codes) < 2:
            raise bad("codes needs at least two NAME=V")
        return {"kind": "codes", "codes": codes,
                "spec": "codes:" + ",".join(f"{k}={v}" for k, v in codes.items())}
    raise bad(f"unknown kind '{kind}'")


def _num(v: float) -> str:
    """Shortest text that reads back as the same float (255, not 255.0)."""
    return f"{v:g}" if float(f"{v:g}") == v else repr(v)


def onnx_input_kind(model) -> str | None:
    """The model's own statement of its input (ONNX metadata_props `gen.input_kind`), if it has one."""
    for p in getattr(model, "metadata_props", ()):
        if p.key == METADATA_KEY:
            return p.value
    return None


def input_contract(option: str | None, model=None) -> dict:
    """The contract for a generation run: the --input-kind option, else the ONNX metadata, else `tensor`."""
    if option is not None:
        return dict(parse_input_kind(option), origin="--input-kind")
    meta = onnx_input_kind(model) if model is not None else None
    if meta is not None:
        return dict(parse_input_kind(meta, origin=f"ONNX metadata {METADATA_KEY}"), origin="ONNX metadata")
    return {"kind": "tensor", "spec": "tensor", "origin": "default"}


def check_contract(design, contract: dict) -> None:
    """A kind fits the input tensor: code grids are one channel, images grey (1) or RGB (3)."""
    h, w, c = design.tensors[design.input].shape
    if contract["kind"] == "codes" and c != 1:
        raise GenError(f"input kind {contract['spec']}: code grids need a one-channel input, the model's has {c} "
                       f"(H x W x C = {h} x {w} x {c}); use --input-kind tensor")
    if contract["kind"] == "image" and c not in (1, 3):
        raise GenError(f"input kind {contract['spec']}: images are grey or RGB, the model's input has {c} channels "
                       f"(H x W x C = {h} x {w} x {c}); use --input-kind tensor")


# ---- the input quantiser as float32 thresholds ---------------------------------------------------------------

_KEY_LO = -0x7F800000   # order key of -inf (every non-NaN float32 has a key in [_KEY_LO, _KEY_HI])
_KEY_HI = 0x7F800000    # +inf


def _f32_from_key(key: np.ndarray) -> np.ndarray:
    """Order key (int64, monotone in the float value; -0.0 and +0.0 share key 0) -> float32."""
    key = np.asarray(key, np.int64)
    bits = np.where(key >= 0, key, (-key) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


def _key_from_f32(x: np.ndarray) -> np.ndarray:
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.int64)
    return np.where(bits & 0x80000000, -(bits & 0x7FFFFFFF), bits)


def _encode(design, values: np.ndarray) -> np.ndarray:
    """(C, K) float32 -> (C, K) codes by the golden model's encode_input: K values per channel spread over the
    positions of as many frames as needed (the input chain is the same at every position of a channel)."""
    from ..golden.model import encode_input, from_ir_layout

    h, w, c = design.tensors[design.input].shape
    k = values.shape[1]
    pos = h * w
    n = -(-k // pos)
    flat = np.empty((c, n * pos), np.float32)
    flat[:, :k] = values
    flat[:, k:] = values[:, :1]
    ir = flat.reshape(c, n, h, w).transpose(1, 2, 3, 0)            # (N, H, W, C)
    with np.errstate(over="ignore", invalid="ignore"):   # +-inf and huge probes overflow on purpose
        codes = encode_input(design, from_ir_layout(ir, design.layers[0].graph_layout))
    return codes.transpose(3, 0, 1, 2).reshape(c, n * pos)[:, :k]


def quantiser(design, *, checks: int = 20000, seed: int = 0) -> dict:
    """The design's input quantiser, per channel c: `lo[c]` (the code of -inf), `thresholds[c]` (float32 bit
    patterns, ascending) and `bytes[c]` (the input-frame byte of codes lo[c], lo[c] + 1, ..., regmap.pack_input):
    a float x of channel c has code lo[c] + (number of thresholds <= x). Found by bisection over the float32
    order with the golden model's own encoder, then verified against it on every threshold, the float below it
    and `checks` random float32 values per channel; a GenError if the quantiser is not monotone (then no
    thresholds describe it)."""
    t = design.tensors[design.input]
    c = t.channels
    ends = _encode(design, np.array([[-np.inf, np.inf]] * c, np.float32))
    base, top = ends[:, 0], ends[:, 1]
    if np.any(top < base):
        raise GenError("the input quantiser decreases with its input: the client cannot describe it by thresholds")
    steps = int((top - base).max())
    target = base[:, None] + 1 + np.arange(steps)[None, :]               # (C, steps): the code each threshold opens
    lo = np.full((c, max(steps, 1)), _KEY_LO, np.int64)[:, :steps]      # f(lo) < target <= f(hi)
    hi = np.full_like(lo, _KEY_HI)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        up = _encode(design, _f32_from_key(mid)) >= target
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    thr = _f32_from_key(hi)
    out = {"lo": base.astype(int).tolist(), "thresholds": [], "bytes": []}
    rng = np.random.default_rng(seed)
    for ch in range(c):
        n = int(top[ch] - base[ch])
        tc = np.sort(thr[ch, :n])
        probe = np.concatenate([tc, np.nextafter(tc, np.float32(-np.inf)), np.nextafter(tc, np.float32(np.inf)),
                                np.array([-np.inf, np.inf, 0.0, -0.0, np.finfo(np.float32).max,
                                          np.finfo(np.float32).min], np.float32),
                                _f32_from_key(rng.integers(_KEY_LO, _KEY_HI + 1, checks)),
                                rng.uniform(*_around(tc), checks).astype(np.float32)]).astype(np.float32)
        probe = probe[~np.isnan(probe)]
        want = _encode(design, np.broadcast_to(probe, (c, probe.size)))[ch]
        got = base[ch] + np.searchsorted(tc, probe, side="right")
        if not np.array_equal(got, want):
            bad = int(np.flatnonzero(got != want)[0])
            raise GenError(f"the input quantiser of channel {ch} is not a step function of its input (x = "
                           f"{float(probe[bad])!r}: code {int(want[bad])}, thresholds say {int(got[bad])}): the "
                           "client cannot encode float inputs by thresholds")
        codes = np.arange(base[ch], top[ch] + 1)
        out["thresholds"].append(tc.view(np.uint32).astype(int).tolist())
        out["bytes"].append(list(regmap.pack_input(codes, bipolar=t.bipolar, dma_bits=8)))
    return out


def _around(tc: np.ndarray) -> tuple[float, float]:
    """An interval a little wider than the finite thresholds (where random probes are most telling)."""
    fin = tc[np.isfinite(tc)].astype(np.float64)
    return (fin.min() - 1, fin.max() + 1) if fin.size else (-1.0, 1.0)


def host_description(design, contract: dict) -> dict:
    """DESIGN["input"] for the host client: the contract, the input tensor's ONNX shape and layout, the
    quantiser. `layout_perm` maps the ONNX tensor (without batch) to the frame's H x W x C order as
    gen.golden.model.to_ir_layout does."""
    check_contract(design, contract)
    h, w, c = design.tensors[design.input].shape
    lay = design.layers[0].graph_layout
    return dict({k: v for k, v in contract.items() if k != "origin"}, shape=list(lay["shape"]),
                layout_perm=list(lay["perm"]), height=h, width=w, channels=c, quantiser=quantiser(design))


def describe(contract: dict) -> str:
    """One sentence for README files."""
    k = contract["kind"]
    if k == "tensor":
        return ("`tensor`: input files hold the model's float input tensor as is (.npy / .npz of the input "
                "shape, with or without a batch axis)")
    if k == "image":
        return (f"`{contract['spec']}`: 8-bit pixels k become float32(k) / {_num(contract['div'])} + "
                f"{_num(contract['offset'])}; images are resized to the input's height x width by nearest neighbour")
    names = ", ".join(f"{n} = {v}" for n, v in contract["codes"].items())
    return (f"`{contract['spec']}`: grids of categorical codes ({names}), resized to the input's height x width "
            "by nearest neighbour; each code is the model's float input value")


def file_formats(contract: dict) -> list[str]:
    """The files host/accel_client.py reads under this contract (README bullets; the client's docstring says
    the same for every kind)."""
    k = contract["kind"]
    tensor = ("`.npy` / `.npz` float arrays of the input tensor's shape S (ONNX layout, without batch) or (N,) + S: "
              "the model's float input as is")
    if k == "tensor":
        return [tensor.replace("float arrays", "arrays (any numeric type, taken as float32)")]
    if k == "image":
        return ["PNG, JPEG or anything Pillow reads, as grey (one-channel input) or RGB (three channels)",
                "`.npy` / `.npz` integer arrays of pixels 0..255: (h, w) or (h, w, C) one image, (n, h, w) grey or "
                "(n, h, w, C) several", tensor]
    out = ["`.npy` integer code grids (rows, cols) or stacks (n, rows, cols); `.npz`: every array in it",
           "WM-811K arrays: `.npy` / `.npz` object arrays of 2-D grids (pickled: open only files you trust); "
           "a WM-811K `.pkl` DataFrame (`waferMap` column) when pandas is installed"]
    if {"off", "pass", "fail"} <= set(contract["codes"]):
        out.append("SEMI G85 `.xml` / `.g85`: the null bin is off, bins of BinQuality Pass are pass, every other bin "
                   "fails (as examples/wafer/wafermap.py `read_g85`; the `g85` package when installed, else a "
                   "standard-library reader with the same result)")
    values = sorted(contract["codes"].values())
    n = len(values)
    levels = [(510 * i + n - 1) // (2 * (n - 1)) for i in range(n)]
    out += [f"grey PNG: pixel values that are all codes ({', '.join(map(str, values))}) are taken as the codes; "
            f"else the evenly spaced grey levels {', '.join(map(str, levels))} stand for the codes in ascending order",
            tensor]
    return out
