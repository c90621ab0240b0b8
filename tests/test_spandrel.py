"""Checkpoints only spandrel knows: written by spandrel's own classes with random weights, read by our
safe loaders, run through our tiler and compared with spandrel's own untiled output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("spandrel")
import spandrel  # noqa: E402
from spandrel.architectures import SPAN, DnCNN, NAFNet, SwinIR  # noqa: E402

from ganeditor.cli import main  # noqa: E402
from ganeditor.core.errors import CheckpointError, UnsafeCheckpointError  # noqa: E402
from ganeditor.core.imageio import SR_CONVENTION, LoadedImage, quantize, read_image, to_tensor, write_image  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.catalog import describe  # noqa: E402
from ganeditor.pipelines.image2image import Image2ImageOptions, image_to_image  # noqa: E402


def _random(net: torch.nn.Module, seed: int = 0) -> dict:
    """The net's state dict with zero-initialised tensors made random too (else residual branches are off)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.numel() and p.abs().max() == 0:
                p.normal_(0, 0.05)
    return net.state_dict()


ARCHS = {  # spandrel class -> (small instance, exact tiles expected)
    "SPAN": (lambda: SPAN.SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2), True),
    "DnCNN": (lambda: DnCNN.DnCNN(in_nc=3, out_nc=3, nc=8, nb=4), True),
    "DnCNN-gray": (lambda: DnCNN.DnCNN(in_nc=1, out_nc=1, nc=8, nb=4), True),
    "NAFNet": (lambda: NAFNet.NAFNet(img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]), False),
    "SwinIR": (lambda: SwinIR.SwinIR(upscale=2, img_size=16, window_size=8, embed_dim=12, depths=[2], num_heads=[2],
                                     mlp_ratio=2, upsampler="pixelshuffledirect"), False),
}


def _image(h=40, w=56, c=3, seed=0):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 6), np.cos(yy / 9), np.sin((xx + yy) / 11)], -1)[..., :c] * 0.35 + 0.5
    return (np.clip(base + np.random.default_rng(seed).normal(0, 0.03, base.shape), 0, 1) * 255).astype(np.uint8)


def _spandrel_output(sd: dict, img: np.ndarray) -> np.ndarray:
    """What spandrel itself gives on the whole image (its loader on the same tensors), 8-bit."""
    d = spandrel.ModelLoader().load_from_state_dict(sd).eval()
    x = to_tensor(img, SR_CONVENTION)
    if d.input_channels == 1:
        x = x[:, :1]
    with torch.no_grad():
        y = d(x)[0].permute(1, 2, 0)
    return quantize(y, SR_CONVENTION).numpy()


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_spandrel_checkpoint_matches_spandrel(name, tmp_path):
    make, exact = ARCHS[name]
    sd = _random(make())
    path = tmp_path / f"{name}.pth"
    torch.save({"params_ema": sd}, path)  # BasicSR-style wrapper, as people download them
    ckpt = load_checkpoint(path)
    net = ckpt.primary
    assert ckpt.format_id == "spandrel" and net.arch_name == f"spandrel:{name.split('-')[0]}"
    assert (net.receptive_radius is not None) == exact
    gray = name.endswith("gray")
    img = _image(c=1 if gray else 3)
    ref = _spandrel_output(sd, np.repeat(img, 3, 2) if gray else img)
    whole = image_to_image(net, LoadedImage(img), Image2ImageOptions(tile=512)).pixels
    assert np.abs(whole.astype(int) - ref.astype(int)).max() <= 1
    tiled = image_to_image(net, LoadedImage(img), Image2ImageOptions(tile=16)).pixels
    diff = np.abs(tiled.astype(int) - ref.astype(int))
    if exact:
        assert diff.max() <= 1
    else:  # overlap-blended tiles with 64 px of context: close, and said so
        assert diff.mean() < 1.0 and "overlap-blended" in net.describe()["tiling"]


def test_windowed_attention_tiles_cut_the_whole_images_windows(tmp_path):
    """SCUNet attends within 8-px windows at 1/8 resolution (64 px, shifted by half): tiles of a net
    without a bounded receptive field lie on a 64-px grid, so each tile is cut into the windows the
    whole image is cut into (a 48-px grid with the same context was 81/255 off)."""
    from spandrel.architectures.SCUNet import SCUNet

    sd = _random(SCUNet(config=[1] * 7, dim=64))
    torch.save(sd, tmp_path / "scunet.pth")
    net = load_checkpoint(tmp_path / "scunet.pth").primary
    img = _image(128, 160)
    ref = _spandrel_output(sd, img).astype(int)
    assert net.receptive_radius is None
    for tile in (48, 96):  # both off the 64-px grid: rounded onto it
        tiled = image_to_image(net, LoadedImage(img), Image2ImageOptions(tile=tile)).pixels
        assert np.abs(tiled.astype(int) - ref).max() <= 2, tile


def test_foreign_safetensors_and_info(tmp_path):
    from safetensors.torch import save_file

    sd = _random(DnCNN.DnCNN(in_nc=3, out_nc=3, nc=8, nb=4))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "dncnn.safetensors"))
    facts = describe(tmp_path / "dncnn.safetensors")
    text = str(facts)
    assert "DnCNN" in text and "spandrel" in text and "exact tiles" in text


def test_upscale_and_restore_cli_take_spandrel_models(tmp_path):
    span = tmp_path / "span.pth"
    torch.save(_random(SPAN.SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)), span)
    dncnn = tmp_path / "dncnn.pth"
    torch.save(_random(DnCNN.DnCNN(in_nc=3, out_nc=3, nc=8, nb=4)), dncnn)
    write_image(tmp_path / "in.png", _image(), None, 8)
    assert main(["upscale", str(span), str(tmp_path / "in.png"), str(tmp_path / "up.png")]) == 0
    assert read_image(tmp_path / "up.png").pixels.shape == (80, 112, 3)
    assert main(["restore", str(tmp_path / "in.png"), str(tmp_path / "r.png"), "--stages", "global",
                 "--model", f"global={dncnn}"]) == 0
    assert main(["restore", str(tmp_path / "in.png"), str(tmp_path / "r2.png"), "--stages", "global",
                 "--model", f"global={span}"]) == 2  # an upscaler is not a 1x restorer


def test_unknown_and_unsafe_files_are_refused(tmp_path):
    p = tmp_path / "odd.pt"
    torch.save({"model": {"encoder.layer.weight": torch.zeros(4, 4)}}, p)
    with pytest.raises(CheckpointError, match=r"unknown architecture: none of the \d+ architectures spandrel"):
        load_checkpoint(p)
    q = tmp_path / "evil.pth"
    torch.save({"params": _random(DnCNN.DnCNN(in_nc=3, out_nc=3, nc=8, nb=4)), "opt": torch.optim.SGD}, q)
    with pytest.raises(UnsafeCheckpointError, match="torch.optim"):
        load_checkpoint(q)
