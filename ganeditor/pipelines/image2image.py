"""Image-to-image pipelines: translate (CycleGAN-style generators) and upscale (SR networks), for
one image or a whole folder, with each model family's upstream pixel conventions.

* translate: RGB -> (x/255 - 0.5) / 0.5 -> net -> ((y + 1) / 2 * 255) truncated (junyanz
  ``tensor2im``).  Sizes are kept: the image is reflect-padded to a multiple of 4 and cropped
  back (upstream's ``--preprocess none`` resizes to a multiple of 4 instead).  Alpha is kept as is.
  Instance-norm generators are tiled exactly (whole-image statistics; see core.tiling_norm).
* upscale: RGB / 255 -> net -> clamp(0, 1) * 255 rounded (BasicSR / Real-ESRGAN).  Exact by
  default: RRDBNet, MSRResNet and SRVGG are streamed in row bands (core.tiling_sr), other SR nets get tiles
  with their whole receptive field as context; an explicit ``tile_pad`` gives RealESRGANer-style
  approximate tiles (feathered seams).  ``outscale`` other than the net's scale resizes the result
  with Lanczos (as ``RealESRGANer``, which uses OpenCV's Lanczos4).  Alpha is resized with Lanczos
  rather than run through the network (Real-ESRGAN's default runs it through the net, which doubles the time).
* 16-bit images stay 16-bit; gray images are run as RGB and converted back.
* Both take the same ``Image2ImageOptions`` (tile, tile_pad, pre_pad, outscale, fast) and any network
  declaring ``archs.image2image_api.ImageToImageNet``; ``image_to_image`` serves every such network
  (restoration too), ``tile_options`` turns the declared facts into the tiled engine's options.
* fast mode: bf16 autocast + channels_last on CPUs with native bf16 (AVX-512 BF16 / AMX), fp16
  autocast on CUDA; exact fp32 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.core.device import cpu_has_bf16
from ganeditor.core.errors import Cancelled, CheckpointError, GanEditorError
from ganeditor.core.imageio import (CYCLEGAN_CONVENTION, DEFAULT_MAX_PIXELS, SR_CONVENTION, WRITE_FORMATS,
                                    LoadedImage, PixelConvention, read_image, resize_lanczos, write_image)
from ganeditor.core.progress import Task, null_task
from ganeditor.core.provenance import Step, edited
from ganeditor.core.tiling import run_tiled
from ganeditor.core.tiling_common import TileOptions
from ganeditor.formats import Checkpoint

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
PIXEL_CONVENTIONS: dict[str, PixelConvention] = {"tanh": CYCLEGAN_CONVENTION, "unit": SR_CONVENTION}


@dataclass(frozen=True, kw_only=True)
class Image2ImageOptions:
    """What a person may choose for translate / upscale / restore (the network declares the rest)."""

    tile: int | None = None  # tile side (or band height) in input pixels; None = from free memory
    tile_pad: int | None = None  # context around each tile; None = exact (see the module docstring); 10 = RealESRGANer
    pre_pad: int = 0  # reflect padding at bottom/right before the network (RealESRGANer's pre_pad; its CLI: 0)
    outscale: float | None = None  # final scale; None = the network's (others: Lanczos resize)
    fast: bool = False  # bf16/fp16 autocast + channels_last (small drift)

    def __post_init__(self) -> None:
        if self.outscale is not None and self.outscale <= 0:
            raise GanEditorError(f"--outscale must be positive, got {self.outscale:g}")
        if self.tile is not None and self.tile <= 0:
            raise GanEditorError(f"--tile must be positive, got {self.tile}")


def _arch(net: nn.Module) -> str:
    return getattr(net, "arch_name", type(net).__name__)


def check_model(ckpt: Checkpoint, want: str) -> ImageToImageNet:
    """The checkpoint's network if it is an image-to-image model of kind ``want``, else CheckpointError."""
    net = ckpt.primary
    arch = _arch(net)
    if not isinstance(net, ImageToImageNet) or net.scale is None or net.io_convention not in PIXEL_CONVENTIONS:
        raise CheckpointError(f"not an image-to-image model (it holds a {arch} network)", ckpt.path)
    if want == "translate" and net.io_convention != "tanh":
        raise CheckpointError(f"not an image translation model ({arch} is a x{net.scale} upscaler: use 'ganeditor upscale')",
                              ckpt.path)
    if getattr(net, "restore_stage", "") in ("faces", "inpaint"):  # e.g. GFPGAN or LaMa read through spandrel
        raise CheckpointError(f"not an image-to-image model for whole photos ({arch} restores {net.restore_stage}: "
                              f"use 'ganeditor restore --model {net.restore_stage}=...')", ckpt.path)
    if want == "upscale" and net.io_convention == "tanh":
        raise CheckpointError(f"not an upscaling model ({arch} translates images: use 'ganeditor translate')", ckpt.path)
    return net


def _device_of(net: nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _fast_settings(net: nn.Module, fast: bool) -> tuple[torch.dtype | None, bool, list[str]]:
    """(autocast dtype, channels_last, notes) for the fast mode on the net's device."""
    if not fast:
        return None, False, []
    dev = _device_of(net)
    if dev.type == "cuda":
        return torch.float16, True, []
    if dev.type == "cpu" and cpu_has_bf16():
        net.to(memory_format=torch.channels_last)
        return torch.bfloat16, True, []
    return None, False, ["fast mode needs a CPU with native bf16 or a GPU: ran in exact fp32"]


def tile_options(net: ImageToImageNet, options: Image2ImageOptions) -> tuple[TileOptions, list[str]]:
    """The tiled engine's options for ``net`` from its declared facts and the person's choices (+ notes)."""
    autocast, channels_last, notes = _fast_settings(net, options.fast)
    opts = TileOptions(tile=options.tile, tile_pad=options.tile_pad, pre_pad=options.pre_pad, mod=net.size_multiple,
                       global_stats=net.needs_global_stats, device=_device_of(net), autocast=autocast,
                       channels_last=channels_last, conv=PIXEL_CONVENTIONS[net.io_convention])
    return opts, notes


SMALL_SIDE = 64  # images with a side under this may be too small for a network: failures are explained


def _explain_small(run: Callable, pixels: np.ndarray) -> np.ndarray:
    """``run(pixels)``; when a small image fails inside the network, find the smallest square size
    that works (gray probes) and say so: "too small for this model, at least NxN"."""
    h, w = pixels.shape[:2]
    try:
        return run(pixels)
    except (RuntimeError, ValueError, IndexError):
        if min(h, w) >= SMALL_SIDE:
            raise
        for s in range(2, SMALL_SIDE + 1):
            try:
                run(np.full((s, s, pixels.shape[2]), pixels.max() // 2, pixels.dtype))
            except (RuntimeError, ValueError, IndexError):
                continue
            if h < s or w < s:
                raise GanEditorError(f"image is {w}x{h}: too small for this model, at least {s}x{s}") from None
            break
        raise


def image_to_image(net: ImageToImageNet, image: LoadedImage, options: Image2ImageOptions | None = None, *,
                    task: Task | None = None) -> LoadedImage:
    """Any image-to-image network (already checked) over an image at full size, alpha resized alongside."""
    options = options or Image2ImageOptions()
    opts, notes = tile_options(net, options)
    scale = int(net.scale)
    h, w = image.pixels.shape[:2]
    out = _explain_small(lambda px: run_tiled(net, px, scale, opts, task=task or null_task()), image.pixels)
    size = (w * scale, h * scale)
    if options.outscale is not None and options.outscale != scale:
        size = (max(1, int(w * options.outscale)), max(1, int(h * options.outscale)))
        out = resize_lanczos(out, size)
    alpha = image.alpha
    if alpha is not None and alpha.shape[::-1] != size:
        alpha = resize_lanczos(alpha, size)
    return LoadedImage(out, alpha, image.bit_depth, image.icc_profile, image.exif, image.notes + notes)


def translate(ckpt: Checkpoint, image: LoadedImage, options: Image2ImageOptions | None = None, *,
              task: Task | None = None) -> LoadedImage:
    """Translate an image with a CycleGAN-style generator at full size."""
    return image_to_image(check_model(ckpt, "translate"), image, options, task=task)


def upscale(ckpt: Checkpoint, image: LoadedImage, options: Image2ImageOptions | None = None, *,
            task: Task | None = None) -> LoadedImage:
    """Upscale an image with an SR network (ESRGAN / Real-ESRGAN / SRVGG / SRResNet)."""
    return image_to_image(check_model(ckpt, "upscale"), image, options, task=task)


# ------------------------------------------------------------------------------------------ batch


@dataclass
class BatchReport:
    """What a batch did: files written, files that failed with their one-line reasons, notes."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_batch(inp: str | Path, out: str | Path) -> tuple[list[Path], list[Path]]:
    """Input and output paths: a file -> a file (or into a folder), a folder -> a folder (created)."""
    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise GanEditorError("input not found", inp)
    if inp.is_dir():
        srcs = sorted(p for p in inp.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not srcs:
            raise GanEditorError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder", inp)
        if out.exists() and not out.is_dir():
            raise GanEditorError("output must be a folder when the input is a folder", out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GanEditorError(f"cannot create output folder ({e.strerror})", out) from None
        return srcs, [out / (p.name if p.suffix.lower() in WRITE_FORMATS else p.stem + ".png") for p in srcs]
    dst = out / (inp.name if inp.suffix.lower() in WRITE_FORMATS else inp.stem + ".png") if out.is_dir() else out
    if dst.suffix.lower() not in WRITE_FORMATS:
        raise GanEditorError(f"unsupported output format {dst.suffix!r} (use .png, .jpg, .tif or .webp)", dst)
    return [inp], [dst]


def run_batch(
    inputs: list[Path],
    outputs: list[Path],
    fn: Callable[[LoadedImage, Task], LoadedImage],
    task: Task | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,  # decompression-bomb guard for each input
    step: Step | tuple[Step, ...] | None = None,  # the generative operation(s), recorded in each output (core.provenance)
) -> BatchReport:
    """Apply ``fn`` to each input and write each output atomically; per-file errors are collected,
    cancellation stops at once and leaves no partial file."""
    assert len(inputs) == len(outputs)
    task = task or null_task()
    report = BatchReport()
    steps = () if step is None else (step if isinstance(step, tuple) else (step,))
    n = len(inputs)
    for k, (src, dst) in enumerate(zip(inputs, outputs)):
        task.report(k, n, src.name)
        try:
            img = read_image(src, max_pixels)
            res = fn(img, task.sub(k, 1, n))
            notes = write_image(dst, res.pixels, res.alpha, res.bit_depth, res.icc_profile, res.exif, xmp=img.xmp,
                                provenance=edited(*steps, source=src) if steps else None)  # fmt: skip
            report.written.append(dst)
            report.notes += [f"{src.name}: {m}" for m in res.notes + notes]
        except Cancelled:
            raise
        except GanEditorError as e:
            msg = " ".join(str(e).split())
            report.failed.append((src, msg if e.path is not None else f"{src}: {msg}"))
        except (OSError, ValueError, RuntimeError, MemoryError) as e:
            report.failed.append((src, f"{src}: {' '.join(str(e).split()) or type(e).__name__}"))
    task.report(n, n, "done")
    return report
