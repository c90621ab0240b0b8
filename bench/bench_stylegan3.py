"""StyleGAN3 generator speed and peak memory on this machine: seconds/image, FLOPs, ratio to the
compute floor measured in the same run, peak RSS.

    python bench/bench_stylegan3.py [--cases T256 R256 T1024 R1024] [--repeat 5] [--threads 2]
                                    [--impl exact fast ref]

Random weights of the real FFHQ sizes: T: channel_base 32768, channel_max 512; R: channel_base
65536, channel_max 1024, 1x1 convs, radial filters (as NVlabs train.py --cfg=stylegan3-r);
z/w 512, 2 mapping layers, 14 layers + ToRGB.  `exact` is our default fp32 path (strip/polyphase
filtered leaky ReLU, within 1/255 of the original); `fast` is the same under bf16 autocast (its
drift against exact is printed); `ref` is our textbook path, the same algorithm as the original's
CPU path (zero insertion, full-size intermediates).  GFLOP counts the convolutions (the work any
implementation must do; the filters add about 2%); the floor is that over the conv peak measured
in this run (fp32, or bf16 channels_last for `fast`).  Each case runs in a fresh process so its
peak RSS (whole process, ru_maxrss) is its own; time is the median of ``--repeat`` calls after a
warm-up, with the median process CPU time beside it (less sensitive to other jobs).  StyleGAN3 has
no block cache: a slider preview (PreviewRenderer) renders the whole network, so its latency is
the `exact`/`fast` time.  Other engineers share the CPU: rerun and compare medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "T": dict(channel_base=32768, channel_max=512),
    "R": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


def conv_flops(G) -> float:
    """FLOPs of the synthesis convolutions (2 * MACs), from the layer shapes."""
    total = 0.0
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        h = int(layer.in_size[1]) + layer.conv_kernel - 1
        w = int(layer.in_size[0]) + layer.conv_kernel - 1
        total += 2.0 * h * w * layer.in_channels * layer.out_channels * layer.conv_kernel**2
    return total


def peaks(repeat: int) -> dict[str, float]:
    """Measured GFLOP/s of a 3x3 512->512 conv at 64x64: fp32 and bf16 channels_last."""
    import torch
    import torch.nn.functional as F

    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    flops = 2 * 64 * 64 * 512 * 512 * 9
    out = {}
    for key, (xx, ww) in {"fp32": (x, w), "bf16 CL": (x.to(memory_format=torch.channels_last).bfloat16(),
                                                       w.to(memory_format=torch.channels_last).bfloat16())}.items():  # fmt: skip
        F.conv2d(xx, ww, padding=1)
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            F.conv2d(xx, ww, padding=1)
            ts.append(time.perf_counter() - t)
        out[key] = flops / statistics.median(ts) / 1e9
    return out


def worker(case: str, impl: str, repeat: int, threads: int) -> dict:
    """Time one case in this process; returns seconds/image, CPU seconds, FLOPs, drift and peak RSS."""
    import numpy as np
    import torch

    from ganeditor.archs import build

    torch.set_num_threads(threads)
    cfg, res = case[0], int(case[1:])
    torch.manual_seed(0)
    G = build("stylegan3-generator", z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
              mapping_kwargs={"num_layers": 2}, **CONFIGS[cfg]).eval()  # fmt: skip
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("affine.weight"):
                p.normal_(0, 1)
        for name, b in G.named_buffers():
            if name.endswith("magnitude_ema"):
                b.fill_(1.5)
    G.synthesis.set_impl("ref" if impl == "ref" else "fast")
    z = torch.from_numpy(np.random.RandomState(0).randn(1, 512))
    ts, cs = [], []
    drift = None
    with torch.inference_mode():
        ws = G.mapping(z, None, truncation_psi=0.7)  # fp32 (the fast mode is for the synthesis)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=impl == "fast"):
        for i in range(repeat + 1):
            c, t = time.process_time(), time.perf_counter()
            img = G.synthesis(ws)
            if i:
                ts.append(time.perf_counter() - t)
                cs.append(time.process_time() - c)
    if impl == "fast":
        G.synthesis.set_impl("fast")
        with torch.inference_mode():
            ref = G.synthesis(ws)
        u8 = lambda t: (t.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).int()  # noqa: E731
        d8 = (u8(img) - u8(ref)).abs()
        drift = f"bf16 drift vs exact: 8-bit max {int(d8.max())}, mean {float(d8.float().mean()):.2f}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"case": case, "impl": impl, "s": statistics.median(ts), "cpu": statistics.median(cs), "runs": ts,
            "peak_gib": rss, "img_mean": float(img.float().mean()), "threads": threads, "flops": conv_flops(G),
            "drift": drift}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["T256", "R256", "T1024", "R1024"])
    ap.add_argument("--impl", nargs="+", default=["exact", "fast"], choices=["exact", "fast", "ref"])
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per case (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.repeat, args.threads)))
        return
    import torch

    torch.set_num_threads(args.threads)
    pk = peaks(args.repeat)
    print("conv peak GFLOP/s (3x3 512->512 at 64x64): " + ", ".join(f"{k} {v:.0f}" for k, v in pk.items()))
    targets = {"T1024": 10, "T256": 2, "R1024": 15, "R256": 4}
    print(f"{'case':7} {'impl':5} {'s/image':>8} {'cpu s':>7} {'target':>7} {'GFLOP':>7} {'floor s':>8} {'x floor':>8} "
          f"{'peak GiB':>9}  runs (threads {args.threads})")  # fmt: skip
    for case in args.cases:
        for impl in args.impl:
            cmd = [sys.executable, __file__, "--worker", case, impl, "--repeat", str(args.repeat), "--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"{case:7} {impl:5} failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            runs = " ".join(f"{t:.2f}" for t in r["runs"])
            floor = r["flops"] / (pk["bf16 CL" if impl == "fast" else "fp32"] * 1e9)
            print(f"{case:7} {impl:5} {r['s']:8.2f} {r['cpu']:7.2f} {targets.get(case, float('nan')):7.1f} "
                  f"{r['flops'] / 1e9:7.0f} {floor:8.2f} {r['s'] / floor:8.2f} {r['peak_gib']:9.2f}  {runs}"
                  + (f"  {r['drift']}" if r["drift"] else ""))  # fmt: skip


if __name__ == "__main__":
    main()
