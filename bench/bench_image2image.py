"""Seconds and peak memory of upscaling / translation: our tiled engine vs one whole-image forward.

    python bench/bench_image2image.py                       # quick: 256x192
    python bench/bench_image2image.py --size 4000x3000 --whole-size 512x384

Cases (random weights of the real sizes unless the converted model is installed under its name):
  realesrgan-x4plus  RRDBNet 64 features, 23 blocks, growth 32, x4
  srvgg-x4v3         SRVGGNetCompact 64 features, 32 convs, PReLU, x4 (realesr-general-x4v3 size)
  cyclegan-9blocks   ResnetGenerator ngf 64, 9 blocks, instance norm (exact banded engine)

Each measurement runs in its own process; peak memory is that process's ru_maxrss.  The "whole"
rows run the network once on the whole image (the upstream way); the table also gives the largest
difference between the tiled and whole outputs when both ran at the same size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = ("realesrgan-x4plus", "srvgg-x4v3", "cyclegan-9blocks")


def _net(case: str):
    import torch

    from ganeditor.archs import build
    from ganeditor.core.errors import GanEditorError
    from ganeditor.core.model_store import resolve_model
    from ganeditor.formats import load_checkpoint

    names = {"realesrgan-x4plus": "realesrgan-x4plus", "srvgg-x4v3": "realesr-general-x4v3", "cyclegan-9blocks": None}
    if names[case]:
        try:
            return load_checkpoint(resolve_model(names[case])).primary, "converted weights"
        except GanEditorError:
            pass
    torch.manual_seed(0)
    if case == "realesrgan-x4plus":
        net = build("rrdbnet", num_feat=64, num_block=23, num_grow_ch=32, scale=4)
    elif case == "srvgg-x4v3":
        net = build("srvgg", num_feat=64, num_conv=32, upscale=4, act_type="prelu")
    else:
        net = build("cyclegan-resnet-generator", ngf=64, n_blocks=9)
    return net.eval().requires_grad_(False), "random weights"


def _photo(w: int, h: int):
    """A smooth synthetic photo (bicubic-upscaled noise), uint8 [H, W, 3]."""
    import numpy as np
    from PIL import Image

    small = np.random.RandomState(0).randint(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def worker(args: argparse.Namespace) -> None:
    """Run one measurement and print a JSON line."""
    import numpy as np
    import torch

    from ganeditor.core.imageio import CYCLEGAN_CONVENTION, SR_CONVENTION, quantize, to_tensor
    from ganeditor.core.tiling import run_tiled
    from ganeditor.core.tiling_common import TileOptions, padded_index

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    net, source = _net(args.case)
    img = _photo(w, h)
    translate = args.case.startswith("cyclegan")
    conv = CYCLEGAN_CONVENTION if translate else SR_CONVENTION
    scale = getattr(net, "scale", 1)
    autocast = torch.bfloat16 if args.fast else None
    if args.fast:
        net.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    if args.mode == "tiled":
        opts = TileOptions(tile=args.tile, mod=net.size_multiple, global_stats=net.needs_global_stats,
                           autocast=autocast, channels_last=args.fast, conv=conv)
        out = run_tiled(net, img, scale, opts)
    else:
        mod = 4 if translate else 1
        x = to_tensor(img[np.ix_(padded_index(h, 0, mod), padded_index(w, 0, mod))], conv)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.fast):
            y = net(x)[0, :, : h * scale, : w * scale].float().permute(1, 2, 0)
        del x
        out = quantize(y, conv).numpy()
        del y
    seconds = time.perf_counter() - t0
    if args.save:
        np.save(args.save, out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": rss, "out_bytes": out.nbytes, "source": source}))


def _run(case: str, mode: str, size: str, a: argparse.Namespace, save: str | None) -> dict | None:
    cmd = [sys.executable, __file__, "--worker", "--case", case, "--mode", mode, "--size", size,
           "--threads", str(a.threads)] + (["--tile", str(a.tile)] if a.tile else []) + (["--fast"] if a.fast else [])
    cmd += ["--save", save] if save else []
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(a.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["killed"])[-1]
        print(f"  {case} {mode} {size}: failed ({tail})", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="256x192", help="input size WxH for the tiled engine (default 256x192)")
    p.add_argument("--whole-size", default=None, help="input size for the whole-image runs (default: --size)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    p.add_argument("--tile", type=int, default=None, help="tile size (default: automatic)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--fast", action="store_true", help="bf16 autocast + channels_last for both modes")
    p.add_argument("--no-whole", action="store_true", help="skip the whole-image baseline")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return
    import numpy as np

    whole_size = a.whole_size or a.size
    print(f"threads {a.threads}, {'bf16 fast mode' if a.fast else 'fp32'}, tile {a.tile or 'auto'}")
    print(f"{'case':<18} {'mode':<6} {'input':>10} {'seconds':>9} {'s/MP':>7} {'peak MiB':>9} {'out MiB':>8} {'max diff':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in a.cases.split(","):
            runs = [("tiled", a.size)] + ([] if a.no_whole else [("whole", whole_size)])
            if not a.no_whole and whole_size != a.size:
                runs.insert(1, ("tiled", whole_size))
            saved: dict[tuple[str, str], str] = {}
            for mode, size in runs:
                path = os.path.join(tmp, f"{case}-{mode}-{size}.npy")
                r = _run(case, mode, size, a, path)
                if r is None:
                    continue
                saved[(mode, size)] = path
                diff = ""
                if mode == "whole" and ("tiled", size) in saved:
                    d = np.abs(np.load(saved[("tiled", size)]).astype(int) - np.load(path).astype(int))
                    diff = f"{d.max()}/255"
                w, h = (int(v) for v in size.split("x"))
                print(f"{case:<18} {mode:<6} {size:>10} {r['seconds']:>9.2f} {r['seconds'] / (w * h / 1e6):>7.1f} "
                      f"{r['peak_rss'] / 2**20:>9.0f} {r['out_bytes'] / 2**20:>8.1f} {diff:>9}  ({r['source']})", flush=True)


if __name__ == "__main__":
    main()
