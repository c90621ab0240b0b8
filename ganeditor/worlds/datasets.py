"""Torch datasets streaming the procedural worlds for training and evaluation.

Every item is a pure function of (seed_offset, index): no state, so any worker, any order and any
restart gives the same bytes.  Images are float32 [3,H,W] in [-1, 1] (``x / 127.5 - 1``).
Portraits render a whole batch in one vectorised call: ``batch(indices)`` returns stacked tensors,
and ``__getitems__`` (which the DataLoader uses when present) returns the same as a list of items.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from ganeditor.worlds.portraits import ATTRIBUTE_NAMES, attributes_vector, render_portraits
from ganeditor.worlds.scenes import render_scene, scene_for_seed

PAIRED_SEED_BASE = 1 << 30  # evaluation scenes live far from the training seeds


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 [...,H,W,3] -> float32 [...,3,H,W] in [-1, 1]."""
    t = torch.from_numpy(np.array(img, copy=True)).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3).contiguous()


class PortraitDataset(Dataset):
    """Portrait ``i`` is seed ``seed_offset + i``: (image [3,S,S] in [-1,1], attributes [A] float32)."""

    attribute_names = ATTRIBUTE_NAMES

    def __init__(self, n: int, size: int = 128, seed_offset: int = 0) -> None:
        self.n, self.size, self.seed_offset = int(n), int(size), int(seed_offset)

    def __len__(self) -> int:
        return self.n

    def _check(self, i: int) -> int:
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return i % self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img, attrs = self.batch([i])
        return img[0], attrs[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items of ``indices`` rendered together (DataLoader protocol: a list of samples)."""
        imgs, attrs = self.batch(indices)
        return list(zip(imgs.unbind(0), attrs.unbind(0)))

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch: (images [B,3,S,S], attributes [B,A]) — rendered in one vectorised call."""
        seeds = [self.seed_offset + self._check(int(i)) for i in indices]
        imgs, attrs, _ = render_portraits(seeds, self.size)
        return to_tensor(imgs), torch.from_numpy(np.stack([attributes_vector(a) for a in attrs]))


class PortraitStream(IterableDataset):
    """Endless (or ``n``-item) stream of portrait batches; worker ``k`` of ``K`` takes every K-th batch."""

    def __init__(self, batch: int = 32, size: int = 128, seed_offset: int = 0, n: int | None = None) -> None:
        self.batch, self.size, self.seed_offset, self.n = int(batch), int(size), int(seed_offset), n

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        k, kk = (0, 1) if info is None else (info.id, info.num_workers)
        ds = PortraitDataset(self.n if self.n is not None else 1 << 62, self.size, self.seed_offset)
        start = k * self.batch
        while self.n is None or start < self.n:
            stop = start + self.batch if self.n is None else min(start + self.batch, self.n)
            yield ds.batch(range(start, stop))
            start += kk * self.batch


class SceneDataset(Dataset):
    """Unpaired scenes by ``time`` ('day'|'night'): day items use even seeds, night items odd ones.

    So a day set and a night set never show the same scene, whatever their sizes and offsets.
    """

    def __init__(self, n: int, size: int | tuple[int, int] = 256, time: str = "day", seed_offset: int = 0) -> None:
        if time not in ("day", "night"):
            raise ValueError(f"time must be 'day' or 'night', not {time!r}")
        self.n, self.time, self.seed_offset = int(n), time, int(seed_offset)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return self.n

    def seed(self, i: int) -> int:
        """The scene seed of item ``i``."""
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return 2 * (self.seed_offset + i % self.n) + (self.time == "night")

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_tensor(render_scene(scene_for_seed(self.seed(i)), self.size, self.time))


class PairedSceneDataset(Dataset):
    """Evaluation pairs (day [3,H,W], night [3,H,W]) of the same scene, from seeds no training set uses."""

    def __init__(self, n: int, size: int | tuple[int, int] = 256, seed_offset: int = 0) -> None:
        self.n, self.seed_offset = int(n), int(seed_offset)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.n <= i < self.n:
            raise IndexError(i)
        p = scene_for_seed(PAIRED_SEED_BASE + self.seed_offset + i % self.n)
        return to_tensor(render_scene(p, self.size, "day")), to_tensor(render_scene(p, self.size, "night"))
