"""MTCNN's three cascaded face-detection networks (P-, R- and O-Net), with the state-dict key names
of the weights shipped in PyPI ``facenet-pytorch`` 2.5.3 (``data/{pnet,rnet,onet}.pt``).

Inputs are RGB in MTCNN's range ``(x - 127.5) / 128``.  The dense layers of R- and O-Net read their
features flattened in (W, H, C) order (the weights come from a Caffe/TF model), hence the permute
before the flatten.  The cascade itself (pyramid, boxes, NMS) lives in ``pipelines/face_detect``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganeditor.archs.registry import register


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, W*H*C], flattened in the (W, H, C) order the dense weights expect."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # [N, W, H, C] -> [N, WHC]


@register("mtcnn_pnet")
class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box regression

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, H, W] -> (box offsets [N, 4, h, w], probabilities [N, 2, h, w]), h = ceil((H-2)/2) - 4."""
        assert x.ndim == 4 and x.shape[1] == 3 and min(x.shape[2:]) >= 12, f"expected [N, 3, >=12, >=12], got {list(x.shape)}"
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {"stage": "P-Net (proposals)", "input": "any size >= 12, stride 2, 12x12 windows", "outputs": "prob, box"}


@register("mtcnn_rnet")
class RNet(nn.Module):
    """Refinement net: scores and refines 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)  # 3*3*64 features in (W, H, C) order
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)  # face / not-face logits
        self.dense5_2 = nn.Linear(128, 4)  # box regression

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[N, 3, 24, 24] -> (box offsets [N, 4], probabilities [N, 2])."""
        assert x.ndim == 4 and tuple(x.shape[1:]) == (3, 24, 24), f"expected [N, 3, 24, 24], got {list(x.shape)}"
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_whc(x)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {"stage": "R-Net (refinement)", "input": "24x24 crops", "outputs": "prob, box"}


@register("mtcnn_onet")
class ONet(nn.Module):
    """Output net: scores 48x48 crops, refines boxes and predicts the five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)  # 3*3*128 features in (W, H, C) order
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)  # face / not-face logits
        self.dense6_2 = nn.Linear(256, 4)  # box regression
        self.dense6_3 = nn.Linear(256, 10)  # landmarks: 5 x then 5 y, as fractions of the box

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[N, 3, 48, 48] -> (box offsets [N, 4], landmarks [N, 10], probabilities [N, 2])."""
        assert x.ndim == 4 and tuple(x.shape[1:]) == (3, 48, 48), f"expected [N, 3, 48, 48], got {list(x.shape)}"
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_whc(x)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info``."""
        return {"stage": "O-Net (output)", "input": "48x48 crops", "outputs": "prob, box, 5 landmarks"}
