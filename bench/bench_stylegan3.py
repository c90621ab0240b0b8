"""StyleGAN3 synthesis speed and peak memory: NVlabs stylegan3 (the original) vs ours, interleaved.

    python bench/bench_stylegan3.py --original /work/orig/stylegan3 [--cases T256 R256 T1024 R1024]
                                    [--rounds 3] [--threads 2] [--metric cpu|wall]

Weights of the real FFHQ sizes (T: channel_base 32768, channel_max 512; R: channel_base 65536,
channel_max 1024, 1x1 convs, radial filters, as NVlabs ``train.py --cfg=stylegan3-r``), z/w 512,
2 mapping layers.  They are written by the original's constructor when ``--original`` is given
(ours otherwise), then made to produce an unsaturated image: affine weights N(0, 1), input
magnitudes 1.5, and the ToRGB weight scaled so that the output's standard deviation is 0.4
(8-bit values spread over the range, under 1% clipped; the run prints the figures).  The bf16 drift
is measured on that image.  Columns: ``original`` = NVlabs ``training/networks_stylegan3.py``
``G.synthesis(ws, noise_mode='const', force_fp32=True)`` on CPU (its reference ops, nothing
compiled); ``exact`` = ours fp32; ``fast`` = ours under bf16 autocast.  Each runs in its own
process (its peak RSS is its own) and the rounds are interleaved.  The floor is the synthesis
convolutions' FLOPs over the fp32 conv peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_common as pc  # noqa: E402

CONFIGS = {
    "T": dict(channel_base=32768, channel_max=512),
    "R": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}
TARGET_STD = 0.4  # output standard deviation the ToRGB gain is set to
TARGETS = {"R1024": 15.0}  # wall seconds per image at 2 threads (issue 15)


def init_kwargs(case: str) -> dict:
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=int(case[1:]), img_channels=3,
                mapping_kwargs={"num_layers": 2}, **CONFIGS[case[0]])  # fmt: skip


def conv_flops(G) -> float:
    """FLOPs of the synthesis convolutions (2 * MACs), from the layer shapes."""
    total = 0.0
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        h = int(layer.in_size[1]) + layer.conv_kernel - 1
        w = int(layer.in_size[0]) + layer.conv_kernel - 1
        total += 2.0 * h * w * layer.in_channels * layer.out_channels * layer.conv_kernel**2
    return total


def to_u8(img):
    import torch

    return (img.float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def make_weights(case: str, original: str | None, path: str) -> dict:
    """Write the case's weights and ws to ``path``; returns FLOPs and the image's statistics."""
    import numpy as np
    import torch

    from ganeditor.archs import build

    torch.manual_seed(0)
    G = build("stylegan3-generator", **init_kwargs(case)).eval()
    if original:
        pc.prepare_original(original, expect=("training/networks_stylegan3.py",))
        from training.networks_stylegan3 import Generator  # noqa: PLC0415  (the checkout, at run time)

        torch.manual_seed(0)
        G.load_state_dict(Generator(**init_kwargs(case)).state_dict(), strict=True)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("affine.weight"):
                p.normal_(0, 1)
        for name, b in G.named_buffers():
            if name.endswith("magnitude_ema"):
                b.fill_(1.5)
        z = torch.from_numpy(np.random.RandomState(0).randn(1, 512))
        ws = G.mapping(z, None, truncation_psi=0.7)
        torgb = getattr(G.synthesis, G.synthesis.layer_names[-1])
        img = G.synthesis(ws)
        torgb.weight.mul_(TARGET_STD / float(img.std()))  # the output is linear in the ToRGB weight
        img = G.synthesis(ws)
    torch.save({"state": G.state_dict(), "ws": ws}, path)
    u8 = to_u8(img)
    return {"flops": conv_flops(G), "std": float(img.std()), "clipped": float(((u8 == 0) | (u8 == 255)).mean())}


def serve(case: str, impl: str, weights: str, original: str | None, threads: int) -> None:
    def make():
        import torch

        data = torch.load(weights, weights_only=True)
        ws = data["ws"]
        if impl == "original":
            pc.prepare_original(original, expect=("training/networks_stylegan3.py",))
            from training.networks_stylegan3 import Generator  # noqa: PLC0415  (the checkout, at run time)

            G = Generator(**init_kwargs(case)).eval()
            G.load_state_dict(data["state"], strict=True)

            def run():
                with torch.no_grad():
                    return G.synthesis(ws, noise_mode="const", force_fp32=True)

            return run
        from ganeditor.archs import build

        G = build("stylegan3-generator", **init_kwargs(case)).eval()
        G.load_state_dict(data["state"], strict=True)

        def run_ours():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=impl == "fast"):
                return G.synthesis(ws).float()

        return run_ours

    pc.serve(make, threads, to_u8=to_u8)


def perf_cases(cases: list[str], original: str | None, tmp: str, threads: int) -> list[pc.Case]:
    """The table rows of these cases (writes their weights under ``tmp`` first)."""
    out = []
    for case in cases:
        weights = str(Path(tmp) / f"sg3-{case}.pt")
        cmd = [sys.executable, __file__, "--make-weights", case, weights] + (["--original", original] if original else [])
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=pc.ROOT, env=pc.child_env(threads))
        if r.returncode:
            raise SystemExit(f"{case}: making weights failed: {r.stderr.strip().splitlines()[-1:]}")
        info = json.loads(r.stdout.strip().splitlines()[-1])
        base = [sys.executable, __file__, "--weights", weights, "--threads", str(threads), "--serve", case]
        impls = {"original": base + ["original", "--original", original]} if original else {}
        impls |= {"exact": base + ["exact"], "fast": base + ["fast"]}
        note = (f"image std {info['std']:.2f}, {100 * info['clipped']:.2f}% of 8-bit values clipped; "
                f"weights {'from the original constructor' if original else 'from ours (no --original)'}")  # fmt: skip
        if case in TARGETS:
            note += f"; target <= {TARGETS[case]:.0f} s wall at 2 threads"
        out.append(pc.Case(f"StyleGAN3-{case[0]} {case[1:]}", impls, flops=info["flops"], note=note))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["T256", "R256", "T1024", "R1024"])
    ap.add_argument("--rounds", type=int, default=3, help="timed interleaved rounds (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--metric", choices=pc.METRICS, default="cpu")
    pc.add_original_arg(ap, "NVlabs stylegan3")
    ap.add_argument("--serve", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--make-weights", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_weights:
        case, path = args.make_weights
        print(json.dumps(make_weights(case, args.original, path)))
        return
    if args.serve:
        serve(*args.serve, args.weights, args.original, args.threads)
        return
    peak = pc.conv_peak(args.threads, args.metric)
    print(pc.uptime())
    with tempfile.TemporaryDirectory(prefix="sg3-") as tmp:
        rows = [pc.measure(c, args.rounds, args.threads) for c in perf_cases(args.cases, args.original, tmp, args.threads)]
    print(pc.format_table(rows, args.metric, peak))
    print(pc.uptime())


if __name__ == "__main__":
    main()
