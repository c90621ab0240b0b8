"""A small CNN that scores face images for named attributes, in the attributes' own units.

Input: images [N, 3, H, W] in [-1, 1] at any size (resized inside to ``input_size``, anti-aliased).
Output of ``forward``: raw head values [N, num_outputs]; ``scores`` turns them into attribute units:
plain attributes map linearly onto their range (unclamped), binary ones become probabilities (sigmoid
of a logit), circular ones (hues, period 1 over their range) are predicted as (cos, sin) and
returned as an angle within [lo, hi).  ``sigmas`` are the attributes' population spreads
(edits are measured in σ units); ``conditions`` name attributes defined only when a binary
attribute is on (e.g. lens darkness only with glasses).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.registry import register


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


@register("attribute-regressor")
class AttributeRegressor(nn.Module):
    """Image -> one score per attribute (see module docstring for the units)."""

    def __init__(
        self,
        attributes: Sequence[str],  # attribute names, in output order
        ranges: Sequence[Sequence[float]],  # [lo, hi] per attribute (units of the scores)
        binary: Sequence[str] = (),  # attributes scored as a probability of being on (0/1 truth)
        circular: Sequence[str] = (),  # attributes periodic over their range (hues)
        sigmas: Sequence[float] | None = None,  # population σ per attribute, None = unknown (1.0)
        conditions: dict[str, str] | None = None,  # attribute -> binary attribute it needs to be on
        input_size: int = 64,  # images are resized to this many pixels square
        channels: Sequence[int] = (32, 64, 128, 256),  # channels of the four stride-2 stages
        head_dim: int = 128,  # hidden units of the fully connected head
    ):
        super().__init__()
        self.attributes = [str(a) for a in attributes]
        n = len(self.attributes)
        assert n > 0 and len(ranges) == n, "one [lo, hi] range per attribute"
        assert set(binary) <= set(self.attributes) and set(circular) <= set(self.attributes), "unknown attribute"
        assert sigmas is None or len(sigmas) == n, "one sigma per attribute"
        assert input_size % 16 == 0 and input_size >= 32, "input_size must be a multiple of 16, >= 32"
        self.ranges = [(float(lo), float(hi)) for lo, hi in ranges]
        self.binary, self.circular = [str(a) for a in binary], [str(a) for a in circular]
        self.sigmas = [1.0] * n if sigmas is None else [float(s) for s in sigmas]
        self.conditions = dict(conditions or {})
        assert all(c in self.binary for c in self.conditions.values()), "conditions must be binary attributes"
        self.input_size = int(input_size)
        self.channels = [int(c) for c in channels]
        # head layout: one output per attribute, two (cos, sin) for circular ones
        self.slices: list[slice] = []
        k = 0
        for a in self.attributes:
            width = 2 if a in self.circular else 1
            self.slices.append(slice(k, k + width))
            k += width
        self.num_outputs = k
        layers: list[nn.Module] = [_conv(3, self.channels[0], 1)]
        cin = self.channels[0]
        for c in self.channels:
            layers += [_conv(cin, c, 2), _conv(c, c, 1)]
            cin = c
        self.features = nn.Sequential(*layers)
        final = self.input_size // 2 ** len(self.channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * final * final, head_dim), nn.SiLU(),
                                  nn.Linear(head_dim, self.num_outputs))  # fmt: skip

    def prepare(self, img: torch.Tensor) -> torch.Tensor:
        """Resize [N, 3, H, W] to the network's input size (area-like, anti-aliased)."""
        assert img.ndim == 4 and img.shape[1] == 3, f"expected [N, 3, H, W], got {list(img.shape)}"
        s = self.input_size
        if img.shape[2:] != (s, s):
            img = F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return img

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> raw head outputs [N, num_outputs]."""
        x = self.head(self.features(self.prepare(img)))
        assert x.shape[1] == self.num_outputs
        return x

    def scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw head outputs [N, num_outputs] -> attribute scores [N, A] in attribute units."""
        raw = raw.float()
        cols = []
        for a, sl, (lo, hi) in zip(self.attributes, self.slices, self.ranges):
            r = raw[:, sl]
            if a in self.circular:
                turn = torch.atan2(r[:, 1], r[:, 0]) / (2 * math.pi) % 1.0
                cols.append(lo + (hi - lo) * turn)
            elif a in self.binary:
                cols.append(torch.sigmoid(r[:, 0]))
            else:
                cols.append((lo + hi) / 2 + (hi - lo) / 2 * r[:, 0])
        return torch.stack(cols, dim=1)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {
            "architecture": "attribute regressor (image -> attribute scores)",
            "input_size": self.input_size,
            "attributes": ", ".join(self.attributes),
            "binary": ", ".join(self.binary) or "-",
            "circular": ", ".join(self.circular) or "-",
            "channels": self.channels,
            "parameters": sum(p.numel() for p in self.parameters()),
        }
