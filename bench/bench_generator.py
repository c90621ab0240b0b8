"""StyleGAN2 generator speed on this machine: ms/image, FLOPs, ratio to the compute floor.

    python bench/bench_generator.py [--res 256 1024] [--repeat 3] [--threads 2]
                                    [--original /tmp/stylegan2-ada-pytorch]

Random weights of the real sizes (256: paper256, channel_base 16384; 1024: config-f, channel_base
32768; channel_max 512, 8 mapping layers, z/w 512).  Modes: `exact` (fp32, our default path),
`fast` (bf16 autocast + channels_last), `preview` (fast, re-running only the blocks from 64 px up
from cached activations, as a slider preview does).  `--original` also times the NVlabs code
from a checkout given by path (imported at run time, never copied), fp32, same weights, and
reports the output difference.  The peak is measured here with a large matmul and conv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ganeditor.archs import build

CONFIGS = {
    256: dict(channel_base=16384, channel_max=512),  # paper256
    1024: dict(channel_base=32768, channel_max=512),  # config-f
}


def timeit(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def interleaved(fns: dict, repeat: int) -> dict[str, float]:
    """Median seconds per function, calling them in turn (one warm-up each)."""
    for fn in fns.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def peaks(repeat: int) -> dict[str, float]:
    """Measured GFLOP/s: fp32 matmul/conv, bf16 channels_last conv."""
    out = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out["matmul fp32"] = 2 * 2048**3 / timeit(lambda: a @ b, repeat) / 1e9
    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    flops = 2 * 64 * 64 * 512 * 512 * 9
    out["conv fp32"] = flops / timeit(lambda: F.conv2d(x, w, padding=1), repeat) / 1e9
    xc, wc = x.to(memory_format=torch.channels_last).bfloat16(), w.to(memory_format=torch.channels_last).bfloat16()
    out["conv bf16 CL"] = flops / timeit(lambda: F.conv2d(xc, wc, padding=1), repeat) / 1e9
    return out


def make_generator(res: int) -> torch.nn.Module:
    torch.manual_seed(0)
    G = build("stylegan2-generator", z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
              mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res])  # fmt: skip
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.mapping.w_avg.normal_(0, 0.3)
    return G.eval()


def count_flops(G, ws) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        G.synthesis(ws, noise_mode="const")
    return float(fc.get_total_flops())


def load_original(path: str):
    sys.path.insert(0, path)
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it, unused here
    from training.networks import Generator  # noqa: PLC0415  (the user's checkout, at run time)

    return Generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, nargs="+", default=[256, 1024], choices=sorted(CONFIGS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--original", help="path of an NVlabs stylegan2-ada-pytorch checkout to time side by side")
    ap.add_argument("--modes", nargs="+", default=["exact", "fast", "preview"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pk = peaks(args.repeat)
    print("peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in pk.items()))
    print(f"{'res':>5} {'mode':<9} {'ms/image':>9} {'GFLOP':>7} {'GFLOP/s':>8} {'floor ms':>9} {'x floor':>7}  notes")
    for res in args.res:
        G = make_generator(res)
        z = torch.from_numpy(np.random.RandomState(0).randn(1, 512)).float()
        with torch.inference_mode():
            ws = G.mapping(z, None, truncation_psi=0.7)
            ref = G.synthesis(ws, noise_mode="const")
        flops = count_flops(G, ws)
        floor32 = flops / (pk["conv fp32"] * 1e9)
        floor16 = flops / (pk["conv bf16 CL"] * 1e9)
        rows = []
        og = None
        if args.original:  # timed interleaved with ours, so that load from other processes hits both alike
            Orig = load_original(args.original)
            og = Orig(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                      mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res]).eval()  # fmt: skip
            og.load_state_dict(G.state_dict(), strict=True)
        if "exact" in args.modes or og is not None:
            fns = {"exact": lambda: G.synthesis(ws, noise_mode="const")}
            if og is not None:
                fns["original"] = lambda: og.synthesis(ws, noise_mode="const", force_fp32=True)
            with torch.no_grad():
                times = interleaved(fns, args.repeat)
            rows.append(("exact", times["exact"], flops, floor32, "fp32"))
        if "fast" in args.modes or "preview" in args.modes:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                fast = lambda: G.synthesis(ws, noise_mode="const", channels_last=True)  # noqa: E731
                img = fast().float()
                t = timeit(fast, args.repeat) if "fast" in args.modes else None
                syn = G.synthesis
                bws = syn.split_ws(ws)
                k = syn.block_resolutions.index(64)
                x0, img0 = syn.run_blocks(bws, stop=k, noise_mode="const", channels_last=True)
                tp = timeit(lambda: syn.run_blocks(bws, x=x0, img=img0, start=k, noise_mode="const",
                                                   channels_last=True), args.repeat)  # fmt: skip
            d8 = (to_u8(img).astype(int) - to_u8(ref).astype(int)).__abs__()
            note = f"bf16 drift vs exact: 8-bit max {d8.max()}, mean {d8.mean():.2f}"
            if t is not None:
                rows.append(("fast", t, flops, floor16, note))
            if "preview" in args.modes:
                rows.append(("preview", tp, None, None, "blocks >= 64 px re-run from cached 32 px activations"))
        if og is not None:
            with torch.no_grad():
                oimg = og.synthesis(ws.clone(), noise_mode="const", force_fp32=True)
            t = times["original"]
            d8 = np.abs(to_u8(oimg).astype(int) - to_u8(ref).astype(int))
            note = f"ours vs original: 8-bit max {d8.max()}, float max {float((oimg - ref).abs().max()):.1e}"
            rows.append(("original", t, flops, floor32, note))
        for mode, t, fl, floor, note in rows:
            fl_s = f"{fl / 1e9:7.1f}" if fl else f"{'':>7}"
            rate = f"{fl / t / 1e9:8.0f}" if fl else f"{'':>8}"
            fls = f"{floor * 1e3:9.0f}" if floor else f"{'':>9}"
            xf = f"{t / floor:7.2f}" if floor else f"{'':>7}"
            print(f"{res:>5} {mode:<9} {t * 1e3:9.0f} {fl_s} {rate} {fls} {xf}  {note}")
        exact = [r for r in rows if r[0] == "exact"]
        orig = [r for r in rows if r[0] == "original"]
        if exact and orig:
            print(f"{res:>5} speed-up exact vs original: {orig[0][1] / exact[0][1]:.2f}x")


def to_u8(img: torch.Tensor) -> np.ndarray:
    return (img.float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


if __name__ == "__main__":
    main()
