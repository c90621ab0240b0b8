"""The models shipped in models/: every demo model is there, matches its card's SHA-256, loads, and runs."""

import hashlib
import re
from pathlib import Path

import pytest
import torch

from ganeditor.core.model_store import resolve_model
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.direction_io import generator_fingerprint, load_library

MODELS = Path(__file__).resolve().parents[1] / "models"
DEMO = ["portrait-stylegan2", "portrait-stylegan2-encoder", "portrait-stylegan2-directions", "daynight-cyclegan",
        "srgan-x4", "srgan-x4-psnr", "realesrgan-x4plus", "portrait-attributes", "mtcnn"]  # fmt: skip


def _card_hashes() -> dict[str, str]:
    """file name -> SHA-256 stated by the cards (main file rows and 'PSNR-stage model' rows)."""
    out = {}
    for card in MODELS.glob("*.md"):
        text = card.read_text(encoding="utf-8")
        for name, digest in re.findall(r"`models/([\w.-]+\.safetensors)`[^\n]*?SHA-256 `([0-9a-f]{64})`", text):
            out[name] = digest
        main = re.search(r"\| file \| `models/([\w.-]+)`.*\n\| SHA-256 \| `([0-9a-f]{64})`", text)
        if main:
            out[main.group(1)] = main.group(2)
        inline = re.search(r"fp16 safetensors, [\d.]+ MB, SHA-256 `([0-9a-f]{64})`", text)
        if inline:
            out[card.stem + ".safetensors"] = inline.group(1)
    return out


def test_every_demo_model_is_shipped_with_a_card_stating_its_hash():
    hashes = _card_hashes()
    for name in DEMO:
        f = MODELS / f"{name}.safetensors"
        assert f.is_file(), f"{f.name} missing"
        assert f.name in hashes, f"no card states the SHA-256 of {f.name}"
        assert hashlib.sha256(f.read_bytes()).hexdigest() == hashes[f.name], f"{f.name} differs from its card"
    total = sum(p.stat().st_size for p in MODELS.iterdir() if p.is_file())
    assert total < 150e6, f"models/ holds {total / 1e6:.0f} MB"


@pytest.fixture(scope="module")
def portrait():
    return load_checkpoint(MODELS / "portrait-stylegan2.safetensors").primary.eval()


def test_the_portrait_generator_its_encoder_and_its_directions_fit_together(portrait):
    G = portrait
    assert G.img_resolution >= 64
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim), None, noise_mode="const")
        E = load_checkpoint(MODELS / "portrait-stylegan2-encoder.safetensors").nets["E"].eval()
        ws = E(img.float())
    assert img.shape == (2, 3, G.img_resolution, G.img_resolution) and torch.isfinite(img).all()
    assert ws.shape == (2, G.num_ws, G.w_dim)
    lib = load_library(MODELS / "portrait-stylegan2-directions.safetensors")
    lib.check_generator(generator_fingerprint(G), G.w_dim)  # raises for another generator
    names = {d.name for d in lib.directions}
    assert {"smile", "age", "glasses", "smile_cond"} <= names and {"interfacegan", "sefa", "ganspace"} <= {
        d.source for d in lib.directions}


@pytest.mark.parametrize("name", ["daynight-cyclegan", "srgan-x4", "srgan-x4-psnr"])
def test_the_image_to_image_demo_models_run(name):
    ck = load_checkpoint(resolve_model(name))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for role, net in ck.nets.items():
            y = net.eval()(x * 2 - 1 if name.startswith("daynight") else x)
            scale = 1 if name.startswith("daynight") else 4
            assert y.shape == (1, 3, 32 * scale, 32 * scale) and torch.isfinite(y).all(), role
