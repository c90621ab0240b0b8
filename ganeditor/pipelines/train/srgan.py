"""SRGAN/ESRGAN training from a folder of photos.

Stage 1 (``psnr``): SRResNet/RRDBNet with an L1 (or MSE) pixel loss.  Stage 2 (``gan``):
pixel + perceptual (VGG19 features when the weights are on disk, else the weight-free substitute
of ``pipelines.losses``) + adversarial loss against a U-Net (or VGG-style) discriminator, with an
EMA of the generator.  ``stage=both`` switches at ``pretrain_steps``.  Low-resolution inputs are
made on the fly: ``degradation`` = bicubic, realistic (Real-ESRGAN's second-order chain) or mix (clean
bicubic, bicubic + JPEG, and a milder second-order chain, per sample; see ``mixed_down``).  ``init`` fine-tunes
any SR checkpoint we read (ESRGAN, Real-ESRGAN, BasicSR, ours).  Validation: PSNR/SSIM (RGB,
border of ``scale`` pixels cropped) on held-out photos in ``val``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.core.errors import GanEditorError
from ganeditor.core.metrics import psnr, ssim
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.losses import PerceptualLoss
from ganeditor.pipelines.train.data import ImageFolder, make_batch, open_source, sample_rng, batch_positions
from ganeditor.pipelines.train.degrade import SCAN, bicubic_down, degrade_batch, jpeg, second_order
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.samples import image_grid

ARCH_DEFAULTS = {
    "msrresnet": dict(num_feat=64, num_block=16),
    "rrdbnet": dict(num_feat=64, num_block=23, num_grow_ch=32),
}


DEGRADATIONS = ("bicubic", "realistic", "mix")
JPEG_QUALITY = (25, 95)  # the default range of the mix's JPEG-only inputs (option ``mix_jpeg_quality``)


def mixed_down(hr: torch.Tensor, scale: int, rngs: list[np.random.Generator], clean: float = 0.4,
               jpeg_only: float = 0.35, jpeg_quality: tuple[float, float] = JPEG_QUALITY) -> torch.Tensor:
    """The ``mix`` degradation of [N,3,H,W] in [0,1], one draw per sample: clean bicubic (``clean``), bicubic
    then JPEG of a quality drawn from ``jpeg_quality`` (``jpeg_only``: small photos saved by phones and the
    web), else the second-order blur/resize/noise/JPEG chain with the milder ``SCAN`` ranges (old and scanned
    photos)."""
    out = []
    for x, rng in zip(hr, rngs):
        x = x[None].cpu().float().clamp(0, 1)
        u = rng.random()
        if u < clean + jpeg_only:
            y = (bicubic_down(x, scale) * 255).round() / 255
            if u >= clean:
                y = jpeg(y, rng.uniform(*jpeg_quality))
        else:
            y = second_order(x, scale, rng, SCAN)
        out.append(y[0])
    return torch.stack(out).to(hr.device, hr.dtype)


def cosine_lr(base: float, i: int, n: int, floor: float = 0.01) -> float:
    """The rate of step ``i`` of ``n`` (0 .. n-1): ``base`` at the first, falling along half a cosine to
    ``floor * base`` at the last (and after it)."""
    t = min(1.0, max(0.0, i / max(1, n - 1)))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def validation_scores(net: nn.Module, val: ImageFolder, count: int, scale: int,
                      device: torch.device | str = "cpu") -> dict[str, float]:
    """Mean PSNR/SSIM of ``net`` and bicubic on the first ``count`` images of ``val`` (centre crops, 8-bit), downscaled
    by anti-aliased bicubic: clean inputs and the same inputs saved as JPEG quality 30 (``*_jpeg30``)."""
    scores: dict[str, list[float]] = {}
    q = lambda x: (x * 255).round() / 255  # noqa: E731  (8-bit, as saved images)
    for i in range(min(len(val), count)):
        hr = q((val.get(i, sample_rng(0, i)) + 1) / 2).unsqueeze(0)
        clean = q(bicubic_down(hr, scale))
        for sfx, lr in (("", clean), ("_jpeg30", jpeg(clean, 30))):
            sr = net(lr.to(device)).float().clamp(0, 1).cpu()
            bic = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
            for key, v in ((f"val_psnr{sfx}", psnr(q(sr), hr, crop=scale)),
                           (f"val_ssim{sfx}", ssim(q(sr), hr, crop=scale)),
                           (f"val_psnr_bicubic{sfx}", psnr(q(bic), hr, crop=scale))):
                scores.setdefault(key, []).append(v)
    return {k: float(np.mean(v)) for k, v in scores.items()}


class SRGANRecipe(Recipe):
    name = "srgan"
    identity_options = ("arch", "scale", "num_feat", "num_block")

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        super().__init__(options, ctx, data)
        if len(data) != 1:
            raise GanEditorError("srgan needs one data folder of photos: --data FOLDER")
        init = self.option("init", None)
        if init:
            src = load_checkpoint(init).primary
            kw = dict(src.init_kwargs)
            self.options.update(arch=src.arch_name, scale=int(src.scale))
            if src.arch_name not in ARCH_DEFAULTS:
                raise GanEditorError(f"cannot fine-tune a {src.arch_name} as an SRGAN generator", init)
        else:
            arch = self.option("arch", "msrresnet")
            if arch not in ARCH_DEFAULTS:
                raise GanEditorError(f"unknown SR architecture {arch!r} (msrresnet or rrdbnet)")
            kw = {k: self.option(k, v) for k, v in ARCH_DEFAULTS[arch].items()}
            scale = self.option("scale", 4)
            kw.update({"upscale": scale} if arch == "msrresnet" else {"scale": scale})
        self.scale = int(self.option("scale", 4))
        self.G = ctx.prepare(build(self.option("arch", "msrresnet"), **kw))
        if init:
            self.G.load_state_dict(src.state_dict())
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.D = ctx.prepare(build("unet-discriminator-sn", num_in_ch=3, num_feat=self.option("d_feat", 64)))
        self.opt_G = ctx.adam(self.G.parameters(), lr=self.option("lr", 2e-4), betas=(0.9, 0.99))
        self.opt_D = ctx.adam(self.D.parameters(), lr=self.option("lr_d", 1e-4), betas=(0.9, 0.99))
        total = int(self.option("total_steps", 1))
        stage = self.option("stage", "both")
        self.pretrain_steps = {"psnr": total, "gan": 0}.get(stage, int(self.option("pretrain_steps", total // 2)))
        self.crop = int(self.option("crop_size", 96))
        if self.crop % self.scale:
            raise GanEditorError(f"crop_size {self.crop} must be a multiple of the scale {self.scale}")
        self.src = open_source(data[0], self.crop, "random-crop")
        self.degradation = self.option("degradation", "bicubic")
        if self.degradation not in DEGRADATIONS:
            raise GanEditorError(f"unknown degradation {self.degradation!r} (choose from {', '.join(DEGRADATIONS)})")
        self.w_pixel_gan = self.option("w_pixel_gan", 0.01)
        self.w_percep, self.w_gan = self.option("w_perceptual", 1.0), self.option("w_gan", 0.005)
        self.ema_decay = self.option("ema", 0.999)
        self.pixel = F.l1_loss if self.option("pixel_loss", "l1") == "l1" else F.mse_loss
        self._percep: PerceptualLoss | None = None
        val = self.option("val", None)
        self.val = ImageFolder(val, self.option("val_size", 192), "center-crop", flip=False) if val else None

    @property
    def perceptual(self) -> PerceptualLoss:
        if self._percep is None:
            self._percep = PerceptualLoss("vgg19").to(self.ctx.device)
            self.options["perceptual_loss"] = self._percep.name
        return self._percep

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def _batch(self, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, seed = self.ctx.dist, self.ctx.seed
        hr = (make_batch(self.src.get, len(self.src), seed, step, n * d.world, d.rank, d.world) + 1) / 2
        rngs = [sample_rng(seed, p, 99) for p in batch_positions(step, n * d.world, d.rank, d.world)]
        if self.degradation == "mix":
            lr = mixed_down(hr, self.scale, rngs, self.option("mix_clean", 0.4), self.option("mix_jpeg", 0.35),
                            tuple(self.option("mix_jpeg_quality", JPEG_QUALITY)))
        else:
            lr = degrade_batch(hr, self.scale, self.degradation, rngs)
        return self.ctx.to_batch(lr), self.ctx.to_batch(hr)

    def stage_lr(self, step: int) -> float:
        """The generator's learning rate at ``step``: ``lr``, or with ``lr_schedule=cosine`` annealed over each
        stage (the PSNR steps, then the GAN steps)."""
        base = float(self.option("lr", 2e-4))
        if self.option("lr_schedule", "constant") != "cosine":
            return base
        if step < self.pretrain_steps:
            return cosine_lr(base, step, self.pretrain_steps)
        return cosine_lr(base, step - self.pretrain_steps, int(self.option("total_steps", 1)) - self.pretrain_steps)

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        lr, hr = self._batch(step, batch_size)
        gan = step >= self.pretrain_steps
        for g in self.opt_G.param_groups:
            g["lr"] = self.stage_lr(step)
        self.D.requires_grad_(False)
        with self.ctx.autocast():
            sr = self.G(lr).float()
            l_pix = self.pixel(sr, hr)
            out = {"pixel": l_pix}
            loss = l_pix
            if gan:
                out["perceptual"] = self.perceptual(sr.clamp(0, 1), hr)
                out["gan_G"] = F.softplus(-self.D(sr).float()).mean()
                loss = self.w_pixel_gan * l_pix + self.w_percep * out["perceptual"] + self.w_gan * out["gan_G"]
        self.optimize("G", loss, self.opt_G, self.G)
        if gan:
            self.D.requires_grad_(True)
            with self.ctx.autocast():
                l_d = F.softplus(-self.D(hr).float()).mean() + F.softplus(self.D(sr.detach()).float()).mean()
            self.optimize("D", l_d, self.opt_D, self.D)
            out["D"] = l_d
        with torch.no_grad():
            decay = self.ema_decay if gan else 0.0  # the PSNR stage exports its latest weights
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
                be.copy_(b)
        return {k: float(v.detach()) for k, v in out.items()}

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        rows = []
        for i in range(2):
            hr = ((self.src.get(i % len(self.src), sample_rng(0, i)) + 1) / 2).unsqueeze(0)
            lr = bicubic_down(hr, self.scale).to(self.ctx.device)
            up = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
            rows.append([t * 2 - 1 for t in (up, self.G_ema(lr).clamp(0, 1), hr)])
        return image_grid(rows)

    def validate(self) -> dict[str, float]:
        """PSNR/SSIM vs bicubic on the held-out photos in ``val`` (see ``validation_scores``)."""
        if self.val is None:
            return {}
        return validation_scores(self.G_ema, self.val, int(self.option("val_count", 8)), self.scale, self.ctx.device)

    def export(self) -> Checkpoint:
        meta = {"recipe": "srgan", "scale": self.scale, "degradation": self.degradation,
                "stage": "gan" if self.options.get("total_steps", 0) > self.pretrain_steps else "psnr",
                "perceptual_loss": self.options.get("perceptual_loss", "not used")}  # fmt: skip
        return Checkpoint("ganeditor", "GAN Editor SRGAN", {"net": self.G_ema, "D": self.D}, meta)
