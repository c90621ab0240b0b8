"""Training data: image folders and a stateless, resumable sample order.

The order of samples is a pure function of (seed, step): epoch ``e`` is a permutation drawn from
``seed`` and ``e``; the global batch of step ``s`` is positions ``[s*B, (s+1)*B)`` of the
concatenated epochs, and process ``r`` of ``W`` takes every W-th of them.  Augmentation draws
from a generator seeded by (seed, step, position).  So a resumed run sees exactly the data the
uninterrupted run would have seen, with no data-loader state to save.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from PIL import Image

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio_open import open_image

if TYPE_CHECKING:
    from ganeditor.pipelines.train.data_worlds import RenderedSource

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); error if missing or empty."""
    folder = Path(folder)
    if not folder.exists():
        raise GanEditorError("data folder not found", folder)
    if not folder.is_dir():
        raise GanEditorError("expected a folder of images", folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise GanEditorError(f"no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})", folder)
    return files


def batch_positions(step: int, batch: int, rank: int = 0, world: int = 1) -> list[int]:
    """Global sample positions this process uses at ``step`` (global batch ``batch``)."""
    if batch % world:
        raise GanEditorError(f"batch {batch} is not divisible by the number of processes {world}")
    start = step * batch
    return list(range(start + rank, start + batch, world))


def position_to_index(position: int, n: int, seed: int) -> int:
    """Dataset index at a global ``position`` of the endless shuffled stream."""
    epoch, offset = divmod(position, n)
    return int(_epoch_permutation(n, seed, epoch)[offset])


@lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """Order of epoch ``epoch`` (cached: large procedural datasets would redraw it per sample)."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    perm.flags.writeable = False
    return perm


def sample_rng(seed: int, position: int, salt: int = 0) -> np.random.Generator:
    """Generator for augmenting the sample at ``position`` (independent of global RNG state)."""
    return np.random.default_rng([seed, position, salt, 7919])


class ImageFolder:
    """Decoded RGB images of a folder, cropped/resized to ``size`` with light augmentation.

    Unreadable files are skipped and counted (``self.skipped``), never fatal.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int,  # output crop size in pixels
        mode: str = "random-crop",  # random-crop | center-crop | resize
        load_size: int | None = None,  # resize the short side to this before cropping (None: no resize)
        flip: bool = True,  # random horizontal flips
    ):
        self.files = list_images(folder)
        self.size, self.mode, self.load_size, self.flip = size, mode, load_size, flip
        self.skipped: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, path: Path) -> Image.Image | None:
        try:
            with open_image(path) as im:
                im.draft("RGB", (self.size * 2, self.size * 2)) if im.format == "JPEG" else None
                return im.convert("RGB")
        except Exception:
            self.skipped.add(path)
            return None

    def get(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Image ``index`` (or the next readable one) as [3,size,size] float in [-1,1]."""
        for k in range(len(self.files)):
            im = self._decode(self.files[(index + k) % len(self.files)])
            if im is not None:
                return self._augment(im, rng)
        raise GanEditorError("no readable images in the data folder", self.files[0].parent)

    def _augment(self, im: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        s = self.size
        if self.mode == "resize":
            im = _resize_short(im, s)
            left, top = (im.width - s) // 2, (im.height - s) // 2
        else:
            if self.load_size:
                im = _resize_short(im, self.load_size)
            if min(im.size) < s:
                im = _resize_short(im, s)
            if self.mode == "center-crop":
                left, top = (im.width - s) // 2, (im.height - s) // 2
            else:
                left, top = int(rng.integers(0, im.width - s + 1)), int(rng.integers(0, im.height - s + 1))
        im = im.crop((left, top, left + s, top + s))
        a = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
        if self.flip and rng.random() < 0.5:
            a = a[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _resize_short(im: Image.Image, short: int) -> Image.Image:
    w, h = im.size
    r = short / min(w, h)
    return im.resize((max(short, round(w * r)), max(short, round(h * r))), Image.Resampling.BICUBIC)


def make_batch(
    get: Callable[[int, np.random.Generator], torch.Tensor],
    n: int,
    seed: int,
    step: int,
    batch: int,
    rank: int = 0,
    world: int = 1,
    salt: int = 0,
) -> torch.Tensor:
    """Stack this process's samples for ``step`` from a dataset of ``n`` items.

    When ``get`` is a method of a source with ``prefetch`` (the rendered world sources), the batch's
    items are rendered together first.
    """
    positions = batch_positions(step, batch, rank, world)
    indices = [position_to_index(pos, n, seed + salt) for pos in positions]
    prefetch = getattr(getattr(get, "__self__", None), "prefetch", None)
    if prefetch is not None:
        prefetch(indices)
    return torch.stack([get(idx, sample_rng(seed, pos, salt)) for idx, pos in zip(indices, positions)])


def open_source(
    spec: str, size: int, mode: str = "random-crop", load_size: int | None = None
) -> ImageFolder | RenderedSource:
    """A training image source: a folder path, or a ``world:NAME`` / ``photos:SPLIT`` spec (see data_worlds)."""
    from ganeditor.pipelines.train.data_worlds import is_source_spec, open_world_source

    if is_source_spec(str(spec)):
        return open_world_source(str(spec), size, mode, load_size)
    return ImageFolder(spec, size, mode, load_size)


def eval_images(spec: str, n: int, size: int, mode: str = "center-crop", load_size: int | None = None) -> torch.Tensor:
    """Up to ``n`` fixed evaluation images [N,3,size,size] in [-1,1]: items 0..n-1 of the held-out
    counterpart of ``spec`` when it has one (``data_worlds.heldout_spec``), else of ``spec`` itself
    (a folder: its first images), centre-cropped, never flipped."""
    from ganeditor.pipelines.train.data_worlds import heldout_spec, is_source_spec, open_world_source

    held = heldout_spec(str(spec), n)
    if held is not None:
        src = open_world_source(held, size, mode, load_size)
    elif is_source_spec(str(spec)):
        src = open_world_source(str(spec), size, mode, load_size)
    else:
        src = ImageFolder(spec, size, mode, load_size, flip=False)
    n = min(int(n), len(src))
    prefetch = getattr(src, "prefetch", None)
    if prefetch is not None:
        prefetch(range(n))
    was_flip, src.flip = src.flip, False
    try:
        return torch.stack([src.get(i, sample_rng(0, i, 5)) for i in range(n)])
    finally:
        src.flip = was_flip
