"""FIR resampling in pure PyTorch: ``setup_filter``, ``upfirdn2d``, ``filter2d``, ``upsample2d``,
``downsample2d`` with NVlabs semantics (torch_utils/ops/upfirdn2d.py), written anew.

``impl='ref'`` is the textbook definition (zero insertion, pad, full 2-D filter, decimation).
``impl='fast'`` splits rank-1 filters into two 1-D passes, upsamples polyphase (no multiplications
by inserted zeros) and filters channels_last tensors with two depthwise convolutions.
Import these from ``ganeditor.archs.ops``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Padding = int | Sequence[int]


# ----------------------------------------------------------------------------------------------
# FIR filters


def setup_filter(
    f: Any,  # list/array/tensor: [taps] or [h, w]; None = identity
    device: torch.device | str = "cpu",  # device of the result
    normalize: bool = True,  # scale so the filter keeps DC magnitude
    flip_filter: bool = False,  # flip the filter
    gain: float = 1,  # overall signal gain
    separable: bool | None = None,  # return 1-D filter; None = when 1-D with >= 8 taps
) -> torch.Tensor:
    """Prepare a float32 FIR filter for ``upfirdn2d`` (NVlabs ``setup_filter`` semantics)."""
    if f is None:
        f = 1
    f = torch.as_tensor(np.asarray(f, dtype=np.float32) if not torch.is_tensor(f) else f, dtype=torch.float32,
                        device="cpu" if not torch.is_tensor(f) else f.device)  # CPU also under a meta device context
    assert f.ndim in (0, 1, 2) and f.numel() > 0
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    assert f.ndim == (1 if separable else 2)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _parse_scaling(s: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(s, (int, np.integer)):
        s = [int(s), int(s)]
    sx, sy = (int(v) for v in s)
    assert sx >= 1 and sy >= 1
    return sx, sy


def _parse_padding(p: Padding) -> tuple[int, int, int, int]:
    if isinstance(p, (int, np.integer)):
        p = [int(p), int(p)]
    p = [int(v) for v in p]
    if len(p) == 2:
        p = [p[0], p[0], p[1], p[1]]
    px0, px1, py0, py1 = p
    return px0, px1, py0, py1


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    if f is None:
        return 1, 1
    assert f.ndim in (1, 2)
    return int(f.shape[-1]), int(f.shape[0])


def _separate(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Split a 2-D filter into (fy, fx) with outer(fy, fx) == f when it has rank 1."""
    if f.ndim == 1:
        return f, f
    s = f.sum()
    if float(s) == 0:
        return None
    fy, fx = f.sum(1) / s, f.sum(0)
    if not torch.allclose(torch.outer(fy, fx), f, rtol=1e-6, atol=1e-7 * float(f.abs().max())):
        return None
    return fy, fx


def _upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Reference: zero insertion, pad/crop, depthwise 2-D (or two 1-D) convolution, decimation."""
    assert x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert f.ndim in (1, 2) and f.dtype == torch.float32
    n, c, h, w = x.shape
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)
    return x[:, :, ::downy, ::downx]


def _fir1d(x: torch.Tensor, g: list[float], up: int, down: int, p0: int, p1: int, dim: int) -> torch.Tensor:
    """One axis of upfirdn: correlate the zero-inserted, padded signal with taps ``g``."""
    length = x.shape[dim]
    k = len(g)
    n_out = length * up + p0 + p1 - k + 1
    assert n_out >= 1, "filter larger than the padded signal"
    n_dec = (n_out - 1) // down + 1
    if up > 1 and down > 1:
        raise NotImplementedError("upfirdn along one axis with both up and down")
    phases = []
    if up == 1:
        # y[j] = sum_k g[k] * x[down*j + k - p0]
        lo = max(p0, 0)
        hi = max(p1, 0)
        xp = _pad_dim(x, lo, hi, dim)
        off = lo - p0
        out = None
        for t, gt in enumerate(g):
            if gt == 0:
                continue
            s = xp.narrow(dim, off + t, (n_dec - 1) * down + 1)
            if down > 1:
                s = _stride_dim(s, down, dim)
            out = s * gt if out is None else out.add_(s, alpha=gt)
        return out if out is not None else torch.zeros_like(xp.narrow(dim, 0, n_dec))
    # up > 1, down == 1: output n = up*i + r; taps with (r + t - p0) % up == 0 read x[i + (r+t-p0)//up]
    for r in range(up):
        n_r = (n_out - r + up - 1) // up
        if n_r <= 0:
            continue
        taps = [(t, (r + t - p0) // up) for t in range(k) if (r + t - p0) % up == 0 and g[t] != 0]
        lo = max(0, -min((o for _, o in taps), default=0))
        hi = max(0, max((o + n_r for _, o in taps), default=0) - length)
        xp = _pad_dim(x, lo, hi, dim)
        out = None
        for t, o in taps:
            s = xp.narrow(dim, o + lo, n_r)
            out = s * g[t] if out is None else out.add_(s, alpha=g[t])
        if out is None:
            shape = list(x.shape)
            shape[dim] = n_r
            out = x.new_zeros(shape)
        phases.append(out)
    # Interleave phases (the first phases may be one longer than the last ones).
    n_max = phases[0].shape[dim]
    phases = [p if p.shape[dim] == n_max else _pad_dim(p, 0, n_max - p.shape[dim], dim) for p in phases]
    y = torch.stack(phases, dim=dim + 1)
    shape = list(x.shape)
    shape[dim] = n_max * len(phases)
    y = y.reshape(shape)
    return y.narrow(dim, 0, n_out)


def _pad_dim(x: torch.Tensor, lo: int, hi: int, dim: int) -> torch.Tensor:
    if lo == 0 and hi == 0:
        return x
    pad = [0, 0] * (x.ndim - 1 - dim) + [lo, hi]
    if lo < 0 or hi < 0:
        x = x.narrow(dim, max(-lo, 0), x.shape[dim] - max(-lo, 0) - max(-hi, 0))
        pad = [0, 0] * (x.ndim - 1 - dim) + [max(lo, 0), max(hi, 0)]
    return F.pad(x, pad)


def _stride_dim(x: torch.Tensor, step: int, dim: int) -> torch.Tensor:
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(None, None, step)
    return x[tuple(idx)]


def upfirdn2d(
    x: torch.Tensor,  # [N, C, H, W]
    f: torch.Tensor | None,  # FIR filter from setup_filter: [h, w], [taps] (separable) or None
    up: int | Sequence[int] = 1,  # upsampling factor, int or [x, y]
    down: int | Sequence[int] = 1,  # downsampling factor, int or [x, y]
    padding: Padding = 0,  # padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1]
    flip_filter: bool = False,  # False = convolution, True = correlation
    gain: float = 1,  # overall signal gain
    impl: str = "fast",  # 'fast' (separable, polyphase) or 'ref'
    bias: torch.Tensor | None = None,  # [C] added to the output (folded into the last pass if possible)
) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample a batch of images."""
    assert x.ndim == 4, f"expected [N,C,H,W], got {list(x.shape)}"
    assert bias is None or bias.shape == (x.shape[1],), f"bias {list(bias.shape)} for {x.shape[1]} channels"
    y = _upfirdn2d_any(x, f, up, down, padding, flip_filter, gain, impl, bias)
    if isinstance(y, tuple):  # bias not folded in
        y = y[0]
        if bias is not None:
            b = bias.to(y.dtype).reshape(1, -1, 1, 1)
            y = y.add_(b) if not y.requires_grad else y + b
    return y


def _upfirdn2d_any(x, f, up, down, padding, flip_filter, gain, impl, bias):
    """upfirdn2d; returns a tensor when ``bias`` was added, else a 1-tuple (the caller adds it)."""
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    sep = None if (f is None or impl == "ref") else _separate(f)
    if sep is None or (upx > 1 and downx > 1) or (upy > 1 and downy > 1):
        return (_upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain),)
    px0, px1, py0, py1 = _parse_padding(padding)
    fy, fx = sep
    if f.ndim == 1:
        gy = gx = math.sqrt(gain) if gain >= 0 else None
        if gy is None:
            return (_upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain),)
    else:
        gy, gx = 1.0, float(gain)
    ty = (fy.double() * gy).tolist()
    tx = (fx.double() * gx).tolist()
    if not flip_filter:
        ty, tx = ty[::-1], tx[::-1]
    if upx == upy == downx == downy == 1 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
        return _fir2d_depthwise(x, ty, tx, px0, px1, py0, py1, bias)
    x = _fir1d(x, tx, upx, downx, px0, px1, dim=3)
    x = _fir1d(x, ty, upy, downy, py0, py1, dim=2)
    return (x,)


def _fir2d_depthwise(x: torch.Tensor, ty: list[float], tx: list[float], px0, px1, py0, py1, bias=None) -> torch.Tensor:
    """Separable FIR as two depthwise convolutions (fast for channels_last tensors in oneDNN)."""
    c = x.shape[1]
    if min(px0, px1, py0, py1) < 0 or px0 != px1 or py0 != py1:
        x = _pad_dim(_pad_dim(x, px0, px1, 3), py0, py1, 2)
        px0 = py0 = 0
    kx = torch.tensor(tx, dtype=x.dtype, device=x.device).reshape(1, 1, 1, -1).expand(c, 1, 1, len(tx))
    ky = torch.tensor(ty, dtype=x.dtype, device=x.device).reshape(1, 1, -1, 1).expand(c, 1, len(ty), 1)
    x = F.conv2d(x, kx.contiguous(), padding=(0, px0), groups=c)
    b = bias.to(x.dtype) if bias is not None else None
    return F.conv2d(x, ky.contiguous(), b, padding=(py0, 0), groups=c)


def filter2d(x, f, padding: Padding = 0, flip_filter=False, gain=1, impl="fast") -> torch.Tensor:
    """Filter images with a FIR filter, keeping their size (plus extra ``padding``)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding: Padding = 0, flip_filter=False, gain=1, impl="fast") -> torch.Tensor:
    """Upsample images by ``up`` with a FIR filter; the output is ``up`` times the size."""
    upx, upy = _parse_scaling(up)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding: Padding = 0, flip_filter=False, gain=1, impl="fast") -> torch.Tensor:
    """Downsample images by ``down`` with a FIR filter; the output is 1/``down`` the size."""
    downx, downy = _parse_scaling(down)
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
