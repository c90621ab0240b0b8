"""Pure-PyTorch functions reproducing ncnn layer semantics (used by ``ncnn_graph``).

Blobs are tensors with a leading batch axis: an ncnn 1-D blob ``w`` is ``[N, W]``, a 2-D blob
``h, w`` is ``[N, H, W]`` and a 3-D blob ``c, h, w`` is ``[N, C, H, W]``; so ``tensor.dim() - 1``
is ncnn's ``dims``.  Parameter ids follow ncnn's ``load_param`` of each layer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

Params = dict[str, Any]


def param(p: Params, key: int, default: Any) -> Any:
    """Value of parameter ``key`` (ids are strings in the JSON layer description)."""
    return p.get(str(key), default)


def fparam(p: Params, key: int, default: float) -> float:
    """A float parameter (an int written without a decimal point is taken by value)."""
    return float(param(p, key, default))


def aparam(p: Params, key: int) -> list[float]:
    """An array parameter (``-233xx=n,a,b,...`` or ``xx=a,b,...``); ``[]`` when absent."""
    v = param(p, key, [])
    return list(v) if isinstance(v, (list, tuple)) else [v]


def activation(x: torch.Tensor, kind: int, args: list[float]) -> torch.Tensor:
    """ncnn's fused activation (``activation_type`` 0..6 with ``activation_params``)."""
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        slope = args[0] if args else 0.0
        return torch.where(x > 0, x, x * slope)
    if kind == 3:
        return x.clamp(args[0], args[1])
    if kind == 4:
        return torch.sigmoid(x.clamp(-88.3762626647949, 88.3762626647949))
    if kind == 5:
        return x * torch.tanh(F.softplus(x))
    if kind == 6:
        return hardswish(x, args[0], args[1])
    raise ValueError(f"activation_type {kind} is not supported")


def hardswish(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """ncnn HardSwish: 0 below -beta/alpha, x above 1/alpha - beta/alpha, else x*(x*alpha+beta)."""
    lower = -beta / alpha
    upper = 1.0 / alpha + lower
    mid = x * (x * alpha + beta)
    return torch.where(x < lower, torch.zeros_like(x), torch.where(x > upper, x, mid))


def same_pads(size: int, kernel_extent: int, stride: int, lower: bool) -> tuple[int, int]:
    """(before, after) padding of ncnn's SAME_UPPER (-233) / SAME_LOWER (-234) modes."""
    pad = kernel_extent + (size - 1) // stride * stride - size
    if pad <= 0:
        return 0, 0
    small, big = pad // 2, pad - pad // 2
    return (big, small) if lower else (small, big)


def conv_padding(x: torch.Tensor, p: Params, kh: int, kw: int, dh: int, dw: int, sh: int, sw: int) -> torch.Tensor:
    """Pad like ncnn ``Convolution::make_padding`` (explicit pads with ``pad_value``, or SAME)."""
    left = param(p, 4, 0)
    right = param(p, 15, left)
    top = param(p, 14, left)
    bottom = param(p, 16, top)
    value = fparam(p, 18, 0.0)
    if left > 0 or right > 0 or top > 0 or bottom > 0:
        return F.pad(x, (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)), value=value)
    for code, lower in ((-233, False), (-234, True)):
        if left == right == top == bottom == code:
            ph = same_pads(x.shape[-2], dh * (kh - 1) + 1, sh, lower)
            pw = same_pads(x.shape[-1], dw * (kw - 1) + 1, sw, lower)
            if sum(ph) + sum(pw) > 0:
                return F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=value)
    return x


def deconv_cut(y: torch.Tensor, p: Params) -> torch.Tensor:
    """Cut the border of a deconvolution output like ncnn ``Deconvolution::cut_padding``."""
    left = param(p, 4, 0)
    right = param(p, 15, left)
    top = param(p, 14, left)
    bottom = param(p, 16, top)
    out_w = param(p, 20, 0)
    out_h = param(p, 21, out_w)
    H, W = y.shape[-2:]
    if left > 0 or right > 0 or top > 0 or bottom > 0:
        t, b, l, r = (max(v, 0) for v in (top, bottom, left, right))
        return y[..., t : H - b, l : W - r]
    if out_w > 0 and out_h > 0 and (-233 in (left, right, top, bottom) or -234 in (left, right, top, bottom)):
        hc, wc = H - out_h, W - out_w
        lower = -234 in (left, right, top, bottom) and -233 not in (left, right, top, bottom)
        t, b = (hc - hc // 2, hc // 2) if lower else (hc // 2, hc - hc // 2)
        l, r = (wc - wc // 2, wc // 2) if lower else (wc // 2, wc - wc // 2)
        return y[..., t : H - b, l : W - r]
    return y


def _axis_taps(size: int, out: int, kind: int, align: int, inv: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Source indices [out, taps] and weights [out, taps] of ncnn's bilinear/bicubic resize.

    ``inv`` is 1/scale when the output size came from a scale parameter: the ncnn runtime
    (PyPI ncnn 1.0.20261020, checked) then maps with it, like PyTorch's ``scale_factor``;
    older ncnn used size/out in both cases (equal whenever size * scale is a whole number).
    """
    scale = (size - 1) / (out - 1) if align and out > 1 else (inv if inv is not None else size / out)
    idx = np.zeros((out, 2 if kind == 2 else 4), np.int64)
    wts = np.zeros(idx.shape, np.float32)
    for d in range(out):
        fx = np.float32(d * scale) if align else np.float32((d + 0.5) * scale - 0.5)
        sx = int(math.floor(fx))
        fx = np.float32(fx - np.float32(sx))
        if kind == 2:
            if sx < 0:
                sx, fx = 0, np.float32(0.0)
            if sx >= size - 1:
                sx, fx = size - 2, np.float32(1.0)
            idx[d] = (sx, sx + 1)
            wts[d] = (np.float32(1.0) - fx, fx)
        else:
            A = np.float32(-0.75)
            f0, f1, f2 = fx + np.float32(1), fx, np.float32(1) - fx
            c0 = A * f0 * f0 * f0 - 5 * A * f0 * f0 + 8 * A * f0 - 4 * A
            c1 = (A + 2) * f1 * f1 * f1 - (A + 3) * f1 * f1 + 1
            c2 = (A + 2) * f2 * f2 * f2 - (A + 3) * f2 * f2 + 1
            idx[d] = (sx - 1, sx, sx + 1, sx + 2)
            wts[d] = (c0, c1, c2, np.float32(1) - c0 - c1 - c2)
    return np.clip(idx, 0, size - 1), wts  # clamped taps == ncnn's border re-weighting


def _resize_axis(x: torch.Tensor, dim: int, idx: np.ndarray, wts: np.ndarray) -> torch.Tensor:
    out = None
    for k in range(idx.shape[1]):
        i = torch.as_tensor(idx[:, k], device=x.device)
        w = torch.as_tensor(wts[:, k], device=x.device, dtype=x.dtype)
        shape = [1] * x.dim()
        shape[dim] = -1
        term = x.index_select(dim, i) * w.view(shape)
        out = term if out is None else out + term
    return out


def interp(x: torch.Tensor, p: Params, ref: torch.Tensor | None = None) -> torch.Tensor:
    """ncnn Interp (1 nearest, 2 bilinear, 3 bicubic) on a 3-D blob ``[N, C, H, W]``."""
    kind = param(p, 0, 0)
    hscale, wscale = fparam(p, 1, 1.0), fparam(p, 2, 1.0)
    out_h, out_w = param(p, 3, 0), param(p, 4, 0)
    align = param(p, 6, 0)
    if x.dim() != 4:
        raise ValueError("Interp is supported on 3-D blobs only")
    H, W = x.shape[-2:]
    if ref is not None:
        out_h, out_w = ref.shape[-2:]
    elif out_w == 0 or out_h == 0:
        out_h, out_w = int(np.float32(H) * np.float32(hscale)), int(np.float32(W) * np.float32(wscale))
    if (out_h, out_w) == (H, W):
        return x
    if kind == 1:  # ncnn divides by the sizes only when output sizes are parameters
        hs = np.float32(H) / np.float32(out_h) if param(p, 3, 0) else np.float32(1) / np.float32(hscale)
        ws = np.float32(W) / np.float32(out_w) if param(p, 4, 0) else np.float32(1) / np.float32(wscale)
        iy = np.minimum((np.arange(out_h, dtype=np.float32) * hs).astype(np.int64), H - 1)
        ix = np.minimum((np.arange(out_w, dtype=np.float32) * ws).astype(np.int64), W - 1)
        y = x.index_select(2, torch.as_tensor(iy, device=x.device))
        return y.index_select(3, torch.as_tensor(ix, device=x.device))
    if kind in (2, 3):
        by_scale = ref is None and not (param(p, 3, 0) and param(p, 4, 0))
        inv_w = 1.0 / float(np.float32(wscale)) if by_scale else None
        inv_h = 1.0 / float(np.float32(hscale)) if by_scale else None
        x = _resize_axis(x, 3, *_axis_taps(W, out_w, kind, align, inv_w))
        return _resize_axis(x, 2, *_axis_taps(H, out_h, kind, align, inv_h))
    raise ValueError(f"Interp resize_type {kind} is not supported")


def pooling(x: torch.Tensor, p: Params) -> torch.Tensor:
    """ncnn Pooling (max 0 / avg 1; global, adaptive, or windowed with its four pad modes)."""
    kind = param(p, 0, 0)
    if kind not in (0, 1):
        raise ValueError(f"Pooling type {kind} is not supported")
    if param(p, 4, 0):
        return x.amax(dim=(2, 3)) if kind == 0 else x.mean(dim=(2, 3))
    if param(p, 7, 0):
        ow = param(p, 8, 0)
        oh = param(p, 18, ow)
        size = (x.shape[2] if oh == -233 else oh, x.shape[3] if ow == -233 else ow)
        return F.adaptive_max_pool2d(x, size) if kind == 0 else F.adaptive_avg_pool2d(x, size)
    kw = param(p, 1, 0)
    kh = param(p, 11, kw)
    sw = param(p, 2, 1)
    sh = param(p, 12, sw)
    left = param(p, 3, 0)
    right = param(p, 14, left)
    top = param(p, 13, left)
    bottom = param(p, 15, top)
    mode = param(p, 5, 0)
    H, W = x.shape[-2:]
    tail_w = tail_h = 0
    if mode == 0:
        if (W + left + right - kw) % sw:
            tail_w = sw - (W + left + right - kw) % sw
        if (H + top + bottom - kh) % sh:
            tail_h = sh - (H + top + bottom - kh) % sh
        pads = (left, right + tail_w, top, bottom + tail_h)
    elif mode == 1:
        pads = (left, right, top, bottom)
    else:
        ph = same_pads(H, kh, sh, mode == 3)
        pw = same_pads(W, kw, sw, mode == 3)
        pads = (pw[0], pw[1], ph[0], ph[1])
    fill = -torch.finfo(x.dtype).max if kind == 0 else 0.0
    xp = F.pad(x, pads, value=fill)
    if kind == 0:
        return F.max_pool2d(xp, (kh, kw), (sh, sw))
    total = F.avg_pool2d(xp, (kh, kw), (sh, sw), divisor_override=1)
    if param(p, 6, 0):
        return total / (kh * kw)
    Hb, Wb = xp.shape[-2:]
    mask = torch.zeros((1, 1, Hb, Wb), dtype=x.dtype, device=x.device)
    tw, th = (tail_w, tail_h) if mode == 0 else (0, 0)
    mask[..., top : Hb - bottom - th, left : Wb - right - tw] = 1
    return total / F.avg_pool2d(mask, (kh, kw), (sh, sw), divisor_override=1)


def crop(x: torch.Tensor, p: Params, ref: torch.Tensor | None = None) -> torch.Tensor:
    """ncnn Crop: to a reference blob's size at offsets, by offsets/sizes, or numpy-style slices."""
    dims = x.dim() - 1
    if ref is not None:
        off = {1: param(p, 0, 0), 2: param(p, 1, 0), 0: param(p, 2, 0)}  # w, h, c offsets
        if dims == 3:
            c = ref.shape[1] if ref.dim() == 4 else x.shape[1]
            return x[:, off[0] : off[0] + c, off[2] : off[2] + ref.shape[-2], off[1] : off[1] + ref.shape[-1]]
        if dims == 2:
            return x[:, off[2] : off[2] + ref.shape[-2], off[1] : off[1] + ref.shape[-1]]
        return x[:, off[1] : off[1] + ref.shape[-1]]
    starts, ends, axes = aparam(p, 9), aparam(p, 10), aparam(p, 11)
    sl = [slice(None)] * x.dim()
    if starts and ends:
        axes = [int(a) + dims if a < 0 else int(a) for a in axes] or list(range(dims))
        for a, s, e in zip(axes, starts, ends):
            n = x.shape[a + 1]
            s, e = int(s), int(e)
            s = 0 if s == -233 else (s if s >= 0 else n + s)
            e = n if e == -233 else (e if e > 0 else n + e)
            sl[a + 1] = slice(s, min(n, e))
        return x[tuple(sl)]
    # offsets (w 0, h 1, c 2), sizes (3, 4, 5), trailing offsets (6, 7, 8); order of ncnn axes
    spec = {"w": (0, 3, 6), "h": (1, 4, 7), "c": (2, 5, 8)}
    names = {1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"]}[dims]
    for i, name in enumerate(names):
        o, s, o2 = (param(p, k, 0) for k in spec[name])
        n = x.shape[i + 1]
        size = n - o - o2
        if s not in (-233, 0):
            size = min(s, size)
        sl[i + 1] = slice(o, o + size)
    return x[tuple(sl)]


def padding(x: torch.Tensor, p: Params, per_channel: torch.Tensor | None) -> torch.Tensor:
    """ncnn Padding: constant (0, per-channel values allowed), replicate (1) or reflect (2)."""
    top, bottom, left, right = param(p, 0, 0), param(p, 1, 0), param(p, 2, 0), param(p, 3, 0)
    kind, value = param(p, 4, 0), fparam(p, 5, 0.0)
    front, behind = param(p, 7, 0), param(p, 8, 0)
    if kind == 0:
        if per_channel is not None:
            c = x.shape[1] + front + behind
            base = per_channel[:c].view(1, c, 1, 1)
            out = base.expand(x.shape[0], c, x.shape[2] + top + bottom, x.shape[3] + left + right).clone()
            out[:, front : front + x.shape[1], top : top + x.shape[2], left : left + x.shape[3]] = x
            return out
        pads = (left, right, top, bottom) + ((front, behind) if x.dim() == 4 else ())
        return F.pad(x, pads, value=value)
    if front or behind:
        raise ValueError("Padding of channels is supported for constant padding only")
    return F.pad(x, (left, right, top, bottom), mode="replicate" if kind == 1 else "reflect")


def _expand_to(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reshape the lower-rank blob ``a`` like ncnn BinaryOp does before broadcasting with ``b``."""
    da, db = a.dim() - 1, b.dim() - 1
    if da >= db:
        return a
    n = a.shape[0]
    k = a.shape[1]
    if da == 1 and db == 2:
        return a.view(n, k, 1) if k == b.shape[1] else a.view(n, 1, k)
    if da == 1 and db == 3:
        return a.view(n, k, 1, 1) if k == b.shape[1] else a.view(n, 1, 1, k)
    return a.unsqueeze(-1)  # 2-D (h, w) -> 3-D (c=h, h=w, w=1)


def binary(a: torch.Tensor, b: torch.Tensor | float, op: int) -> torch.Tensor:
    """ncnn BinaryOp ``op_type`` 0..18 with ncnn's broadcasting of lower-rank blobs."""
    if isinstance(b, torch.Tensor):
        a, b = _expand_to(a, b), _expand_to(b, a)
    reverse = {7: 1, 8: 3, 9: 6, 11: 10, 13: 12, 16: 15, 18: 17}
    if op in reverse:
        op = reverse[op]
        a, b = (b if isinstance(b, torch.Tensor) else torch.full_like(a, b)), a
    ops = {
        0: torch.add,
        1: torch.sub,
        2: torch.mul,
        3: torch.div,
        4: torch.maximum,
        5: torch.minimum,
        6: torch.pow,
        10: torch.atan2,
        12: torch.fmod,
        14: torch.logaddexp,
        15: lambda u, v: torch.floor(u / v),
        17: lambda u, v: u - torch.round(u / v) * v,  # C remainderf: nearest quotient
    }
    if op not in ops:
        raise ValueError(f"BinaryOp op_type {op} is not supported")
    if not isinstance(b, torch.Tensor) and op in (4, 5, 10, 12, 14):
        b = torch.full_like(a, b)
    return ops[op](a, b)


UNARY = {
    0: torch.abs,
    1: torch.neg,
    2: torch.floor,
    3: torch.ceil,
    4: torch.square,
    5: torch.sqrt,
    6: torch.rsqrt,
    7: torch.exp,
    8: torch.log,
    9: torch.sin,
    10: torch.cos,
    11: torch.tan,
    12: torch.asin,
    13: torch.acos,
    14: torch.atan,
    15: torch.reciprocal,
    16: torch.tanh,
    17: torch.log10,
    18: torch.round,
    19: torch.trunc,
    20: torch.sign,
    21: torch.expm1,
    22: torch.sinh,
    23: torch.asinh,
    24: torch.cosh,
    25: torch.acosh,
    26: torch.atanh,
    27: torch.log1p,
}


def reshape(x: torch.Tensor, p: Params) -> torch.Tensor:
    """ncnn Reshape (w 0, h 1, c 2; -233 unused, 0 keeps the input's size, -1 infers)."""
    w, h, c = param(p, 0, -233), param(p, 1, -233), param(p, 2, -233)
    if param(p, 11, -233) != -233:
        raise ValueError("4-D Reshape is not supported")
    shape = [v for v in (c, h, w) if v != -233]
    names = {1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"]}[len(shape)]
    src = dict(zip({1: ["w"], 2: ["h", "w"], 3: ["c", "h", "w"]}[x.dim() - 1], x.shape[1:]))
    shape = [src.get(n, 1) if v == 0 else v for n, v in zip(names, shape)]
    return x.reshape(x.shape[0], *shape)


PERMUTE3 = {0: (0, 1, 2, 3), 1: (0, 1, 3, 2), 2: (0, 2, 1, 3), 3: (0, 2, 3, 1), 4: (0, 3, 1, 2), 5: (0, 3, 2, 1)}


def permute(x: torch.Tensor, p: Params) -> torch.Tensor:
    """ncnn Permute ``order_type`` for 2-D (0, 1) and 3-D (0..5) blobs."""
    order = param(p, 0, 0)
    if x.dim() == 3:
        return x if order == 0 else x.transpose(1, 2)
    if x.dim() == 4 and order in PERMUTE3:
        return x.permute(*PERMUTE3[order])
    raise ValueError(f"Permute order_type {order} on a {x.dim() - 1}-D blob is not supported")


def pixel_shuffle(x: torch.Tensor, p: Params) -> torch.Tensor:
    """ncnn PixelShuffle: mode 0 = PyTorch order (c, r, r); mode 1 = (r, r, c) order."""
    r = param(p, 0, 1)
    if param(p, 1, 0) == 1:
        n, c, h, w = x.shape
        x = x.view(n, r * r, c // (r * r), h, w).transpose(1, 2).reshape(n, c, h, w)
    return F.pixel_shuffle(x, r)
