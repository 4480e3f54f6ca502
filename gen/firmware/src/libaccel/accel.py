"""ctypes wrapper of libaccel (libaccel.h): the accelerator from Python, on the board or against a simulated device.

    from accel import Accel
    with Accel() as acc:                     # /dev/<design>; Accel("unix:/tmp/accel.sock") for a simulated device
        r = acc.infer(frame)                 # bytes of one input frame -> Result(label, seq, flags, scores)
        rs = acc.infer_batch(frames)         # n frames back to back
        print(acc.status())                  # {register name: value}

The library is found at $LIBACCEL, beside this file, or in the parent folder (where `make` puts it).
Errors raise AccelError with libaccel's code, name and text (accel_proto.ERRORS).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import accel_proto as proto

NUM_SCORES = proto.DESIGN["num_scores"]
NUM_CLASSES = proto.DESIGN["num_classes"]
IN_FRAME_BYTES = proto.DESIGN["in_frame_bytes"]


def error_code(name: str) -> int:
    return next(code for code, (n, _) in proto.ERRORS.items() if n == name)


class AccelError(Exception):
    def __init__(self, code: int, where: str = ""):
        self.code = abs(code)
        self.name, self.text = proto.ERRORS.get(self.code, ("UNKNOWN", "unknown error"))
        super().__init__(f"{where}: {self.text} ({self.name})" if where else f"{self.text} ({self.name})")


class _Result(ctypes.Structure):
    _fields_ = [("label", ctypes.c_int32), ("seq", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("classes", ctypes.c_int32 * max(NUM_CLASSES, 1)), ("scores", ctypes.c_int32 * NUM_SCORES)]


@dataclass(frozen=True)
class Result:
    label: int | None
    seq: int
    flags: int
    scores: tuple[int, ...]
    classes: tuple[int, ...] = ()  # a top-k head's classes, largest first (classes[0] == label)


def _find_library() -> str:
    here = Path(__file__).resolve().parent
    for p in (os.environ.get("LIBACCEL"), here / "libaccel.so", here.parent / "libaccel.so"):
        if p and Path(p).is_file():
            return str(p)
    raise OSError("libaccel.so not found: run `make` in the firmware folder or set LIBACCEL")


def _load(path: str | None) -> ctypes.CDLL:
    lib = ctypes.CDLL(path or _find_library())
    vp, u8p, u32p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint32)
    sigs = {"accel_open": ([ctypes.c_char_p, ctypes.POINTER(vp)], ctypes.c_int),
            "accel_close": ([vp], None),
            "accel_set_timeout": ([vp, ctypes.c_uint], ctypes.c_int),
            "accel_infer": ([vp, u8p, ctypes.c_size_t, ctypes.POINTER(_Result)], ctypes.c_int),
            "accel_infer_batch": ([vp, u8p, ctypes.c_size_t, ctypes.POINTER(_Result)], ctypes.c_int),
            "accel_read_reg": ([vp, ctypes.c_uint32, u32p], ctypes.c_int),
            "accel_status": ([vp, u32p], ctypes.c_int),
            "accel_write_weight": ([vp, ctypes.c_uint32, ctypes.c_uint32, u32p, ctypes.c_size_t], ctypes.c_int),
            "accel_reset": ([vp], ctypes.c_int),
            "accel_strerror": ([ctypes.c_int], ctypes.c_char_p),
            "accel_in_frame_bytes": ([], ctypes.c_size_t),
            "accel_num_scores": ([], ctypes.c_size_t),
            "accel_num_classes": ([], ctypes.c_size_t),
            "accel_design_hash": ([], ctypes.c_uint32)}
    for name, (args, res) in sigs.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, res
    # the library and this module must come from the same gen run
    if (lib.accel_in_frame_bytes(), lib.accel_num_scores(), lib.accel_num_classes(), lib.accel_design_hash()) != \
            (IN_FRAME_BYTES, NUM_SCORES, NUM_CLASSES, proto.DESIGN["design_hash"]):
        raise OSError(f"{lib._name} was built for another design than accel_proto.py")
    return lib


class Accel:
    def __init__(self, device: str | None = None, *, timeout_ms: int | None = None, library: str | None = None):
        self._lib = _load(library)
        self._h = ctypes.c_void_p()
        self._check(self._lib.accel_open(device.encode() if device else None, ctypes.byref(self._h)),
                    f"open {device or 'the device'}")
        if timeout_ms is not None:
            self.set_timeout(timeout_ms)

    @staticmethod
    def _check(ret: int, where: str) -> int:
        if ret < 0:
            raise AccelError(ret, where)
        return ret

    def close(self) -> None:
        if self._h:
            self._lib.accel_close(self._h)
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def set_timeout(self, ms: int) -> None:
        self._check(self._lib.accel_set_timeout(self._h, ms), "set_timeout")

    @staticmethod
    def _result(r: _Result) -> Result:
        return Result(None if r.label < 0 else r.label, r.seq, r.flags, tuple(r.scores),
                      tuple(r.classes[:NUM_CLASSES]) if r.label >= 0 else ())

    def infer(self, frame: bytes) -> Result:
        buf = (ctypes.c_uint8 * max(len(frame), 1)).from_buffer_copy(bytes(frame) or b"\0")
        res = _Result()
        self._check(self._lib.accel_infer(self._h, buf, len(frame), ctypes.byref(res)), "infer")
        return self._result(res)

    def infer_batch(self, frames) -> list[Result]:
        data = b"".join(bytes(f) for f in frames) if not isinstance(frames, (bytes, bytearray)) else bytes(frames)
        if not data or len(data) % IN_FRAME_BYTES:
            raise AccelError(error_code("FRAME_SIZE"), f"infer_batch: {len(data)} bytes is not whole frames")
        n = len(data) // IN_FRAME_BYTES
        res = (_Result * n)()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        self._check(self._lib.accel_infer_batch(self._h, buf, n, res), "infer_batch")
        return [self._result(r) for r in res]

    def read_reg(self, offset: int) -> int:
        v = ctypes.c_uint32()
        self._check(self._lib.accel_read_reg(self._h, offset, ctypes.byref(v)), f"read_reg 0x{offset:02X}")
        return v.value

    def status(self) -> dict[str, int]:
        vals = (ctypes.c_uint32 * len(proto.STATUS_REGS))()
        self._check(self._lib.accel_status(self._h, vals), "status")
        return dict(zip(proto.STATUS_REGS, vals))

    def write_weight(self, layer: int, addr: int, words) -> None:
        words = list(words)
        arr = (ctypes.c_uint32 * max(len(words), 1))(*words)
        self._check(self._lib.accel_write_weight(self._h, layer, addr, arr, len(words)), "write_weight")

    def reset(self) -> None:
        self._check(self._lib.accel_reset(self._h), "reset")
