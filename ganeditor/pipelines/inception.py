"""The Inception-v3 feature network of FID/KID, built from a weights file already on disk; never downloads.

FID and KID are only comparable with published figures when computed on the features of the
TensorFlow "2015-12-05" Inception graph.  ``pytorch-fid`` ships those weights as
``pt_inception-2015-12-05-6726825d.pth`` (which ``torchmetrics``/``torch-fidelity`` use too, under
another name); they are looked for at an explicit path (app settings), ``$GANEDITOR_INCEPTION``,
then in the torch hub cache.  Facts (from pytorch-fid): torchvision's Inception3 with 1008 classes
and no aux head, whose Mixed_5b-d, 6b-e and 7b-c blocks pool their "pool" branch differently
from torchvision's -- average pooling without the zero padding in the count, and max pooling in
Mixed_7c; inputs in [0, 1] are resized to 299x299 (bilinear) and scaled to [-1, 1]; the features
are the 2048 channels of the final average pool.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048


def find_inception_weights(path: str | Path | None = None) -> Path | None:
    """The FID Inception weights file: ``path`` if given and present, ``$GANEDITOR_INCEPTION``, the hub cache."""
    for cand in (path, os.environ.get("GANEDITOR_INCEPTION")):
        if cand and Path(cand).is_file():
            return Path(cand)
    p = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE
    return p if p.is_file() else None


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def _fid_blocks():
    """Subclasses of torchvision's Inception blocks whose pool branch uses ``self.pool``."""
    from torchvision.models import inception as tv  # deferred: importing torchvision takes seconds

    class BlockA(tv.InceptionA):
        pool = staticmethod(_avg_pool_no_pad)

        def _forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(self.pool(x))]

    class BlockC(tv.InceptionC):
        pool = staticmethod(_avg_pool_no_pad)

        def _forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for i in range(1, 6):
                d = getattr(self, f"branch7x7dbl_{i}")(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(self.pool(x))]

    class BlockE(tv.InceptionE):
        pool = staticmethod(_avg_pool_no_pad)

        def _forward(self, x):
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            return [self.branch1x1(x), b3, d, self.branch_pool(self.pool(x))]

    class BlockEMax(BlockE):
        pool = staticmethod(_max_pool)

    return BlockA, BlockC, BlockE, BlockEMax


class FIDInception(nn.Module):
    """Images [N, 3, H, W] in [-1, 1] -> pool3 features [N, 2048] (random weights unless a state dict is given)."""

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None):
        super().__init__()
        from torchvision.models import inception_v3  # deferred: importing torchvision takes seconds

        A, C, E, EMax = _fid_blocks()
        net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
        for name, ch, pool in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
            setattr(net, name, A(ch, pool_features=pool))
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            setattr(net, name, C(768, channels_7x7=c7))
        net.Mixed_7b, net.Mixed_7c = E(1280), EMax(2048)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        self.net = net.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, f"x {list(x.shape)}"
        x = F.interpolate((x.float() + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        n = self.net
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
                      n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return x.mean(dim=(2, 3))


def load_fid_inception(path: str | Path | None = None, device: torch.device | str = "cpu") -> FIDInception | None:
    """The FID Inception network from the weights on disk, or None when there are none."""
    found = find_inception_weights(path)
    if found is None:
        return None
    return FIDInception(torch.load(found, map_location="cpu", weights_only=True)).to(device)
