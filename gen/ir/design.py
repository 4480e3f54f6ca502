"""The Design: one object every pass reads and extends (tensors, layers in topological order, boundaries)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .layers import Layer, layer_from_json
from .tensor import TensorInfo

FORMAT_VERSION = 1


@dataclass
class Design:
    name: str
    flavour: str                                  # "qonnx" | "qdq" | "qop"
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    input: str = ""                               # tensor written by the Input layer
    output: str = ""                              # the stream the hardware sends back (codes, accumulators or labels)
    scores: str = ""                              # the tensor compared with the reference's float output
    output_boundary: dict = field(default_factory=dict)   # float32 replay: scores -> the reference's output
    notes: list[str] = field(default_factory=list)
    folding: dict = field(default_factory=dict)   # filled by the fold pass
    # what the float input tensor means to the host (gen/firmware/inputs.py: --input-kind or the ONNX metadata);
    # empty = not stated. In design.json but not in to_json(), which DESIGN_HASH hashes: the hardware is the same
    # whatever the input files mean, so a bitstream serves clients generated with any contract.
    input_contract: dict = field(default_factory=dict)

    def add_tensor(self, t: TensorInfo) -> TensorInfo:
        if t.name in self.tensors:
            raise ValueError(f"duplicate tensor {t.name}")
        self.tensors[t.name] = t
        return t

    def add_layer(self, layer: Layer) -> Layer:
        for i in layer.inputs:
            if i not in self.tensors:
                raise ValueError(f"layer {layer.name}: unknown input {i}")
        self.layers.append(layer)
        return layer

    def producer(self, tensor: str) -> Layer | None:
        for layer in self.layers:
            if layer.output == tensor:
                return layer
        return None

    def consumers(self, tensor: str) -> list[Layer]:
        return [layer for layer in self.layers if tensor in layer.inputs]

    def input_layer(self):
        return self.layers[0]

    def to_json(self) -> dict:
        return {"format": FORMAT_VERSION, "name": self.name, "flavour": self.flavour,
                "input": self.input, "output": self.output, "scores": self.scores,
                "output_boundary": self.output_boundary, "notes": self.notes, "folding": self.folding,
                "tensors": [t.to_json() for t in self.tensors.values()],
                "layers": [layer.to_json() for layer in self.layers]}

    def save(self, path: Path) -> None:
        d = self.to_json()
        if self.input_contract:
            d["input_contract"] = self.input_contract
        Path(path).write_text(json.dumps(d, indent=1))

    @classmethod
    def from_json(cls, d: dict) -> Design:
        if d.get("format") != FORMAT_VERSION:
            raise ValueError(f"design.json format {d.get('format')} is not {FORMAT_VERSION}")
        des = cls(name=d["name"], flavour=d["flavour"], input=d["input"], output=d["output"],
                  scores=d["scores"], output_boundary=d["output_boundary"], notes=d["notes"],
                  folding=d.get("folding") or {}, input_contract=d.get("input_contract") or {})
        for t in d["tensors"]:
            des.tensors[t["name"]] = TensorInfo.from_json(t)
        des.layers = [layer_from_json(x) for x in d["layers"]]
        return des

    @classmethod
    def load(cls, path: Path) -> Design:
        return cls.from_json(json.loads(Path(path).read_text()))
