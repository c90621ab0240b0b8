"""Quality measures for the demo models (used by ``make_demo_models.py`` to fill the model cards).

- StyleGAN2: sliced Wasserstein distance (SWD, Karras et al. 2018 — no pretrained network needed) of
  7x7 Laplacian-pyramid patches, generated vs held-out procedural portraits, beside the real-vs-real
  floor measured the same way.
- CycleGAN: PSNR/SSIM on held-out *paired* day/night scenes vs the paired truth, beside the identity
  and a colour-transfer baseline (per-channel mean/std matched to the target domain's training set).
- SRGAN: PSNR/SSIM (RGB, 8-bit, border of 4 px cropped) on held-out real photos vs bicubic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.metrics import psnr, ssim
from ganeditor.core.progress import Task, null_task

# --- StyleGAN2: sliced Wasserstein distance ---------------------------------------------------


def _pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid (finest first, coarsest = the low-pass residual) of [N,3,H,W] in [-1,1]."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :] / 256).expand(3, 1, 5, 5)
    out = []
    for _ in range(levels - 1):
        low = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=3)[..., ::2, ::2]
        up = F.conv_transpose2d(low, k * 4, stride=2, padding=2, output_padding=1, groups=3)
        out.append(x - up)
        x = low
    out.append(x)
    return out


def _descriptors(x: torch.Tensor, per_image: int, rng: np.random.Generator) -> torch.Tensor:
    """``per_image`` random 7x7 patches of each image, flattened [N*per_image, 147]."""
    n, c, h, w = x.shape
    ys = torch.from_numpy(rng.integers(0, h - 6, (n, per_image)))
    xs = torch.from_numpy(rng.integers(0, w - 6, (n, per_image)))
    d = torch.arange(7)
    rows = (ys[..., None, None] + d[:, None]).expand(n, per_image, 7, 7)
    cols = (xs[..., None, None] + d[None, :]).expand(n, per_image, 7, 7)
    idx = torch.arange(n)[:, None, None, None].expand_as(rows)
    return x.permute(0, 2, 3, 1)[idx, rows, cols].reshape(n * per_image, -1)


def _normalize(d: torch.Tensor) -> torch.Tensor:
    return (d - d.mean(0, keepdim=True)) / d.std(0, keepdim=True).clamp_min(1e-8)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, seed: int = 0, dirs: int = 128, repeats: int = 4) -> list[float]:
    """SWD x 1e3 per pyramid level (finest first) between image sets [N,3,H,W] in [-1,1]."""
    assert a.shape[1:] == b.shape[1:] and a.shape[-1] >= 16, f"a {list(a.shape)} b {list(b.shape)}"
    levels = max(1, int(np.log2(a.shape[-1] // 16)) + 1)
    rng = np.random.default_rng(seed)
    out = []
    for la, lb in zip(_pyramid(a.float(), levels), _pyramid(b.float(), levels)):
        da, db = _normalize(_descriptors(la, 64, rng)), _normalize(_descriptors(lb, 64, rng))
        m = min(len(da), len(db))
        da, db = da[:m], db[:m]
        total = 0.0
        for _ in range(repeats):
            p = torch.from_numpy(rng.standard_normal((da.shape[1], dirs))).float()
            p = p / p.norm(dim=0, keepdim=True)
            pa, pb = (da @ p).t().contiguous(), (db @ p).t().contiguous()  # [dirs, M]: sorting rows is fast
            total += float((torch.sort(pa, 1).values - torch.sort(pb, 1).values).abs().mean())
        out.append(1e3 * total / repeats)
    return out


@torch.no_grad()
def stylegan2_quality(G: nn.Module, count: int = 1024, task: Task | None = None) -> dict[str, object]:
    """SWD of ``count`` generated portraits (seeds 0..count-1) vs held-out portraits, and the floor."""
    from ganeditor.pipelines.generate import seed_to_z
    from ganeditor.pipelines.train.data_worlds import HELDOUT_PORTRAIT_SEED
    from ganeditor.worlds.portraits import render_portraits

    task = task or null_task()
    res = G.img_resolution
    fakes, reals, reals2 = [], [], []
    for i in range(0, count, 64):
        n = min(64, count - i)
        z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in range(i, i + n)])).float()
        fakes.append(G(z, None, noise_mode="const").float().clamp(-1, 1))
        for dst, base in ((reals, HELDOUT_PORTRAIT_SEED), (reals2, HELDOUT_PORTRAIT_SEED + count)):
            imgs, _, _ = render_portraits(range(base + i, base + i + n), res)
            dst.append(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1)
        task.report(i + n, count, "generating portraits")
    fake, real, real2 = torch.cat(fakes), torch.cat(reals), torch.cat(reals2)
    swd = sliced_wasserstein(fake, real)
    floor = sliced_wasserstein(real2, real)
    return {"images": count, "swd_x1e3": [round(v, 2) for v in swd], "swd_x1e3_mean": round(float(np.mean(swd)), 2),
            "swd_floor_x1e3": [round(v, 2) for v in floor], "swd_floor_x1e3_mean": round(float(np.mean(floor)), 2)}


# --- Encoder: reconstruction of held-out portraits ---------------------------------------------


@torch.no_grad()
def encoder_quality(G: nn.Module, E: nn.Module, count: int = 64, task: Task | None = None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of G(E(x)) vs x for ``count`` held-out procedural portraits and ``count`` generated ones
    (seeds from 10^6, never used in training), beside the mean-latent image as the floor; seconds per image."""
    import time

    from ganeditor.pipelines.generate import seed_to_z
    from ganeditor.pipelines.invert import encoder_input
    from ganeditor.pipelines.train.data_worlds import HELDOUT_PORTRAIT_SEED
    from ganeditor.worlds.portraits import render_portraits

    task = task or null_task()
    res = G.img_resolution
    imgs, _, _ = render_portraits(range(HELDOUT_PORTRAIT_SEED, HELDOUT_PORTRAIT_SEED + count), res)
    world = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in range(10**6, 10**6 + count)])).float()
    generated = G(z, None, noise_mode="const").float().clamp(-1, 1)
    mean_img = G.synthesis(G.mapping.w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const").float()
    out: dict[str, dict[str, float]] = {}
    for name, x in (("held-out portraits", world), ("generated portraits", generated)):
        t0 = time.monotonic()
        rec = torch.cat([G.synthesis(E(encoder_input(E, x[i:i + 16])).float(), noise_mode="const").float()
                         for i in range(0, len(x), 16)])
        sec = (time.monotonic() - t0) / len(x)
        a, b, m = _q8((x + 1) / 2), _q8((rec + 1) / 2), _q8((mean_img.expand_as(x) + 1) / 2)
        out[name] = {"psnr": round(psnr(b, a), 3), "ssim": round(ssim(b, a), 4),
                     "mean_latent_psnr": round(psnr(m, a), 3), "mean_latent_ssim": round(ssim(m, a), 4),
                     "seconds_per_image": round(sec, 4), "count": len(x)}
        task.report(len(out), 2, name)
    return out


# --- CycleGAN: paired held-out scenes ---------------------------------------------------------


def _q8(x01: torch.Tensor) -> torch.Tensor:
    """Quantise [0,1] images to 8 bits as saved images are (truncation, as CycleGAN saves)."""
    return (x01.clamp(0, 1) * 255).floor() / 255


def _colour_stats(imgs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return imgs.mean(dim=(0, 2, 3), keepdim=True), imgs.std(dim=(0, 2, 3), keepdim=True)


def colour_transfer(x01: torch.Tensor, target_mean: torch.Tensor, target_std: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel mean/std matched to a target domain's statistics (RGB, [0,1])."""
    m, s = x01.mean(dim=(2, 3), keepdim=True), x01.std(dim=(2, 3), keepdim=True).clamp_min(1e-4)
    return ((x01 - m) / s * target_std + target_mean).clamp(0, 1)


@torch.no_grad()
def cyclegan_quality(G_A: nn.Module, G_B: nn.Module, count: int = 50, size: int = 256, stats_count: int = 200,
                     task: Task | None = None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of day->night (G_A) and night->day (G_B) on held-out paired scenes, with baselines."""
    from ganeditor.worlds.datasets import PairedSceneDataset, SceneDataset

    task = task or null_task()
    stats = {}
    for t in ("day", "night"):
        ds = SceneDataset(stats_count, size, t)
        stats[t] = _colour_stats(torch.stack([(ds[i] + 1) / 2 for i in range(stats_count)]))
        task.report(0, count, f"colour statistics of {t}")
    pairs = PairedSceneDataset(count, size)
    rows: dict[str, dict[str, list[float]]] = {}
    for i in range(count):
        day, night = ((t + 1) / 2 for t in pairs[i])
        day, night = day[None], night[None]
        for name, src, truth, net, tgt in (("day->night", day, night, G_A, "night"), ("night->day", night, day, G_B, "day")):
            out = (net(src * 2 - 1).float() + 1) / 2
            cands = {"model": out, "identity": src, "colour transfer": colour_transfer(src, *stats[tgt])}
            for k, v in cands.items():
                r = rows.setdefault(f"{name} {k}", {"psnr": [], "ssim": []})
                r["psnr"].append(psnr(_q8(v), _q8(truth)))
                r["ssim"].append(ssim(_q8(v), _q8(truth)))
        task.report(i + 1, count, "held-out pairs")
    return {k: {m: round(float(np.mean(v)), 3) for m, v in r.items()} for k, r in rows.items()}


# --- SRGAN: held-out photos -------------------------------------------------------------------


@torch.no_grad()
def srgan_quality(net: nn.Module, scale: int = 4, short: int = 768, crop: int = 384, task: Task | None = None
                  ) -> dict[str, dict[str, float]]:
    """PSNR/SSIM (RGB, 8-bit, ``scale``-px border cropped) of x``scale`` SR vs bicubic on held-out photos.

    Each held-out natural photo is resized to a short side of ``short`` px (as in training), its
    central ``crop`` x ``crop`` region downscaled by anti-aliased bicubic, then upscaled back.
    """
    from ganeditor.pipelines.train.data_worlds import PhotoSource
    from ganeditor.pipelines.train.degrade import bicubic_down

    task = task or null_task()
    src = PhotoSource("heldout", crop, "center-crop", None, short=short, flip=False, cache_mb=0)
    rows: dict[str, dict[str, list[float]]] = {"model": {"psnr": [], "ssim": []}, "bicubic": {"psnr": [], "ssim": []}}
    for i in range(len(src)):
        hr = ((src.get(i, np.random.default_rng(0)) + 1) / 2)[None]
        hr = (hr * 255).round() / 255
        lr = (bicubic_down(hr, scale) * 255).round() / 255
        outs = {"model": net(lr).float(), "bicubic": F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)}
        for k, v in outs.items():
            v = (v.clamp(0, 1) * 255).round() / 255
            rows[k]["psnr"].append(psnr(v, hr, crop=scale))
            rows[k]["ssim"].append(ssim(v, hr, crop=scale))
        task.report(i + 1, len(src), "held-out photos")
    out = {k: {m: round(float(np.mean(v)), 3) for m, v in r.items()} for k, r in rows.items()}
    out["images"] = {"count": len(src)}
    return out
