"""CycleGAN (junyanz) ResnetGenerator / PatchGAN discriminator and their .pth reader.

Goldens in tests/data/cyclegan were made by the ORIGINAL ``test.py --model test --no_dropout
--preprocess none`` (CPU) from checkpoints our exporter wrote; see tests/data/cyclegan/README.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.archs import build
from ganeditor.formats import load_checkpoint
from writers import torch_pth_export as X


def _translate_like_junyanz(net: torch.nn.Module, png) -> np.ndarray:
    """junyanz test conventions: ToTensor + Normalize(0.5, 0.5); tensor2im ((x + 1) / 2 * 255) truncated."""
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.float32) / 255
    x = (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None] - 0.5) / 0.5
    with torch.inference_mode():
        y = net(x)[0].float().numpy()
    return ((np.transpose(y, (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)


CASES = [
    ("latest_net_G_A.pth", "resnet9_instance", {"ngf": 8, "n_blocks": 9, "norm": "instance"}),
    ("resnet6_net_G.pth", "resnet6_instance", {"ngf": 8, "n_blocks": 6, "norm": "instance"}),
    ("batchnorm_net_G.pth", "resnet6_batch_eval", {"ngf": 4, "n_blocks": 6, "norm": "batch"}),
]


@pytest.mark.parametrize("fname,golden,kwargs", CASES, ids=[c[1] for c in CASES])
def test_cyclegan_matches_original(data_dir, fname, golden, kwargs):
    d = data_dir / "cyclegan"
    ckpt = load_checkpoint(d / fname)
    assert ckpt.format_id == "junyanz-cyclegan-pth" and list(ckpt.nets) == ["G"]
    assert ckpt.meta.get("junyanz_name") == ("G_A" if fname.startswith("latest") else "G")
    net = ckpt.primary
    expected = {"input_nc": 3, "output_nc": 3, "use_dropout": False, "padding_type": "reflect", **kwargs}
    assert net.arch_name == "cyclegan-resnet-generator" and net.init_kwargs == expected
    out = _translate_like_junyanz(net, d / "input_24x20.png")
    g = np.asarray(Image.open(d / f"golden_{golden}.png").convert("RGB"))
    assert out.shape == g.shape
    assert np.abs(out.astype(int) - g.astype(int)).max() <= 1


def test_old_instance_norm_stats_and_metadata_dropped(data_dir):
    path = data_dir / "cyclegan" / "latest_net_G_A.pth"
    raw = torch.load(path, weights_only=True)
    assert hasattr(raw, "_metadata")  # as torch.save(net.state_dict()) writes it
    stats = [k for k in raw if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert "model.2.running_mean" in stats and "model.10.conv_block.2.running_var" in stats
    net = load_checkpoint(path).primary
    assert not any(k.endswith("running_mean") for k in net.state_dict())


def test_sequential_indices_as_upstream():
    g9 = build("cyclegan-resnet-generator", ngf=4, n_blocks=9)
    convs = sorted({int(k.split(".")[1]) for k in g9.state_dict() if k.count(".") == 2})
    assert convs == [1, 4, 7, 19, 22, 26]
    assert isinstance(g9.model, torch.nn.Sequential) and len(g9.model) == 28
    assert isinstance(g9.model[10].conv_block, torch.nn.Sequential)
    assert "model.10.conv_block.5.weight" in g9.state_dict()
    g6 = build("cyclegan-resnet-generator", ngf=4, n_blocks=6)
    assert "model.23.weight" in g6.state_dict() and isinstance(g6.model[16], torch.nn.ConvTranspose2d)
    gd = build("cyclegan-resnet-generator", ngf=4, n_blocks=2, use_dropout=True)
    assert "model.10.conv_block.6.weight" in gd.state_dict()
    gb = build("cyclegan-resnet-generator", ngf=4, n_blocks=1, norm="batch")
    assert "model.1.bias" not in gb.state_dict() and "model.2.running_var" in gb.state_dict()


def test_io_conventions_and_describe(data_dir):
    g = load_checkpoint(data_dir / "cyclegan" / "latest_net_G_A.pth").primary
    assert (g.io_convention, g.input_mean, g.input_std, g.scale, g.size_multiple) == ("tanh", 0.5, 0.5, 1, 4)
    assert g.needs_global_stats is True
    assert build("cyclegan-resnet-generator", norm="batch").needs_global_stats is False
    info = g.describe()
    assert info["summary"] == "CycleGAN ResNet generator, 9 blocks, ngf 8, instance norm"
    assert (info["blocks"], info["num_feat"], info["in_channels"], info["out_channels"]) == (9, 8, 3, 3)


def test_patchgan_discriminator_matches_original(data_dir):
    d = data_dir / "cyclegan"
    ckpt = load_checkpoint(d / "latest_net_D_A.pth")
    assert list(ckpt.nets) == ["D"]
    D = ckpt.primary
    assert D.init_kwargs == {"input_nc": 3, "ndf": 4, "n_layers": 3, "norm": "instance"}
    img = np.asarray(Image.open(d / "input_24x20.png").convert("RGB")).astype(np.float32) / 255
    x = (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None] - 0.5) / 0.5
    x = torch.nn.functional.interpolate(x, size=(40, 48), mode="nearest")
    np.testing.assert_allclose(D(x).detach().numpy(), np.load(d / "golden_patchgan_D_A.npy"), rtol=0, atol=1e-5)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("dropout,padding", [(False, "reflect"), (True, "reflect"), (False, "zero"), (True, "zero")])
def test_generator_round_trip_infers_everything(tmp_path, norm, dropout, padding):
    torch.manual_seed(1)
    kw = {"input_nc": 1, "output_nc": 3, "ngf": 4, "norm": norm, "use_dropout": dropout, "n_blocks": 2, "padding_type": padding}
    net = build("cyclegan-resnet-generator", **kw).eval()
    X.save_junyanz(net, tmp_path / "latest_net_G_B.pth")
    got = load_checkpoint(tmp_path / "latest_net_G_B.pth")
    assert got.primary_role == "G" and got.primary.init_kwargs == kw
    x = torch.rand(1, 1, 16, 12) * 2 - 1
    assert torch.equal(got.primary(x), net(x))


@pytest.mark.parametrize("norm,n_layers", [("batch", 3), ("none", 2), ("instance", 5)])
def test_discriminator_round_trip(tmp_path, norm, n_layers):
    net = build("patchgan-discriminator", ndf=4, n_layers=n_layers, norm=norm).eval()
    X.save_junyanz(net, tmp_path / "latest_net_D_B.pth")
    got = load_checkpoint(tmp_path / "latest_net_D_B.pth").primary
    assert got.init_kwargs == {"input_nc": 3, "ndf": 4, "n_layers": n_layers, "norm": norm}
