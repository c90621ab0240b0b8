"""Making damaged inputs from clean photos, per sample and deterministic (every random draw comes
from the ``np.random.Generator`` passed in, so a seed means one degradation).

Super-resolution:
  * ``bicubic_down``: anti-aliased bicubic downscale (the classic SR benchmark degradation).
  * ``second_order``: the high-order degradation model of Real-ESRGAN (Wang et al. 2021), with the
    probabilities and ranges of its ``train_realesrnet_x4plus.yml``: twice (blur with a random
    kernel -- isotropic/anisotropic Gaussian, generalised Gaussian, plateau, or a sinc low-pass --,
    resize up/down/keep with a random filter, Gaussian or Poisson noise in colour or gray, JPEG),
    then the final resize to the target size with a sinc filter and JPEG, in random order.
    ``realistic_down`` is it with a uint8 interface; ``degrade_batch`` maps a training batch.

Old photographs (``old_photo``, with ``OldPhotoConfig``): the clean photo goes through what a
print and its scan do to it, in this order -- black-and-white (luma) for a share of samples, film
grain, halftone screening (rare), toning (sepia and other tones) or a dye-fading colour cast,
fading (contrast loss, lifted blacks, a paper tone), paper texture and vignetting, dust and
scratches (drawn anti-aliased; their visible coverage is the ground-truth mask), then a mild
second-order scan (blur, resize, noise, JPEG at scale 1).  The result carries the degraded image,
the restoration target (the clean photo, or its luma for black-and-white samples) and the mask.
The effects are also usable one by one (``draw_damage``, ``film_grain``, ``halftone``...).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganeditor.pipelines.train.degrade_damage import blur, draw_damage, paper_texture

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as the tiler's gray conversion

__all__ = ["SecondOrderConfig", "OldPhotoConfig", "OldPhoto", "bicubic_down", "second_order", "realistic_down",
           "degrade_batch", "old_photo", "draw_damage", "film_grain", "halftone", "tone", "fade"]

from ganeditor.core.imageio_open import open_image


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """[N,C,H,W] in [0,1] -> [N,C,H/scale,W/scale], anti-aliased bicubic, clamped."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


# ------------------------------------------------------------------------------ blur kernels


def _grid(k: int) -> np.ndarray:
    ax = np.arange(k, dtype=np.float64) - k // 2
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], -1)  # [k, k, 2] (x, y)


def anisotropic_kernel(k: int, sx: float, sy: float, theta: float, beta: float = 1.0, shape: str = "gaussian") -> np.ndarray:
    """A k x k blur kernel (sums to 1): ``gaussian`` exp(-q/2), ``generalized`` exp(-q^beta/2),
    ``plateau`` 1/(1+q^beta), with q the Mahalanobis distance of a covariance of std (sx, sy)
    rotated by theta."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    inv = np.linalg.inv(rot @ np.diag([sx * sx, sy * sy]) @ rot.T)
    g = _grid(k)
    q = np.einsum("...i,ij,...j->...", g, inv, g)
    if shape == "gaussian":
        ker = np.exp(-0.5 * q)
    elif shape == "generalized":
        ker = np.exp(-0.5 * np.power(q, beta))
    elif shape == "plateau":
        ker = 1.0 / (1.0 + np.power(q, beta))
    else:
        raise ValueError(f"unknown kernel shape {shape!r}")
    return (ker / ker.sum()).astype(np.float32)


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel J1 by its integral (1/pi) * int_0^pi cos(t - x sin t) dt (trapezoid, 128 steps)."""
    t = np.linspace(0.0, math.pi, 129)
    vals = np.cos(t[None, :] - x.reshape(-1, 1) * np.sin(t)[None, :])
    return (np.trapezoid(vals, t, axis=1) / math.pi).reshape(x.shape)


def sinc_kernel(k: int, omega: float) -> np.ndarray:
    """A k x k circular low-pass (2-D sinc) kernel with cut-off ``omega`` (radians), sums to 1."""
    r = np.hypot(*np.moveaxis(_grid(k), -1, 0))
    safe = np.where(r == 0, 1.0, r)
    ker = np.where(r == 0, omega * omega / (4 * math.pi), omega * _bessel_j1(omega * safe) / (2 * math.pi * safe))
    return (ker / ker.sum()).astype(np.float32)


def _conv(x: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Depthwise 2-D correlation of [N,C,H,W] with one k x k kernel, reflect padding (replicate on tiny
    images); computed with FFTs (exact up to float rounding, ~10x faster than conv2d for 21x21 kernels)."""
    k = kernel.shape[0]
    p = k // 2
    mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
    xp = F.pad(x.float(), (p, p, p, p), mode=mode)
    size = tuple(xp.shape[-2:])
    w = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1])).float()  # convolution = correlation with the flip
    full = torch.fft.irfft2(torch.fft.rfft2(xp, s=size) * torch.fft.rfft2(w, s=size), s=size)
    h, wd = x.shape[-2:]
    return full[..., k - 1 : k - 1 + h, k - 1 : k - 1 + wd].to(x.dtype)


# ------------------------------------------------------------------------- second-order model


@dataclass(frozen=True)
class SecondOrderConfig:
    """Probabilities and ranges of the two degradation rounds (Real-ESRGAN x4plus defaults)."""

    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)  # odd sizes drawn uniformly
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # iso, aniso, gen. iso/aniso, plateau iso/aniso
    sinc_prob: float = 0.1  # a sinc kernel instead (first round)
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag: tuple[float, float] = (0.5, 4.0)  # generalised-Gaussian shape
    betap: tuple[float, float] = (1.0, 2.0)  # plateau shape
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson noise
    noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma in 8-bit levels
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)
    second_blur_prob: float = 0.8
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (30.0, 95.0)
    final_sinc_prob: float = 0.8


REAL_ESRGAN = SecondOrderConfig()
# A scan of a print: milder than Real-ESRGAN's web-image model (no 0.15x resizes, less noise).
SCAN = SecondOrderConfig(blur_sigma=(0.2, 1.6), resize_prob=(0.2, 0.5, 0.3), resize_range=(0.5, 1.3),
                         noise_range=(1.0, 12.0), poisson_scale_range=(0.05, 1.0), jpeg_range=(50.0, 95.0),
                         second_blur_prob=0.4, blur_sigma2=(0.2, 1.0), resize_prob2=(0.2, 0.3, 0.5),
                         resize_range2=(0.7, 1.2), noise_range2=(1.0, 8.0), poisson_scale_range2=(0.05, 0.6),
                         jpeg_range2=(60.0, 95.0), final_sinc_prob=0.3)  # fmt: skip


def random_kernel(rng: np.random.Generator, cfg: SecondOrderConfig, second: bool = False) -> np.ndarray:
    """One blur kernel drawn as Real-ESRGAN draws them (padded to the largest size)."""
    k = int(rng.choice(cfg.kernel_sizes))
    kmax = max(cfg.kernel_sizes)
    if rng.random() < (cfg.sinc_prob2 if second else cfg.sinc_prob):
        omega = rng.uniform(math.pi / 3, math.pi) if k < 13 else rng.uniform(math.pi / 5, math.pi)
        ker = sinc_kernel(k, omega)
    else:
        lo, hi = cfg.blur_sigma2 if second else cfg.blur_sigma
        kind = int(rng.choice(6, p=np.asarray(cfg.kernel_prob) / sum(cfg.kernel_prob)))
        shape = ("gaussian", "generalized", "plateau")[kind // 2]
        iso = kind % 2 == 0
        sx = rng.uniform(lo, hi)
        sy, theta = (sx, 0.0) if iso else (rng.uniform(lo, hi), rng.uniform(-math.pi, math.pi))
        if shape == "generalized":
            beta = rng.uniform(cfg.betag[0], 1.0) if rng.random() < 0.5 else rng.uniform(1.0, cfg.betag[1])
        else:
            beta = rng.uniform(*cfg.betap)
        ker = anisotropic_kernel(k, sx, sy, theta, beta, shape)
    p = (kmax - k) // 2
    return np.pad(ker, p)


def _resize(x: torch.Tensor, size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    mode = ["area", "bilinear", "bicubic"][int(rng.integers(3))]
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area" and (size[0] > x.shape[-2] or size[1] > x.shape[-1]):
        mode = "bilinear"  # 'area' only averages; it cannot enlarge smoothly
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **kw)


def _noise(x: torch.Tensor, rng: np.random.Generator, gauss_prob: float, sigma_range: tuple[float, float],
           poisson_range: tuple[float, float], gray_prob: float) -> torch.Tensor:
    gray = rng.random() < gray_prob
    shape = (1, 1) + tuple(x.shape[-2:]) if gray else tuple(x.shape)
    if rng.random() < gauss_prob:
        n = rng.standard_normal(shape).astype(np.float32) * (rng.uniform(*sigma_range) / 255.0)
        return x + torch.from_numpy(n).to(x)
    scale = rng.uniform(*poisson_range)
    base = (x * torch.from_numpy(LUMA).to(x).view(1, 3, 1, 1)).sum(1, keepdim=True) if gray else x
    lam = base.clamp(0, 1).double().cpu().numpy() * 255.0
    noisy = rng.poisson(lam).astype(np.float32) / 255.0
    return x + (torch.from_numpy(noisy).to(x) - base.clamp(0, 1)) * scale


def jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """JPEG round trip of [1,3,H,W] in [0,1] at ``quality`` (Pillow, 4:2:0 as most cameras and scanners)."""
    a = (x[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = np.asarray(open_image(buf).convert("RGB"), np.float32) / 255.0
    return torch.from_numpy(out).permute(2, 0, 1)[None].to(x)


def _round(x: torch.Tensor, rng: np.random.Generator, cfg: SecondOrderConfig, second: bool,
           size: tuple[int, int]) -> torch.Tensor:
    """One blur -> resize -> noise -> JPEG round; ``size`` is the reference the resize scales."""
    if not second or rng.random() < cfg.second_blur_prob:
        x = _conv(x, random_kernel(rng, cfg, second))
    up, down, _ = cfg.resize_prob2 if second else cfg.resize_prob
    lo, hi = cfg.resize_range2 if second else cfg.resize_range
    u = rng.random()
    f = rng.uniform(1.0, hi) if u < up else (rng.uniform(lo, 1.0) if u < up + down else 1.0)
    x = _resize(x, (int(size[0] * f), int(size[1] * f)), rng)
    if second:
        x = _noise(x, rng, cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2, cfg.gray_noise_prob2)
    else:
        x = _noise(x, rng, cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range, cfg.gray_noise_prob)
    x = x.clamp(0, 1)
    return x if second else jpeg(x, rng.uniform(*cfg.jpeg_range))


def second_order(hr: torch.Tensor, scale: int, rng: np.random.Generator,
                 cfg: SecondOrderConfig = REAL_ESRGAN) -> torch.Tensor:
    """Real-ESRGAN's second-order degradation of [1,3,H,W] in [0,1] -> [1,3,H/scale,W/scale], 8-bit values."""
    assert hr.ndim == 4 and hr.shape[:2] == (1, 3), hr.shape
    h, w = hr.shape[-2:]
    out_size = (max(1, h // scale), max(1, w // scale))
    x = _round(hr.float(), rng, cfg, False, (h, w))
    x = _round(x, rng, cfg, True, out_size)
    final = sinc_kernel(21, rng.uniform(math.pi / 3, math.pi)) if rng.random() < cfg.final_sinc_prob else None
    q2 = rng.uniform(*cfg.jpeg_range2)
    if rng.random() < 0.5:  # resize back + sinc, then JPEG
        x = _resize(x, out_size, rng)
        x = jpeg((_conv(x, final) if final is not None else x).clamp(0, 1), q2)
    else:  # JPEG, then resize back + sinc
        x = _resize(jpeg(x.clamp(0, 1), q2), out_size, rng)
        x = _conv(x, final) if final is not None else x
    return ((x.clamp(0, 1) * 255).round() / 255).to(hr.dtype)


def realistic_down(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """HxWx3 uint8 -> (H/scale)x(W/scale)x3 uint8 through Real-ESRGAN's second-order degradation."""
    x = torch.from_numpy(hr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    y = second_order(x, scale, rng)
    return (y[0].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()


def degrade_batch(hr: torch.Tensor, scale: int, mode: str, rngs: list[np.random.Generator]) -> torch.Tensor:
    """[N,3,H,W] in [0,1] -> low-resolution batch, by ``mode`` ('bicubic' | 'realistic')."""
    if mode == "bicubic":
        return bicubic_down(hr, scale)
    if mode != "realistic":
        raise ValueError(f"unknown degradation {mode!r}")
    out = [second_order(x[None].cpu().float().clamp(0, 1), scale, rng)[0] for x, rng in zip(hr, rngs)]
    return torch.stack(out).to(hr.device, hr.dtype)


# ------------------------------------------------------------------------------ print effects


def luma(rgb: np.ndarray) -> np.ndarray:
    """[H,W,3] float -> [H,W] BT.601 luma."""
    return rgb @ LUMA


def film_grain(x: np.ndarray, rng: np.random.Generator, amount: float, size: float, color: float = 0.15) -> np.ndarray:
    """Silver-halide-like grain: blurred Gaussian noise, strongest in the mid-tones; ``color`` of it per channel."""
    h, w, _ = x.shape
    n = blur(rng.standard_normal((h, w)).astype(np.float32), size)
    n /= max(float(n.std()), 1e-6)
    nc = blur(rng.standard_normal((h, w, 3)).astype(np.float32), size)
    nc /= max(float(nc.std()), 1e-6)
    mid = np.sqrt(np.clip(x * (1 - x), 0, 0.25)) * 2
    return np.clip(x + amount * mid * ((1 - color) * n[..., None] + color * nc), 0, 1)


def halftone(x: np.ndarray, period: float, angle: float, softness: float = 0.15) -> np.ndarray:
    """A printed dot screen over the luma (newspaper/book reproductions); returns gray RGB."""
    h, w, _ = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u, v = (c * xx + s * yy) * (2 * math.pi / period), (-s * xx + c * yy) * (2 * math.pi / period)
    screen = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # [0, 1]
    lum = luma(x)
    dots = np.clip((lum - screen) / softness + 0.5, 0, 1)
    out = blur(dots, period * 0.25)
    return np.repeat(out[..., None], 3, axis=2)


def tone(x: np.ndarray, shadow: np.ndarray, highlight: np.ndarray, amount: float) -> np.ndarray:
    """Map luma onto a shadow->highlight colour ramp (sepia, selenium, cyanotype...) by ``amount``."""
    lum = luma(x)[..., None]
    toned = shadow * (1 - lum) + highlight * lum
    return np.clip(x * (1 - amount) + toned * amount, 0, 1)


def fade(x: np.ndarray, contrast: float, lift: float, paper: np.ndarray) -> np.ndarray:
    """Contrast loss towards the paper tone, and lifted blacks."""
    return np.clip(x * (1 - contrast) + paper * contrast, 0, 1) * (1 - lift) + lift * paper


def colour_cast(x: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Uneven dye fading of colour prints: per-channel gain and gamma (cyan fades first: reddish casts)."""
    gains = 1 + amount * np.array([rng.uniform(0.0, 0.2), rng.uniform(-0.12, 0.08), rng.uniform(-0.3, 0.05)])
    gammas = 1 + amount * rng.uniform(-0.25, 0.25, 3)
    return np.clip(np.power(np.clip(x, 0, 1), gammas.astype(np.float32)) * gains.astype(np.float32), 0, 1)


# ---------------------------------------------------------------------------- old photographs


@dataclass(frozen=True)
class OldPhotoConfig:
    """What ``old_photo`` draws; probabilities per sample, ranges uniform (counts per megapixel)."""

    gray_prob: float = 0.5  # black-and-white print (the target is then the clean luma)
    tone_prob: float = 0.7  # a toned b/w print (sepia, warm, selenium, cyanotype)
    cast_prob: float = 0.7  # a colour print with a dye-fading cast
    grain_prob: float = 0.7
    grain: tuple[float, float] = (0.01, 0.07)  # grain amplitude
    grain_size: tuple[float, float] = (0.4, 1.3)  # grain blur sigma in pixels
    halftone_prob: float = 0.05
    fade_contrast: tuple[float, float] = (0.0, 0.45)
    fade_lift: tuple[float, float] = (0.0, 0.15)
    paper_prob: float = 0.6
    paper: tuple[float, float] = (0.01, 0.08)  # paper texture amplitude
    vignette: tuple[float, float] = (0.0, 0.35)
    damage_prob: float = 0.85  # draw dust and scratches at all
    scratches_per_mp: tuple[float, float] = (5.0, 120.0)
    dust_per_mp: tuple[float, float] = (20.0, 900.0)
    damage_size: tuple[float, float] = (0.7, 2.5)  # widths/radii factor (scans of different resolution)
    scan: SecondOrderConfig | None = SCAN  # the scan's blur/resize/noise/JPEG (None: no scan)
    scan_prob: float = 0.9
    level: float = 1.0  # scales every amplitude (0: only the b/w conversion)

    def without_damage(self) -> "OldPhotoConfig":
        """The same degradations without dust and scratches."""
        return replace(self, damage_prob=0.0)


OLD_PHOTO = OldPhotoConfig()

_TONES = (  # (shadow, highlight) colour ramps of toned prints
    ((0.22, 0.13, 0.06), (1.00, 0.93, 0.78)),  # sepia
    ((0.18, 0.12, 0.09), (0.98, 0.95, 0.88)),  # warm-tone silver
    ((0.15, 0.10, 0.14), (0.96, 0.93, 0.94)),  # selenium
    ((0.03, 0.10, 0.25), (0.85, 0.92, 1.00)),  # cyanotype
)
_PAPERS = ((1.0, 0.97, 0.88), (0.97, 0.93, 0.83), (0.93, 0.92, 0.88), (1.0, 1.0, 0.97))


@dataclass
class OldPhoto:
    """One degraded sample: ``image`` [H,W,3] float in [0,1] and its restoration ``target`` (same
    shape; the luma replicated for b/w samples), the damage ``mask`` [H,W] bool (dust and scratches),
    and what was drawn."""

    image: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    gray: bool
    effects: list[str]


def old_photo(clean: np.ndarray, rng: np.random.Generator, cfg: OldPhotoConfig = OLD_PHOTO) -> OldPhoto:
    """Turn a clean photo (HxWx3 uint8, or float in [0,1]) into a scanned old print (see the module docstring)."""
    x = clean.astype(np.float32) / 255.0 if clean.dtype == np.uint8 else clean.astype(np.float32)
    h, w, _ = x.shape
    lv = cfg.level
    effects: list[str] = []
    gray = rng.random() < cfg.gray_prob
    if gray:
        x = np.repeat(luma(x)[..., None], 3, axis=2)
        effects.append("b/w")
    target = x.copy()
    if rng.random() < cfg.grain_prob:
        x = film_grain(x, rng, lv * rng.uniform(*cfg.grain), rng.uniform(*cfg.grain_size), 0.0 if gray else 0.2)
        effects.append("grain")
    if rng.random() < cfg.halftone_prob * lv:
        x = halftone(x, rng.uniform(3.0, 6.0), rng.uniform(0, math.pi / 2))
        effects.append("halftone")
    if gray and rng.random() < cfg.tone_prob:
        sh, hi = _TONES[int(rng.integers(len(_TONES)))]
        x = tone(x, np.array(sh, np.float32), np.array(hi, np.float32), min(1.0, lv * rng.uniform(0.4, 1.0)))
        effects.append("toned")
    elif not gray and rng.random() < cfg.cast_prob:
        x = colour_cast(x, rng, lv * rng.uniform(0.3, 1.0))
        effects.append("colour cast")
    paper = np.array(_PAPERS[int(rng.integers(len(_PAPERS)))], np.float32)
    contrast, lift = lv * rng.uniform(*cfg.fade_contrast), lv * rng.uniform(*cfg.fade_lift)
    if contrast + lift > 0.02:
        x = fade(x, contrast, lift, paper)
        effects.append("faded")
    if rng.random() < cfg.paper_prob:
        x = paper_texture(x, rng, lv * rng.uniform(*cfg.paper), lv * rng.uniform(*cfg.vignette))
        effects.append("paper")
    mask = np.zeros((h, w), bool)
    if rng.random() < cfg.damage_prob and lv > 0:
        mp = h * w / 1e6
        n_scr = int(rng.poisson(mp * lv * rng.uniform(*cfg.scratches_per_mp)))
        n_dust = int(rng.poisson(mp * lv * rng.uniform(*cfg.dust_per_mp)))
        x, mask = draw_damage(x, rng, n_scr, n_dust, rng.uniform(*cfg.damage_size))
        effects.append(f"{n_scr} scratches, {n_dust} dust")
    if cfg.scan is not None and rng.random() < cfg.scan_prob and lv > 0:
        t = second_order(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None], 1, rng, cfg.scan)
        x = t[0].permute(1, 2, 0).numpy()
        effects.append("scan")
    return OldPhoto(np.clip(x, 0, 1), target, mask, gray, effects)
