"""Make ``models/mtcnn.safetensors`` (and its card) from the MTCNN weights in the facenet-pytorch
2.5.3 wheel on PyPI (MIT):

    python models/make_mtcnn.py [--wheel facenet_pytorch-2.5.3-py3-none-any.whl]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps`` (its files only; nothing is
installed).  The three ``.pt`` files inside are plain state dicts: they are read with
``torch.load(weights_only=True)`` (no code runs), checked against the SHA-256 of the 2.5.3 release,
loaded strictly into our ``mtcnn_pnet/rnet/onet`` modules and saved in fp32 (2 MB: fp16 would move
detection scores by ~1e-3 for no real saving).  The file is byte-reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.archs import build  # noqa: E402
from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.formats.base import Checkpoint  # noqa: E402
from ganeditor.formats.native import canonicalize_safetensors, save_checkpoint  # noqa: E402

WHEEL_SPEC = "facenet-pytorch==2.5.3"
WEIGHT_FILES = {  # stage -> SHA-256 of facenet_pytorch/data/<stage>.pt in facenet_pytorch-2.5.3-py3-none-any.whl
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


def fetch_wheel(dest: Path) -> Path:
    """``pip download`` the facenet-pytorch 2.5.3 wheel into ``dest`` (files only)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), WHEEL_SPEC]
    print("downloading (files only, nothing installed): " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return next(dest.glob("facenet_pytorch-2.5.3-*.whl"))


def read_weights(wheel: Path) -> dict[str, dict[str, torch.Tensor]]:
    """stage -> state dict, read safely from the wheel and checked against the release hashes."""
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for stage, digest in WEIGHT_FILES.items():
            blob = z.read(f"facenet_pytorch/data/{stage}.pt")
            if hashlib.sha256(blob).hexdigest() != digest:
                raise SystemExit(f"{stage}.pt in {wheel.name} differs from the facenet-pytorch 2.5.3 release")
            out[stage] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return out


def convert(wheel: Path, out: Path) -> Checkpoint:
    """Build the three nets, load the wheel's weights strictly, save our format, reload and compare."""
    weights = read_weights(wheel)
    nets = {}
    for stage, sd in weights.items():
        net = build(f"mtcnn_{stage}").eval()
        net.load_state_dict(sd, strict=True)
        nets[stage] = net
    meta = {"source": f"PyPI {WHEEL_SPEC}: {wheel.name}, facenet_pytorch/data/{{pnet,rnet,onet}}.pt",
            "licence": "MIT (c) 2019 Timothy Esler (facenet-pytorch)", "kind": "face-detector"}  # fmt: skip
    ckpt = Checkpoint("ganeditor", "GAN Editor safetensors", nets, meta)
    save_checkpoint(ckpt, out)
    canonicalize_safetensors(out)  # sorted header keys: the same bytes every time
    back = load_checkpoint(out)
    for stage, sd in weights.items():
        for k, v in back.nets[stage].state_dict().items():
            assert torch.equal(v, sd[k].float()), f"{stage}.{k} changed on the round trip"
    return back


CARD = """# MTCNN face detector (P-, R-, O-Net) — model card

| | |
|---|---|
| file | `models/mtcnn.safetensors` ({size:,} bytes) |
| SHA-256 | `{sha}` |
| architecture | our `mtcnn_pnet`, `mtcnn_rnet`, `mtcnn_onet` (roles `pnet`, `rnet`, `onet`; key names of facenet-pytorch); {params:,} parameters in all |
| what | face boxes, probabilities and 5 landmarks (eye centres, nose tip, mouth corners); the cascade is `ganeditor/pipelines/face_detect.py` |
| storage | fp32, exactly the values of the `.pt` files (lossless) |
| source | PyPI `{spec}` (wheel `{wheel}`), files `facenet_pytorch/data/pnet.pt` (SHA-256 `{h_p}`), `rnet.pt` (`{h_r}`), `onet.pt` (`{h_o}`) |
| licence | MIT. Copyright (c) 2019 Timothy Esler (facenet-pytorch). facenet-pytorch states that its MTCNN weights were ported from David Sandberg's `facenet` repository (MIT), which converted the models of K. Zhang, Z. Zhang, Z. Li and Y. Qiao, "Joint Face Detection and Alignment Using Multitask Cascaded Convolutional Networks", IEEE Signal Processing Letters, 2016. The MIT notice below must accompany redistributions. |

## How it was made (one command, offline except for PyPI)

```
python models/make_mtcnn.py
```

It fetches the wheel with `pip download --no-deps` (nothing is installed), reads the three `.pt` files
with `torch.load(weights_only=True)` (plain state dicts: no code runs), checks their SHA-256 against
the 2.5.3 release, loads them strictly into our modules, saves, reloads and checks every tensor is
identical. The file is byte-reproducible.

## Verification against the original

`tests/test_align.py`: on `grace_hopper.jpg` the box, landmarks and probability match facenet-pytorch
2.5.3's `MTCNN.detect` (golden `tests/data/align/mtcnn_grace_golden.npz`) within 0.01 px / 1e-5; the
three networks and the whole cascade match the original code on random weights.

## MIT licence of facenet-pytorch

```
{licence}
```
"""

MIT = """MIT License

Copyright (c) 2019 Timothy Esler

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def write_card(out: Path, wheel: Path, ckpt: Checkpoint) -> Path:
    """``mtcnn.md`` beside the weights."""
    params = sum(p.numel() for n in ckpt.nets.values() for p in n.parameters())
    h = {k: v[:8] + "…" + v[-6:] for k, v in WEIGHT_FILES.items()}
    text = CARD.format(size=out.stat().st_size, sha=hashlib.sha256(out.read_bytes()).hexdigest(), params=params,
                       spec=WHEEL_SPEC, wheel=wheel.name, h_p=h["pnet"], h_r=h["rnet"], h_o=h["onet"], licence=MIT)
    card = out.with_suffix(".md")
    with atomic_write(card, "w") as f:
        f.write(text)
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wheel", type=Path, default=None, help="a downloaded facenet_pytorch-2.5.3 wheel")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "mtcnn.safetensors")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        ckpt = convert(wheel, args.out)
        card = write_card(args.out, wheel, ckpt)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, SHA-256 "
          f"{hashlib.sha256(args.out.read_bytes()).hexdigest()}) and {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
