"""Inversion-encoder training for a given StyleGAN generator (e4e/ReStyle-like, W+ output).

Each step samples latents (with style mixing, so targets cover W+), renders them with the frozen
generator (no dataset needed) and trains the encoder with a latent loss (MSE in units of W's
variance) plus an image loss (pixel MSE + perceptual loss on the re-rendered prediction).
Optional real images (``--data``) add the image loss only.  Exports role 'E' with meta naming the
generator (path and fingerprint), so inversion can check it is used with the right generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.archs.generator_api import require_stylegan
from ganeditor.core.errors import GanEditorError
from ganeditor.core.metrics import psnr, ssim
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.direction_io import generator_fingerprint
from ganeditor.pipelines.invert import encoder_input, w_stats
from ganeditor.pipelines.losses import PerceptualLoss
from ganeditor.pipelines.train.data import make_batch, open_source
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.samples import image_grid


class EncoderRecipe(Recipe):
    name = "encoder"
    identity_options = ("generator", "resolution", "channel_base", "channel_max")

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        super().__init__(options, ctx, data)
        gen_path = self.option("generator", None)
        if not gen_path:
            raise GanEditorError("the encoder recipe needs the generator: --set generator=CHECKPOINT")
        src = load_checkpoint(gen_path, ctx.device)
        G = require_stylegan(src.primary, gen_path)
        self.G = G.eval().requires_grad_(False)
        self.fingerprint = generator_fingerprint(G)
        if len(data) > 1:
            raise GanEditorError("the encoder recipe takes at most one folder of real images: --data FOLDER")
        res = int(self.option("resolution", min(G.img_resolution, 256)))
        self.E = build("latent-encoder", img_resolution=res, num_ws=G.num_ws, w_dim=G.w_dim, img_channels=G.img_channels,
                       channel_base=self.option("channel_base", 4096), channel_max=self.option("channel_max", 256))  # fmt: skip
        w_avg, w_std = w_stats(G, int(self.option("w_stat_samples", 10000)))
        self.w_var = max(w_std**2 / G.w_dim, 1e-8)  # per-coordinate variance of W
        with torch.no_grad():
            self.E.w_avg.copy_(w_avg.view(-1).cpu())
        self.E = ctx.prepare(self.E).train()
        self.opt = ctx.adam(self.E.parameters(), lr=self.option("lr", 1e-4), betas=(0.9, 0.999))
        self.latent_weight = float(self.option("latent_weight", 1.0))
        self.image_weight = float(self.option("image_weight", 1.0))
        self.perceptual_weight = float(self.option("perceptual_weight", 0.5))
        self.mixing = float(self.option("style_mixing", 0.5))
        self.psi = float(self.option("truncation_psi", 1.0))
        self.perceptual = PerceptualLoss("vgg16").to(ctx.device) if self.perceptual_weight else None
        self.src = open_source(data[0], G.img_resolution, "resize") if data else None
        self.images_seen = 0
        self.sample_z = torch.from_numpy(np.random.RandomState(321).randn(4, G.z_dim)).float()

    def modules(self) -> dict[str, nn.Module]:
        return {"E": self.E}

    def optimizers(self):
        return {"E": self.opt}

    def extra_state(self) -> dict[str, Any]:
        return {"images_seen": self.images_seen}

    def load_extra_state(self, st: dict[str, Any]) -> None:
        self.images_seen = int(st["images_seen"])

    @torch.no_grad()
    def _sample(self, n: int, z: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        G, dev = self.G, self.ctx.device
        z = torch.randn(n, G.z_dim, device=dev) if z is None else z.to(dev)
        c = torch.zeros([n, G.c_dim], device=dev)
        ws = G.mapping(z, c, truncation_psi=self.psi)
        if self.mixing > 0 and torch.rand(()) < self.mixing:
            cutoff = int(torch.randint(1, G.num_ws, ()).item())
            ws2 = G.mapping(torch.randn_like(z), c, truncation_psi=self.psi)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws, G.synthesis(ws, noise_mode="const")

    def _image_loss(self, rec: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        loss = F.mse_loss(rec, img)
        if self.perceptual is not None:
            loss = loss + self.perceptual_weight * self.perceptual((rec.clamp(-1, 1) + 1) / 2, (img.clamp(-1, 1) + 1) / 2)
        return loss

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        d = self.ctx.dist
        ws, img = self._sample(batch_size)
        out: dict[str, float] = {}
        with self.ctx.autocast():
            pred = self.E(encoder_input(self.E, img))
            loss_w = (pred.float() - ws).square().mean() / self.w_var
            loss = self.latent_weight * loss_w
            if self.image_weight:
                rec = self.G.synthesis(pred.float(), noise_mode="const")
                loss_img = self._image_loss(rec.float(), img)
                loss = loss + self.image_weight * loss_img
                out["image"] = float(loss_img.detach())
            if self.src is not None:
                real = make_batch(self.src.get, len(self.src), self.ctx.seed, step, batch_size * d.world, d.rank, d.world)
                real = self.ctx.to_batch(real)
                rec_r = self.G.synthesis(self.E(encoder_input(self.E, real)).float(), noise_mode="const")
                loss_real = self._image_loss(rec_r.float(), real)
                loss = loss + self.image_weight * loss_real
                out["real"] = float(loss_real.detach())
        self.optimize("E", loss, self.opt, self.E)
        out["latent"] = float(loss_w.detach())
        out["loss"] = float(loss.detach())
        self.images_seen += batch_size * d.world
        return out

    @torch.no_grad()
    def _reconstruct(self) -> tuple[torch.Tensor, torch.Tensor]:
        mixing, self.mixing = self.mixing, 0.0
        try:
            _, img = self._sample(len(self.sample_z), self.sample_z)
        finally:
            self.mixing = mixing
        self.E.eval()
        rec = self.G.synthesis(self.E(encoder_input(self.E, img)).float(), noise_mode="const")
        self.E.train()
        return img, rec

    def samples(self) -> np.ndarray:
        img, rec = self._reconstruct()
        return image_grid([[img[i : i + 1] for i in range(len(img))], [rec[i : i + 1] for i in range(len(rec))]])

    def validate(self) -> dict[str, float]:
        img, rec = self._reconstruct()
        a, b = (img.clamp(-1, 1) + 1) / 2, (rec.clamp(-1, 1) + 1) / 2
        return {"val_psnr": psnr(b.cpu(), a.cpu()), "val_ssim": ssim(b.cpu(), a.cpu())}

    def export(self) -> Checkpoint:
        meta = {
            "recipe": "encoder",
            "generator": str(self.options.get("generator")),
            "generator_fingerprint": self.fingerprint,
            "images_seen": self.images_seen,
            "perceptual_loss": self.perceptual.name if self.perceptual is not None else "none",
        }
        return Checkpoint("ganeditor", "GAN Editor inversion encoder", {"E": self.E}, meta)
