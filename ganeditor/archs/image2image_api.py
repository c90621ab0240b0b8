"""What an image-to-image network offers (translation, super-resolution, restoration): the declared interface.

``pipelines.image2image`` (translate, upscale), the restoration pipelines and the tiled engine
(through ``pipelines.image2image.tile_options``) read these facts and nothing else.  Our own
networks subclass ``ImageToImageNet`` explicitly and inherit its defaults, so every fact has ONE
default; a wrapped foreign network (spandrel) only has to provide the same attributes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

IO_CONVENTIONS = ("tanh", "unit")


@runtime_checkable
class ImageToImageNet(Protocol):
    """An nn.Module mapping an image tensor [N, 3, H, W] to [N, 3, H*scale, W*scale]."""

    io_convention: str = "unit"  # 'unit': RGB [0, 1] in and out (BasicSR); 'tanh': (rgb - 0.5) / 0.5 in, [-1, 1] out (junyanz)
    scale: int = 1  # output side / input side
    size_multiple: int = 1  # input sides must be multiples of this (callers reflect-pad up to it and crop back)
    needs_global_stats: bool = False  # output depends on whole-image statistics (instance norm): needs the exact banded engine

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info`` and the model library (at least 'summary' and 'arch')."""
        ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in the io convention's range -> [N, C, H*scale, W*scale] (unclamped)."""
        ...
