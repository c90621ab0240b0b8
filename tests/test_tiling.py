"""The tiled engine: tiled == untiled (conv nets, pixel shuffle, instance-norm ResnetGenerator),
padding conventions, OOM retry, cancellation, progress."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from ganeditor.archs import build
from ganeditor.core.errors import Cancelled, GanEditorError
from ganeditor.core.imageio import CYCLEGAN_CONVENTION, SR_CONVENTION, quantize, to_tensor
from ganeditor.core.progress import CancelToken, Task
from ganeditor.core.tiling import run_tiled
from ganeditor.core.tiling_common import TileOptions, padded_index
from ganeditor.core.tiling_conv import auto_tile, ramp as _ramp
from ganeditor.core.tiling_norm import run_global_norm
from ganeditor.core.tiling_sr import run_trunk_banded


def _image(h, w, c=3, seed=0, dtype=np.uint8):
    peak = 65535 if dtype == np.uint16 else 255
    return np.random.RandomState(seed).randint(0, peak + 1, (h, w, c)).astype(dtype)


def _whole(net, img, conv, scale=1, pre_pad=0, mod=1):
    """Reference: the whole padded image in one forward, cropped, quantised (gray via luma)."""
    h, w, c = img.shape
    win = img[np.ix_(padded_index(h, pre_pad, mod), padded_index(w, pre_pad, mod))]
    if c == 1:
        win = np.repeat(win, 3, axis=2)
    with torch.no_grad():
        y = net(to_tensor(win, conv))[0, :, : h * scale, : w * scale].permute(1, 2, 0)
    if c == 1:
        y = (y[..., 0] * 0.299 + y[..., 1] * 0.587 + y[..., 2] * 0.114)[..., None]
    return quantize(y, conv, img.dtype.type).numpy().astype(img.dtype)


def _conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 16, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(16, 3, 3, 1, 1)).eval()


def _shuffle_net(scale=2):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.PReLU(16), nn.Conv2d(16, 16, 3, 1, 1), nn.PReLU(16),
                         nn.Conv2d(16, 3 * scale * scale, 3, 1, 1), nn.PixelShuffle(scale)).eval()


def _maxdiff(a, b):
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("tile", [8, 13, 32, 500])
def test_plain_conv_tiled_equals_untiled(tile):
    net, img = _conv_net(), _image(45, 53)
    assert _maxdiff(run_tiled(net, img, 1, TileOptions(tile=tile, tile_pad=6)), _whole(net, img, SR_CONVENTION)) <= 1


@pytest.mark.parametrize("tile, pre_pad, mod", [(16, 0, 1), (17, 5, 2), (8, 10, 4)])
def test_pixel_shuffle_tiled_equals_untiled(tile, pre_pad, mod):
    net, img = _shuffle_net(2), _image(41, 38, seed=2)
    out = run_tiled(net, img, 2, TileOptions(tile=tile, tile_pad=8, pre_pad=pre_pad, mod=mod))
    assert out.shape == (82, 76, 3)
    assert _maxdiff(out, _whole(net, img, SR_CONVENTION, 2, pre_pad, mod)) <= 1


def test_real_sr_archs_tiled_equal_untiled():
    torch.manual_seed(3)
    srvgg = build("srvgg", num_feat=8, num_conv=3, upscale=4).eval()  # receptive radius 5
    img = _image(30, 27, seed=3)
    assert _maxdiff(run_tiled(srvgg, img, 4, TileOptions(tile=12, tile_pad=12)), _whole(srvgg, img, SR_CONVENTION, 4)) <= 1
    rrdb = build("rrdbnet", num_feat=8, num_block=1, num_grow_ch=4, scale=2).eval()
    out = run_tiled(rrdb, img, 2, TileOptions(tile=16, tile_pad=40, mod=2))  # pixel-unshuffle: sides even
    assert _maxdiff(out, _whole(rrdb, img, SR_CONVENTION, 2, 0, 2)) <= 1


@pytest.mark.parametrize("tile, pre_pad, mod, channels, dtype", [(12, 0, 1, 3, np.uint8), (9, 5, 2, 1, np.uint8),
                                                                 (16, 0, 4, 3, np.uint16)])
def test_default_exact_tiles_need_no_blending(tile, pre_pad, mod, channels, dtype):
    torch.manual_seed(4)
    srvgg = build("srvgg", num_feat=8, num_conv=3, upscale=4).eval()  # receptive radius 5: exact tiles
    img = _image(31, 26, channels, seed=5, dtype=dtype)
    events = []
    out = run_tiled(srvgg, img, 4, TileOptions(tile=tile, pre_pad=pre_pad, mod=mod), task=Task(events.append, min_interval=0))
    ref = _whole(srvgg, img, SR_CONVENTION, 4, pre_pad, mod)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert _maxdiff(out, ref) <= (257 if dtype == np.uint16 else 1)
    assert events[-1].done == events[-1].total > 1  # really tiled


@pytest.mark.parametrize("scale, band, store_budget", [(4, 8, None), (2, 16, 0), (1, 12, None)])
def test_rrdbnet_banded_equals_untiled(scale, band, store_budget):
    torch.manual_seed(10 + scale)
    net = build("rrdbnet", num_feat=8, num_block=3, num_grow_ch=4, scale=scale).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.1)  # make every block matter
    img, mod = _image(50, 37, 1 if scale == 2 else 3, seed=scale), net.size_multiple
    ref = _whole(net, img, SR_CONVENTION, scale, 3, mod)
    events = []
    out = run_trunk_banded(net, net.band_plan(), img, scale, TileOptions(tile=band, pre_pad=3, mod=mod),
                           Task(events.append, min_interval=0), store_budget=store_budget)
    assert out.shape == ref.shape and _maxdiff(out, ref) <= 1
    assert events[-1].done == events[-1].total == 6  # 2 stores + 3 blocks + output
    assert _maxdiff(run_tiled(net, img, scale, TileOptions(tile=band, pre_pad=3, mod=mod)), ref) <= 1  # the default path


def test_rrdbnet_blocks_in_column_chunks_equal_untiled(monkeypatch):
    import ganeditor.core.tiling_bands as tb

    calls = []
    chunks = tb._opaque_in_chunks
    monkeypatch.setattr(tb, "OPAQUE_CHUNK_PIXELS", 200)  # a few columns per chunk (at least 4 halos: 60)
    monkeypatch.setattr(tb, "_opaque_in_chunks", lambda m, x, h, rows=None: calls.append(x.shape[-1]) or chunks(m, x, h, rows))
    torch.manual_seed(7)
    net = build("rrdbnet", num_feat=8, num_block=2, num_grow_ch=4, scale=4).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    img = _image(23, 151, seed=7)
    out = run_tiled(net, img, 4, TileOptions(tile=12))
    assert calls and max(calls) > 60  # the band was wider than a chunk
    assert _maxdiff(out, _whole(net, img, SR_CONVENTION, 4)) <= 1


def test_gray_and_16bit():
    net, img = _shuffle_net(2), _image(20, 22, 1, seed=4, dtype=np.uint16)
    out = run_tiled(net, img, 2, TileOptions(tile=8, tile_pad=8))
    assert out.shape == (40, 44, 1) and out.dtype == np.uint16
    assert _maxdiff(out, _whole(net, img, SR_CONVENTION, 2)) <= 257  # 1/255 in 16-bit units


def test_feather_ramps_sum_to_one():
    left, right = _ramp(0, 20, 0, 3, 2), _ramp(14, 30, 3, 0, 2)
    np.testing.assert_allclose(left[28:] + right[:12], 1.0, atol=1e-6)
    assert left[0] == 1 and right[-1] == 1 and left[-1] < 0.1


@pytest.mark.parametrize("padding_type, tile, upsample", [("reflect", 32, "deconv"), ("reflect", 17, "deconv"),
                                                          ("zero", 32, "deconv"), ("reflect", 17, "resize")])
def test_instance_norm_resnet_generator_tiled_equals_untiled(padding_type, tile, upsample):
    torch.manual_seed(5)
    net = build("cyclegan-resnet-generator", ngf=8, n_blocks=9, padding_type=padding_type, upsample=upsample).eval()
    img = _image(100, 90, seed=5)
    ref = _whole(net, img, CYCLEGAN_CONVENTION, 1, 0, 4)
    assert _maxdiff(run_tiled(net, img, 1, TileOptions(tile=tile, global_stats=True, conv=CYCLEGAN_CONVENTION)), ref) <= 1


def test_instance_norm_disk_store_gray_odd_size():
    torch.manual_seed(6)
    net = build("cyclegan-resnet-generator", ngf=8, n_blocks=2).eval()
    img = _image(45, 30, 1, seed=6)
    events = []
    out = run_global_norm(net, img, TileOptions(tile=16, mod=4, conv=CYCLEGAN_CONVENTION),
                          Task(events.append, min_interval=0), store_budget=0)  # store in a temporary file
    assert out.shape == (45, 30, 1)
    assert _maxdiff(out, _whole(net, img, CYCLEGAN_CONVENTION, 1, 0, 4)) <= 1
    assert events[-1].done == events[-1].total == 13  # 7 norms + 1 store + 2 blocks x (2 stats + 1 output) - 1 + output


def test_oom_retry_halves_the_tile():
    net, img = _conv_net(), _image(40, 40, seed=7)
    sizes = []

    def flaky(x):
        sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 30:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return net(x)

    messages = []
    out = run_tiled(flaky, img, 1, TileOptions(tile=64, tile_pad=6), task=Task(lambda e: messages.append(e.message), min_interval=0))
    assert _maxdiff(out, _whole(net, img, SR_CONVENTION)) <= 1
    assert "out of memory: retrying with 32-pixel tiles" in messages and "out of memory: retrying with 16-pixel tiles" in messages
    with pytest.raises(GanEditorError, match="out of memory even with 16-pixel tiles"):
        run_tiled(lambda x: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")), img, 1, TileOptions(tile=16))
    with pytest.raises(ValueError, match="not memory"):  # other errors are not swallowed
        run_tiled(lambda x: (_ for _ in ()).throw(ValueError("not memory")), img, 1, TileOptions(tile=16))


def test_cancel_and_progress_per_tile():
    net, img = _conv_net(), _image(40, 40, seed=8)
    token = CancelToken()
    seen = []

    def on_progress(ev):
        seen.append(ev.done)
        if ev.done >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        run_tiled(net, img, 1, TileOptions(tile=10, tile_pad=4), task=Task(on_progress, token, min_interval=0))
    assert seen[:4] == [0, 1, 2, 3] and len(seen) == 4


def test_auto_tile_respects_mod():
    t = auto_tile(_shuffle_net(2), "cpu", 2, 4000, mod=4)
    assert t % 4 == 0 and 16 <= t <= 4096
    net = build("cyclegan-resnet-generator", ngf=8, n_blocks=1).eval()
    img = _image(36, 40, seed=9)
    assert _maxdiff(run_tiled(net, img, 1, TileOptions(global_stats=True, conv=CYCLEGAN_CONVENTION)), _whole(net, img, CYCLEGAN_CONVENTION, 1, 0, 4)) <= 1


def test_oom_retry_in_the_banded_engine(monkeypatch):
    import ganeditor.core.tiling_bands as tn

    torch.manual_seed(11)
    net = build("cyclegan-resnet-generator", ngf=4, n_blocks=1).eval()
    img = _image(64, 40, seed=11)
    real = tn.forward_rows

    def flaky(op, x, r0, r1, n_in, stats):
        if x.shape[2] > 40:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(op, x, r0, r1, n_in, stats)

    monkeypatch.setattr(tn, "forward_rows", flaky)
    messages = []
    out = run_tiled(net, img, 1, TileOptions(tile=48, global_stats=True, conv=CYCLEGAN_CONVENTION), task=Task(lambda e: messages.append(e.message), min_interval=0))
    assert "out of memory: retrying with 24-pixel tiles" in messages
    assert _maxdiff(out, _whole(net, img, CYCLEGAN_CONVENTION, 1, 0, 4)) <= 1


@pytest.mark.parametrize("arch, kw, scale", [("msrresnet", dict(num_feat=8, num_block=3, upscale=4), 4),
                                             ("msrresnet", dict(num_feat=8, num_block=2, upscale=3), 3),
                                             ("srvgg", dict(num_feat=8, num_conv=4, upscale=2), 2)])
@pytest.mark.parametrize("band", [None, 6, 4096])  # budget-sized bands, small bands (blocks in place), whole image
def test_planned_sr_nets_banded_equal_untiled(arch, kw, scale, band, monkeypatch):
    import ganeditor.core.tiling_sr as ts

    torch.manual_seed(20 + scale)
    net = build(arch, **kw).eval()
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    img = _image(29, 34, 1 if scale == 3 else 3, seed=scale)
    ref = _whole(net, img, SR_CONVENTION, scale, 2, 1)
    if band is None:
        monkeypatch.setattr(ts, "engine_budget", lambda device, out: (60_000, 0))  # stores in files, small bands
    events = []
    out = ts.run_trunk_banded(net, net.band_plan(), img, scale, TileOptions(tile=band, pre_pad=2),
                              Task(events.append, min_interval=0), store_budget=0)
    assert out.shape == ref.shape and _maxdiff(out, ref) <= 1
    assert (events[-1].total == 1) == (band == 4096)  # whole image in one pass only when asked / when it fits


def test_upsampled_rows_equal_whole_image_interpolation():
    from ganeditor.core.tiling_bands import ImageSource, upsampled_rows

    img = _image(13, 9, seed=3)
    src = ImageSource(img, padded_index(13, 2, 1), padded_index(9, 2, 1), SR_CONVENTION, "cpu")
    for mode, s in (("bilinear", 4), ("bilinear", 3), ("nearest", 2)):
        kw = {"align_corners": False} if mode == "bilinear" else {}
        whole = torch.nn.functional.interpolate(src.read(0, 15), scale_factor=s, mode=mode, **kw)
        for q0, q1 in ((0, 5), (5, 11), (7, 8), (13, 15 * s)):
            torch.testing.assert_close(upsampled_rows(src, s, mode, q0, q1), whole[:, :, q0:q1], rtol=0, atol=1e-6)


def test_large_runs_map_large_allocations_small_ones_leave_malloc_alone(monkeypatch):
    """Every caller of the tiler (CLI, window) gets glibc's 4 MiB mmap threshold during a run of
    MAPPED_FROM output pixels or more, and glibc's grown thresholds back after it; smaller runs make
    no call at all (their page faults would cost more than the memory saved)."""
    import ganeditor.core.tiling_common as tc

    calls = []
    monkeypatch.setattr(tc, "_mallopt", lambda param, value: calls.append((param, value)) or True)
    net = _conv_net()
    run_tiled(net, _image(40, 30), 1, TileOptions(tile=16))
    assert calls == []
    monkeypatch.setattr(tc, "MAPPED_FROM", 40 * 30)
    run_tiled(net, _image(40, 30), 1, TileOptions(tile=16))
    assert calls == [(tc.M_MMAP_THRESHOLD, tc.MMAP_THRESHOLD), *tc.GLIBC_GROWN] and tc._mapping_runs == [0]
    calls.clear()
    with tc.large_allocations_mapped(10**9) as outer:  # nested (or another thread's) runs share one setting
        run_tiled(net, _image(40, 30), 1, TileOptions(tile=16))
        assert outer and calls == [(tc.M_MMAP_THRESHOLD, tc.MMAP_THRESHOLD)]
    assert calls[1:] == list(tc.GLIBC_GROWN)
    monkeypatch.setattr(tc, "_mallopt", lambda param, value: False)  # no glibc: nothing to undo, no error
    with tc.large_allocations_mapped(10**9) as on:
        assert not on and tc._mapping_runs == [0]


def test_band_sources_have_channels_last_strides():
    """Image and store rows reach the convolutions in channels_last with a channels_last batch stride too:
    with the permuted array's stride (C) torch's layout guess said NCHW and every conv and reflection pad
    copied the band to NCHW and back (a quarter of the banded engine's time)."""
    from ganeditor.core.tiling_bands import ImageSource, RamBudget, Store

    img = _image(12, 10, seed=12)
    src = ImageSource(img, padded_index(12, 0, 1), padded_index(10, 0, 1), CYCLEGAN_CONVENTION, torch.device("cpu"))
    x = src.read(2, 7)
    assert x.stride() == (3 * 5 * 10, 1, 10 * 3, 3)
    assert torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect").is_contiguous(memory_format=torch.channels_last)
    store = Store(12, 10, 4, torch.device("cpu"), RamBudget(1 << 20))
    store.write(0, torch.arange(480.0).view(1, 4, 12, 10))
    y = store.read(3, 9, copy=False)
    assert y.stride() == (4 * 6 * 10, 1, 10 * 4, 4) and torch.equal(y, torch.arange(480.0).view(1, 4, 12, 10)[:, :, 3:9])


@pytest.mark.parametrize("budget, passes", [(1 << 30, 1), (40_000, 10)])  # bands: 7 norms + store + block + output
def test_instance_norm_whole_image_exactly_when_it_fits(budget, passes, monkeypatch):
    """With no band height given, one whole-image pass when its estimate fits the budget, bands otherwise."""
    import ganeditor.core.tiling_norm as tn

    torch.manual_seed(13)
    net = build("cyclegan-resnet-generator", ngf=4, n_blocks=1).eval()
    img = _image(40, 36, seed=13)
    monkeypatch.setattr(tn, "engine_budget", lambda device, out: (budget, 0))
    events = []
    out = run_global_norm(net, img, TileOptions(mod=4, conv=CYCLEGAN_CONVENTION), Task(events.append, min_interval=0))
    assert _maxdiff(out, _whole(net, img, CYCLEGAN_CONVENTION, 1, 0, 4)) <= 1
    assert events[-1].total == passes


@pytest.mark.parametrize("r0, r1, c0, c1", [(0, 40, 0, 40), (0, 25, 3, 40), (9, 40, 0, 36), (5, 36, 2, 39)])
def test_rrdb_valid_windows_equal_the_whole_image(r0, r1, c0, c1):
    """An RRDB on a window in valid mode returns exactly the values whose 15-pixel context was present
    (15 fewer on each cut side), equal to the whole-image forward's: the banded engine and the column
    chunks compute nothing they throw away."""
    from ganeditor.archs.rrdbnet import RRDB

    torch.manual_seed(14)
    block = RRDB(8, 4).eval()
    x = torch.randn(1, 8, 40, 40)
    with torch.no_grad():
        whole = block(x)
        y = block.forward_valid(x[:, :, r0:r1, c0:c1].clone(), (r0 == 0, r1 == 40, c0 == 0, c1 == 40))
    q0, q1 = r0 + (15 if r0 > 0 else 0), r1 - (15 if r1 < 40 else 0)
    p0, p1 = c0 + (15 if c0 > 0 else 0), c1 - (15 if c1 < 40 else 0)
    assert y.shape[2:] == (q1 - q0, p1 - p0)
    torch.testing.assert_close(y, whole[:, :, q0:q1, p0:p1], rtol=0, atol=1e-5)


THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


@pytest.mark.skipif(not os.path.exists(THP_SETTING) or "[madvise]" not in open(THP_SETTING).read(),
                    reason="transparent huge pages are not on request (madvise) on this kernel")
def test_importing_ganeditor_backs_large_tensors_with_huge_pages():
    """A fresh process that imports ganeditor faults a 256 MiB tensor in as huge pages (a few hundred
    faults, not 65k); THP_MEM_ALLOC_ENABLE=0 keeps torch's 4-KiB pages."""
    code = ("import resource, {}, torch\n"
            "f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "x = torch.ones(64 * 2**20)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f)\n")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    run = lambda mod, e: int(subprocess.run([sys.executable, "-c", code.format(mod)], env=e, capture_output=True,  # noqa: E731
                                            text=True, check=True).stdout.strip())
    small = run("ganeditor", dict(env, THP_MEM_ALLOC_ENABLE="0"))
    assert small > 60000  # 256 MiB / 4 KiB
    if run("os", dict(env, THP_MEM_ALLOC_ENABLE="1")) > small / 10:
        pytest.skip("this machine gives no huge pages even when torch asks for them")
    assert run("ganeditor", env) < small / 10


@pytest.mark.parametrize("rows", [7, 4096])
def test_band_moments_in_chunks_equal_float64_sums(rows):
    from ganeditor.core.tiling_bands import moments

    y = (torch.randn(1, 5, 9, 13, generator=torch.Generator().manual_seed(0)) * 3 + 40)
    y = y.contiguous(memory_format=torch.channels_last)
    n, s1, s2 = moments(y, rows=rows)
    ref = y.double().permute(0, 2, 3, 1).reshape(-1, 5)
    assert n == 9 * 13 and s1.dtype == s2.dtype == torch.float64
    torch.testing.assert_close(s1, ref.sum(0), rtol=1e-6, atol=0)
    torch.testing.assert_close(s2, (ref * ref).sum(0), rtol=1e-6, atol=0)


def test_file_store_round_trip():
    from ganeditor.core.tiling_bands import RamBudget, Store

    store = Store(6, 4, 3, torch.device("cpu"), RamBudget(0))  # no RAM: a temporary file
    y = torch.arange(2 * 4 * 3, dtype=torch.float32).view(1, 2, 4, 3).permute(0, 3, 1, 2)  # channels_last [1,3,2,4]
    store.write(3, y)
    back = store.read(3, 5)
    assert store.file is not None and torch.equal(back, y)
    store.close()
