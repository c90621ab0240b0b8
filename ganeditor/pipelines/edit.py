"""Latent editing: w' = w + Σ αᵢ·dᵢ on each direction's layers, style mixing, truncation, and a
``PreviewRenderer`` that re-runs only the synthesis blocks an edit touches.

Edits are relative shifts (DESIGN.md): α = 0 leaves the latent unchanged.  InterFaceGAN's
absolute "distance to the boundary" is ``mode='distance'``: on the direction's layers
w ← w + (α − w·n)·n for a unit normal n.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import GanEditorError
from ganeditor.pipelines.directions import Direction

Edit = tuple[Direction, float]


def load_latent(path: str | Path, G: nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """Read a latent ``.npz`` (key 'w', optional 'noise.*' maps) or ``.npy``; returns (ws [1,num_ws,w_dim], noise).

    [1, w_dim] (or [w_dim]) is W, broadcast to every layer; [1, num_ws, w_dim] is W+.
    """
    path = Path(path)
    if not path.is_file():
        raise GanEditorError("latent file not found", path)
    noise = None
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            if "w" not in data:
                raise GanEditorError(f"no key 'w' in the latent file (keys: {', '.join(data.files)})", path)
            w = np.asarray(data["w"])
            noise = {k[6:]: torch.from_numpy(np.asarray(data[k], dtype=np.float32)) for k in data.files if k.startswith("noise.")}
        else:
            w = np.asarray(data)
    except GanEditorError:
        raise
    except Exception as e:
        raise GanEditorError(f"cannot read latent ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})", path) from None
    if w.ndim == 1:
        w = w[None]
    if w.ndim == 2 and w.shape == (1, G.w_dim):
        w = np.repeat(w[:, None], G.num_ws, axis=1)
    if w.shape != (1, G.num_ws, G.w_dim):
        raise GanEditorError(
            f"latent has shape {list(w.shape)}; this generator needs [1, {G.w_dim}] (W) or [1, {G.num_ws}, {G.w_dim}] (W+)", path
        )
    if not np.isfinite(w).all():
        raise GanEditorError("latent contains NaN or inf", path)
    return torch.from_numpy(w.astype(np.float32)), noise or None


def save_latent(path: str | Path, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``projected_w.npz`` in the NVlabs layout (key 'w' [1, num_ws, w_dim]) plus 'noise.<buffer>' maps."""
    assert ws.ndim == 3 and ws.shape[0] == 1, f"ws {list(ws.shape)}"
    arrays = {"w": ws.detach().cpu().float().numpy()}
    for k, v in (noise or {}).items():
        arrays[f"noise.{k}"] = v.detach().cpu().float().numpy()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_write(path) as f:
        f.write(buf.getvalue())


def apply_edits(ws: torch.Tensor, edits: Sequence[Edit], mode: str = "relative") -> torch.Tensor:
    """ws [N, num_ws, w_dim] moved by each (direction, α) on its layers; a new tensor."""
    assert ws.ndim == 3, f"ws {list(ws.shape)}"
    if mode not in ("relative", "distance"):
        raise GanEditorError(f"unknown edit mode {mode!r} (relative or distance)")
    out = ws.clone()
    for d, alpha in edits:
        if d.vector.shape[0] != ws.shape[2]:
            raise GanEditorError(f"direction {d.name!r} has {d.vector.shape[0]} values, latents have {ws.shape[2]}")
        a, b = d.layer_range(ws.shape[1])
        if mode == "relative":
            step = torch.from_numpy(d.step()).to(ws)
            out[:, a:b] += float(alpha) * step
        else:
            n = torch.from_numpy(d.vector / np.linalg.norm(d.vector)).to(ws)
            dist = (out[:, a:b] @ n).unsqueeze(-1)  # [N, L, 1]
            out[:, a:b] += (float(alpha) - dist) * n
    return out


def style_mix(ws: torch.Tensor, other: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """ws with the given layers taken from ``other`` (both [N, num_ws, w_dim])."""
    assert ws.shape == other.shape, f"{list(ws.shape)} vs {list(other.shape)}"
    out = ws.clone()
    idx = list(layers)
    out[:, idx] = other[:, idx].to(out)
    return out


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """w_avg + psi·(w − w_avg) on the first ``cutoff`` layers (all when None), as NVlabs."""
    out = ws.clone()
    n = ws.shape[1] if cutoff is None else cutoff
    out[:, :n] = w_avg.to(ws).lerp(ws[:, :n], psi)
    return out


def _bf16(device: torch.device, on: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast when ``on``; otherwise nothing (a caller's own autocast still applies)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


class PreviewRenderer:
    """Renders ws with StyleGAN2's synthesis, reusing the activations of blocks whose ws did not change.

    Keeps, from the previous render, the ws and the output of every block it ran.  A new ws is
    compared per layer; blocks before the first block that reads a changed layer are skipped and
    their cached output feeds the rest.  Equal to a full render (noise mode 'const' or 'none').
    Generators without block-wise synthesis (StyleGAN3) are rendered whole.

    Drafts (``render(ws, max_res)``, 'skip' architecture only): synthesis stops at the first block
    whose resolution reaches ``max_res`` and that block's accumulated RGB image is the draft, a
    level of detail for a face displayed that small while a slider moves.  The blocks a draft ran
    stay cached, so the exact render on release runs only the remaining ones.  With ``draft_detail``
    a draft adds what the blocks it skipped contributed to the last exact render (that render
    area-downscaled minus its own image at the draft's block): the draft of an unmoved slider is then
    the exact render downscaled, and a moved one keeps its detail and colour level (bench_draft.py).
    ``render(..., fast=True)`` computes in bfloat16 with a cache of its own (drafts while a slider
    moves; an exact render never reuses a bf16 block).
    """

    def __init__(
        self,
        G: nn.Module,  # generator (StyleGAN2 for caching)
        noise_mode: str = "const",  # 'const' or 'none' (random noise cannot be cached)
        cache: bool = True,  # False = always render everything (for comparisons)
        draft_detail: bool = True,  # drafts add the detail they miss, taken from the last exact render
    ):
        if noise_mode not in ("const", "none"):
            raise GanEditorError("preview noise mode must be 'const' or 'none'")
        self.G, self.noise_mode, self.draft_detail = G, noise_mode, draft_detail
        syn = G.synthesis
        self.blockwise = cache and hasattr(syn, "split_ws") and hasattr(syn, "run_blocks")
        # per precision (False = exact fp32, True = bf16 drafts): the ws of the last render and the (x, img)
        # of the blocks 0.. it ran; a render reuses only blocks computed in its own precision
        self._cache: dict[bool, tuple[torch.Tensor | None, list[tuple[torch.Tensor, torch.Tensor | None]]]] = {
            False: (None, []), True: (None, [])}
        self._map_key: tuple | None = None
        self._map_ws: torch.Tensor | None = None
        self.last_blocks_run = 0
        self._exact_imgs: list[torch.Tensor | None] = []  # every block's image of the last exact render
        self._detail: dict[int, torch.Tensor] = {}  # block -> what later blocks added to that render, downscaled
        self._res: list[int] = []  # block resolutions where drafts are possible ('skip': every block adds RGB)
        if self.blockwise:
            blocks = syn.blocks()
            self._ranges = [(s, s + b.num_conv + b.num_torgb) for s, b in zip(syn.block_ws_start(), blocks)]
            if all(getattr(b, "architecture", None) == "skip" for b in blocks):
                self._res = [int(b.resolution) for b in blocks]

    def mapping(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """G.mapping(z) with the result cached for the last (z, psi)."""
        key = (z.detach().cpu().numpy().tobytes(), float(psi))
        if key != self._map_key:
            c = torch.zeros([z.shape[0], self.G.c_dim], device=z.device)
            with torch.no_grad():
                self._map_ws = self.G.mapping(z, c, truncation_psi=psi)
            self._map_key = key
        return self._map_ws

    def first_changed_block(self, ws: torch.Tensor, fast: bool = False) -> int:
        """Index of the first block whose ws slice differs from the cached render (of that precision)."""
        cached_ws, outs = self._cache[fast]
        if cached_ws is None or cached_ws.shape != ws.shape or not outs:
            return 0
        changed = (cached_ws != ws).flatten(2).any(dim=2).any(dim=0)  # [num_ws]
        if not bool(changed.any()):
            return len(self._ranges)
        first = int(changed.nonzero()[0])
        return next(i for i, (a, b) in enumerate(self._ranges) if a <= first < b)

    def draft_resolution(self, side: float) -> int | None:
        """The smallest block resolution >= ``side`` px (what a face shown that large needs), or None
        when that is the full resolution or this generator cannot draft."""
        res = next((r for r in self._res if r >= side - 1e-3), None)  # a face of 512.0000001 px is 512 px
        return None if res is None or res >= self._res[-1] else res

    def _stop_block(self, max_res: int | None) -> int:
        """Index of the last block to run: the first whose resolution >= max_res (the last block when
        max_res is None, at least the full resolution, or the architecture cannot draft)."""
        n = len(self._ranges)
        if max_res is None or not self._res:
            return n - 1
        return next((i for i, r in enumerate(self._res) if r >= max_res), n - 1)

    @torch.no_grad()
    def render(self, ws: torch.Tensor, max_res: int | None = None, fast: bool = False) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, C, R, R] in [-1, 1]; with ``max_res`` below R a draft
        [N, C, r, r] of the first block with r >= max_res ('skip' synthesis; others render whole).
        ``fast``: the blocks run in bfloat16 (autocast; for drafts on hardware where that is fast), cached
        apart from the exact ones, so an exact render never reuses them; the image is float32."""
        G = self.G
        assert ws.ndim == 3 and ws.shape[1:] == (G.num_ws, G.w_dim), f"ws {list(ws.shape)}"
        if not self.blockwise:
            self.last_blocks_run = -1
            with _bf16(ws.device, fast):
                return G.synthesis(ws, noise_mode=self.noise_mode).float()
        stop = self._stop_block(max_res)
        cached = self._cache[fast][1]
        start = min(self.first_changed_block(ws, fast), len(cached))
        outs = cached[:start]
        if start <= stop:
            with _bf16(ws.device, fast):
                outs += self._run(ws, outs[-1] if outs else (None, None), start, stop)
        self._cache[fast] = (ws.detach().clone(), outs)
        self.last_blocks_run = max(0, stop + 1 - start)
        img = outs[stop][1].float()
        if fast:  # a draft: never an exact render, with the detail the exact one had where it stopped early
            detail = self._missed_detail(stop) if stop < len(self._ranges) - 1 else None
            return img if detail is None or detail.shape != img.shape else img + detail
        if stop == len(self._ranges) - 1:
            if start <= stop:  # a new exact render (one served from the cache is the last one again)
                self._exact_imgs, self._detail = [im for _, im in outs], {}
            return img
        detail = self._missed_detail(stop)
        return img if detail is None or detail.shape != img.shape else img + detail

    def _run(self, ws: torch.Tensor, state: tuple, start: int, stop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(x, img) of blocks start..stop, from ``state`` = the (x, img) before block ``start``."""
        syn, (x, img), out = self.G.synthesis, state, []
        block_ws = syn.split_ws(ws)
        for i in range(start, stop + 1):
            x, img = syn.run_blocks(block_ws, x, img.clone() if img is not None else None, start=i, stop=i + 1,
                                    noise_mode=self.noise_mode)  # fmt: skip
            out.append((x, img))
        return out

    def _missed_detail(self, k: int) -> torch.Tensor | None:
        """[N, C, r, r]: the last exact render area-downscaled to block k's size minus block k's image
        of that render (None without an exact render or with ``draft_detail`` off)."""
        if not self.draft_detail or not self._exact_imgs:
            return None
        if k not in self._detail:
            final, own = self._exact_imgs[-1], self._exact_imgs[k]
            self._detail[k] = F.avg_pool2d(final, final.shape[-1] // own.shape[-1]) - own  # area: a power of two
        return self._detail[k]

    def invalidate(self) -> None:
        """Forget cached activations (call after changing G's weights or noise)."""
        self._cache = {False: (None, []), True: (None, [])}
        self._exact_imgs, self._detail = [], {}
