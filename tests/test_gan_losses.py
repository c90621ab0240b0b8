"""Adversarial losses and regularisers as StyleGAN2 recipe options."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganeditor.archs import build
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.train import gan_losses as L
from ganeditor.pipelines.train.engine import TrainConfig, train


def test_loss_formulas():
    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-1.0], [1.0]])
    assert L.discriminator_loss("logistic", real, fake) == pytest.approx(
        float(F.softplus(fake).mean() + F.softplus(-real).mean()))
    # R3GAN pairs real i with fake i: softplus(D(fake_i) - D(real_i)) for D, the reverse for G
    assert L.discriminator_loss("r3gan", real, fake) == pytest.approx(float(np.mean(np.log1p(np.exp([-3.0, 0.5])))))
    assert L.generator_loss("r3gan", fake, real) == pytest.approx(float(np.mean(np.log1p(np.exp([3.0, -0.5])))))
    assert L.generator_loss("wgan-gp", fake) == pytest.approx(0.0)
    assert L.discriminator_loss("wgan-gp", real, fake) == pytest.approx(-1.25 + L.WGAN_DRIFT * (4 + 0.25) / 2)
    with pytest.raises(ValueError, match="r3gan"):
        L.check_loss("hinge")


def test_zero_centred_penalty_is_the_squared_input_gradient():
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(5, 3)
    # D(x) = (x.w)^2 / 2: dD/dx = (x.w) w, so |grad|^2 = (x.w)^2 |w|^2
    got = L.gradient_penalty(lambda t: (t @ w).square() / 2, x)
    assert got.item() == pytest.approx(float(((x @ w).square() * w.square().sum()).mean()), rel=1e-5)
    assert got.requires_grad is False or got.grad_fn is not None


def test_spectral_norm_bounds_equalised_lr_layers_and_exports_plain_weights():
    D = build("stylegan2-discriminator", c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32)
    n = L.apply_spectral_norm(D)
    assert n == sum(1 for m in D.modules() if hasattr(m, "parametrizations"))
    for _ in range(30):  # power iterations run in training-mode forwards
        D(torch.randn(4, 3, 16, 16), None)
    conv = D.b16.conv0
    applied = (conv.weight * conv.weight_gain).flatten(1)  # what the layer multiplies by at run time
    assert torch.linalg.matrix_norm(applied, ord=2).item() == pytest.approx(1.0, rel=0.05)
    plain = L.without_parametrizations(D)
    fresh = build("stylegan2-discriminator", c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32)
    fresh.load_state_dict(plain.state_dict())  # the architecture's own keys
    x = torch.randn(2, 3, 16, 16)
    D.eval()
    assert torch.allclose(fresh(x, None), D(x, None), atol=1e-5)


SG2 = dict(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32, mapping_layers=2)


@pytest.mark.parametrize("opts, expect", [
    (dict(loss="r3gan", r1_interval=2), {"G", "D", "r1", "r2"}),
    (dict(loss="wgan-gp"), {"G", "D"}),
    (dict(loss="logistic", r1_interval=1, spectral_norm=True, mbstd_channels=0), {"G", "D", "r1"}),
])  # fmt: skip
def test_stylegan2_loss_options_train_and_export(opts, expect, tmp_path):
    cfg = TrainConfig(recipe="stylegan2", out=str(tmp_path / "run"), data=["world:portraits"], steps=2, batch=4,
                      checkpoint_every=2, sample_every=0, eval_every=0, precision="fp32", device="cpu",
                      options=dict(SG2, **opts))  # fmt: skip
    evs = list(train(cfg))
    assert set(evs[0].losses) == expect and all(np.isfinite(v) for e in evs for v in e.losses.values())
    ck = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert ck.meta["loss"] == opts["loss"]
    assert (ck.nets["D"].b4.mbstd is None) == (opts.get("mbstd_channels") == 0)


def test_lazy_regularisation_runs_the_penalties_every_interval(tmp_path):
    def penalised_steps(interval):
        cfg = TrainConfig(recipe="stylegan2", out=str(tmp_path / f"i{interval}"), data=["world:portraits"], steps=5,
                          batch=4, checkpoint_every=5, sample_every=0, eval_every=0, precision="fp32", device="cpu",
                          options=dict(SG2, loss="r3gan", r1_interval=interval))  # fmt: skip
        return [e.step for e in train(cfg) if {"r1", "r2"} <= set(e.losses)]

    assert penalised_steps(3) == [1, 4]  # steps 0 and 3 (events count from 1)
    assert penalised_steps(1) == [1, 2, 3, 4, 5]


def test_fine_tuning_a_shipped_generator_with_a_fresh_discriminator(tmp_path):
    from ganeditor.core.errors import GanEditorError
    from ganeditor.formats import Checkpoint
    from ganeditor.formats.native import save_checkpoint

    torch.manual_seed(0)
    G = build("stylegan2-generator", z_dim=16, w_dim=16, c_dim=0, img_resolution=16, img_channels=3,
              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32))
    save_checkpoint(Checkpoint("ganeditor", "t", {"G_ema": G.eval()}, {}), tmp_path / "g.safetensors")  # no D

    def cfg(out, steps, **opts):
        return TrainConfig(recipe="stylegan2", out=str(tmp_path / out), data=["world:portraits"], steps=steps, batch=4,
                           checkpoint_every=1, sample_every=0, eval_every=0, precision="fp32", device="cpu",
                           options=dict(init=str(tmp_path / "g.safetensors"), channel_base=256, channel_max=32, **opts))

    with pytest.raises(GanEditorError, match="fresh_d"):
        list(train(cfg("a", 1)))
    list(train(cfg("b", 1, fresh_d=True, d_warmup_steps=1, loss="r3gan")))
    after_warmup = load_checkpoint(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(after_warmup.nets["G_ema"].state_dict().values(), G.state_dict().values()))
    assert after_warmup.nets["D"].init_kwargs["channel_base"] == 256
    list(train(cfg("b", 2, fresh_d=True, d_warmup_steps=1, loss="r3gan"), resume=True))
    moved = load_checkpoint(tmp_path / "b" / "model.safetensors").nets["G"].state_dict()
    assert any(not torch.equal(moved[k], v) for k, v in G.state_dict().items())
    # a generator learning rate of its own (D keeps `lr`): a quarter of the step moves G about a quarter as far
    for out, lr_g in (("c", 0.002), ("d", 0.0005)):
        list(train(cfg(out, 2, fresh_d=True, d_warmup_steps=1, loss="r3gan", lr=0.002, lr_g=lr_g, seed=0)))
    c, d = (load_checkpoint(tmp_path / o / "model.safetensors").nets for o in ("c", "d"))
    step = {o: max(float((dict(n["G"].named_parameters())[k] - v).abs().max()) for k, v in G.named_parameters())
            for o, n in (("c", c), ("d", d))}  # parameters only (w_avg, a buffer, follows the mapping)
    assert 0.15 < step["d"] / step["c"] < 0.4, step
    assert all(torch.equal(a, b) for a, b in zip(c["D"].state_dict().values(), d["D"].state_dict().values()))
