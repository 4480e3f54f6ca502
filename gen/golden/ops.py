"""Integer layer functions shared by the golden model and the kernel testbenches.

All activations are int64 numpy arrays in NHWC layout with a leading batch axis, shape (N, H, W, C).
These functions are the reference semantics of the hardware kernels: every RTL kernel is tested
element for element against one of them.
"""

from __future__ import annotations

import numpy as np

Pads = tuple[int, int, int, int]  # (top, left, bottom, right)


def pad_nhwc(x: np.ndarray, pads: Pads, value) -> np.ndarray:
    """Pad H and W with a constant; `value` is a scalar or one value per channel."""
    top, left, bottom, right = pads
    if not any(pads):
        return x
    n, h, w, c = x.shape
    out = np.empty((n, h + top + bottom, w + left + right, c), dtype=x.dtype)
    out[...] = np.asarray(value, dtype=x.dtype)
    out[:, top:top + h, left:left + w, :] = x
    return out


def out_size(size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dilation: int = 1) -> int:
    return (size + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def sliding_windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads,
                    pad_value=0, dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Windows of x as (N, OH, OW, KH, KW, C): what the sliding-window generator streams, in order."""
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    xp = pad_nhwc(x, pads, pad_value)
    n, hp, wp, c = xp.shape
    oh = (hp - dh * (kh - 1) - 1) // sh + 1
    ow = (wp - dw * (kw - 1) - 1) // sw + 1
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, shape=(n, oh, ow, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False)
    return view


def _int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer a @ b. Uses float64 BLAS when every partial sum fits in 2**53, else int64."""
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * a.shape[-1]
    if bound < 2.0 ** 52:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


def conv(x: np.ndarray, w: np.ndarray, stride=(1, 1), pads: Pads = (0, 0, 0, 0), groups: int = 1,
         pad_value=0, dilation=(1, 1), bias: np.ndarray | None = None) -> np.ndarray:
    """Integer convolution. x: (N, H, W, IC), w: (OC, KH, KW, IC // groups) -> acc (N, OH, OW, OC)."""
    oc, kh, kw, icg = w.shape
    win = sliding_windows(x, (kh, kw), stride, pads, pad_value, dilation)  # N,OH,OW,KH,KW,IC
    n, oh, ow = win.shape[:3]
    ocg = oc // groups
    outs = []
    for g in range(groups):
        xg = win[..., g * icg:(g + 1) * icg].reshape(n * oh * ow, kh * kw * icg)
        wg = w[g * ocg:(g + 1) * ocg].reshape(ocg, kh * kw * icg)
        outs.append(_int_matmul(xg, wg.T))
    acc = np.concatenate(outs, axis=-1).reshape(n, oh, ow, oc)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return acc


def dense(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Fully connected layer. x: (N, H, W, C) flattened in HWC order; w: (OC, H*W*C) -> (N, 1, 1, OC)."""
    n = x.shape[0]
    acc = _int_matmul(x.reshape(n, -1), w.T)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return acc.reshape(n, 1, 1, -1)


def requant_thresholds(acc: np.ndarray, thresholds: np.ndarray, negate: np.ndarray, out_lo: int) -> np.ndarray:
    """code = out_lo + #{k : s_c * acc >= T[c, k]}, s_c = -1 where `negate[c]`, else +1.

    thresholds: (C, K) int64 sorted ascending per channel, or (1, K) for a per-tensor function.
    """
    s = np.where(np.asarray(negate, dtype=bool), -1, 1).astype(np.int64)
    a = acc.astype(np.int64) * s
    t = np.asarray(thresholds, dtype=np.int64)
    c = acc.shape[-1]
    if t.shape[0] == 1 and c != 1:
        t = np.broadcast_to(t, (c, t.shape[1]))
    count = np.zeros(a.shape, dtype=np.int64)
    for ch in range(c):  # searchsorted per channel keeps memory at O(size), not O(size * K)
        count[..., ch] = np.searchsorted(t[ch], a[..., ch], side="right")
    return count + out_lo


def requant_multshift(acc: np.ndarray, mult: np.ndarray, shift: int, offset: np.ndarray,
                      out_lo: int, out_hi: int) -> np.ndarray:
    """code = clamp(floor((acc * M_c + B_c) / 2**shift), out_lo, out_hi) (exact integer arithmetic)."""
    a = acc.astype(object) if shift > 30 else acc.astype(np.int64)
    v = (a * np.asarray(mult, dtype=np.int64) + np.asarray(offset, dtype=np.int64)) >> shift
    return np.clip(v, out_lo, out_hi).astype(np.int64)


def maxpool(x: np.ndarray, kernel=(2, 2), stride=(2, 2), pads: Pads = (0, 0, 0, 0),
            pad_value: int = np.iinfo(np.int64).min // 2) -> np.ndarray:
    win = sliding_windows(x, kernel, stride, pads, pad_value)
    return win.max(axis=(3, 4))


def pool_sum(x: np.ndarray, kernel=(2, 2), stride=(2, 2), pads: Pads = (0, 0, 0, 0), pad_value=0) -> np.ndarray:
    """Window sums (the average's numerator; the division is folded into the following requantiser)."""
    win = sliding_windows(x, kernel, stride, pads, pad_value)
    return win.sum(axis=(3, 4), dtype=np.int64)


def add(a: np.ndarray, b: np.ndarray, ka, kb) -> np.ndarray:
    """acc = ka * a + kb * b (per-channel integer weights; the zero points go into the requantiser)."""
    return a.astype(np.int64) * np.asarray(ka, dtype=np.int64) + b.astype(np.int64) * np.asarray(kb, dtype=np.int64)


def concat(xs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(xs, axis=-1)


def upsample(x: np.ndarray, factor=(2, 2)) -> np.ndarray:
    """Nearest-neighbour upsampling by integer factors."""
    return np.repeat(np.repeat(x, factor[0], axis=1), factor[1], axis=2)


def label_select(x: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the k largest values over all elements of each frame, largest first, ties to the lower index."""
    flat = x.reshape(x.shape[0], -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    return order[:, :k]


def lut(x: np.ndarray, table: np.ndarray, in_lo: int) -> np.ndarray:
    """Element-wise table: out = table[x - in_lo] (any function of a <= 8-bit input)."""
    return np.asarray(table, dtype=np.int64)[x.astype(np.int64) - in_lo]
