"""Cancel granularity of the tiled engines, proven by counting work between token checks (no timing):
inside every forward, large convolutions run in row chunks of at most CHECK_FLOPS with a check before
each, and a cancel stops the run before the next chunk -- in every engine, in the CLI on Ctrl-C."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import ganeditor.core.tiling as tiling
import ganeditor.core.tiling_cancel as tc
from ganeditor.archs import build
from ganeditor.core.errors import Cancelled
from ganeditor.core.imageio import CYCLEGAN_CONVENTION
from ganeditor.core.progress import CancelToken, Task
from ganeditor.core.tiling_common import TileOptions


@pytest.mark.parametrize("op, h, w, k, stride, pad, extra, channels_last", [
    ("conv", 37, 23, 3, 1, 1, 1, False), ("conv", 40, 19, 7, 1, 0, 1, True), ("conv", 33, 30, 3, 1, 2, 2, False),
    ("conv", 29, 31, 5, 1, 3, 1, True), ("conv", 30, 30, 3, 2, 1, 1, False), ("conv", 31, 30, 4, 2, 1, 1, True),
    ("convT", 17, 23, 3, 2, 1, 1, False), ("convT", 16, 19, 3, 2, 1, 1, True), ("convT", 21, 13, 5, 3, 2, 1, False),
])
def test_row_chunked_convolution_equals_one_piece(op, h, w, k, stride, pad, extra, channels_last):
    """extra: dilation of a conv, output_padding of a transposed conv."""
    torch.manual_seed(0)
    x, b = torch.randn(1, 6, h, w), torch.randn(5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if op == "conv":
        wt = torch.randn(5, 6, k, k)
        run = lambda: F.conv2d(x, wt, b, stride, pad, extra)  # noqa: E731
    else:
        wt = torch.randn(6, 5, k, k)
        run = lambda: F.conv_transpose2d(x, wt, b, stride, pad, extra)  # noqa: E731
    ref = run()
    points = tc.CancelPoints(Task(), max_flops=2 * 5 * 6 * k * k * (w + 2 * pad) * 2)  # ~2 output rows per chunk
    with points:
        y = run()
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)  # the same sums; only float rounding may differ
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert points.checks >= points.flops / points.max_flops > 3 and points.max_between <= points.max_flops


def test_chunks_written_in_place_under_bf16_autocast():
    torch.manual_seed(1)
    x = torch.randn(1, 8, 40, 30).contiguous(memory_format=torch.channels_last)
    wt, b = torch.randn(16, 8, 3, 3), torch.randn(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.conv2d(x, wt, b, 1, 1)
        points = tc.CancelPoints(Task(), max_flops=2 * 16 * 8 * 9 * 30 * 4 * tc.LOW_PRECISION_WORK)  # 4 rows a chunk
        with points:
            y = F.conv2d(x, wt, b, 1, 1)
    assert y.dtype == ref.dtype == torch.bfloat16 and points.checks >= 10
    assert points.flops == pytest.approx(2 * 16 * 8 * 9 * 40 * 30 * tc.LOW_PRECISION_WORK)  # bf16 work counts less
    torch.testing.assert_close(y.float(), ref.float(), rtol=1e-2, atol=1e-2)


class Recorder(tc.CancelPoints):
    """CancelPoints that remembers itself and can cancel its own token after ``cancel_after`` checks."""

    made: list["Recorder"] = []
    cancel_after: int | None = None

    def __init__(self, task, max_flops=None):
        super().__init__(task, max_flops)
        self.flops_after_cancel = 0.0
        Recorder.made.append(self)

    def check(self):
        if self.cancel_after is not None and self.checks == self.cancel_after:
            self.task.cancel_token.cancel()
        super().check()

    def _did(self, flops):
        if self.task.cancelled:
            self.flops_after_cancel += flops
        super()._did(flops)


def _engines():
    torch.manual_seed(1)
    srvgg = build("srvgg", num_feat=16, num_conv=3, upscale=2).eval()
    rrdb = build("rrdbnet", num_feat=8, num_block=2, num_grow_ch=4, scale=4).eval()
    cyc = build("cyclegan-resnet-generator", ngf=8, n_blocks=2).eval()
    norm = dict(global_stats=True, conv=CYCLEGAN_CONVENTION)
    return {
        "2-D exact tiles": (srvgg, 2, TileOptions(tile=24)),
        "one whole-image tile": (srvgg, 2, TileOptions(tile=4096)),
        "blended tiles": (srvgg, 2, TileOptions(tile=20, tile_pad=4)),
        "banded RRDBNet": (rrdb, 4, TileOptions(tile=12)),
        "banded instance norm": (cyc, 1, TileOptions(tile=16, **norm)),
        "whole-image instance norm": (cyc, 1, TileOptions(tile=4096, **norm)),
    }


@pytest.fixture
def recorder(monkeypatch):
    monkeypatch.setattr(tiling, "CancelPoints", Recorder)
    monkeypatch.setattr(tc, "CHECK_FLOPS", 1e6)  # tiny networks: a small bound so chunks really happen
    Recorder.made, Recorder.cancel_after = [], None
    return Recorder


@pytest.mark.parametrize("engine", list(_engines()))
def test_every_engine_checks_within_the_work_bound(recorder, engine):
    net, scale, opts = _engines()[engine]
    img = np.random.RandomState(2).randint(0, 256, (52, 60, 3)).astype(np.uint8)
    out = tiling.run_tiled(net, img, scale, opts)
    assert out.shape == (52 * scale, 60 * scale, 3)
    (points,) = recorder.made
    assert points.flops > 20 * tc.CHECK_FLOPS  # enough work that the bound means something
    assert points.max_between <= tc.CHECK_FLOPS  # never more than one chunk of work between two checks
    assert points.checks >= points.flops / tc.CHECK_FLOPS


@pytest.mark.parametrize("engine", list(_engines()))
def test_cancel_inside_a_forward_computes_nothing_more(recorder, engine):
    net, scale, opts = _engines()[engine]
    img = np.random.RandomState(3).randint(0, 256, (52, 60, 3)).astype(np.uint8)
    recorder.cancel_after = 7  # e.g. in the middle of the first tile's first big convolution
    with pytest.raises(Cancelled):
        tiling.run_tiled(net, img, scale, opts, task=Task(cancel=CancelToken()))
    (points,) = recorder.made
    assert points.checks == 8 and points.flops_after_cancel == 0


def test_cli_ctrl_c_stops_within_one_chunk_and_writes_nothing(recorder, tmp_path, capsys):
    from ganeditor.cli import main
    from ganeditor.formats import Checkpoint
    from ganeditor.formats.native import save_checkpoint

    torch.manual_seed(4)
    net = build("srvgg", num_feat=16, num_conv=3, upscale=2).eval()
    save_checkpoint(Checkpoint("ganeditor", "GAN Editor safetensors", {"net": net}, {}), tmp_path / "sr.safetensors")
    Image.fromarray(np.random.RandomState(4).randint(0, 256, (64, 72, 3)).astype(np.uint8)).save(tmp_path / "in.png")

    class CtrlC(Recorder):
        def check(self):
            if self.checks == 5:
                signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C during the forward
            super().check()

    tiling.CancelPoints = CtrlC  # the fixture's monkeypatch restores the real class
    rc = main(["upscale", str(tmp_path / "sr.safetensors"), str(tmp_path / "in.png"), str(tmp_path / "out.png")])
    assert rc == 130 and "cancelled" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "sr.safetensors"]  # no output, no temp file
    (points,) = CtrlC.made
    assert points.checks <= 7 and points.flops_after_cancel == 0
