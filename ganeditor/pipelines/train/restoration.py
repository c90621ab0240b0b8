"""Training recipes of the old-photo restoration networks (``archs.restoration``), all on real photos
degraded on the fly by ``degrade.old_photo`` (seeded per sample: exactly resumable).

* ``scratches``: the dust/scratch detector; input a damaged old print, target the damage mask;
  loss BCE (positives weighted) + soft Dice.
* ``inpaint``: the inpainter; input a (degraded or clean) photo with holes shaped like dust and
  scratches (the detector's mask, dilated), target the photo; loss L1 (holes weighted) +
  perceptual + adversarial (PatchGAN).
* ``restore``: the global restorer; input an old print without (or with little) dust and scratches,
  target the clean photo (its luma for b/w prints); L1 first (``pretrain_steps``), then
  L1 + perceptual + adversarial.
* ``colorize``: the colouriser; input the luma of a colour photo, target its chroma (BT.601
  Cb/Cr); L1 first, then L1 + adversarial on (Y, Cb, Cr).  Gray photos are left out.

Every recipe keeps an EMA of the generator (exported as ``net``), validates on held-out photos and
shows input | output | target rows as samples.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import ARCHS, build
from ganeditor.core.errors import GanEditorError
from ganeditor.core.metrics import psnr
from ganeditor.formats import Checkpoint
from ganeditor.pipelines.colour_space import rgb_to_ycbcr, ycbcr_to_rgb
from ganeditor.pipelines.losses import PerceptualLoss
from ganeditor.pipelines.train.data import batch_positions, make_batch, open_source, sample_rng
from ganeditor.pipelines.train.degrade import OLD_PHOTO, old_photo
from ganeditor.pipelines.train.degrade_damage import draw_damage
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.samples import image_grid

Sample = tuple[torch.Tensor, ...]  # per-sample tensors, [C,H,W] each: network inputs..., target


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a [N,1,H,W] {0,1} mask by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask, 2 * radius + 1, stride=1, padding=radius)


def _t(a: np.ndarray) -> torch.Tensor:
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)


class _RestorationRecipe(Recipe):
    """Shared machinery: generator + EMA (+ PatchGAN), on-the-fly samples, validation, export."""

    arch = ""
    data_default = "photos:train?short=768"
    val_default = "photos:heldout?short=768"
    gan_default = True
    identity_options = ("channels", "blocks")

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        data = data or [self.data_default]
        super().__init__(options, ctx, data)
        if len(data) != 1:
            raise GanEditorError(f"{self.name} trains on one photo source (e.g. {self.data_default!r} or a folder)")
        kw = {k: tuple(self.option(k, v)) for k, v in self._arch_defaults().items()}
        self.G = ctx.prepare(build(self.arch, **kw))
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False)
        self.opt_G = ctx.adam(self.G.parameters(), lr=self.option("lr", 2e-4), betas=(0.9, 0.99))
        self.gan = bool(self.option("gan", self.gan_default))
        self.D: nn.Module | None = None
        if self.gan:
            self.D = ctx.prepare(build("patchgan-discriminator", input_nc=3,
                                       ndf=self.option("d_feat", 32), n_layers=3, norm="none"))
            self.opt_D = ctx.adam(self.D.parameters(), lr=self.option("lr_d", 1e-4), betas=(0.9, 0.99))
        self.pretrain_steps = int(self.option("pretrain_steps", 0))
        self.crop = int(self.option("crop_size", 128))
        self.src = open_source(data[0], self.crop, "random-crop")
        self.ema_decay = float(self.option("ema", 0.999))
        self.w_gan, self.w_percep = float(self.option("w_gan", 0.01)), float(self.option("w_perceptual", 0.5))
        self._percep: PerceptualLoss | None = None
        self._val: list[Sample] | None = None

    # --- what the four recipes define --------------------------------------------------------
    def _arch_defaults(self) -> dict[str, tuple[int, ...]]:
        params = inspect.signature(ARCHS[self.arch].__init__).parameters
        return {k: params[k].default for k in ("channels", "blocks")}

    def make_sample(self, clean: np.ndarray, rng: np.random.Generator) -> Sample:
        """(inputs..., target) for one clean uint8 crop."""
        raise NotImplementedError

    def forward(self, net: nn.Module, inputs: list[torch.Tensor]) -> torch.Tensor:
        return net(*inputs)

    def loss(self, out: torch.Tensor, inputs: list[torch.Tensor], target: torch.Tensor, gan: bool) -> dict[str, torch.Tensor]:
        """Generator losses; ``total`` is optimised."""
        l1 = F.l1_loss(out, target)
        losses = {"l1": l1, "total": l1}
        if gan:
            losses["perceptual"] = self.perceptual(out.clamp(0, 1), target)
            losses["gan_G"] = F.softplus(-self.D(self.d_input(out, inputs)).float()).mean()
            losses["total"] = l1 + self.w_percep * losses["perceptual"] + self.w_gan * losses["gan_G"]
        return losses

    def d_input(self, image: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
        """What the discriminator judges, in its [-1, 1] convention."""
        return image * 2 - 1

    def validate_metrics(self, out: torch.Tensor, inputs: list[torch.Tensor], target: torch.Tensor) -> dict[str, float]:
        q = lambda x: (x.clamp(0, 1) * 255).round() / 255  # noqa: E731  (8-bit, as saved images)
        return {"val_psnr": psnr(q(out), q(target)), "val_psnr_input": psnr(q(inputs[0]), q(target))}

    # --- provided ---------------------------------------------------------------------------
    @property
    def perceptual(self) -> PerceptualLoss:
        if self._percep is None:
            self._percep = PerceptualLoss("vgg19").to(self.ctx.device)
            self.options["perceptual_loss"] = self._percep.name
        return self._percep

    def modules(self) -> dict[str, nn.Module]:
        mods = {"G": self.G, "G_ema": self.G_ema}
        return mods | ({"D": self.D} if self.D is not None else {})

    def optimizers(self):
        return {"G": self.opt_G} | ({"D": self.opt_D} if self.D is not None else {})

    def _samples_at(self, step: int, n: int) -> list[torch.Tensor]:
        d, seed = self.ctx.dist, self.ctx.seed
        crops = make_batch(self.src.get, len(self.src), seed, step, n * d.world, d.rank, d.world)
        positions = batch_positions(step, n * d.world, d.rank, d.world)
        samples = [self.make_sample(_uint8(c), sample_rng(seed, p, 61)) for c, p in zip(crops, positions)]
        return [self.ctx.to_batch(torch.stack(parts)) for parts in zip(*samples)]

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        *inputs, target = self._samples_at(step, batch_size)
        gan = self.D is not None and step >= self.pretrain_steps
        if self.D is not None:
            self.D.requires_grad_(False)
        with self.ctx.autocast():
            out = self.forward(self.G, inputs).float()
            losses = self.loss(out, inputs, target.float(), gan)
        self.optimize("G", losses["total"], self.opt_G, self.G)
        if gan:
            self.D.requires_grad_(True)
            with self.ctx.autocast():
                real = self.D(self.d_input(target, inputs)).float()
                fake = self.D(self.d_input(out.detach(), inputs)).float()
                losses["D"] = F.softplus(-real).mean() + F.softplus(fake).mean()
            self.optimize("D", losses["D"], self.opt_D, self.D)
        with torch.no_grad():  # EMA with a warm-up (early averages would drag the first weights along)
            decay = min(self.ema_decay, (1 + step) / (10 + step))
            for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.lerp_(p, 1 - decay)
        return {k: float(v.detach()) for k, v in losses.items() if k != "total"}

    def _validation_set(self) -> list[Sample]:
        if self._val is None:
            n, size = int(self.option("val_count", 8)), int(self.option("val_size", 192))
            src = open_source(self.option("val", self.val_default), size, "center-crop")
            self._val = [self.make_sample(_uint8(src.get(i % len(src), sample_rng(1, i))), sample_rng(1, i, 61))
                         for i in range(n)]
        return self._val

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        scores: dict[str, list[float]] = {}
        for sample in self._validation_set():
            *inputs, target = [t[None].to(self.ctx.device) for t in sample]
            out = self.forward(self.G_ema, inputs).float().cpu()
            for k, v in self.validate_metrics(out, [t.cpu() for t in inputs], target.cpu()).items():
                scores.setdefault(k, []).append(v)
        return {k: float(np.mean(v)) for k, v in scores.items()}

    def show(self, out: torch.Tensor, inputs: list[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
        """One sample row in [0, 1] RGB (1-channel maps are shown gray)."""
        return [inputs[0], out.clamp(0, 1), target]

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        rows = []
        for sample in self._validation_set()[:3]:
            *inputs, target = [t[None].to(self.ctx.device) for t in sample]
            out = self.forward(self.G_ema, inputs).float()
            rows.append([t * 2 - 1 for t in self.show(out, inputs, target)])
        return image_grid(rows)

    def export(self) -> Checkpoint:
        meta = {"recipe": self.name, "restore_stage": self.G_ema.restore_stage,
                "perceptual_loss": self.options.get("perceptual_loss", "not used")}
        return Checkpoint("ganeditor", f"GAN Editor {self.name} model", {"net": self.G_ema}, meta)


def _uint8(x: torch.Tensor) -> np.ndarray:
    """[3,H,W] in [-1,1] -> HxWx3 uint8."""
    return ((x.permute(1, 2, 0) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------ recipes


class ScratchRecipe(_RestorationRecipe):
    name = "scratches"
    arch = "scratch-detector"
    gan_default = False

    def make_sample(self, clean, rng):
        d = old_photo(clean, rng, replace(OLD_PHOTO, damage_prob=0.95))
        return _t(d.image), _t(d.mask.astype(np.float32))

    def forward(self, net, inputs):
        return net(inputs[0])

    def loss(self, out, inputs, target, gan):
        pos = float(self.option("pos_weight", 4.0))
        bce = F.binary_cross_entropy_with_logits(out, target, pos_weight=torch.tensor(pos, device=out.device))
        p = torch.sigmoid(out)
        dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
        return {"bce": bce, "dice": dice, "total": bce + dice}

    def validate_metrics(self, out, inputs, target):
        pred, gt = out > 0, target > 0.5
        tp = float((pred & gt).sum())
        return {"val_precision": tp / max(1.0, float(pred.sum())), "val_recall": tp / max(1.0, float(gt.sum())),
                "val_iou": tp / max(1.0, float((pred | gt).sum()))}

    def show(self, out, inputs, target):
        return [inputs[0], torch.sigmoid(out).expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)]


class InpaintRecipe(_RestorationRecipe):
    name = "inpaint"
    arch = "inpaint-unet"

    def make_sample(self, clean, rng):
        if rng.random() < float(self.option("degraded_share", 0.7)):
            base = old_photo(clean, rng, OLD_PHOTO.without_damage()).image
        else:
            base = clean.astype(np.float32) / 255
        h, w = clean.shape[:2]
        mp = h * w / 1e6
        _, mask = draw_damage(np.zeros((h, w, 3), np.float32), rng, int(rng.poisson(mp * rng.uniform(20, 250))),
                              int(rng.poisson(mp * rng.uniform(100, 2500))), rng.uniform(*OLD_PHOTO.damage_size))
        m = dilate(_t(mask.astype(np.float32))[None], int(rng.integers(0, 3)))[0]
        return _t(base), m, _t(base)

    def loss(self, out, inputs, target, gan):
        m = inputs[1]
        hole = (F.l1_loss(out, target, reduction="none") * m).sum() / (m.sum() * 3).clamp(min=1.0)
        losses = {"l1_hole": hole, "total": hole}
        if gan:
            losses["perceptual"] = self.perceptual(out.clamp(0, 1), target)
            losses["gan_G"] = F.softplus(-self.D(self.d_input(out, inputs)).float()).mean()
            losses["total"] = hole + self.w_percep * losses["perceptual"] + self.w_gan * losses["gan_G"]
        return losses

    def validate_metrics(self, out, inputs, target):
        m = inputs[1] > 0.5
        err = ((out.clamp(0, 1) - target) ** 2)[m.expand_as(out)].mean()
        fill = (inputs[0] * ~m).sum((2, 3), keepdim=True) / (~m).sum((2, 3), keepdim=True).clamp(min=1)
        err_mean = ((fill.expand_as(out) - target) ** 2)[m.expand_as(out)].mean()
        to_db = lambda e: float(10 * torch.log10(1 / e.clamp(min=1e-10)))  # noqa: E731
        return {"val_psnr_holes": to_db(err), "val_psnr_holes_meanfill": to_db(err_mean)}

    def show(self, out, inputs, target):
        return [inputs[0] * (1 - inputs[1]), out.clamp(0, 1), target]


class RestoreRecipe(_RestorationRecipe):
    name = "restore"
    arch = "restore-unet"

    def make_sample(self, clean, rng):
        cfg = replace(OLD_PHOTO, damage_prob=float(self.option("residue_prob", 0.3)), scratches_per_mp=(0.0, 10.0),
                      dust_per_mp=(0.0, 150.0))
        d = old_photo(clean, rng, cfg)
        return _t(d.image), _t(d.target)


class ColorizeRecipe(_RestorationRecipe):
    name = "colorize"
    arch = "colorize-unet"
    data_default = "photos:train?short=320"
    val_default = "photos:heldout?short=320"

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        super().__init__(options, ctx, data)
        self.w_gan = float(self.option("w_gan", 0.02))
        self._colour = self._colour_items(self.src, float(self.option("min_chroma", 0.02)))

    @staticmethod
    def _colour_items(src, min_chroma: float) -> list[int]:
        """Items of the source that are colour photos (mean |chroma| above ``min_chroma``; gray scans ~0)."""
        keep = []
        for i in range(len(src)):
            a = src.base_image(i) if hasattr(src, "base_image") else _uint8(src.get(i, sample_rng(0, i)))
            ycc = rgb_to_ycbcr(torch.from_numpy(a[::4, ::4].astype(np.float32) / 255).permute(2, 0, 1)[None])
            if float(ycc[:, 1:].abs().mean()) >= min_chroma:
                keep.append(i)
        if not keep:
            raise GanEditorError("colorize needs colour photos; the data source holds only gray ones")
        return keep

    def _samples_at(self, step, n):
        d, seed = self.ctx.dist, self.ctx.seed
        get = lambda i, rng: self.src.get(self._colour[i], rng)  # noqa: E731
        crops = make_batch(get, len(self._colour), seed, step, n * d.world, d.rank, d.world)
        positions = batch_positions(step, n * d.world, d.rank, d.world)
        samples = [self.make_sample(_uint8(c), sample_rng(seed, p, 61)) for c, p in zip(crops, positions)]
        return [self.ctx.to_batch(torch.stack(parts)) for parts in zip(*samples)]

    def make_sample(self, clean, rng):
        ycc = rgb_to_ycbcr(_t(clean.astype(np.float32) / 255)[None])[0]
        y = ycc[:1]
        if rng.random() < 0.5:  # restored scans keep a little noise
            y = (y + torch.from_numpy(rng.normal(0, rng.uniform(0, 0.02), y.shape).astype(np.float32))).clamp(0, 1)
        return y, ycc[1:]

    def d_input(self, image, inputs):
        return ycbcr_to_rgb(torch.cat([inputs[0], image], 1)) * 2 - 1

    def loss(self, out, inputs, target, gan):
        l1 = F.l1_loss(out, target)
        losses = {"l1": l1, "total": l1}
        if gan:
            losses["gan_G"] = F.softplus(-self.D(self.d_input(out, inputs)).float()).mean()
            losses["total"] = l1 + self.w_gan * losses["gan_G"]
        return losses

    def validate_metrics(self, out, inputs, target):
        q = lambda c: c.clamp(-0.5, 0.5) + 0.5  # noqa: E731
        return {"val_psnr_chroma": psnr(q(out), q(target)), "val_psnr_chroma_gray": psnr(q(out * 0), q(target))}

    def show(self, out, inputs, target):
        y = inputs[0]
        return [y.expand(-1, 3, -1, -1), ycbcr_to_rgb(torch.cat([y, out], 1)).clamp(0, 1),
                ycbcr_to_rgb(torch.cat([y, target], 1)).clamp(0, 1)]
