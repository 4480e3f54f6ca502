"""gen: quantized ONNX model -> bit-exact dataflow CNN accelerator for small Zynq boards."""

__version__ = "0.1.0"
