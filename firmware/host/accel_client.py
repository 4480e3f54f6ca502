#!/usr/bin/env python3
"""Host client (STM32MP1 side of the seed system): wafer maps -> the board's inference server -> classes.

    accel_client.py --host zybo wafer1.npy wafer2.png lot.xml --csv results.csv
    accel_client.py --host zybo --status
    accel_client.py --host zybo --config weights.npy

Inputs: numpy .npy (2-D bin codes 0/1/2 = outside/good/failing die, or 8-bit images, or floats in [0, 1]),
images (PNG and anything Pillow reads, as 8-bit grey) and SEMI G85 XML wafer maps (the `g85` package; null
bin = outside, passing bins = good, other bins = failing). Each map is cropped to its dies, scaled by nearest
neighbour to fit the model input keeping its aspect, centred on an "outside" background, and encoded with the
design's input quantiser (a per-channel table of the 256 pixel values, computed by gen's golden model:
accel_proto.DESIGN["input_lut"]). Pixels: outside 0, good die 128, failing die 255 (the example model's
convention). Needs numpy; Pillow for images, g85 for XML. Protocol: PROTOCOL.md (accel_proto.py).
"""

from __future__ import annotations

import argparse
import csv
import socket
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accel_proto as proto  # noqa: E402

D = proto.DESIGN
OUTSIDE, GOOD, FAIL = 0, 128, 255


class ClientError(Exception):
    """A problem on this side: unreadable input, connection, protocol."""


class ServerError(Exception):
    """The server's ERROR reply: status code, its name and the server's text."""

    def __init__(self, code: int, text: str):
        self.code = code
        self.name = proto.ERRORS.get(code, ("UNKNOWN", ""))[0]
        super().__init__(f"{self.name} ({code}): {text}")


# ---- wafer maps -> model input -----------------------------------------------------------------------------

def _from_bins(a: np.ndarray) -> np.ndarray:
    lut = np.array([OUTSIDE, GOOD, FAIL], np.uint8)
    return lut[a.astype(np.int64)]


def load_maps(path: Path) -> list[tuple[str, np.ndarray]]:
    """(name, 8-bit image of shape (H, W) or (H, W, C)) for every wafer map in the file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            a = np.load(path, allow_pickle=False)
            if a.ndim not in (2, 3):
                raise ClientError(f"{path}: a wafer map is 2-D (or H x W x C), not {a.shape}")
            if np.issubdtype(a.dtype, np.floating):
                img = np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
            elif a.min() >= 0 and a.max() <= 2:
                img = _from_bins(a)
            else:
                img = np.clip(a, 0, 255).astype(np.uint8)
            return [(path.name, img)]
        if suffix in (".xml", ".g85"):
            import g85

            with open(path) as f:
                maps = g85.read(f)
            out = []
            for i, m in enumerate(maps):
                for j, dev in enumerate(m.devices):
                    if not dev.map:
                        continue
                    rows = np.array(dev.map, dtype=object)
                    img = np.full(rows.shape, FAIL, np.uint8)
                    good = [b for b, ok in dev.bin_pass.items() if ok]
                    img[np.isin(rows, good)] = GOOD
                    img[rows == dev.NullBin] = OUTSIDE
                    out.append((f"{path.name}#{m.SubstrateId or i}.{j}", img))
            if not out:
                raise ClientError(f"{path}: no wafer map in this G85 file")
            return out
        from PIL import Image

        with Image.open(path) as im:
            mode = "RGB" if D["in_channels"] == 3 else "L"
            return [(path.name, np.asarray(im.convert(mode)))]
    except ClientError:
        raise
    except Exception as e:  # unreadable input: one clear line, not a traceback
        raise ClientError(f"{path}: cannot read a wafer map ({type(e).__name__}: {e})") from None


def fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop to the dies (non-zero pixels), scale by nearest neighbour to fit (h, w), centre on background."""
    mask = img if img.ndim == 2 else img.max(axis=2)
    ys, xs = np.nonzero(mask)
    if len(ys):
        img = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    sh, sw = img.shape[:2]
    scale = min(h / sh, w / sw)
    nh, nw = max(1, min(h, round(sh * scale))), max(1, min(w, round(sw * scale)))
    rows = np.minimum((np.arange(nh) + 0.5) * sh / nh, sh - 1).astype(int)
    cols = np.minimum((np.arange(nw) + 0.5) * sw / nw, sw - 1).astype(int)
    scaled = img[rows][:, cols]
    out = np.zeros((h, w) + img.shape[2:], np.uint8)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[top:top + nh, left:left + nw] = scaled
    return out


def encode(img: np.ndarray) -> bytes:
    """8-bit image (h, w[, c]) -> one input frame: the design's quantiser by table look-up, NHWC bytes."""
    c = D["in_channels"]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], c, axis=2)
    elif img.shape[2] != c:
        img = np.repeat(np.rint(img.mean(axis=2)).astype(np.uint8)[:, :, None], c, axis=2)
    lut = np.asarray(D["input_lut"], np.uint8)              # (C, 256)
    frame = lut[np.arange(c)[None, None, :], img]            # (h, w, c): NHWC order
    assert frame.size == D["in_frame_bytes"]
    return frame.tobytes()


def prepare(path: Path) -> list[tuple[str, bytes]]:
    return [(name, encode(fit(img, D["in_height"], D["in_width"]))) for name, img in load_maps(path)]


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
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                raise ClientError("no reply from the server in time") from None
            if not chunk:
                raise ClientError("the server closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, mtype: str, payload: bytes = b"") -> tuple[int, bytes]:
        """Send one message, return (reply type, payload); an ERROR reply raises ServerError."""
        self.sock.sendall(proto.NET_HEADER.pack(proto.NET_MAGIC, proto.NET_VERSION, proto.MSG[mtype], 0,
                                                len(payload)) + payload)
        magic, version, rtype, status, length = proto.NET_HEADER.unpack(self._recv(proto.NET_HEADER.size))
        if magic != proto.NET_MAGIC or version != proto.NET_VERSION:
            raise ClientError(f"not a gen inference server (magic 0x{magic:08X})")
        body = self._recv(length)
        if rtype == proto.MSG["ERROR"]:
            raise ServerError(status, body.decode(errors="replace"))
        return rtype, body

    def info(self) -> dict[str, int]:
        _, body = self.request("INFO")
        return dict(zip(proto.INFO_FIELDS, np.frombuffer(body, "<u4").tolist()))

    def check_design(self) -> None:
        info = self.info()
        if info["design_hash"] != D["design_hash"] or info["in_frame_bytes"] != D["in_frame_bytes"]:
            raise ClientError(f"the server runs another design (hash 0x{info['design_hash']:08X}, this client "
                              f"is for 0x{D['design_hash']:08X}: regenerate the client from the same gen run)")

    def infer(self, frames: list[bytes]) -> list[dict]:
        _, body = self.request("INFER", b"".join(frames))
        n, k = proto.RESULT_HEAD.unpack_from(body)
        out, off = [], proto.RESULT_HEAD.size
        for _ in range(n):
            label, seq, flags = proto.RESULT_REC.unpack_from(body, off)
            off += proto.RESULT_REC.size
            scores = np.frombuffer(body, "<i4", k, off).tolist()
            off += 4 * k
            out.append({"class": None if label < 0 else label, "seq": seq, "flags": flags, "scores": scores})
        return out

    def status(self) -> dict[str, int]:
        _, body = self.request("STATUS")
        return dict(zip(proto.STATUS_REGS + proto.SERVER_COUNTERS, np.frombuffer(body, "<u4").tolist()))

    def config(self, records: bytes) -> int:
        _, body = self.request("CONFIG", records)
        return int.from_bytes(body[:4], "little")


def load_config(path: Path) -> bytes:
    """Weight records: .npy of uint32 rows (layer, addr, data[CFG_DATA_WORDS]) or the raw record bytes."""
    if path.suffix == ".npy":
        a = np.load(path).astype("<u4")
        if a.ndim != 2 or a.shape[1] != 2 + proto.CFG_DATA_WORDS:
            raise ClientError(f"{path}: weight records are rows of {2 + proto.CFG_DATA_WORDS} uint32")
        return a.tobytes()
    return path.read_bytes()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=f"Classify wafer maps on the board ({D['name']}).")
    p.add_argument("inputs", nargs="*", type=Path, help=".npy, image or G85 .xml wafer maps")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=proto.NET_DEFAULT_PORT)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a reply")
    p.add_argument("--batch", type=int, default=16, help="frames per INFER request")
    p.add_argument("--csv", type=Path, help="write the results here (default: print them)")
    p.add_argument("--status", action="store_true", help="print the accelerator's registers and server counters")
    p.add_argument("--config", type=Path, help="upload run-time weight records first")
    a = p.parse_args(argv)
    if not (a.inputs or a.status or a.config):
        p.error("nothing to do: give wafer maps, --status or --config")
    try:
        frames = [item for path in a.inputs for item in prepare(path)]
        with Client(a.host, a.port, a.timeout) as cl:
            cl.check_design()
            if a.config:
                print(f"uploaded {cl.config(load_config(a.config))} weight records")
            results = []
            for i in range(0, len(frames), max(1, min(a.batch, proto.NET_MAX_BATCH))):
                chunk = frames[i:i + a.batch]
                results += [(name, r) for (name, _), r in zip(chunk, cl.infer([f for _, f in chunk]))]
            if a.status:
                for k, v in cl.status().items():
                    print(f"{k:16s} 0x{v:08X} {v}")
    except (ClientError, ServerError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if results:
        header = ["input", "class", "seq", "flags"] + [f"score{i}" for i in range(D["num_scores"])]
        rows = [[name, "" if r["class"] is None else r["class"], r["seq"], r["flags"], *r["scores"]]
                for name, r in results]
        if a.csv:
            with open(a.csv, "w", newline="") as f:
                csv.writer(f).writerows([header] + rows)
            print(f"wrote {len(rows)} results to {a.csv}")
        else:
            csv.writer(sys.stdout).writerows([header] + rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
