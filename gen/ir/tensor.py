"""Integer stream tensors of the IR: shape (H, W, C), exact value range, and how codes map to real values."""

from __future__ import annotations

from dataclasses import dataclass, field


def bits_for_range(lo: int, hi: int) -> tuple[int, bool]:
    """Smallest (bits, signed) two's-complement/unsigned encoding holding every integer in [lo, hi]."""
    if lo >= 0:
        return max(1, int(hi).bit_length()), False
    b = 1
    while not (-(1 << (b - 1)) <= lo and hi <= (1 << (b - 1)) - 1):
        b += 1
    return b, True


@dataclass(frozen=True)
class TensorInfo:
    """One stream between layers: (H, W, C) elements, each an integer in [lo, hi].

    `bipolar` marks 1-bit tensors whose values are -1/+1 (sent as one bit: 1 = +1, 0 = -1).
    `scale`/`zero_point` say what real value a code stands for: real = scale[c] * (code - zero_point);
    `scale` is None for accumulators, whose real value is described by the consuming requantiser.
    `onnx_name` is the ONNX tensor this stream reproduces (for layer-by-layer checking), if any.
    """

    name: str
    shape: tuple[int, int, int]
    lo: int
    hi: int
    bipolar: bool = False
    scale: tuple[float, ...] | None = None
    zero_point: int = 0
    onnx_name: str | None = None
    onnx_layout: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def bits(self) -> int:
        return 1 if self.bipolar else bits_for_range(self.lo, self.hi)[0]

    @property
    def signed(self) -> bool:
        return False if self.bipolar else bits_for_range(self.lo, self.hi)[1]

    @property
    def channels(self) -> int:
        return self.shape[2]

    @property
    def elements(self) -> int:
        h, w, c = self.shape
        return h * w * c

    def dtype_name(self) -> str:
        if self.bipolar:
            return "BIPOLAR"
        return f"{'INT' if self.signed else 'UINT'}{self.bits}"

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "lo": int(self.lo), "hi": int(self.hi),
                "bipolar": self.bipolar, "scale": None if self.scale is None else [float(s) for s in self.scale],
                "zero_point": int(self.zero_point), "onnx_name": self.onnx_name, "onnx_layout": self.onnx_layout,
                "bits": self.bits, "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict) -> TensorInfo:
        return cls(name=d["name"], shape=tuple(d["shape"]), lo=d["lo"], hi=d["hi"], bipolar=d["bipolar"],
                   scale=None if d["scale"] is None else tuple(d["scale"]), zero_point=d["zero_point"],
                   onnx_name=d["onnx_name"], onnx_layout=d.get("onnx_layout") or {})
