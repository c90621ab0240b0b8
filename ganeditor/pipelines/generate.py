"""Generate images from seeds, with the NVlabs conventions (a seed means the same image as theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from ganeditor.archs.stylegan3 import input_transform
from ganeditor.core.errors import GanEditorError
from ganeditor.core.progress import Task, null_task


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """``np.random.RandomState(seed).randn(1, z_dim)`` as NVlabs gen_images.py (float64)."""
    return np.random.RandomState(seed).randn(1, z_dim)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N,C,H,W] in [-1,1] -> [N,H,W,C] uint8 by NVlabs' truncating conversion ``x*127.5+128``."""
    return (img.permute(0, 2, 3, 1).float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def class_vector(G: nn.Module, class_idx: int | None, device: torch.device) -> torch.Tensor:
    """One-hot conditioning label for conditional generators, zeros [1,0] otherwise."""
    c = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim == 0:
        if class_idx is not None:
            raise GanEditorError("--class given but the network is unconditional")
        return c
    if class_idx is None:
        raise GanEditorError(f"the network is conditional ({G.c_dim} classes): give --class N")
    if not 0 <= class_idx < G.c_dim:
        raise GanEditorError(f"--class {class_idx} out of range 0..{G.c_dim - 1}")
    c[:, class_idx] = 1
    return c


def set_input_transform(G: nn.Module, translate: tuple[float, float] = (0, 0), rotate: float = 0) -> None:
    """Set a StyleGAN3 generator's input transform as gen_images.py does; error for other nets."""
    inp = getattr(G.synthesis, "input", None)
    if inp is None or not hasattr(inp, "transform"):
        if tuple(translate) != (0, 0) or rotate != 0:
            raise GanEditorError("--translate/--rotate need a StyleGAN3 generator")
        return
    inp.transform.copy_(input_transform(translate, rotate))


@torch.inference_mode()
def generate(
    G: nn.Module,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    translate: tuple[float, float] = (0.0, 0.0),
    rotate: float = 0.0,
    task: Task | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(seed, uint8 HxWxC image)`` for each seed."""
    task = task or null_task()
    if noise_mode not in ("const", "random", "none"):
        raise GanEditorError(f"unknown noise mode {noise_mode!r} (const, random or none)")
    device = next(G.parameters()).device
    c = class_vector(G, class_idx, device)
    set_input_transform(G, translate, rotate)
    for i, seed in enumerate(seeds):
        task.report(i, len(seeds), f"seed {seed}")
        z = torch.from_numpy(seed_to_z(seed, G.z_dim)).to(device)
        ws = G.mapping(z, c, truncation_psi=truncation_psi)
        img = G.synthesis(ws, noise_mode=noise_mode)
        yield seed, to_uint8(img)[0]
    task.report(len(seeds), len(seeds))


# ------------------------------------------------------------------------- the Generate panel's faces

MIX_PARTS = ("coarse", "middle", "fine")  # StyleGAN's style-mixing ranges: 4-8 px, 16-32 px, 64 px and up
NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class FaceRequest:
    """One generated face: the NVlabs seed contract, plus an optional style mix from a second seed."""

    seed: int = 0  # z = RandomState(seed).randn(1, z_dim)
    truncation_psi: float = 1.0  # towards the mean W (1 = none)
    noise_mode: str = "const"  # 'const' (reproducible), 'random' or 'none'
    class_idx: int | None = None  # for conditional generators
    mix_seed: int | None = None  # second face whose styles are mixed in
    mix_parts: tuple[str, ...] = ()  # which of MIX_PARTS come from ``mix_seed``


def mix_layers(G: nn.Module, parts: Sequence[str]) -> list[int]:
    """The ws rows of ``parts`` (MIX_PARTS): by the resolution each row styles for StyleGAN2 (coarse
    4-8 px, middle 16-32 px, fine 64 px and up, as the StyleGAN paper), by thirds otherwise."""
    bad = set(parts) - set(MIX_PARTS)
    if bad:
        raise GanEditorError(f"unknown style-mixing part(s) {sorted(bad)} (coarse, middle, fine)")
    n = G.num_ws
    if hasattr(G.synthesis, "block_ws_start"):  # StyleGAN2: rows 2k and 2k+1 count as 2^(k+2) px (FFHQ: 0-3, 4-7, 8-)
        part = ["coarse" if r <= 8 else "middle" if r <= 32 else "fine" for r in (2 ** (2 + i // 2) for i in range(n))]
    else:
        part = [MIX_PARTS[min(2, 3 * i // n)] for i in range(n)]
    return [i for i in range(n) if part[i] in parts]


@torch.no_grad()
def seed_latent(G: nn.Module, seed: int, truncation_psi: float = 1.0, class_idx: int | None = None) -> torch.Tensor:
    """ws [1, num_ws, w_dim] of ``seed`` (NVlabs: RandomState(seed).randn, mapping with truncation)."""
    device = next(G.parameters()).device
    z = torch.from_numpy(seed_to_z(seed, G.z_dim)).to(device)
    return G.mapping(z, class_vector(G, class_idx, device), truncation_psi=truncation_psi)


@torch.no_grad()
def generate_face(G: nn.Module, req: FaceRequest) -> tuple[torch.Tensor, np.ndarray]:
    """(ws [1, num_ws, w_dim], uint8 image [R, R, C]) for a request: the latent the portrait sliders
    can edit directly (no inversion), and its rendering."""
    if req.noise_mode not in NOISE_MODES:
        raise GanEditorError(f"unknown noise mode {req.noise_mode!r} (const, random or none)")
    ws = seed_latent(G, req.seed, req.truncation_psi, req.class_idx)
    if req.mix_seed is not None and req.mix_parts:
        rows = mix_layers(G, req.mix_parts)
        ws[:, rows] = seed_latent(G, req.mix_seed, req.truncation_psi, req.class_idx)[:, rows]
    return ws, to_uint8(G.synthesis(ws, noise_mode=req.noise_mode))[0]
