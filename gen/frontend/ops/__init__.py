"""The lowering's op handlers, one module per op family (see gen/frontend/lowering.py)."""
