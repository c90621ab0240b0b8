"""spandrel parity: checkpoints written by spandrel's own classes (default sizes, random weights) read by
our loaders and run through our tiler, against spandrel's own untiled output on the same tensors.

    python bench/bench_spandrel.py                    # the restoration-relevant architectures
    python bench/bench_spandrel.py --archs SPAN GFPGAN

For each architecture: which reader took the file (ours first, spandrel after), parameters, the
measured receptive radius (None: global operations -> overlap-blended tiles), the largest 8-bit
difference of a whole-image run and of a tiled run (``--tile``, 48 px by default, on a ``--size`` image,
192x160 by default) from
spandrel's output, and the seconds of the tiled run.  Face models run on a 512x512 crop and
inpainters on an image with a mask, as the restore pipeline runs them (never tiled).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganeditor.core.imageio import SR_CONVENTION, LoadedImage, quantize, to_tensor  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.image2image import Image2ImageOptions, image_to_image  # noqa: E402

ARCHS = ("ESRGAN", "Compact", "SPAN", "RealCUGAN", "PLKSR", "OmniSR", "SwinIR", "HAT", "DAT", "SCUNet", "NAFNet",
         "FBCNN", "DRUNet", "DnCNN", "KBNet", "Uformer", "GFPGAN", "RestoreFormer", "LaMa")
CLASS = {"RealCUGAN": "UpCunet2x", "KBNet": "KBNet_s"}  # modules exporting several classes
KWARGS = {  # where the class has no usable defaults (published configurations)
    "SPAN": dict(num_in_ch=3, num_out_ch=3, upscale=4),
    "NAFNet": dict(img_channel=3, width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1]),
    "DRUNet": dict(in_nc=4, out_nc=3),  # colour + noise-level map, as the published drunet_color
    "LaMa": dict(in_nc=4, out_nc=3),  # RGB + mask, as big-lama
    "SwinIR": dict(upscale=2, img_size=64, window_size=8, embed_dim=60, depths=[6, 6, 6, 6], num_heads=[6, 6, 6, 6],
                   mlp_ratio=2, upsampler="pixelshuffledirect"),  # the lightweight x2 model
}


def make(arch: str) -> torch.nn.Module:
    """The architecture's network at spandrel's default size, zero-initialised tensors made random."""
    import importlib

    mod = importlib.import_module(f"spandrel.architectures.{arch}")
    net = getattr(mod, CLASS.get(arch, arch))(**KWARGS.get(arch, {}))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().max() == 0:
                p.normal_(0, 0.02)
    return net.eval()


def image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 6), np.cos(yy / 9), np.sin((xx + yy) / 11)], -1) * 0.35 + 0.5
    return (np.clip(base + np.random.default_rng(0).normal(0, 0.03, base.shape), 0, 1) * 255).astype(np.uint8)


def run(arch: str, tmp: Path, tile: int = 48, size: tuple[int, int] = (192, 160)) -> list[str]:
    import spandrel

    sd = make(arch).state_dict()
    path = tmp / f"{arch}.pth"
    torch.save(sd, path)
    ckpt = load_checkpoint(path)
    net = ckpt.primary
    ref = spandrel.ModelLoader().load_from_state_dict(sd).eval()
    params = sum(p.numel() for p in net.parameters())
    purpose = getattr(net, "purpose", "SR")
    if purpose in ("FaceSR", "Inpainting"):
        img = image(512, 512) if purpose == "FaceSR" else image(96, 80)
        x = to_tensor(img, SR_CONVENTION)
        args = [] if purpose == "FaceSR" else [torch.zeros(1, 1, *img.shape[:2])]
        if args:
            args[0][..., 30:40, 10:70] = 1
        with torch.no_grad():
            torch.manual_seed(1)
            a = ref(x, *args)
            torch.manual_seed(1)
            b = net(x, *args)
        d = int((quantize(a[0].permute(1, 2, 0), SR_CONVENTION).int() - quantize(b[0].permute(1, 2, 0), SR_CONVENTION).int()).abs().max())
        return [arch, ckpt.format_id, f"{params / 1e6:.1f} M", "(whole crop)", str(d), "-", "-"]
    img = image(size[1], size[0])
    if ref.input_channels == 1:  # a gray model: a gray image (the tiler gives it the luma)
        img = np.round(img.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None]
    x = to_tensor(img, SR_CONVENTION)
    with torch.no_grad():
        want = quantize(ref(x)[0].permute(1, 2, 0), SR_CONVENTION).numpy().astype(int)
    whole = image_to_image(net, LoadedImage(img), Image2ImageOptions(tile=4096)).pixels.astype(int)
    t0 = time.monotonic()
    tiled = image_to_image(net, LoadedImage(img), Image2ImageOptions(tile=tile)).pixels.astype(int)
    secs = time.monotonic() - t0
    r = getattr(net, "receptive_radius", "declared by the arch")
    dt = np.abs(tiled - want)
    return [arch, ckpt.format_id, f"{params / 1e6:.1f} M", str(r), str(int(np.abs(whole - want).max())),
            f"{int(dt.max())} (mean {dt.mean():.3f})", f"{secs:.1f}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="*", default=list(ARCHS))
    ap.add_argument("--tile", type=int, default=48, help="tile side of the tiled run (default 48)")
    ap.add_argument("--size", default="192x160", help="WxH of the test image (default 192x160)")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    import tempfile

    print(f"| architecture | read by | parameters | receptive radius | whole: max diff | tiled ({args.tile} px): max diff | s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            try:
                row = run(arch, Path(tmp), args.tile, size)
            except Exception as e:  # noqa: BLE001 - report and go on
                row = [arch, "failed", "", "", " ".join(str(e).split())[:120], "", ""]
            print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
