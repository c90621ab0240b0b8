"""Quality measures for the demo models (used by ``make_demo_models.py`` to fill the model cards).

- StyleGAN2: sliced Wasserstein distance (SWD, Karras et al. 2018 — no pretrained network needed) of
  7x7 Laplacian-pyramid patches, generated vs held-out procedural portraits, beside the real-vs-real
  floor measured the same way; per-attribute coverage by the attribute regressor.
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
from ganeditor.pipelines.train.health_stats import attribute_coverage, sliced_wasserstein

# --- StyleGAN2: SWD, attribute coverage, a seed grid ---------------------------------------------


@torch.no_grad()
def stylegan2_quality(G: nn.Module, count: int = 1024, task: Task | None = None) -> dict[str, object]:
    """SWD of ``count`` generated portraits (seeds 0..count-1) vs held-out portraits, and the floor; with the
    attribute regressor on disk, the per-attribute coverage (``health_stats.attribute_coverage``) and how often
    glasses and beards appear, generated vs data."""
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
    out = {"images": count, "swd_x1e3": [round(v, 2) for v in swd], "swd_x1e3_mean": round(float(np.mean(swd)), 2),
           "swd_floor_x1e3": [round(v, 2) for v in floor], "swd_floor_x1e3_mean": round(float(np.mean(floor)), 2)}
    out.update(portrait_coverage(fake, real))
    return out


def portrait_coverage(fake: torch.Tensor, real: torch.Tensor) -> dict[str, object]:
    """Coverage per attribute (min over bins of generated share / data share) by the attribute regressor,
    and the share of faces with glasses (p > 0.5) and with a beard (score > 0.15); {} without the regressor."""
    from ganeditor.core.errors import GanEditorError
    from ganeditor.core.model_store import resolve_model
    from ganeditor.pipelines.attributes import load_regressor, score_array

    try:
        reg = load_regressor(resolve_model("portrait-attributes")).float().eval()
    except GanEditorError:
        return {}
    rs, fs = score_array(reg, real), score_array(reg, fake)
    cov = attribute_coverage(rs, fs, reg.attributes, reg.binary)
    col = {a: i for i, a in enumerate(reg.attributes)}
    share = {"glasses": lambda x: x[:, col["glasses"]] > 0.5, "beard": lambda x: x[:, col["beard"]] > 0.15}
    return {"coverage": {a: round(c["coverage"], 3) for a, c in cov.items()},
            "coverage_min": round(min(c["coverage"] for c in cov.values()), 3),
            "shares": {k: {"generated": round(float(f(fs).mean()), 3), "data": round(float(f(rs).mean()), 3)}
                       for k, f in share.items()}}


@torch.no_grad()
def seed_grid(G: nn.Module, seeds: range = range(64), cols: int = 8) -> np.ndarray:
    """uint8 grid of G's images for ``seeds`` (psi 1, noise const), ``cols`` per row, 2 px gaps."""
    from ganeditor.pipelines.generate import seed_to_z
    from ganeditor.pipelines.train.samples import image_grid

    z = torch.from_numpy(np.concatenate([seed_to_z(s, G.z_dim) for s in seeds])).float()
    imgs = torch.cat([G(z[i:i + 32], None, noise_mode="const").float() for i in range(0, len(z), 32)])
    return image_grid([[imgs[r + c:r + c + 1] for c in range(cols)] for r in range(0, len(imgs), cols)])


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


def grid_energy(x01: torch.Tensor) -> float:
    """RMS (grey levels, 0-255) of the period-2 and period-4 pixel grid in an image [1,3,H,W] in [0,1]: the
    pattern transposed convolutions of stride 2 print (Odena et al. 2016).  A sinusoid of amplitude a with
    a 4-px period scores a/sqrt(2); natural content at those frequencies scores a little too."""
    g = x01[0].float().mean(0) * 255
    h, w = g.shape[0] // 4 * 4, g.shape[1] // 4 * 4
    g = (g[:h, :w] - g[:h, :w].mean()).double()
    spec = torch.fft.fft2(g)
    ys, xs = [0, h // 4, h // 2, 3 * h // 4], [0, w // 4, w // 2, 3 * w // 4]
    power = sum(float(spec[u, v].abs() ** 2) for u in ys for v in xs if (u, v) != (0, 0))
    return power ** 0.5 / (h * w)


def _luma(x01: torch.Tensor) -> torch.Tensor:
    return (x01 * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True)


def spurious_lights(out01: torch.Tensor, truth01: torch.Tensor) -> float:
    """% of pixels bright in a translated night (luma > 0.4) farther than 3 px from any bright pixel of the
    true night (windows, lamps, cars, moon: luma > 0.25)."""
    near = F.max_pool2d((_luma(truth01) > 0.25).float(), 7, stride=1, padding=3) > 0
    return float(((_luma(out01) > 0.4) & ~near).float().mean()) * 100


def warm_lights(out01: torch.Tensor) -> float:
    """% of pixels that glow warm (luma > 0.35, red over blue by 0.1): lamps and lit windows at night."""
    r, b = out01[:, 0:1], out01[:, 2:3]
    return float(((_luma(out01) > 0.35) & (r > b + 0.1)).float().mean()) * 100


@torch.no_grad()
def cyclegan_quality(G_A: nn.Module, G_B: nn.Module, count: int = 50, size: int = 256, stats_count: int = 200,
                     task: Task | None = None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of day->night (G_A) and night->day (G_B) on held-out paired scenes, with baselines; the
    day->night outputs' pixel-grid energy (vs the input's and the truth's) and spurious lights."""
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
            g = rows.setdefault(f"{name} grid energy", {"model": [], "input": [], "truth": []})
            for k, v in (("model", out), ("input", src), ("truth", truth)):
                g[k].append(grid_energy(_q8(v)))
        rows.setdefault("day->night lights", {"spurious_pct": [], "model_warm_pct": [], "truth_warm_pct": []})
        lights = rows["day->night lights"]
        out = (G_A(day * 2 - 1).float() + 1) / 2
        lights["spurious_pct"].append(spurious_lights(_q8(out), night))
        lights["model_warm_pct"].append(warm_lights(_q8(out)))
        lights["truth_warm_pct"].append(warm_lights(night))
        task.report(i + 1, count, "held-out pairs")
    return {k: {m: round(float(np.mean(v)), 3) for m, v in r.items()} for k, r in rows.items()}


@torch.no_grad()
def photo_night_lights(G_A: nn.Module, short: int = 256, kind: str = "natural") -> dict[str, float]:
    """Day->night on the held-out real photos (landscapes, plants, animals: no windows, few lamps): % of
    warm glowing pixels in the outputs and the pixel-grid energy of outputs vs inputs."""
    from ganeditor.pipelines.train.data_worlds import PhotoSource

    src = PhotoSource("heldout", short, "center-crop", None, short=short, kind=kind, flip=False, cache_mb=0)
    warm, grid_out, grid_in = [], [], []
    for i in range(len(src)):
        x = ((src.get(i, np.random.default_rng(0)) + 1) / 2)[None]
        out = _q8((G_A(x * 2 - 1).float() + 1) / 2)
        warm.append(warm_lights(out))
        grid_out.append(grid_energy(out))
        grid_in.append(grid_energy(_q8(x)))
    return {"photos": len(src), "warm_pct": round(float(np.mean(warm)), 3), "grid_model": round(float(np.mean(grid_out)), 3),
            "grid_input": round(float(np.mean(grid_in)), 3)}


# --- SRGAN: held-out photos -------------------------------------------------------------------


@torch.no_grad()
def srgan_quality(net: nn.Module, scale: int = 4, short: int = 768, crop: int = 384, jpeg: int | None = None,
                  task: Task | None = None) -> dict[str, dict[str, float]]:
    """PSNR/SSIM (RGB, 8-bit, ``scale``-px border cropped) of x``scale`` SR vs bicubic on held-out photos.

    Each held-out natural photo is resized to a short side of ``short`` px (as in training), its
    central ``crop`` x ``crop`` region downscaled by anti-aliased bicubic, then upscaled back.  With
    ``jpeg`` the small image is saved as a JPEG of that quality first (a small JPEG photo).
    """
    from ganeditor.pipelines.train.data_worlds import PhotoSource
    from ganeditor.pipelines.train.degrade import bicubic_down, jpeg as jpeg_round_trip

    task = task or null_task()
    src = PhotoSource("heldout", crop, "center-crop", None, short=short, flip=False, cache_mb=0)
    rows: dict[str, dict[str, list[float]]] = {"model": {"psnr": [], "ssim": []}, "bicubic": {"psnr": [], "ssim": []}}
    for i in range(len(src)):
        hr = ((src.get(i, np.random.default_rng(0)) + 1) / 2)[None]
        hr = (hr * 255).round() / 255
        lr = (bicubic_down(hr, scale) * 255).round() / 255
        if jpeg is not None:
            lr = jpeg_round_trip(lr, jpeg)
        outs = {"model": net(lr).float(), "bicubic": F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)}
        for k, v in outs.items():
            v = (v.clamp(0, 1) * 255).round() / 255
            rows[k]["psnr"].append(psnr(v, hr, crop=scale))
            rows[k]["ssim"].append(ssim(v, hr, crop=scale))
        task.report(i + 1, len(src), "held-out photos")
    out = {k: {m: round(float(np.mean(v)), 3) for m, v in r.items()} for k, r in rows.items()}
    out["images"] = {"count": len(src)}
    return out


@torch.no_grad()
def daynight_grid(G_A: nn.Module, scenes: int = 3, photos: int = 3, size: int = 256) -> np.ndarray:
    """uint8 grid: rows of (day input, translated night, true night) for held-out paired scenes, then
    (photo, translated night) for held-out real photos when the photo cache is there."""
    from ganeditor.core.errors import GanEditorError
    from ganeditor.pipelines.train.data_worlds import PhotoSource
    from ganeditor.pipelines.train.samples import image_grid
    from ganeditor.worlds.datasets import PairedSceneDataset

    pairs = PairedSceneDataset(scenes, size)
    rows = []
    for i in range(scenes):
        day, night = (t[None] for t in pairs[i])
        rows.append([day, G_A(day).float(), night])
    try:
        src = PhotoSource("heldout", size, "center-crop", None, short=size, flip=False, cache_mb=0)
        for i in range(min(photos, len(src))):
            x = src.get(i, np.random.default_rng(0))[None]
            rows.append([x, G_A(x).float(), torch.ones_like(x)])
    except GanEditorError:
        pass
    return image_grid(rows)
