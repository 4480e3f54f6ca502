#!/usr/bin/env python3
"""Host client (STM32MP1 side of the seed system): input files -> the board's inference server -> results.

    accel_client.py --host zybo wafer1.npy lot.xml maps.npz --csv results.csv
    accel_client.py --host zybo --status
    accel_client.py --host zybo --config weights.npy

What a file means is the design's input contract, stated when the design was generated (`python -m gen MODEL
--input-kind KIND` or the model's ONNX metadata `gen.input_kind`): accel_proto.DESIGN["input"]["kind"].

  every kind  .npy / .npz float arrays of the input tensor's shape S (ONNX layout, DESIGN["input"]["shape"]) or
              (N,) + S are the model's float input as is.
  tensor      only that: .npy / .npz arrays of shape S or (N,) + S, any numeric type (taken as float32).
  image       8-bit pixels k -> float32(k) / DIV + OFFSET. PNG / JPEG / anything Pillow reads (as grey for a
              one-channel input, RGB for three); .npy / .npz integer arrays in 0..255: (h, w) or (h, w, C) one
              image, (n, h, w) grey or (n, h, w, C) several. Resized to the input's H x W by nearest neighbour.
  codes       grids of categorical codes (the integers V of codes:NAME=V,...; `wafer` = off 0, pass 1, fail 2),
              resized to H x W by nearest neighbour (row i of the output takes input row
              floor((i + 0.5) * rows / H), as examples/wafer/wafermap.py `resize(grid, size, "nearest")`), each
              code taken as its float value. Files: .npy integer arrays (rows, cols) or stacks (n, rows, cols);
              .npy / .npz object arrays of grids (WM-811K `waferMap`; pickled: only open files you trust);
              .npz: every array in it; .pkl: a WM-811K DataFrame with a `waferMap` column (needs pandas);
              SEMI G85 .xml / .g85 (needs codes named off, pass and fail: the null bin is off, bins of
              BinQuality Pass are pass, every other bin fails; read with the `g85` package when installed, else
              a standard-library reader giving the same grids); grey PNG: pixel values that are all codes are
              taken as the codes, else n evenly spaced grey levels round(255 i / (n - 1)) stand for the n codes in
              ascending order (wafer: 0 / 128 / 255 = off / pass / fail).

The float tensor is encoded with the design's input quantiser, exported by gen from its golden model: per
channel, code = lo + (number of float32 thresholds <= x) and the frame byte of each code (DESIGN["input"]
["quantiser"]); NaN is refused. Results go to --csv (or stdout) one request at a time, flushed, so a failure
later keeps what was received. Exit status: 0 done, 2 bad arguments or input files, 1 connection or server
error. Needs numpy; Pillow for images, pandas for .pkl. Protocol: PROTOCOL.md (accel_proto.py).
"""

from __future__ import annotations

import argparse
import csv
import math
import socket
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accel_proto as proto  # noqa: E402
import g85grid  # noqa: E402

D = proto.DESIGN
IN = D["input"]
H, W, C = IN["height"], IN["width"], IN["channels"]
SHAPE = tuple(IN["shape"])                              # the model's input tensor without batch, ONNX layout
MAX_BATCH = max(1, min(proto.NET_MAX_BATCH, proto.NET_MAX_PAYLOAD // D["in_frame_bytes"]))


class InputError(Exception):
    """A bad argument or input file (exit 2)."""


class ClientError(Exception):
    """A connection or protocol problem (exit 1)."""


class ServerError(Exception):
    """The server's ERROR reply: status code, its name and the server's text."""

    def __init__(self, code: int, text: str):
        self.code = code
        self.name = proto.ERRORS.get(code, ("UNKNOWN", ""))[0]
        super().__init__(f"{self.name} ({code}): {text}")


# ---- files -> the model's float input, in the frame's H x W x C order ------------------------------------------

def to_frame_order(x: np.ndarray) -> np.ndarray:
    """One ONNX-layout input tensor (shape SHAPE) -> (H, W, C), as gen.golden.model.to_ir_layout."""
    perm = IN["layout_perm"]
    return x.reshape([(H, W, C)[p] for p in perm]).transpose(np.argsort(perm))


def resize_nearest(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """(rows, cols, ...) -> (h, w, ...) by nearest neighbour: the index formula of wafermap.resize "nearest"."""
    rows, cols = a.shape[:2]
    ri = np.minimum(((np.arange(h) + 0.5) * rows / h).astype(int), rows - 1)
    ci = np.minimum(((np.arange(w) + 0.5) * cols / w).astype(int), cols - 1)
    return a[np.ix_(ri, ci)]


def _tensors(name: str, a: np.ndarray) -> list[tuple[str, np.ndarray]] | None:
    """A numeric array of shape SHAPE or (N,) + SHAPE as input tensors (None for any other shape). Cast to float32
    as the golden model casts its input (a float64 beyond float32 becomes +-inf there too: no warning)."""
    with np.errstate(over="ignore"):
        a = np.asarray(a).astype(np.float32)
    if tuple(a.shape) == SHAPE:
        return [(name, to_frame_order(a))]
    if a.ndim == len(SHAPE) + 1 and tuple(a.shape[1:]) == SHAPE:
        return [(f"{name}#{i}", to_frame_order(v)) for i, v in enumerate(a)]
    return None


def _images(name: str, a: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Integer pixel arrays (h, w), (h, w, C), (n, h, w) grey or (n, h, w, C) -> float inputs (image kind)."""
    if a.size and (a.min() < 0 or a.max() > 255):
        raise InputError(f"{name}: pixels are 0..255, this array holds {a.min()}..{a.max()}")
    if a.ndim == 2 and C == 1:
        one = [a[:, :, None]]
    elif a.ndim == 3 and a.shape[2] == C:
        one = [a]
    elif a.ndim == 3 and C == 1:
        return [(f"{name}#{i}", _pixels(v[:, :, None])) for i, v in enumerate(a)]
    elif a.ndim == 4 and a.shape[3] == C:
        return [(f"{name}#{i}", _pixels(v)) for i, v in enumerate(a)]
    else:
        shapes = "(h, w), (h, w, 1) or (n, h, w)" if C == 1 else f"(h, w, {C}) or (n, h, w, {C})"
        raise InputError(f"{name}: an image array of this model is {shapes}, not {a.shape}")
    return [(name, _pixels(one[0]))]


def _pixels(img: np.ndarray) -> np.ndarray:
    """(h, w, C) 8-bit pixels -> (H, W, C) float32 k / DIV + OFFSET (float32 arithmetic, stated in the contract)."""
    k = resize_nearest(img, H, W).astype(np.float32)
    return k / np.float32(IN["div"]) + np.float32(IN["offset"])


def _codes(name: str, grid) -> tuple[str, np.ndarray]:
    """One 2-D grid of codes -> (H, W, 1) float32 input (codes kind)."""
    g = np.asarray(grid)
    if g.ndim != 2 or g.size == 0:
        raise InputError(f"{name}: a code grid is 2-D and not empty, not {g.shape}")
    if not (np.issubdtype(g.dtype, np.integer) or g.dtype == bool):
        raise InputError(f"{name}: a code grid holds integers, not {g.dtype}")
    allowed = np.array(sorted(IN["codes"].values()))
    bad = ~np.isin(g, allowed)
    if bad.any():
        raise InputError(f"{name}: values {np.unique(g[bad])[:5].tolist()} are not codes of this model "
                         f"({', '.join(f'{k} = {v}' for k, v in IN['codes'].items())})")
    return name, resize_nearest(g.astype(np.int64), H, W).astype(np.float32)[:, :, None]


def _grids(name: str, a: np.ndarray) -> list[tuple[str, np.ndarray]]:
    if a.dtype == object:   # WM-811K: an object array of 2-D grids of any sizes
        return [_codes(f"{name}#{i}", np.asarray(g)) for i, g in enumerate(a.reshape(-1))]
    if a.ndim == 2:
        return [_codes(name, a)]
    if a.ndim == 3:
        return [_codes(f"{name}#{i}", g) for i, g in enumerate(a)]
    raise InputError(f"{name}: code grids are (rows, cols) or (n, rows, cols), not {a.shape}")


def from_array(name: str, a: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """One array of a .npy / .npz file -> float inputs, by the design's input kind."""
    kind = IN["kind"]
    if a.dtype != object and not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{name}: not a numeric array ({a.dtype})")
    if kind == "tensor" or (a.dtype != object and np.issubdtype(a.dtype, np.floating)):
        t = _tensors(name, a) if a.dtype != object else None
        if t is None:
            raise InputError(f"{name}: {'a float array is' if kind != 'tensor' else 'input files hold'} the "
                             f"model's input tensor, shape {SHAPE} or (N,) + {SHAPE}; this one is {a.shape}")
        return t
    if kind == "image":
        if a.dtype == object:
            raise InputError(f"{name}: object arrays are not images")
        return _images(name, a)
    return _grids(name, a)


def _load_npy(path: Path):
    """np.load; pickled object arrays (WM-811K arrays of grids) only in the codes kind, where they are a format."""
    return np.load(path, allow_pickle=IN["kind"] == "codes")


def _npz(path: Path) -> list[tuple[str, np.ndarray]]:
    with _load_npy(path) as z:
        return [item for k in z.files for item in from_array(f"{path.name}#{k}", z[k])]


def _png_codes(name: str, a: np.ndarray) -> np.ndarray:
    """Grey pixels -> codes: the codes themselves if every pixel is one, else n evenly spaced grey levels."""
    values = sorted(IN["codes"].values())
    n = len(values)
    if np.isin(a, values).all():
        return a.astype(np.int64)
    levels = [(510 * i + n - 1) // (2 * (n - 1)) for i in range(n)]   # round(255 i / (n - 1)), halves up
    idx = np.searchsorted(levels, a)
    ok = (idx < n) & (np.asarray(levels + [-1])[np.minimum(idx, n)] == a)
    if not ok.all():
        raise InputError(f"{name}: grey values {np.unique(a[~ok])[:5].tolist()} are neither codes {values} nor "
                         f"the grey levels {levels} standing for them")
    return np.asarray(values)[idx]


def _picture(path: Path) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    with Image.open(path) as im:
        if IN["kind"] == "codes":
            if im.mode not in ("L", "1", "I", "I;16", "I;16B", "I;16L"):
                raise InputError(f"{path}: a code picture is grey, this one is {im.mode}")
            a = np.asarray(im.convert("L") if im.mode == "1" else im).astype(np.int64)
            return [_codes(path.name, _png_codes(path.name, a))]
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raise InputError(f"{path}: {im.mode} pixels are not 8-bit: give the float input tensor as .npy")
        a = np.asarray(im.convert("L" if C == 1 else "RGB"))
    return [(path.name, _pixels(a if a.ndim == 3 else a[:, :, None]))]


def _pickle(path: Path) -> list[tuple[str, np.ndarray]]:
    try:
        import pandas as pd
    except ImportError:
        raise InputError(f"{path}: reading a .pkl DataFrame needs pandas (pip install pandas)") from None
    df = pd.read_pickle(path)
    if "waferMap" not in getattr(df, "columns", ()):
        raise InputError(f"{path}: a WM-811K DataFrame with a 'waferMap' column was expected")
    return [_codes(f"{path.name}#{i}", np.asarray(g)) for i, g in zip(df.index, df["waferMap"])]


def _g85(path: Path) -> list[tuple[str, np.ndarray]]:
    cat = IN["codes"]
    if not {"off", "pass", "fail"} <= set(cat):
        raise InputError(f"{path}: G85 maps need codes named off, pass and fail; this model's are {sorted(cat)}")
    value = np.array([cat["off"], cat["pass"], cat["fail"]])
    out, seen = [], {}
    for wid, grid in read_g85(path.read_text(encoding="utf-8")):
        key = wid or str(len(out))
        seen[key] = seen.get(key, -1) + 1
        name = f"{path.name}#{key}" + (f".{seen[key]}" if seen[key] else "")
        out.append(_codes(name, value[grid]))
    if not out:
        raise InputError(f"{path}: no wafer map in this G85 file")
    return out


def load_inputs(path: Path) -> list[tuple[str, np.ndarray]]:
    """(name, float input (H, W, C)) for every input in the file, by the design's input kind."""
    suffix = path.suffix.lower()
    kind = IN["kind"]
    try:
        if suffix == ".npy":
            return from_array(path.name, _load_npy(path))
        if suffix == ".npz":
            return _npz(path)
        if kind == "tensor":
            raise InputError(f"{path}: this design's input kind is `tensor`: give .npy / .npz arrays of shape "
                             f"{SHAPE} or (N,) + {SHAPE}")
        if suffix in (".xml", ".g85") and kind == "codes":
            return _g85(path)
        if suffix == ".pkl" and kind == "codes":
            return _pickle(path)
        return _picture(path)
    except InputError:
        raise
    except Exception as e:  # unreadable input: one clear line, not a traceback
        raise InputError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None


def encode(x: np.ndarray) -> bytes:
    """(H, W, C) float input -> one input frame: per channel, code lo + count of thresholds <= x, as its byte."""
    if np.isnan(x).any():
        raise InputError("NaN in the input: the model's quantiser has no code for it")
    q = IN["quantiser"]
    frame = np.empty(x.shape, np.uint8)
    for c in range(C):
        thr = np.asarray(q["thresholds"][c], np.uint32).view(np.float32)
        frame[..., c] = np.asarray(q["bytes"][c], np.uint8)[np.searchsorted(thr, x[..., c], side="right")]
    return frame.tobytes()   # NHWC order


def prepare(path: Path) -> list[tuple[str, bytes]]:
    out = []
    for name, x in load_inputs(path):
        try:
            out.append((name, encode(x)))
        except InputError as e:
            raise InputError(f"{path} ({name}): {e}") from None
    return out


# ---- SEMI G85: g85grid.py beside this file, the reader examples/wafer/wafermap.py uses too ------------------------

def read_g85(text: str) -> list[tuple[str, np.ndarray]]:
    """(wafer id, grid of 0 off / 1 pass / 2 fail) per <Device> of every <Map>."""
    return [(wid, grid) for wid, grid, _ in g85grid.read_g85(text)]


# ---- protocol ------------------------------------------------------------------------------------------------

class Client:
    def __init__(self, host: str, port: int = proto.NET_DEFAULT_PORT, timeout: float = 10.0):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ClientError(f"cannot connect to {host}:{port}: {e.strerror or e}") from None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ClientError("the server closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, mtype: str, payload: bytes = b"") -> tuple[int, bytes]:
        """Send one message, return (reply type, payload); an ERROR reply raises ServerError, a lost or silent
        connection ClientError."""
        try:
            self.sock.sendall(proto.NET_HEADER.pack(proto.NET_MAGIC, proto.NET_VERSION, proto.MSG[mtype], 0,
                                                    len(payload)) + payload)
            magic, version, rtype, status, length = proto.NET_HEADER.unpack(self._recv(proto.NET_HEADER.size))
            if magic != proto.NET_MAGIC or version != proto.NET_VERSION:
                raise ClientError(f"not a gen inference server (magic 0x{magic:08X})")
            body = self._recv(length)
        except TimeoutError:
            raise ClientError("no reply from the server in time") from None
        except OSError as e:   # reset, broken pipe, ...
            raise ClientError(f"connection to the server lost ({e.strerror or e})") from None
        if rtype == proto.MSG["ERROR"]:
            raise ServerError(status, body.decode(errors="replace"))
        return rtype, body

    def info(self) -> dict[str, int]:
        _, body = self.request("INFO")
        return dict(zip(proto.INFO_FIELDS, np.frombuffer(body, "<u4").tolist()))

    def check_design(self) -> None:
        info = self.info()
        if info.get("design_hash") != D["design_hash"] or info.get("in_frame_bytes") != D["in_frame_bytes"]:
            raise ClientError(f"the server runs another design (hash 0x{info.get('design_hash', 0):08X}, this "
                              f"client is for 0x{D['design_hash']:08X}: regenerate the client from the same gen run)")

    def infer(self, frames: list[bytes]) -> list[dict]:
        _, body = self.request("INFER", b"".join(frames))
        try:
            n, k, ncls = proto.RESULT_HEAD.unpack_from(body)
            more = max(ncls, 1) - 1  # ranks 2.. of a top-k head, before the scores
            out, off = [], proto.RESULT_HEAD.size
            for _ in range(n):
                label, seq, flags = proto.RESULT_REC.unpack_from(body, off)
                off += proto.RESULT_REC.size
                classes = [label] + np.frombuffer(body, "<i4", more, off).tolist() if label >= 0 else []
                off += 4 * more
                scores = np.frombuffer(body, "<i4", k, off).tolist()
                off += 4 * k
                out.append({"class": None if label < 0 else label, "classes": classes, "seq": seq, "flags": flags,
                            "scores": scores})
        except (struct.error, ValueError) as e:
            raise ClientError(f"malformed INFER reply ({e})") from None
        if len(out) != len(frames):
            raise ClientError(f"the server answered {len(out)} results for {len(frames)} frames")
        return out

    def status(self) -> dict[str, int]:
        _, body = self.request("STATUS")
        return dict(zip(proto.STATUS_REGS + proto.SERVER_COUNTERS, np.frombuffer(body, "<u4").tolist()))

    def config(self, records: bytes) -> int:
        _, body = self.request("CONFIG", records)
        return int.from_bytes(body[:4], "little")


def load_config(path: Path) -> bytes:
    """Weight records: .npy of uint32 rows (layer, addr, data[CFG_DATA_WORDS]) or the raw record bytes."""
    try:
        if path.suffix == ".npy":
            a = np.load(path, allow_pickle=False)
            if a.ndim != 2 or a.shape[1] != 2 + proto.CFG_DATA_WORDS or not np.issubdtype(a.dtype, np.integer):
                raise InputError(f"{path}: weight records are rows of {2 + proto.CFG_DATA_WORDS} uint32")
            return a.astype("<u4").tobytes()
        return path.read_bytes()
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{path}: cannot read weight records ({type(e).__name__}: {e})") from None


# ---- command line --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one `error:` line and exit 2, no usage dump
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _batch(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch {text!r} is not an integer") from None
    if not 1 <= n <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"--batch {n}: frames per request are 1..{MAX_BATCH}")
    return n


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"--port {text!r}: a TCP port is 1..65535")
    return int(text)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"--timeout {text!r}: seconds, a finite number > 0")
    return v


def parser() -> argparse.ArgumentParser:
    p = _Parser(description=f"Classify input files on the board (design {D['name']}, input kind {IN['spec']}).",
                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", type=Path, help="input files (.npy, .npz, images, G85 .xml, .pkl)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=proto.NET_DEFAULT_PORT)
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds to wait for a reply")
    p.add_argument("--batch", type=_batch, default=min(16, MAX_BATCH),
                   help=f"frames per INFER request, 1..{MAX_BATCH}")
    p.add_argument("--csv", type=Path, help="write the results here (default: print them)")
    p.add_argument("--status", action="store_true", help="print the accelerator's registers and server counters")
    p.add_argument("--config", type=Path, help="upload run-time weight records first")
    return p


def _more_classes() -> int:
    """CSV columns class2..classK of a top-k head (rank 1 is the `class` column)."""
    return max(D.get("num_classes", 1), 1) - 1


def _rows(chunk, results):
    more = _more_classes()
    for (name, _), r in zip(chunk, results):
        ranks = (r["classes"][1:] if r["classes"] else [""] * more)[:more]
        yield [name, "" if r["class"] is None else r["class"], *ranks, r["seq"], r["flags"], *r["scores"]]


def run(a) -> int:
    frames = [item for path in a.inputs for item in prepare(path)]
    records = load_config(a.config) if a.config else None
    out = None
    written = 0
    try:
        with Client(a.host, a.port, a.timeout) as cl:
            cl.check_design()
            if records is not None:
                print(f"uploaded {cl.config(records)} weight records")
            if frames:
                try:
                    # not `with`: written batch by batch below, closed in `finally` (unless it is sys.stdout)
                    out = open(a.csv, "w", newline="") if a.csv else sys.stdout  # noqa: SIM115
                except OSError as e:
                    raise InputError(f"{a.csv}: cannot write ({e.strerror})") from None
                w = csv.writer(out)
                w.writerow(["input", "class"] + [f"class{r}" for r in range(2, 2 + _more_classes())] + ["seq", "flags"]
                           + [f"score{i}" for i in range(D["num_scores"])])
                for i in range(0, len(frames), a.batch):
                    chunk = frames[i:i + a.batch]
                    w.writerows(_rows(chunk, cl.infer([f for _, f in chunk])))
                    out.flush()   # what arrived is kept, whatever happens next
                    written += len(chunk)
            if a.status:
                for k, v in cl.status().items():
                    print(f"{k:16s} 0x{v:08X} {v}")
    except (ClientError, ServerError) as e:
        kept = f" ({written} of {len(frames)} results written to {a.csv})" if a.csv and frames else ""
        raise ClientError(f"{e}{kept}") from None
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    if a.csv and frames:
        print(f"wrote {written} results to {a.csv}")
    return 0


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    if not (a.inputs or a.status or a.config):
        print("error: nothing to do: give input files, --status or --config", file=sys.stderr)
        return 2
    try:
        return run(a)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ClientError, ServerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback: one line naming what went wrong
        print(f"error: internal error ({type(e).__name__}: {e})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
