"""Measuring how far a network's output depends on its input (what context makes tiles exact).

The measure is the support of the gradient of a central block of output pixels with respect to a
random input (autograd: one forward and one backward).  It is exact for the network's actual
weights -- a branch whose weights are zero truly adds no dependency -- up to units that happen to be
inactive on the probe (a margin of 2 pixels covers those).  Adaptive pooling, attention over the
whole image or dependencies wider than the largest probe give None: such networks cannot be tiled
exactly and get overlap-blended tiles.
"""

from __future__ import annotations

import torch
import torch.nn as nn

PROBE_SIZES = (96, 192)  # probe sides tried in turn (rounded up to the net's size requirements)


def measure_receptive_radius(net: nn.Module, sizes: tuple[int, ...] = PROBE_SIZES, channels: int = 3) -> int | None:
    """How far (input pixels, each side, +2 of margin) the output depends on the input, probing ever
    larger inputs; None for global operations (adaptive pooling; a dependency reaching every pixel of
    a probe), for dependencies beyond the largest probe, and when the network cannot be differentiated."""
    if any(isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) for mod in net.modules()):
        return None  # squeeze-excitation / channel attention: every pixel sees the whole image
    for size in sizes:
        try:
            r = _probe(net, size, channels)
        except RuntimeError:  # e.g. in-place operations on tensors autograd needs
            return None
        if r == "global":
            return None
        if r is not None:
            return r + 2  # margin against units that happen to be dead on the probe
    return None


def _probe(net: nn.Module, size: int, channels: int) -> int | str | None:
    """Support of the gradient of a central block of size_multiple output pixels (every phase of
    strided layers) with respect to a random input; None when it touches the input's border,
    'global' when it is every pixel (or cannot be measured)."""
    m = max(1, int(getattr(net, "size_multiple", 1)))
    size = -(-max(size, int(getattr(net, "min_size", 0))) // m) * m
    p = next(iter(net.parameters()), None)
    dev = p.device if p is not None else torch.device("cpu")
    s = int(getattr(net, "scale", 1))
    c = size // 2 // m * m
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.rand(1, channels, size, size, generator=torch.Generator().manual_seed(0)).to(dev).requires_grad_(True)
        fn = getattr(net, "unclamped", net)  # a final clamp would hide dependencies where outputs saturate
        fn(x)[..., c * s : (c + m) * s, c * s : (c + m) * s].sum().backward()
        grad = x.grad
    support = grad.abs().sum((0, 1)) > 0  # [H, W]
    if not bool(torch.isfinite(grad).all()) or not bool(support.any()) or bool(support.all()):
        return "global"  # every pixel, or nothing measurable (non-finite values): no bound can be trusted
    ys, xs = torch.nonzero(support, as_tuple=True)
    lo_y, hi_y, lo_x, hi_x = int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())
    if min(lo_y, lo_x) == 0 or max(hi_y, hi_x) == size - 1:
        return None  # reaches the probe's border: maybe further
    return max(c - lo_y, hi_y - (c + m - 1), c - lo_x, hi_x - (c + m - 1))
