"""Core pieces: progress/cancel, atomic writes, model names, device choice, our format."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from ganeditor.archs.registry import register
from ganeditor.core.atomic import atomic_write
from ganeditor.core.device import pick_device
from ganeditor.core.errors import Cancelled, CheckpointError, GanEditorError
from ganeditor.core.model_store import resolve_model
from ganeditor.core.progress import CancelToken, Task
from ganeditor.formats import Checkpoint, load_checkpoint
from ganeditor.formats.native import save_checkpoint


@register("test-tiny-net")
class TinyNet(nn.Module):
    def __init__(self, width: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.register_buffer("scale", torch.tensor(2.0))


def test_task_reports_and_cancels():
    events = []
    tok = CancelToken()
    task = Task(events.append, tok, min_interval=0)
    task.report(1, 4, "one")
    assert events[-1].fraction == 0.25 and events[-1].message == "one"
    tok.cancel()
    with pytest.raises(Cancelled):
        task.report(2, 4)


def test_sub_task_maps_progress():
    events = []
    task = Task(events.append, min_interval=0)
    task.sub(2, 2, 4).report(1, 2)
    assert events[-1].done == 3 and events[-1].total == 4


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert p.read_bytes() == b"old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]
    with atomic_write(p) as f:
        f.write(b"new")
    assert p.read_bytes() == b"new"


def test_resolve_model_by_name(tmp_path, monkeypatch):
    (tmp_path / "mymodel.safetensors").write_bytes(b"x")
    monkeypatch.setenv("GANEDITOR_MODELS", str(tmp_path))
    assert resolve_model("mymodel") == tmp_path / "mymodel.safetensors"
    with pytest.raises(CheckpointError, match="no such file or model name"):
        resolve_model("does-not-exist")


def test_pick_device():
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(GanEditorError, match="unknown device"):
        pick_device("tpu")


def test_native_round_trip_fp32_and_fp16(tmp_path):
    from ganeditor.archs.registry import build

    net = build("test-tiny-net", width=5)
    torch.nn.init.normal_(net.conv.weight)
    ckpt = Checkpoint("test", "test", {"net": net}, {"note": "hello"})
    save_checkpoint(ckpt, tmp_path / "a.safetensors")
    back = load_checkpoint(tmp_path / "a.safetensors")
    assert back.meta == {"note": "hello"} and back.format_id == "ganeditor"
    for k, v in net.state_dict().items():
        assert torch.equal(back.nets["net"].state_dict()[k], v)
    save_checkpoint(ckpt, tmp_path / "h.safetensors", dtype=torch.float16)
    half = load_checkpoint(tmp_path / "h.safetensors").nets["net"]
    assert half.conv.weight.dtype == torch.float32
    assert torch.allclose(half.conv.weight, net.conv.weight, atol=2e-3, rtol=1e-3)
    assert os.path.getsize(tmp_path / "h.safetensors") < os.path.getsize(tmp_path / "a.safetensors")


def test_safetensors_without_our_metadata_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without GAN Editor metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"hello world, not a model"), "unrecognised file"),
    ],
)
def test_bad_checkpoint_files(tmp_path, make, message):
    p = tmp_path / "x.bin"
    make(p)
    with pytest.raises(CheckpointError, match=message) as e:
        load_checkpoint(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_atomic_write_uses_normal_permissions(tmp_path):
    um = os.umask(0o022)
    try:
        import importlib

        import ganeditor.core.atomic as atomic

        importlib.reload(atomic)
        with atomic.atomic_write(tmp_path / "p.bin") as f:
            f.write(b"x")
    finally:
        os.umask(um)
    assert (tmp_path / "p.bin").stat().st_mode & 0o777 == 0o644


def test_ssim_is_computed_in_fp32_under_autocast():
    """Under bf16 autocast the variance terms used to cancel into noise (SRGAN's perceptual loss hit -inf)."""
    import torch

    from ganeditor.core.metrics import ms_ssim_loss, ssim_map

    g = torch.Generator().manual_seed(0)
    a = (0.9 + 0.02 * torch.rand(2, 3, 96, 96, generator=g)).requires_grad_(True)  # bright, nearly flat
    b = 0.9 + 0.02 * torch.rand(2, 3, 96, 96, generator=g)
    ref = ms_ssim_loss(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ms_ssim_loss(a, b)
        m = ssim_map(a, b)
    assert m.dtype == torch.float32 and torch.isfinite(m).all()
    assert torch.isfinite(got) and abs(got.detach().item() - ref.detach().item()) < 1e-6
    got.backward()
    assert torch.isfinite(a.grad).all()


def test_ssim_and_ms_ssim_match_reference_packages():
    import pytest
    import torch

    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    from torchmetrics.functional.image import structural_similarity_index_measure

    from ganeditor.core.metrics import ms_ssim, ssim

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 181, 170, generator=g, dtype=torch.float64)
    b = (a + 0.15 * torch.randn(2, 3, 181, 170, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = pytorch_msssim.ssim(a, b, data_range=1.0).item()
    tm = structural_similarity_index_measure(a, b, data_range=1.0, gaussian_kernel=True, sigma=1.5,
                                             kernel_size=11).item()  # pads the borders: not the valid region
    assert ssim(a, b) == pytest.approx(ref, abs=1e-7) and abs(ssim(a, b) - tm) < 0.02  # ours runs in fp32
    assert torch.allclose(ms_ssim(a, b).double(), pytorch_msssim.ms_ssim(a, b, data_range=1.0, size_average=False),
                          atol=1e-6)
    w3 = [0.0448, 0.2856, 0.3001]
    w3 = [x / sum(w3) for x in w3]
    ref3 = pytorch_msssim.ms_ssim(a, b, data_range=1.0, size_average=False, weights=w3)
    assert torch.allclose(ms_ssim(a, b, scales=3).double(), ref3, atol=1e-6)
    assert not torch.allclose(ms_ssim(a, b, scales=3), ms_ssim(a, b))


def test_state_files_are_standard_safetensors_and_round_trip(tmp_path):
    from safetensors import safe_open

    from ganeditor.core.state_io import load_state, save_state

    state = {"w": torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
             "half": torch.randn(5, dtype=torch.bfloat16), "flags": torch.tensor([True, False]),
             "step": torch.tensor(7), "empty": torch.zeros(0, 2), "pool": [torch.arange(6, dtype=torch.int16), 2.5],
             "np": np.arange(4, dtype=np.float64), "keys": np.arange(3, dtype=np.uint32), "name": "adam", 3: (None, float("inf"))}
    save_state(tmp_path / "s.safetensors", state, {"step": "7"})
    with safe_open(str(tmp_path / "s.safetensors"), framework="pt") as f:  # the reference reader accepts it
        assert f.metadata()["step"] == "7" and len(list(f.keys())) == 8
    back, md = load_state(tmp_path / "s.safetensors")
    assert md["step"] == "7" and back["name"] == "adam" and back[3] == (None, float("inf"))
    for k in ("w", "half", "flags", "step", "empty"):
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k])
    assert torch.equal(back["pool"][0], state["pool"][0]) and back["pool"][1] == 2.5
    assert np.array_equal(back["np"], state["np"]) and back["keys"].dtype == np.uint32
