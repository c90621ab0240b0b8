"""Sample grids for training previews."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def image_grid(rows: list[list[torch.Tensor]], pad: int = 2) -> np.ndarray:
    """Rows of [1,C,H,W] images in [-1,1] (sizes may differ: resized to the first) -> uint8 HxWx3."""
    h, w = rows[0][0].shape[-2:]
    out_rows = []
    for row in rows:
        tiles = []
        for t in row:
            t = t.detach().float().cpu()
            if t.shape[1] == 1:
                t = t.repeat(1, 3, 1, 1)
            if t.shape[-2:] != (h, w):
                t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
            tiles.append(F.pad(t, (pad, pad, pad, pad), value=1.0))
        out_rows.append(torch.cat(tiles, dim=3))
    grid = torch.cat(out_rows, dim=2)[0]
    return (grid.permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
