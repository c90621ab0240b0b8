"""Training speed switches: fused Adam, memory format per recipe, batches in the networks' format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.pipelines.train.cyclegan import CycleGANRecipe
from ganeditor.pipelines.train.recipe import TrainContext
from ganeditor.pipelines.train.srgan import SRGANRecipe

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("speed")
    for k, sub in enumerate(("a", "b")):
        (root / sub).mkdir()
        for i in range(2):
            rs = np.random.RandomState(10 * k + i)
            Image.fromarray(rs.randint(0, 256, (40, 48, 3)).astype(np.uint8)).save(root / sub / f"{i}.png")
    return root


def _cyclegan(folders, precision: str, **opts) -> CycleGANRecipe:
    options = dict(ngf=4, ndf=4, n_blocks=1, crop_size=24, load_size=26, n_layers_d=2, total_steps=4, **opts)
    return CycleGANRecipe(options, TrainContext(CPU, precision), [str(folders / "a"), str(folders / "b")])


def test_adam_is_fused_on_cpu_and_matches_plain_adam():
    ctx = TrainContext(CPU, "fp32")
    torch.manual_seed(0)
    ref = [torch.randn(8, 4, 3, 3, requires_grad=True) for _ in range(3)]
    fused = [p.detach().clone().requires_grad_(True) for p in ref]
    opt_ref = torch.optim.Adam(ref, lr=2e-4, betas=(0.5, 0.999))
    opt_fused = ctx.adam(fused, lr=2e-4, betas=(0.5, 0.999))
    assert opt_fused.param_groups[0]["fused"] is True
    for step in range(5):
        g = torch.Generator().manual_seed(step)
        for a, b in zip(ref, fused):
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        opt_ref.step()
        opt_fused.step()
    for a, b in zip(ref, fused):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    # a state dict written by a plain Adam keeps the resumed run plain (same updates as before)
    opt_fused.load_state_dict(opt_ref.state_dict())
    assert not opt_fused.param_groups[0]["fused"]


def test_cyclegan_keeps_nchw_in_bf16_and_batches_match_the_weights(folders):
    r = _cyclegan(folders, "bf16")
    assert r.options["channels_last"] is False and not r.ctx.channels_last
    a, b = r._batch(0, 1)
    w = r.G_A.model[1].weight
    assert a.is_contiguous() and b.is_contiguous() and w.is_contiguous()
    forced = _cyclegan(folders, "bf16", channels_last=True)
    a, _ = forced._batch(0, 1)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert forced.G_A.model[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert not _cyclegan(folders, "fp32").ctx.channels_last


def test_srgan_bf16_batches_are_channels_last_like_its_weights(folders):
    opts = dict(num_feat=8, num_block=1, crop_size=32, d_feat=8, total_steps=2, stage="psnr")
    r = SRGANRecipe(opts, TrainContext(CPU, "bf16"), [str(folders / "a")])
    assert r.options["channels_last"] == "auto" and r.ctx.channels_last
    lr, hr = r._batch(0, 2)
    assert lr.is_contiguous(memory_format=torch.channels_last) and hr.is_contiguous(memory_format=torch.channels_last)
    losses = r.train_step(0, 2)
    assert np.isfinite(losses["pixel"])


def test_fp32_cyclegan_step_is_deterministic(folders):
    def run() -> list[dict[str, float]]:
        torch.manual_seed(0)
        r = _cyclegan(folders, "fp32")
        return [r.train_step(s, 1) for s in range(2)]

    assert run() == run()
