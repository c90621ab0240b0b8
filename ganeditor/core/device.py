"""Device choice: the device is always passed in, never hard-coded."""

from __future__ import annotations

import functools

import torch

from ganeditor.core.errors import GanEditorError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``name`` ('auto' prefers CUDA, then MPS, then CPU; a device is kept)."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GanEditorError(f"device '{name}' requested but CUDA is not available")
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise GanEditorError("device 'mps' requested but MPS is not available")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise GanEditorError(f"unknown device '{name}' (choose from {', '.join(DEVICE_CHOICES)})")


def available_devices() -> list[str]:
    """The device names that work on this machine ('auto' first), for choosers."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def describe_device(device: torch.device) -> str:
    """A device for people: 'CPU (2 threads)', 'CUDA: NVIDIA H200', 'MPS'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"CPU ({torch.get_num_threads()} threads)"
    return device.type.upper()


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX-512 BF16 or AMX), so bf16 autocast pays."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def is_oom(e: BaseException) -> bool:
    """True for out-of-memory errors of any torch backend (CUDA, MPS, CPU allocator)."""
    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()
