"""Our restoration U-Nets: shapes, declared facts (receptive radius covers the measured dependency),
the inpainter keeps known pixels, and the four training recipes run and resume."""

from __future__ import annotations

import pytest
import torch

from ganeditor.archs import build
from ganeditor.archs.receptive_field import measure_receptive_radius
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint

SMALL = dict(channels=(4, 8, 8), blocks=(1, 1, 1))


@pytest.mark.parametrize("arch, cin, cout", [("scratch-detector", 3, 1), ("restore-unet", 3, 3), ("colorize-unet", 1, 2)])
def test_shapes_and_declared_radius(arch, cin, cout):
    torch.manual_seed(0)
    net = build(arch, **SMALL).eval()
    y = net(torch.rand(2, cin, 24, 32))
    assert y.shape == (2, cout, 24, 32)
    assert net.size_multiple == 4
    measured = measure_receptive_radius(net, sizes=(96,), channels=cin)
    assert measured is not None and measured - 2 <= net.receptive_radius <= measured + 6


def test_default_sizes_are_small():
    sizes = {a: sum(p.numel() for p in build(a).parameters()) for a in
             ("scratch-detector", "inpaint-unet", "restore-unet", "colorize-unet")}
    assert all(2e5 < n < 3.5e6 for n in sizes.values()), sizes


def test_inpainter_fills_only_the_holes():
    torch.manual_seed(0)
    net = build("inpaint-unet", **SMALL).eval()
    x = torch.rand(1, 3, 16, 16)
    m = torch.zeros(1, 1, 16, 16)
    m[..., 5:9, 3:12] = 1
    y = net(x, m)
    assert torch.equal(y * (1 - m), x * (1 - m))
    assert not torch.allclose(y * m, x * m)
    x2 = x.clone()
    x2[..., 5:9, 3:12] = 0.123  # what is under the holes is never seen
    assert torch.allclose(net(x2, m), y)


def test_roundtrip_through_our_format(tmp_path):
    torch.manual_seed(0)
    net = build("restore-unet", **SMALL).eval()
    save_checkpoint(Checkpoint("ganeditor", "t", {"net": net}, {}), tmp_path / "r.safetensors")
    back = load_checkpoint(tmp_path / "r.safetensors").primary
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(back(x), net(x)) and back.restore_stage == "global"


def test_probe_sees_through_a_final_clamp_and_refuses_unmeasurable_nets():
    class Clamped(torch.nn.Module):  # saturated outputs: the clamp would zero every gradient
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 3, 5, padding=2))

        def unclamped(self, x):
            return self.conv(x) + 100.0

        def forward(self, x):
            return self.unclamped(x).clamp(0, 1)

    torch.manual_seed(0)
    assert measure_receptive_radius(Clamped(), sizes=(32,)) == 3 + 2  # radii 1 + 2, and the margin

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x) + 0 * x

    assert measure_receptive_radius(Constant(), sizes=(32,)) is None
