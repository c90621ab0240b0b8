"""Luma/chroma conversions shared by the colourisation stage and its training recipe.

Full-range BT.601 YCbCr (as JPEG): Y in [0, 1], Cb and Cr centred on 0 (about +-0.5).  The luma
weights are the tiler's gray conversion, so a gray image is exactly its Y channel.
"""

from __future__ import annotations

import torch

_TO_YCC = torch.tensor([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]])  # fmt: skip
_TO_RGB = torch.tensor([[1.0, 0.0, 1.402],
                        [1.0, -0.344136, -0.714136],
                        [1.0, 1.772, 0.0]])  # fmt: skip


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """[N,3,H,W] RGB in [0,1] -> [N,3,H,W] (Y, Cb, Cr)."""
    return torch.einsum("ij,njhw->nihw", _TO_YCC.to(rgb), rgb)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """[N,3,H,W] (Y, Cb, Cr) -> RGB (not clamped)."""
    return torch.einsum("ij,njhw->nihw", _TO_RGB.to(ycc), ycc)
