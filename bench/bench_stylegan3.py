"""StyleGAN3 generator speed and peak memory on this machine: seconds/image, peak RSS.

    python bench/bench_stylegan3.py [--cases T256 R256 T1024 R1024] [--repeat 3] [--threads 2]
                                    [--impl fast ref]

Random weights of the real FFHQ sizes: T: channel_base 32768, channel_max 512; R: channel_base
65536, channel_max 1024, 1x1 convs, radial filters (as NVlabs train.py --cfg=stylegan3-r);
z/w 512, 2 mapping layers, 14 layers + ToRGB.  `fast` is our default path (strip/polyphase
filtered leaky ReLU); `ref` is our textbook path, the same algorithm as the original's CPU path
(zero insertion, full-size intermediates).  Each case runs in a fresh process so its peak RSS
(whole process, ru_maxrss) is its own; time is the median of ``--repeat`` calls after a warm-up.
Other engineers share the CPU: rerun and compare medians.
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


def worker(case: str, impl: str, repeat: int, threads: int) -> dict:
    """Time one case in this process; returns seconds/image and peak RSS."""
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
    G.synthesis.set_impl(impl)
    z = torch.from_numpy(np.random.RandomState(0).randn(1, 512))
    ts = []
    with torch.inference_mode():
        for i in range(repeat + 1):
            t = time.perf_counter()
            img = G(z, None, truncation_psi=0.7)
            if i:
                ts.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"case": case, "impl": impl, "s": statistics.median(ts), "runs": ts, "peak_gib": rss,
            "img_mean": float(img.mean()), "threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["T256", "R256", "T1024", "R1024"])
    ap.add_argument("--impl", nargs="+", default=["fast"], choices=["fast", "ref"])
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per case (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.repeat, args.threads)))
        return
    targets = {"T1024": 10, "T256": 2, "R1024": 15, "R256": 4}
    print(f"{'case':7} {'impl':5} {'s/image':>8} {'target':>7} {'peak GiB':>9}  runs (threads {args.threads})")
    for case in args.cases:
        for impl in args.impl:
            cmd = [sys.executable, __file__, "--worker", case, impl, "--repeat", str(args.repeat), "--threads", str(args.threads)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"{case:7} {impl:5} failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            runs = " ".join(f"{t:.2f}" for t in r["runs"])
            print(f"{case:7} {impl:5} {r['s']:8.2f} {targets.get(case, float('nan')):7.1f} {r['peak_gib']:9.2f}  {runs}")


if __name__ == "__main__":
    main()
