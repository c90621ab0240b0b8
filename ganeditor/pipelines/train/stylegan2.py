"""StyleGAN2 training (the StyleGAN2-ADA recipe) from a folder of images, or fine-tuning a loaded one.

Option ``loss`` (see ``gan_losses``): ``logistic`` (non-saturating, the default) with lazy R1 on reals,
``r3gan`` (relativistic pairing loss) with lazy R1 on reals and R2 on fakes, or ``wgan-gp``.
Penalties run every ``r1_interval`` steps (lazy regularisation; 1 = every step) with weights
``r1_gamma``/``r2_gamma``.  Discriminator options: minibatch standard deviation (``mbstd_group``,
``mbstd_channels``; 0 channels turns it off) and ``spectral_norm``.  Optional path-length
regularisation every ``pl_interval`` steps; style mixing; generator EMA with ramp-up; optional ADA.
``init`` starts from any StyleGAN2 checkpoint we read (transfer learning); one without a discriminator (a
shipped generator) takes ``fresh_d=true``, best with ``d_warmup_steps`` of D-only steps first and a lower
generator learning rate ``lr_g`` (default ``lr``): at lr 0.002 a fresh discriminator's first gradients wreck
a trained generator within a hundred steps (bench/RESULTS.md, quality-retraining).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs import build
from ganeditor.core.errors import GanEditorError
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.pipelines.train.augment import AdaController, augment
from ganeditor.pipelines.train.data import eval_images, make_batch, open_source
from ganeditor.pipelines.train.gan_losses import (apply_spectral_norm, check_loss, discriminator_loss,
                                                  generator_loss, gradient_penalty, wgan_gradient_penalty,
                                                  without_parametrizations)
from ganeditor.pipelines.train.recipe import Recipe, TrainContext
from ganeditor.pipelines.train.samples import image_grid


def _g_kwargs(o: Recipe) -> dict:
    res = int(o.option("resolution", 64))
    return dict(
        z_dim=o.option("z_dim", 512), c_dim=0, w_dim=o.option("w_dim", 512), img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=o.option("mapping_layers", 8)),
        synthesis_kwargs=dict(channel_base=o.option("channel_base", 16384), channel_max=o.option("channel_max", 512),
                              architecture="skip", num_fp16_res=0, conv_clamp=None),
    )  # fmt: skip


def _d_kwargs(o: Recipe) -> dict:
    return dict(c_dim=0, img_resolution=int(o.option("resolution", 64)), img_channels=3, architecture="resnet",
                channel_base=o.option("channel_base", 16384), channel_max=o.option("channel_max", 512),
                epilogue_kwargs=dict(mbstd_group_size=o.option("mbstd_group", 4),  # minibatch stddev (0 channels: off)
                                     mbstd_num_channels=o.option("mbstd_channels", 1)))  # fmt: skip


class StyleGAN2Recipe(Recipe):
    name = "stylegan2"
    identity_options = ("resolution", "z_dim", "w_dim", "channel_base", "channel_max", "mapping_layers",
                        "mbstd_group", "mbstd_channels", "spectral_norm")

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        super().__init__(options, ctx, data)
        if len(data) != 1:
            raise GanEditorError("stylegan2 needs one data folder of images: --data FOLDER")
        init = self.option("init", None)
        if init:
            self._networks_from(init)
        else:
            self.G = build("stylegan2-generator", **_g_kwargs(self))
            self.D = build("stylegan2-discriminator", **_d_kwargs(self))
            self.G_ema = copy.deepcopy(self.G)
        if self.option("spectral_norm", False):
            apply_spectral_norm(self.D)
        self.G, self.D = ctx.prepare(self.G).train(), ctx.prepare(self.D).train()
        self.G_ema = ctx.prepare(self.G_ema).eval().requires_grad_(False)
        try:
            self.loss = check_loss(self.option("loss", "logistic"))
        except ValueError as e:
            raise GanEditorError(str(e)) from None
        wgan = self.loss == "wgan-gp"
        self.r1_gamma = self.option("r1_gamma", 0.0 if wgan else 0.2 * (self.G.img_resolution / 64) ** 2 / 4)
        self.r2_gamma = self.option("r2_gamma", self.r1_gamma if self.loss == "r3gan" else 0.0)
        self.gp_lambda = self.option("gp_lambda", 10.0)
        self.r1_interval, self.pl_interval = self.option("r1_interval", 16), self.option("pl_interval", 4)
        self.pl_weight = self.option("pl_weight", 0.0)
        self.mixing = self.option("style_mixing", 0.9)
        self.d_warmup = int(self.option("d_warmup_steps", 0))
        lr = self.option("lr", 0.0025)
        g_ratio = self.pl_interval / (self.pl_interval + 1) if self.pl_weight else 1.0
        d_ratio = self.r1_interval / (self.r1_interval + 1)
        lr_g = self.option("lr_g", lr)
        self.opt_G = ctx.adam(self.G.parameters(), lr=lr_g * g_ratio, betas=(0.0, 0.99**g_ratio), eps=1e-8)
        self.opt_D = ctx.adam(self.D.parameters(), lr=lr * d_ratio, betas=(0.0, 0.99**d_ratio), eps=1e-8)
        self.ema_kimg, self.ema_rampup = self.option("ema_kimg", 10.0), self.option("ema_rampup", 0.05)
        self.ada = AdaController(self.option("ada_target", 0.6), self.option("ada_speed_images", 100_000))
        self.use_ada = bool(self.option("ada", False))
        self.pl_mean = torch.zeros((), device=ctx.device)
        self.images_seen = 0
        self.src = open_source(data[0], self.G.img_resolution, "resize")
        self.sample_z = torch.from_numpy(np.random.RandomState(123).randn(16, self.G.z_dim)).float()

    def _networks_from(self, init: str) -> None:
        """G, G_ema and D from a StyleGAN2 checkpoint we read (a new D with ``fresh_d`` when it has none)."""
        src = load_checkpoint(init)
        g_src = src.nets.get("G") or src.primary
        self.G = build("stylegan2-generator", **g_src.init_kwargs)
        self.G.load_state_dict(g_src.state_dict())
        self.G_ema = build("stylegan2-generator", **src.primary.init_kwargs)
        self.G_ema.load_state_dict(src.primary.state_dict())
        self.options["resolution"] = self.G.img_resolution
        if "D" in src.nets:
            self.D = build("stylegan2-discriminator", **src.nets["D"].init_kwargs)
            self.D.load_state_dict(src.nets["D"].state_dict())
        elif self.option("fresh_d", False):
            self.D = build("stylegan2-discriminator", **_d_kwargs(self))
        else:
            raise GanEditorError("fine-tuning needs the discriminator D in the checkpoint (or the option fresh_d=true "
                                 "to train a new one, with d_warmup_steps to let it learn before G moves)", init)

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self) -> dict[str, Any]:
        return {"ada": self.ada.state_dict(), "pl_mean": self.pl_mean.cpu(), "images_seen": self.images_seen}

    def load_extra_state(self, st: dict[str, Any]) -> None:
        self.ada.load_state_dict(st["ada"])
        self.pl_mean = st["pl_mean"].to(self.ctx.device)
        self.images_seen = int(st["images_seen"])

    def _gen(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.G.z_dim, device=self.ctx.device)
        ws = self.G.mapping(z, None, update_emas=True)
        if self.mixing > 0:
            cutoff = int(torch.randint(1, ws.shape[1], ()).item())
            if torch.rand(()) < self.mixing:
                ws2 = self.G.mapping(torch.randn_like(z), None, update_emas=False)
                ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return self.G.synthesis(ws), ws

    def _d(self, img: torch.Tensor) -> torch.Tensor:
        return self.D(augment(img, self.ada.p) if self.use_ada else img, None).float()

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        d = self.ctx.dist
        real = make_batch(self.src.get, len(self.src), self.ctx.seed, step, batch_size * d.world, d.rank, d.world)
        real = self.ctx.to_batch(real)
        out: dict[str, float] = {}
        if step < self.d_warmup:  # a new D learns the current G first; G and G_ema stay as they are
            with torch.no_grad(), self.ctx.autocast():
                fake = self._gen(batch_size)[0]
        else:
            fake = self._generator_step(real, batch_size, out)
        if self.pl_weight and step % self.pl_interval == 0 and step >= self.d_warmup:
            self._path_length_step(batch_size, out)
        self._discriminator_step(real, fake, out)
        if (self.r1_gamma or self.r2_gamma) and step % self.r1_interval == 0:
            self._penalty_step(real, fake, out)
        if self.use_ada:
            self.ada.update(step, batch_size * d.world)
            out["ada_p"] = self.ada.p
        if step >= self.d_warmup:
            self._update_ema(batch_size * d.world)
        return out

    def _generator_step(self, real: torch.Tensor, batch_size: int, out: dict[str, float]) -> torch.Tensor:
        """One G update on the adversarial loss; returns the fakes (reused by the D step)."""
        self.D.requires_grad_(False)
        with self.ctx.autocast():
            real_logits = None
            if self.loss == "r3gan":  # the pairing needs D(real); no gradient flows through it
                with torch.no_grad():
                    real_logits = self._d(real)
            fake, _ = self._gen(batch_size)
            loss_g = generator_loss(self.loss, self._d(fake), real_logits)
        self.optimize("G", loss_g, self.opt_G, self.G)
        out["G"] = float(loss_g.detach())
        return fake.detach()

    def _path_length_step(self, batch_size: int, out: dict[str, float]) -> None:
        """Path-length regularisation of G (fp32), every ``pl_interval`` steps."""
        img, ws = self._gen(max(1, batch_size // 2))
        noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        self.pl_mean = self.pl_mean.lerp(lengths.mean().detach(), 0.01)
        loss_pl = (lengths - self.pl_mean).square().mean() * self.pl_weight * self.pl_interval
        self.optimize("G", loss_pl, self.opt_G, self.G)
        out["pl"] = float(loss_pl.detach())

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, out: dict[str, float]) -> None:
        """One D update on the adversarial loss (WGAN-GP's penalty included: it is not lazy)."""
        self.D.requires_grad_(True)
        with self.ctx.autocast():
            fake_logits, real_logits = self._d(fake), self._d(real)
            loss_d = discriminator_loss(self.loss, real_logits, fake_logits)
        if self.loss == "wgan-gp":
            loss_d = loss_d + self.gp_lambda * wgan_gradient_penalty(self._d, real, fake)
        self.ada.observe(real_logits)
        self.optimize("D", loss_d, self.opt_D, self.D)
        out["D"] = float(loss_d.detach())

    def _penalty_step(self, real: torch.Tensor, fake: torch.Tensor, out: dict[str, float]) -> None:
        """Lazy zero-centred penalties: R1 on reals, R2 on fakes, every ``r1_interval`` steps, scaled by it."""
        loss = real.new_zeros((), dtype=torch.float32)
        for name, gamma, x in (("r1", self.r1_gamma, real), ("r2", self.r2_gamma, fake)):
            if gamma:
                term = gradient_penalty(self._d, x) * (gamma / 2) * self.r1_interval
                out[name] = float(term.detach())
                loss = loss + term
        self.optimize("D", loss, self.opt_D, self.D)

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        self.images_seen += batch
        ema_nimg = min(self.ema_kimg * 1000, self.images_seen * self.ema_rampup) if self.ema_rampup else self.ema_kimg * 1000
        beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
            pe.copy_(p.detach().lerp(pe, beta))
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)

    has_health = True

    @torch.no_grad()
    def health_sets(self, count: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """G_ema on seeds 0..count-1 (NVlabs latents, noise const) vs held-out (or the first) real images."""
        from ganeditor.pipelines.generate import seed_to_z

        if getattr(self, "_health_real", None) is None or len(self._health_real) > count:
            self._health_real = eval_images(self.data[0], count, self.G.img_resolution, "resize")
        z = torch.from_numpy(np.concatenate([seed_to_z(s, self.G.z_dim) for s in range(count)])).float()
        fake = torch.cat([self.G_ema(z[i:i + 64].to(self.ctx.device), None, noise_mode="const").float().cpu()
                          for i in range(0, count, 64)])
        return {"G": (fake.clamp(-1, 1), self._health_real)}

    @torch.no_grad()
    def samples(self) -> np.ndarray:
        imgs = self.G_ema(self.sample_z.to(self.ctx.device), None, noise_mode="const").float()
        return image_grid([[imgs[r * 4 + c : r * 4 + c + 1] for c in range(4)] for r in range(4)])

    def export(self) -> Checkpoint:
        meta = {"recipe": "stylegan2", "images_seen": self.images_seen, "loss": self.loss, "ada_p": self.ada.p}
        nets = {"G_ema": self.G_ema, "G": self.G, "D": without_parametrizations(self.D)}
        return Checkpoint("ganeditor", "GAN Editor StyleGAN2", nets, meta)
