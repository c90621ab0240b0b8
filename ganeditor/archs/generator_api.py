"""What a StyleGAN generator offers (StyleGAN2 and StyleGAN3 alike), and the one check for it.

A generator maps ``z`` [N, z_dim] to ``ws`` [N, num_ws, w_dim] (``mapping``, which also holds
``w_avg``) and ``ws`` to images [N, C, R, R] in [-1, 1] (``synthesis``).  Every command and panel
that needs a StyleGAN calls ``require_stylegan`` instead of probing attributes itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch.nn as nn

from ganeditor.core.errors import GanEditorError


@runtime_checkable
class StyleGANGenerator(Protocol):
    """The interface the generator pipelines use (NVlabs attribute names)."""

    z_dim: int  # latent z size
    c_dim: int  # class-label size (0: unconditional)
    w_dim: int  # intermediate latent size
    num_ws: int  # how many w vectors synthesis reads
    img_resolution: int  # output side in pixels
    img_channels: int  # output channels
    mapping: nn.Module  # z [N, z_dim] (+ c) -> ws [N, num_ws, w_dim]; holds ``w_avg`` [w_dim]
    synthesis: nn.Module  # ws [N, num_ws, w_dim] -> image [N, C, R, R] in [-1, 1]
    arch_name: str  # registry name, e.g. 'stylegan2-generator'
    init_kwargs: dict[str, Any]  # constructor arguments (rebuilds the network)


def is_stylegan(net: object) -> bool:
    """True when ``net`` offers the StyleGAN generator interface."""
    return all(hasattr(net, a) for a in ("mapping", "synthesis", "num_ws", "w_dim", "img_resolution"))


def require_stylegan(net: nn.Module, where: str | Path | None = None) -> StyleGANGenerator:
    """``net`` itself when it is a StyleGAN generator, else a one-line GanEditorError naming what it is."""
    if not is_stylegan(net):
        raise GanEditorError(f"not a StyleGAN generator ({getattr(net, 'arch_name', type(net).__name__)})", where)
    return net  # type: ignore[return-value]
