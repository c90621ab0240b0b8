"""Adversarial losses and discriminator regularisers shared by the GAN recipes.

Losses (``GAN_LOSSES``), on discriminator logits:

- ``logistic`` -- the non-saturating logistic loss of StyleGAN2: D minimises softplus(D(fake)) +
  softplus(-D(real)); G minimises softplus(-D(fake)).
- ``r3gan`` -- the relativistic pairing loss (RpGAN, Jolicoeur-Martineau 2018) as the "modern
  baseline" R3GAN uses it (Huang et al. 2024): each real is paired with a fake; D minimises
  softplus(D(fake) - D(real)), G minimises softplus(D(real) - D(fake)).  Meant with both
  zero-centred penalties, R1 on reals and R2 on fakes.
- ``wgan-gp`` -- Wasserstein loss (D minimises D(fake) - D(real), G minimises -D(fake)) with the
  gradient penalty (Gulrajani et al. 2017) on random interpolates and a small drift term keeping
  D(real) near 0 (Karras et al. 2018).

Regularisers: zero-centred gradient penalties ``r1``/``r2`` (Mescheder et al. 2018), which recipes
apply lazily (every k steps, scaled by k; Karras et al. 2020); spectral normalisation of every
weight of a discriminator (Miyato et al. 2018), equalised-learning-rate layers included.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

GAN_LOSSES = ("logistic", "r3gan", "wgan-gp")
WGAN_DRIFT = 1e-3  # weight of D(real)^2 in the WGAN-GP discriminator loss


def check_loss(name: str) -> str:
    """``name`` if it is a known adversarial loss, else ValueError naming the choices."""
    if name not in GAN_LOSSES:
        raise ValueError(f"unknown GAN loss {name!r} (choose from {', '.join(GAN_LOSSES)})")
    return name


def generator_loss(kind: str, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Mean generator loss; ``real_logits`` (detached, paired with the fakes) only for ``r3gan``."""
    fake_logits = fake_logits.float()
    if kind == "logistic":
        return F.softplus(-fake_logits).mean()
    if kind == "r3gan":
        assert real_logits is not None and real_logits.shape == fake_logits.shape, "r3gan pairs each fake with a real"
        return F.softplus(real_logits.float() - fake_logits).mean()
    if kind == "wgan-gp":
        return -fake_logits.mean()
    raise ValueError(check_loss(kind))


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Mean discriminator loss (without its gradient penalties)."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "logistic":
        return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    if kind == "r3gan":
        assert real_logits.shape == fake_logits.shape, "r3gan pairs each fake with a real"
        return F.softplus(fake_logits - real_logits).mean()
    if kind == "wgan-gp":
        return fake_logits.mean() - real_logits.mean() + WGAN_DRIFT * real_logits.square().mean()
    raise ValueError(check_loss(kind))


def gradient_penalty(d_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Zero-centred penalty: mean over samples of ||dD(x)/dx||^2 (R1 on reals, R2 on fakes), in fp32."""
    x = x.detach().float().requires_grad_(True)
    (g,) = torch.autograd.grad(d_fn(x).float().sum(), x, create_graph=True)
    return g.square().flatten(1).sum(1).mean()


def wgan_gradient_penalty(d_fn: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                          fake: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al.: mean (||dD/dx|| - 1)^2 at random points between paired reals and fakes."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mix = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    (g,) = torch.autograd.grad(d_fn(mix).float().sum(), mix, create_graph=True)
    return (g.flatten(1).norm(dim=1) - 1).square().mean()


class _Scale(nn.Module):
    """Parametrization multiplying a weight by a constant (undoes a layer's runtime weight gain)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.factor


def apply_spectral_norm(module: nn.Module) -> int:
    """Spectral-normalise every conv/linear weight of ``module`` in place; returns how many.

    Layers with an equalised-learning-rate ``weight_gain`` (StyleGAN2's) multiply the stored weight
    by that gain at run time; the normalised weight is divided by it, so the weight the layer
    actually applies has spectral norm 1, as in Miyato et al.
    """
    count = 0
    for m in list(module.modules()):
        w = getattr(m, "weight", None)
        if not isinstance(w, nn.Parameter) or w.ndim < 2 or parametrize.is_parametrized(m, "weight"):
            continue
        nn.utils.parametrizations.spectral_norm(m, "weight", dim=1 if isinstance(m, nn.ConvTranspose2d) else 0)
        gain = getattr(m, "weight_gain", None)
        if isinstance(gain, float) and gain != 1.0:
            parametrize.register_parametrization(m, "weight", _Scale(1.0 / gain))
        count += 1
    return count


def without_parametrizations(module: nn.Module) -> nn.Module:
    """A new network of the same architecture (``archs.build``) holding ``module``'s current weights, with
    parametrized weights (spectral norm) as the plain parameters they compute -- its state dict has the
    architecture's own keys, e.g. for export.  ``module`` itself is left as it is."""
    from ganeditor.archs import build

    if not any(parametrize.is_parametrized(m) for m in module.modules()):
        return module
    state = {k: v for k, v in module.state_dict().items() if ".parametrizations." not in k}
    for name, m in module.named_modules():
        for pname in getattr(m, "parametrizations", {}):
            state[f"{name}.{pname}" if name else pname] = getattr(m, pname).detach()
    plain = build(module.arch_name, **module.init_kwargs)
    plain.load_state_dict(state)
    return plain.to(next(module.parameters()).device).train(module.training)
