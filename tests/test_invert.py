"""Inversion engine: the projector algorithm vs the NVlabs original, W/W+/PTI quality, cancel, losses, CLI."""

import numpy as np
import pytest
import torch

from ganeditor.cli import main
from ganeditor.core.errors import CheckpointError
from ganeditor.core.imageio import read_image
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.archs import build
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.invert import ProjectOptions, invert, lr_schedule, project, run_inversion
from ganeditor.pipelines.invert_loss import InversionLoss, PixelSSIMLoss, make_inversion_loss
from ganeditor.pipelines.invert_pti import PTIOptions, apply_pti_delta, save_pti_delta


@pytest.fixture(scope="module")
def G(request):
    from pathlib import Path

    return load_checkpoint(Path(__file__).parent / "data" / "invert" / "g16.safetensors").primary


@pytest.fixture(scope="module")
def target(G):
    from pathlib import Path

    return read_image(Path(__file__).parent / "data" / "invert" / "target_seed5.png").pixels


class SumSquares(InversionLoss):
    """The projector's distance with identity 'features' (pixels / 255), as in the golden run."""

    name = "sum-squares"

    def forward(self, img):
        return ((img - self.target) / 2).square().sum()


def test_projector_matches_nvlabs_original_step_for_step(G, target, data_dir):
    # Golden: NVlabs projector.project (d72cc7d) on CPU, same weights/target, seed 303, 40 steps,
    # VGG16 replaced by pixels/255 (see tests/data/invert/README.md).
    ups = list(project(G, target, SumSquares(), "w", options=ProjectOptions(steps=40, seed=303, preview_every=0)))
    ref = np.load(data_dir / "invert" / "nvlabs_projector_40steps_w.npy")
    ours = ups[-1].stage_result.ws[:, :1].numpy()
    assert ours.shape == ref.shape == (1, 1, 16)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    assert len(ups) == 41 and ups[-1].stage_result.noise is not None


def test_lr_schedule_ramps():
    assert lr_schedule(0.0) == 0.0
    assert lr_schedule(0.05) == pytest.approx(0.1)
    assert lr_schedule(0.5) == pytest.approx(0.1)
    assert lr_schedule(0.875) == pytest.approx(0.05)


@pytest.mark.parametrize("space", ["w", "wplus"])
def test_inverting_a_generated_image_reaches_high_psnr(G, target, data_dir, space):
    # the target was rendered with G's own noise maps: keep them (optimising noise cannot find them again)
    res = run_inversion(invert(G, target, PixelSSIMLoss(), space,
                                 projection=ProjectOptions(steps=150, seed=1, optimize_noise=False)))
    assert res.psnr > (38 if space == "w" else 32) and res.ssim > 0.99, (res.psnr, res.ssim)
    assert res.ws.shape == (1, G.num_ws, G.w_dim) and res.image.shape == (16, 16, 3)
    assert res.loss_name == "pixel+ms-ssim" and res.seconds > 0 and not res.cancelled
    if space == "w":
        true_w = np.load(data_dir / "invert" / "true_w_seed5.npy")
        assert np.abs(res.ws[0, 0].numpy() - true_w[0]).max() < 0.05


def test_cancel_returns_best_so_far(G, target):
    token = CancelToken()
    seen = []

    def on_progress(ev):
        seen.append(ev.done)
        if ev.done >= 30:
            token.cancel()

    task = Task(on_progress, token, min_interval=0)
    res = run_inversion(invert(G, target, PixelSSIMLoss(), "w", projection=ProjectOptions(steps=200), task=task))
    assert res.cancelled and res.stages[-1].steps_done == 31 and res.stages[-1].steps == 200  # noticed at the next report
    start = run_inversion(invert(G, target, PixelSSIMLoss(), "w", projection=ProjectOptions(steps=1)))
    assert res.psnr > start.psnr + 3


def test_cancel_while_the_w_statistics_are_computed(G, target):
    from ganeditor.core.errors import Cancelled
    from ganeditor.pipelines.invert import w_stats

    w_avg, w_std = w_stats(G)
    mapped = G.mapping(torch.from_numpy(np.random.RandomState(123).randn(10000, G.z_dim)), None)[:, :1].float()
    torch.testing.assert_close(w_avg, mapped.mean(0, keepdim=True))  # in chunks, as in one batch
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):  # a first stage has nothing to keep yet
        list(project(G, target, PixelSSIMLoss(), "w", options=ProjectOptions(steps=50), task=Task(None, token)))
    start = torch.randn(1, G.num_ws, G.w_dim)
    ups = list(project(G, target, PixelSSIMLoss(), "wplus", options=ProjectOptions(steps=50), init_ws=start,
                       task=Task(None, token)))
    res = ups[-1].stage_result
    assert res.cancelled and res.steps_done == 0 and torch.equal(res.ws, start)  # a later stage keeps its start


def test_pti_improves_and_delta_round_trips(G, target, tmp_path):
    res = run_inversion(invert(G, target, PixelSSIMLoss(), "pti", projection=ProjectOptions(steps=20),
                                 pti=PTIOptions(steps=30)))
    pivot, pti = res.stages
    assert (pivot.method, pti.method) == ("w", "pti") and pti.psnr > pivot.psnr + 1
    assert res.G_tuned is not None
    save_pti_delta(tmp_path / "d.safetensors", G, res.G_tuned)
    G2 = apply_pti_delta(G, tmp_path / "d.safetensors")
    with torch.no_grad():
        a = res.G_tuned.synthesis(res.ws, noise_mode="const")
        b = G2.synthesis(res.ws, noise_mode="const")
    assert torch.allclose(a, b, atol=1e-5)
    assert np.array_equal(to_uint8(b)[0], res.image)
    other = build("stylegan2-generator", **G.init_kwargs)
    with pytest.raises(CheckpointError, match="another generator"):
        apply_pti_delta(other, tmp_path / "d.safetensors")


def test_loss_choice_reports_what_is_used(G, monkeypatch, tmp_path):
    monkeypatch.setenv("GANEDITOR_VGG16", str(tmp_path / "missing.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert make_inversion_loss(G, None).name == "pixel+ms-ssim"
    D = build("stylegan2-discriminator", c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32)
    loss = make_inversion_loss(G, Checkpoint("t", "t", {"G_ema": G, "D": D}))
    assert loss.name == "discriminator-features"
    x = torch.zeros(1, 3, 16, 16)
    loss.set_target(x)
    assert float(loss(x)) == 0 and float(loss(x + 0.5)) > 0
    assert make_inversion_loss(G, Checkpoint("t", "t", {"G_ema": G, "D": D}), prefer="pixel").name == "pixel+ms-ssim"


def test_lpips_matches_the_lpips_package():
    lpips_pkg = pytest.importorskip("lpips")
    from ganeditor.pipelines.lpips import LPIPS, find_lpips_heads

    heads = torch.load(find_lpips_heads(), map_location="cpu", weights_only=True)
    ref = lpips_pkg.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    vgg_sd = {"features." + k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()}  # sliceK.<idx>.weight
    ours = LPIPS(vgg_sd, heads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        np.testing.assert_allclose(ours(a, b).numpy(), ref(a, b).flatten().numpy(), rtol=1e-5)


def test_invert_cli_writes_nvlabs_layout(tmp_path, data_dir, capsys):
    net, photo = data_dir / "invert" / "g16.safetensors", data_dir / "invert" / "target_seed5.png"
    rc = main(["invert", "--network", str(net), str(photo), "--outdir", str(tmp_path / "o"), "--method", "pti",
               "--steps", "5", "--pti-steps", "3", "--align", "none", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "loss: pixel+ms-ssim" in out and "pti:" in out
    z = np.load(tmp_path / "o" / "projected_w.npz")
    assert z["w"].shape == (1, 6, 16) and z["w"].dtype == np.float32
    for f in ("reconstruction.png", "target.png", "pti_delta.safetensors"):
        assert (tmp_path / "o" / f).is_file()
    rc = main(["invert", "--network", str(photo), str(photo), "--outdir", str(tmp_path / "x")])
    assert rc == 2 and "photo" not in capsys.readouterr().err.split(":")[0]
