"""Training sources that render the procedural worlds, or read the gathered real photos, on the fly.

A data spec names a source instead of a folder:

```
world:portraits          procedural portraits, item i = portrait seed offset + i      (n=2**20)
world:scenes-day         day scenes, item i = scene seed 2*(offset+i)      (even seeds, n=1000)
world:scenes-night       night scenes, item i = scene seed 2*(offset+i)+1  (odd seeds: unpaired)
                         (``countryside=0.25``: that share of the scenes without buildings, lamps or cars)
world:synthetic-night    gathered real daytime photos turned night (worlds.synthetic_night)
photos:train             the gathered real photos, training split   (photos:heldout: held out)
```

Options follow a ``?``: ``world:portraits?n=50000&offset=0``, ``photos:train?short=768&scales=1,0.5``
(``short``: the photo's short side before cropping, never upscaled; ``scales``: extra downscaled
copies, each its own item; ``kind``: natural|face|all), ``cache_mb`` (memory budget of the
rendered-item cache, default 512; 32 when the whole set cannot fit).  Every item is a pure function
of its index, so the stateless sample order of ``data.py`` stays exactly resumable.  Held-out
portraits for evaluation use seeds from ``HELDOUT_PORTRAIT_SEED`` on; held-out scenes are
``worlds.datasets.PairedSceneDataset``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence
from urllib.parse import parse_qsl

import numpy as np
import torch
from PIL import Image

from ganeditor.core.errors import GanEditorError
from ganeditor.core.imageio_open import open_image

HELDOUT_PORTRAIT_SEED = 1 << 30  # portraits from this seed on are never used for training
HELDOUT_SCENE_OFFSET = 3 << 28  # scene items from here on (seeds 1.5 * 2**30 + k) are never used for training
WORLDS = ("portraits", "scenes-day", "scenes-night", "synthetic-night")
PHOTO_SPLITS = ("train", "heldout")
SMALL_CACHE_BYTES = 32 << 20  # cache budget when a source is too large to cache whole


class RenderedSource:
    """Base of the world/photo sources: cached base images, then crop/resize and flip per sample.

    ``get(index, rng)`` has the ``ImageFolder`` contract: float32 [3,size,size] in [-1, 1].
    ``prefetch(indices)`` renders the missing items of a batch in one call (``make_batch`` uses it).
    """

    def __init__(
        self,
        n: int,  # number of items
        size: int,  # output crop size in pixels
        mode: str = "random-crop",  # random-crop | center-crop | resize
        flip: bool = True,  # random horizontal flips
        cache_mb: float = 512.0,  # memory budget for rendered items
    ):
        if mode not in ("random-crop", "center-crop", "resize"):
            raise GanEditorError(f"unknown crop mode {mode!r}")
        if n < 1:
            raise GanEditorError("a data source needs at least one item")
        self.n, self.size, self.mode, self.flip = int(n), int(size), mode, flip
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self.skipped: set = set()  # ImageFolder compatibility (nothing is ever skipped here)

    def __len__(self) -> int:
        return self.n

    # --- what subclasses implement -------------------------------------------------------
    def render(self, indices: Sequence[int]) -> list[np.ndarray]:
        """Base images (uint8 HxWx3) of ``indices``."""
        raise NotImplementedError

    # --- provided -------------------------------------------------------------------------
    def _store(self, index: int, img: np.ndarray) -> None:
        if not self._cache and self.n * img.nbytes > self.cache_bytes:
            # the whole set does not fit: random order would make a big cache useless (keep batches only)
            self.cache_bytes = min(self.cache_bytes, SMALL_CACHE_BYTES)
        self._cache[index] = img
        self._cache.move_to_end(index)
        self._cached_bytes += img.nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes

    def prefetch(self, indices: Sequence[int]) -> None:
        """Render the not-yet-cached items among ``indices`` together."""
        missing = sorted({int(i) % self.n for i in indices} - set(self._cache))
        if missing:
            for i, img in zip(missing, self.render(missing)):
                self._store(i, img)

    def base_image(self, index: int) -> np.ndarray:
        """The uncropped item ``index`` (uint8 HxWx3), from the cache when there."""
        index = int(index) % self.n
        img = self._cache.get(index)
        if img is None:
            img = self.render([index])[0]
            self._store(index, img)
        else:
            self._cache.move_to_end(index)
        return img

    def get(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        """Item ``index`` as [3,size,size] float in [-1,1] (crop and flip drawn from ``rng``)."""
        a = self.base_image(index)
        s = self.size
        h, w = a.shape[:2]
        if self.mode == "resize" or min(h, w) < s:
            if min(h, w) != s:
                a = _resize_short(a, s)
                h, w = a.shape[:2]
        if self.mode == "random-crop":
            top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        else:
            top, left = (h - s) // 2, (w - s) // 2
        a = a[top : top + s, left : left + s]
        if self.flip and rng.random() < 0.5:
            a = a[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()
        return t.div_(127.5).sub_(1.0)


def _resize_short(a: np.ndarray, short: int) -> np.ndarray:
    h, w = a.shape[:2]
    r = short / min(h, w)
    size = (max(short, round(w * r)), max(short, round(h * r)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BICUBIC))


class PortraitSource(RenderedSource):
    """Procedural portraits rendered at the output size (or ``load_size`` for crops), batched."""

    def __init__(self, size: int, mode: str, load_size: int | None, n: int = 1 << 20, offset: int = 0, **kw):
        super().__init__(n, size, mode, **kw)
        self.offset = int(offset)
        self.render_size = int(load_size) if load_size and mode != "resize" else int(size)

    def render(self, indices: Sequence[int]) -> list[np.ndarray]:
        from ganeditor.worlds.portraits import render_portraits

        imgs, _, _ = render_portraits([self.offset + int(i) for i in indices], self.render_size)
        return list(imgs)


class SceneSource(RenderedSource):
    """Procedural street scenes by day (even seeds) or night (odd seeds), as ``SceneDataset``."""

    def __init__(self, time: str, size: int, mode: str, load_size: int | None, n: int = 1000, offset: int = 0,
                 countryside: float = 0.0, **kw):
        super().__init__(n, size, mode, **kw)
        self.time, self.offset, self.countryside = time, int(offset), float(countryside)
        self.render_size = int(load_size) if load_size and mode != "resize" else int(size)

    def seed(self, index: int) -> int:
        """The scene seed of item ``index``."""
        return 2 * (self.offset + int(index)) + (self.time == "night")

    def render(self, indices: Sequence[int]) -> list[np.ndarray]:
        from ganeditor.worlds.scenes import render_scene, scene_for_seed

        s = self.render_size
        return [render_scene(scene_for_seed(self.seed(i), self.countryside), (s, s), self.time) for i in indices]


class PhotoSource(RenderedSource):
    """The gathered real photos (one split), resized to ``short`` px (never up), plus downscaled copies.

    Item ``i`` is photo ``i % P`` at scale ``scales[i // P]``; ``night=True`` turns it into a
    synthetic night photo (seeded by the item index).
    """

    def __init__(self, split: str, size: int, mode: str, load_size: int | None, short: int | None = None,
                 scales: str = "1", kind: str = "natural", night: bool = False, root: str | None = None, **kw):
        from ganeditor.worlds.photos import photo_paths

        self.paths: list[Path] = photo_paths(split, kind, root)
        if not self.paths:
            raise GanEditorError(f"the photo cache has no {kind} photos in the {split!r} split")
        self.scales = [float(s) for s in str(scales).split(",") if s.strip()]
        super().__init__(len(self.paths) * len(self.scales), size, mode, **kw)
        self.short = int(short or (size if mode == "resize" else load_size or 768))
        self.night = night

    def render(self, indices: Sequence[int]) -> list[np.ndarray]:
        from ganeditor.worlds.synthetic_night import synthetic_night

        out = []
        for i in indices:
            p = len(self.paths)
            img = _load_photo(self.paths[i % p], max(self.size, round(self.short * self.scales[i // p])))
            out.append(synthetic_night(img, seed=int(i)) if self.night else img)
        return out


def _load_photo(path: Path, short: int) -> np.ndarray:
    """Decode a photo as RGB with its short side ``short`` (or smaller if the photo is smaller)."""
    try:
        with open_image(path) as im:
            w, h = im.size
            r = min(1.0, short / min(w, h))
            target = (max(1, round(w * r)), max(1, round(h * r)))
            if im.format == "JPEG":
                im.draft("RGB", target)
            im = im.convert("RGB")
            if im.size != target:
                im = im.resize(target, Image.Resampling.LANCZOS)
            return np.asarray(im)
    except OSError as e:
        raise GanEditorError(f"cannot read a gathered photo ({e})", path) from None


def _options(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=False, strict_parsing=False)) if query else {}


def is_source_spec(spec: str) -> bool:
    """True for ``world:...`` and ``photos:...`` specs (and not for folder paths)."""
    return spec.startswith(("world:", "photos:"))


def open_world_source(spec: str, size: int, mode: str = "random-crop", load_size: int | None = None) -> RenderedSource:
    """The source named by a ``world:NAME[?k=v&...]`` or ``photos:SPLIT[?k=v&...]`` spec."""
    kind, _, rest = spec.partition(":")
    name, _, query = rest.partition("?")
    opts = _options(query)
    known = {"n", "offset", "cache_mb", "short", "scales", "kind", "flip", "root", "countryside"}
    if set(opts) - known:
        raise GanEditorError(f"unknown option(s) {sorted(set(opts) - known)} in data spec {spec!r}")
    common = {"cache_mb": float(opts.pop("cache_mb", 512)), "flip": opts.pop("flip", "1") not in ("0", "false")}
    ints = {k: int(opts.pop(k)) for k in ("n", "offset", "short") if k in opts}
    if kind == "world":
        if name == "portraits":
            return PortraitSource(size, mode, load_size, **ints, **common)
        if name in ("scenes-day", "scenes-night"):
            share = float(opts.pop("countryside", 0))
            if not 0 <= share <= 1:
                raise GanEditorError(f"countryside must be a share between 0 and 1 in data spec {spec!r}")
            return SceneSource(name.split("-")[1], size, mode, load_size, countryside=share, **ints, **common)
        if name == "synthetic-night":
            return PhotoSource("train", size, mode, load_size, night=True, **_photo_opts(ints, opts), **common)
        raise GanEditorError(f"unknown world {name!r} in data spec {spec!r} (choose from {', '.join(WORLDS)})")
    if name not in PHOTO_SPLITS:
        raise GanEditorError(f"unknown photo split {name!r} in data spec {spec!r} (train or heldout)")
    return PhotoSource(name, size, mode, load_size, **_photo_opts(ints, opts), **common)


def heldout_spec(spec: str, n: int = 1 << 20) -> str | None:
    """The held-out counterpart of a training spec (``n`` items no training run sees), or None when there is none."""
    if not is_source_spec(spec):
        return None
    kind, _, rest = spec.partition(":")
    name, _, query = rest.partition("?")
    if kind == "photos":
        return f"photos:heldout?{query}" if query else "photos:heldout"
    offset = {"portraits": HELDOUT_PORTRAIT_SEED, "scenes-day": HELDOUT_SCENE_OFFSET,
              "scenes-night": HELDOUT_SCENE_OFFSET}.get(name)
    return None if offset is None else f"world:{name}?offset={offset}&n={int(n)}&flip=0"


def _photo_opts(ints: dict[str, int], opts: dict[str, str]) -> dict[str, object]:
    if {"n", "offset", "countryside"} & {*ints, *opts}:
        raise GanEditorError("photo sources take short/scales/kind, not n/offset/countryside")
    return {**ints, **opts}
