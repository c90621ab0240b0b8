"""StyleGAN2 projector step: NVlabs stylegan2-ada-pytorch ``projector.py`` (the original) vs our ``project()``.

    python bench/bench_projector.py --original /work/orig/stylegan2-ada-pytorch [--res 256] [--steps 6]
                                    [--rounds 3] [--threads 2]

Both sides run the projector algorithm (W space, Adam, learning-rate schedule, latent noise, noise
maps optimised with the autocorrelation regulariser) on the same generator (random weights of the
paper256/config-f size written by the original's constructor) and the same target, at the same
loss.  The original's loss is a squared distance of VGG16 features that it downloads at run time
(not available offline), so both sides use pixel MSE: the original is given a feature extractor
that returns the pixels scaled by 1/sqrt(size) (its ``(target_features - synth_features)
.square().sum()`` is then the MSE) and ours ``PixelMSE``.  A step (synthesis forward, loss,
backward, Adam, noise renormalisation) is timed as the median interval between consecutive
synthesis calls of a ``--steps``-step projection, so the setup (W statistics, copies) is left out
on both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_common as pc  # noqa: E402

CONFIGS = {256: dict(channel_base=16384, channel_max=512), 1024: dict(channel_base=32768, channel_max=512)}
EXPECT = ("projector.py", "training/networks.py")


def init_kwargs(res: int) -> dict:
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res])  # fmt: skip


def original_projector(checkout: str):
    """Import the original ``projector`` module with its VGG16 download replaced by scaled pixels."""
    import torch

    pc.prepare_original(checkout, expect=EXPECT, stub_modules=("imageio",))
    import dnnlib  # noqa: PLC0415  (the checkout, at run time)
    import projector  # noqa: PLC0415

    class ScaledPixels(torch.nn.Module):  # called as vgg16(images_0_255, resize_images=False, return_lpips=True)
        def forward(self, images, resize_images=False, return_lpips=True):
            x = images / 127.5 - 1
            return x.flatten(1) / x[0].numel() ** 0.5

    dnnlib.util.open_url = lambda *a, **k: contextlib.nullcontext(None)
    torch.jit.load = lambda *a, **k: ScaledPixels()
    return projector


def pixel_mse():
    """Our side of the same loss: an ``InversionLoss`` computing the pixel MSE."""
    import torch.nn.functional as F

    from ganeditor.pipelines.invert_loss import InversionLoss

    class PixelMSE(InversionLoss):
        name = "pixel MSE"

        def pair(self, a, b):
            return F.mse_loss(a, b)

        def forward(self, img):
            return F.mse_loss(img, self.target.expand_as(img))

    return PixelMSE()


def _step_timer(G):
    """Record (wall, cpu) at every synthesis call; returns the list (shared by deep copies of G)."""
    marks: list[tuple[float, float]] = []
    G.synthesis.register_forward_pre_hook(lambda *_: marks.append((time.perf_counter(), time.process_time())))
    return marks


def _median_step(marks) -> "pc.Timed":
    walls = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
    cpus = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    return pc.Timed(statistics.median(walls), statistics.median(cpus))


def make_weights(res: int, original: str | None, path: str) -> None:
    """Weights (the original constructor's when ``original``) and a target image the generator made."""
    import numpy as np
    import torch

    from ganeditor.archs import build
    from ganeditor.pipelines.generate import to_uint8

    torch.manual_seed(0)
    G = build("stylegan2-generator", **init_kwargs(res)).eval()
    if original:
        pc.prepare_original(original, expect=EXPECT)
        from training.networks import Generator  # noqa: PLC0415  (the checkout, at run time)

        torch.manual_seed(0)
        G.load_state_dict(Generator(**init_kwargs(res)).state_dict(), strict=True)
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(1).randn(1, 512))
        target = to_uint8(G(z, None, truncation_psi=0.7, noise_mode="const"))[0]
    torch.save({"state": G.state_dict(), "target": torch.from_numpy(target)}, path)


def serve(res: int, impl: str, weights: str, original: str | None, steps: int, threads: int) -> None:
    def make():
        import torch

        data = torch.load(weights, weights_only=True)
        target = data["target"].numpy()
        if impl == "original":
            projector = original_projector(original)
            from training.networks import Generator  # noqa: PLC0415  (the checkout, at run time)

            G = Generator(**init_kwargs(res)).eval().requires_grad_(False)
            G.load_state_dict(data["state"], strict=True)
            marks = _step_timer(G)

            def run():
                marks.clear()
                projector.project(G, torch.from_numpy(target).permute(2, 0, 1), num_steps=steps,
                                  w_avg_samples=1000, device=torch.device("cpu"))  # fmt: skip
                return _median_step(marks)

            return run
        from ganeditor.archs import build
        from ganeditor.pipelines.invert import ProjectOptions, project

        G = build("stylegan2-generator", **init_kwargs(res)).eval().requires_grad_(False)
        G.load_state_dict(data["state"], strict=True)
        marks = _step_timer(G)
        loss = pixel_mse()

        def run_ours():
            marks.clear()
            for _ in project(G, target, loss, "w", options=ProjectOptions(steps=steps, w_avg_samples=1000, preview_every=0)):
                pass
            return _median_step(marks[:-1])  # the last call is the final render, not a step

        return run_ours

    pc.serve(make, threads)


def perf_cases(res: int, original: str | None, tmp: str, threads: int, steps: int) -> list[pc.Case]:
    """The projector-step row (writes its weights under ``tmp`` first)."""
    import subprocess

    weights = str(Path(tmp) / f"projector-{res}.pt")
    cmd = [sys.executable, __file__, "--make-weights", str(res), weights] + (["--original", original] if original else [])
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=pc.ROOT, env=pc.child_env(threads))
    if r.returncode:
        raise SystemExit(f"projector weights failed: {r.stderr.strip().splitlines()[-1:]}")
    base = [sys.executable, __file__, "--weights", weights, "--threads", str(threads), "--steps", str(steps), "--serve", str(res)]
    impls = {"original": base + ["original", "--original", original]} if original else {}
    impls["exact"] = base + ["exact"]
    note = ("one Adam step of W projection, pixel MSE on both sides (the original's VGG16 is not available offline), "
            f"median of {steps - 1} step intervals per round")  # fmt: skip
    return [pc.Case(f"projector step {res}", impls, note=note)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=256, choices=sorted(CONFIGS))
    ap.add_argument("--steps", type=int, default=6, help="projector steps per round (their intervals are timed)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--metric", choices=pc.METRICS, default="cpu")
    pc.add_original_arg(ap, "NVlabs stylegan2-ada-pytorch")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--make-weights", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_weights:
        make_weights(int(args.make_weights[0]), args.original, args.make_weights[1])
        return
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.weights, args.original, args.steps, args.threads)
        return
    print(pc.uptime())
    with tempfile.TemporaryDirectory(prefix="projector-") as tmp:
        rows = [pc.measure(c, args.rounds, args.threads) for c in perf_cases(args.res, args.original, tmp, args.threads, args.steps)]
    print(pc.format_table(rows, args.metric))
    print(pc.uptime())


if __name__ == "__main__":
    main()
