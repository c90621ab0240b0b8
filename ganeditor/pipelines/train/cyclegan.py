"""CycleGAN from two folders of unpaired images (the paper recipe, as junyanz trains it).

LSGAN loss, cycle loss λ=10 both ways, identity loss 0.5·λ, image pools of 50 fakes, Adam
2e-4 (β1 0.5), learning rate constant for the first half of the steps then linearly to 0,
random crops with flips.  ``init`` fine-tunes from a checkpoint with G_A/G_B (and D_A/D_B).
One departure from upstream: new generators upsample by nearest x2 + 3x3 convolution
(``upsample="resize"``) instead of transposed convolutions, which print a checkerboard;
``upsample="deconv"`` trains the junyanz layout.  ``spectral_norm`` normalises the discriminators.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.core.errors import GanEditorError
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.train.data import eval_images, make_batch, open_source, sample_rng
from ganeditor.pipelines.train.gan_losses import apply_spectral_norm, without_parametrizations
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.samples import image_grid


class ImagePool:
    """A buffer of past fakes shown to the discriminator (Shrivastava et al.), as upstream."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.cpu().clone())
                out.append(img)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                old = self.images[i].to(img.device)
                self.images[i] = img.cpu().clone()
                out.append(old)
            else:
                out.append(img)
        return torch.cat(out, 0)


class CycleGANRecipe(Recipe):
    name = "cyclegan"
    identity_options = ("ngf", "ndf", "n_blocks", "n_layers_d", "norm", "upsample", "spectral_norm")
    former_defaults = {"upsample": "deconv"}
    default_channels_last = False  # instance norm and reflection padding would convert formats at every layer

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        super().__init__(options, ctx, data)
        if len(data) != 2:
            raise GanEditorError("cyclegan needs two data folders: --data FOLDER_A FOLDER_B")
        init = self.option("init", None)
        ckpt = load_checkpoint(init) if init else None
        g_kw = dict(ngf=self.option("ngf", 64), n_blocks=self.option("n_blocks", 9), norm=self.option("norm", "instance"),
                    upsample=self.option("upsample", "resize"))
        d_kw = dict(ndf=self.option("ndf", 64), n_layers=self.option("n_layers_d", 3), norm=self.option("norm", "instance"))
        if ckpt is not None:
            for role in ("G_A", "G_B"):
                if role not in ckpt.nets:
                    raise GanEditorError(f"--init needs networks G_A and G_B (found {', '.join(ckpt.nets)})", init)
            g_kw = {k: ckpt.nets["G_A"].init_kwargs[k] for k in ("ngf", "n_blocks", "norm")}
            g_kw["upsample"] = ckpt.nets["G_A"].init_kwargs.get("upsample", "deconv")
            self.options.update(g_kw)
        self.G_A = ctx.prepare(build("cyclegan-resnet-generator", **g_kw))
        self.G_B = ctx.prepare(build("cyclegan-resnet-generator", **g_kw))
        self.D_A = ctx.prepare(build("patchgan-discriminator", **d_kw))
        self.D_B = ctx.prepare(build("patchgan-discriminator", **d_kw))
        for m in (self.G_A, self.G_B, self.D_A, self.D_B):
            _init_normal(m, 0.02)
        if ckpt is not None:
            for role in ("G_A", "G_B", "D_A", "D_B"):
                if role in ckpt.nets:
                    getattr(self, role).load_state_dict(ckpt.nets[role].state_dict())
        if self.option("spectral_norm", False):
            apply_spectral_norm(self.D_A)
            apply_spectral_norm(self.D_B)
        lr, b1 = self.option("lr", 2e-4), self.option("beta1", 0.5)
        self.opt_G = ctx.adam(list(self.G_A.parameters()) + list(self.G_B.parameters()), lr=lr, betas=(b1, 0.999))
        self.opt_D = ctx.adam(list(self.D_A.parameters()) + list(self.D_B.parameters()), lr=lr, betas=(b1, 0.999))
        steps = int(self.option("total_steps", 1))
        decay_from = int(self.option("decay_from", steps // 2))
        lam = lambda s: 1.0 - max(0, s - decay_from) / float(max(1, steps - decay_from) + 1)  # noqa: E731
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, lam)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, lam)
        self.pool_A, self.pool_B = ImagePool(self.option("pool_size", 50)), ImagePool(self.option("pool_size", 50))
        size = self.option("crop_size", 256)
        load = self.option("load_size", int(size * 286 / 256))
        self.src_A = open_source(data[0], size, "random-crop", load)
        self.src_B = open_source(data[1], size, "random-crop", load)
        self.lambda_A, self.lambda_B = self.option("lambda_A", 10.0), self.option("lambda_B", 10.0)
        self.lambda_idt = self.option("lambda_identity", 0.5)

    def modules(self) -> dict[str, nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def schedulers(self):
        return {"G": self.sched_G, "D": self.sched_D}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_A": list(self.pool_A.images), "pool_B": list(self.pool_B.images)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_A.images = list(state.get("pool_A", []))
        self.pool_B.images = list(state.get("pool_B", []))

    def _batch(self, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, seed = self.ctx.dist, self.ctx.seed
        a = make_batch(self.src_A.get, len(self.src_A), seed, step, n * d.world, d.rank, d.world, salt=0)
        b = make_batch(self.src_B.get, len(self.src_B), seed, step, n * d.world, d.rank, d.world, salt=1)
        return self.ctx.to_batch(a), self.ctx.to_batch(b)

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        real_A, real_B = self._batch(step, batch_size)
        ac = self.ctx.autocast
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        with ac():
            fake_B = self.G_A(real_A)
            rec_A = self.G_B(fake_B)
            fake_A = self.G_B(real_B)
            rec_B = self.G_A(fake_A)
            loss_idt_A = loss_idt_B = torch.zeros((), device=real_A.device)
            if self.lambda_idt > 0:
                loss_idt_A = F.l1_loss(self.G_A(real_B).float(), real_B) * self.lambda_B * self.lambda_idt
                loss_idt_B = F.l1_loss(self.G_B(real_A).float(), real_A) * self.lambda_A * self.lambda_idt
            loss_G_A = _lsgan(self.D_A(fake_B), True)
            loss_G_B = _lsgan(self.D_B(fake_A), True)
            loss_cyc_A = F.l1_loss(rec_A.float(), real_A) * self.lambda_A
            loss_cyc_B = F.l1_loss(rec_B.float(), real_B) * self.lambda_B
            loss_G = loss_G_A + loss_G_B + loss_cyc_A + loss_cyc_B + loss_idt_A + loss_idt_B
        self.optimize("G", loss_G, self.opt_G, self.G_A, self.G_B)
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        with ac():
            fb, fa = self.pool_B.query(fake_B.detach()), self.pool_A.query(fake_A.detach())
            loss_D_A = 0.5 * (_lsgan(self.D_A(real_B), True) + _lsgan(self.D_A(fb), False))
            loss_D_B = 0.5 * (_lsgan(self.D_B(real_A), True) + _lsgan(self.D_B(fa), False))
        self.optimize("D", loss_D_A + loss_D_B, self.opt_D, self.D_A, self.D_B)
        self.sched_G.step()
        self.sched_D.step()
        return {
            "D_A": loss_D_A.item(), "G_A": loss_G_A.item(), "cycle_A": loss_cyc_A.item(), "idt_A": loss_idt_A.item(),
            "D_B": loss_D_B.item(), "G_B": loss_G_B.item(), "cycle_B": loss_cyc_B.item(), "idt_B": loss_idt_B.item(),
        }  # fmt: skip

    has_health = True

    @torch.no_grad()
    def health_sets(self, count: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """G_A(held-out A) vs held-out B and G_B(held-out B) vs held-out A, at the training crop size."""
        if getattr(self, "_health_real", None) is None:
            size, load = self.options["crop_size"], self.options["load_size"]
            self._health_real = tuple(eval_images(d, count, size, "center-crop", load) for d in self.data)
        a, b = self._health_real

        def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([net(x[i:i + 8].to(self.ctx.device)).float().cpu() for i in range(0, len(x), 8)])

        return {"AtoB": (run(self.G_A, a).clamp(-1, 1), b), "BtoA": (run(self.G_B, b).clamp(-1, 1), a)}

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        rows = []
        for i in range(2):
            a = self.src_A.get(i % len(self.src_A), sample_rng(0, i)).unsqueeze(0).to(self.ctx.device)
            b = self.src_B.get(i % len(self.src_B), sample_rng(0, i, 1)).unsqueeze(0).to(self.ctx.device)
            fb, fa = self.G_A(a), self.G_B(b)
            rows.append([a, fb, self.G_B(fb), b, fa, self.G_A(fa)])
        return image_grid([[t.float() for t in r] for r in rows])

    def export(self) -> Checkpoint:
        meta = {"recipe": "cyclegan", "directions": {"G_A": "A->B", "G_B": "B->A"}, "data": list(self.data)}
        nets = {"G_A": self.G_A, "G_B": self.G_B, "D_A": without_parametrizations(self.D_A),
                "D_B": without_parametrizations(self.D_B)}
        return Checkpoint("ganeditor", "GAN Editor CycleGAN", nets, meta)


def _lsgan(pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    pred = pred.float()
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if target_is_real else 0.0))


def _init_normal(module: nn.Module, gain: float) -> None:
    """Upstream 'normal' init: conv weights N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
