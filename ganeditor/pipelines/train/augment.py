"""Differentiable augmentations for adaptive discriminator augmentation (ADA, Karras et al. 2020).

A practical subset of the paper's pipeline — x-flip, 90° rotations, integer translation,
isotropic scaling, brightness, contrast, saturation — each applied per sample with probability
``p``.  Every transform is differentiable and applied to reals and fakes alike, so the generator
is not taught the augmentations (they "leak" only when p gets close to 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """Augment a [N,C,H,W] batch in [-1,1]; identity when p == 0."""
    if p <= 0:
        return x
    n, c, h, w = x.shape
    dev = x.device

    def chance() -> torch.Tensor:
        return (torch.rand(n, 1, 1, 1, device=dev) < p).to(x.dtype)

    x = torch.where(chance() * (torch.rand(n, 1, 1, 1, device=dev) < 0.5) > 0, x.flip(3), x)
    k = torch.randint(0, 4, (n,), device=dev) * (torch.rand(n, device=dev) < p)
    if h == w:
        x = torch.stack([torch.rot90(xi, int(ki), dims=(1, 2)) for xi, ki in zip(x, k)])
    # integer translation (up to 1/8 of the size) and isotropic scaling via one affine grid
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    s = torch.exp2(torch.randn(n, device=dev) * 0.2 * (torch.rand(n, device=dev) < p)).to(x.dtype)
    t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.125 * 2 * (torch.rand(n, 1, device=dev) < p)
    t = torch.round(t * torch.tensor([w / 2, h / 2], device=dev)) / torch.tensor([w / 2, h / 2], device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = 1 / s, 1 / s
    theta[:, :, 2] = t.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # colour
    b = torch.randn(n, 1, 1, 1, device=dev) * 0.2 * chance()
    x = x + b
    ctr = torch.exp2(torch.randn(n, 1, 1, 1, device=dev) * 0.5 * chance())
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * ctr + mean
    if c == 3:
        sat = torch.exp2(torch.randn(n, 1, 1, 1, device=dev) * 1.0 * chance())
        gray = x.mean(dim=1, keepdim=True)
        x = (x - gray) * sat + gray
    return x


class AdaController:
    """Adjusts p so that the sign of D(real) averages ``target`` (the paper's r_t heuristic)."""

    def __init__(self, target: float = 0.6, speed_images: int = 100_000, interval: int = 4, p: float = 0.0):
        self.target, self.speed_images, self.interval, self.p = target, speed_images, interval, p
        self.signs: list[float] = []

    def observe(self, real_logits: torch.Tensor) -> None:
        self.signs.append(float(torch.sign(real_logits.detach().float()).mean()))

    def update(self, step: int, batch: int) -> None:
        if (step + 1) % self.interval or not self.signs:
            return
        rt = sum(self.signs) / len(self.signs)
        self.signs.clear()
        adjust = (1 if rt > self.target else -1) * batch * self.interval / self.speed_images
        self.p = min(1.0, max(0.0, self.p + adjust))

    def state_dict(self) -> dict:
        return {"p": self.p, "signs": list(self.signs)}

    def load_state_dict(self, st: dict) -> None:
        self.p, self.signs = float(st["p"]), list(st["signs"])
