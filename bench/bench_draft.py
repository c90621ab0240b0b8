"""How a slider-preview draft looks next to the exact render it stands in for.

    python bench/bench_draft.py --network models/portrait-stylegan2.safetensors [--n 16] [--alpha 0.5]
    python bench/bench_draft.py --random 1024 [--n 2]      # random config-f weights (bench_generator.py)

While a slider is dragged, ``PreviewRenderer.render(ws, max_res)`` stops StyleGAN2's 'skip'
synthesis at the block of resolution r = max_res and shows that block's accumulated RGB image.
The face is displayed at <= r px then, so the fair reference is the exact R px render
area-downscaled to r.  N latents (psi 0.7) are moved by a slider (a random direction x alpha on the
middle 4 ws, the 'edit' row says how far that moves the image); for r = R/2, R/4 this prints, in
8-bit levels, PSNR, the largest pixel difference and the mean signed difference per channel (colour
level) of: the plain draft (``draft_detail=False``), the draft plus the biases of the toRGB layers
it skipped (a per-channel constant; not shipped), and the draft plus the detail it missed in the
unedited exact render (down(exact(ws)) - draft(ws); the default, ``draft_detail=True``).  The row
the renderer returns after an exact render of the unedited ws is marked "shipped".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_common as pc  # noqa: E402

from ganeditor.pipelines.edit import PreviewRenderer  # noqa: E402


def load(args) -> torch.nn.Module:
    if args.random:
        import bench_generator  # noqa: PLC0415  (random config-f weights, as the perf table uses)

        return bench_generator.make_generator(args.random)
    from ganeditor.core.model_store import resolve_model  # noqa: PLC0415
    from ganeditor.formats import load_checkpoint  # noqa: PLC0415

    return load_checkpoint(resolve_model(args.network), torch.device("cpu")).primary.eval()


def levels(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> 8-bit levels as float (rounded as the window shows them)."""
    return (img * 127.5 + 128).clamp(0, 255).floor()


def figures(draft: torch.Tensor, ref: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """(PSNR dB, max |diff|, mean signed diff per channel) of two [N, C, r, r] images in 8-bit levels."""
    a, b = levels(draft), levels(ref)
    mse = float(((a - b) ** 2).mean())
    psnr = 10 * np.log10(255**2 / max(mse, 1e-12))
    return psnr, float((a - b).abs().max()), (a - b).mean((0, 2, 3)).numpy()


def drafts(syn, ws: torch.Tensor, k: int) -> torch.Tensor:
    """The accumulated RGB of block ``k`` for each latent of ws [N, num_ws, w_dim]."""
    return torch.cat([syn.run_blocks(syn.split_ws(w[None]), stop=k + 1, noise_mode="const")[1] for w in ws])


def shipped_draft(G, ws: torch.Tensor, moved: torch.Tensor, r: int) -> torch.Tensor:
    """What the window shows while dragging: PreviewRenderer's draft of ``moved`` after the exact render of ``ws``."""
    pr = PreviewRenderer(G)
    pr.render(ws)
    return pr.render(moved, max_res=r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--network", help="a StyleGAN2 file or model name")
    src.add_argument("--random", type=int, choices=(256, 1024), help="random weights of this size (bench_generator)")
    ap.add_argument("--n", type=int, default=16, help="latents (seeds 0..n-1, psi 0.7)")
    ap.add_argument("--alpha", type=float, default=0.5, help="slider step: alpha x a unit-normal direction")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(pc.uptime())
    G = load(args)
    syn, R, L = G.synthesis, G.img_resolution, G.num_ws
    blocks = syn.blocks()
    print(f"generator {args.network or f'random config {args.random}'}: {R} px, architecture {blocks[-1].architecture}")
    z = torch.from_numpy(np.random.RandomState(0).randn(args.n, G.z_dim)).float()
    d = torch.randn(1, 1, G.w_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ws = G.mapping(z, torch.zeros(args.n, G.c_dim), truncation_psi=0.7)
        we = ws.clone()
        we[:, L // 2 - 2 : L // 2 + 2] += args.alpha * d
        exact0, exact1 = (torch.cat([syn(w[None], noise_mode="const") for w in x]) for x in (ws, we))
    print(f"{'r':>5} {'draft':<16} {'PSNR dB':>8} {'max':>5}  mean signed diff per channel (8-bit)")
    for r in (R // 2, R // 4):
        k = next(i for i, b in enumerate(blocks) if b.resolution >= r)
        ref, before = F.avg_pool2d(exact1, R // r), F.avg_pool2d(exact0, R // r)  # area downscale by a power of two
        with torch.no_grad():
            plain, unedited = drafts(syn, we, k), drafts(syn, ws, k)
            shipped = torch.cat([shipped_draft(G, w0[None], w1[None], r) for w0, w1 in zip(ws, we)])
        bias = sum(b.torgb.bias.detach().float() for b in blocks[k + 1 :]).view(1, -1, 1, 1)
        rows = (("edit (no draft)", before), ("plain", plain), ("+ toRGB bias", plain + bias),
                ("+ missed detail", plain + (before - unedited)))  # fmt: skip
        for name, x in rows:
            psnr, mx, mean = figures(x, ref)
            ships = " (shipped)" if torch.allclose(x, shipped, atol=1e-5) else ""
            print(f"{r:>5} {name:<16} {psnr:8.2f} {mx:5.0f}  {np.array2string(mean, precision=2)}{ships}")
    print(pc.uptime())


if __name__ == "__main__":
    main()
