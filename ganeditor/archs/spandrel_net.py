"""A network built by spandrel (chaiNNer's MIT library of ~40 restoration/SR architectures), wrapped
so our pipelines and tiled engine can run it like our own image-to-image networks.

spandrel infers the architecture and its hyper-parameters from a state dict and builds its own
``nn.Module``; ``formats.spandrel_io`` hands it only tensors we loaded safely.  The wrapper keeps
spandrel's calling convention (RGB in [0, 1] in and out, its ``call_fn`` -- e.g. the noise-level map
of DRUNet --, its size requirements: reflect-padding at the bottom/right up to ``multiple_of`` and
``minimum``, cropped back), so a whole-image run equals ``ImageModelDescriptor.__call__`` exactly.

Tiling facts come from measurement, not from a table: ``receptive_radius`` is the extent of the
gradient of a block of output pixels with respect to the input (autograd, one forward and backward
on a small probe).  A network whose gradient reaches the probe's borders -- global attention,
global pooling, Fourier convolutions, large shifted windows -- has ``receptive_radius`` None: the
tiler then blends overlapping tiles (close to, but not exactly, a whole-image run), and ``describe``
says so.  Networks spandrel itself marks as discouraged for tiling skip the probe.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs.receptive_field import measure_receptive_radius

KINDS = {"SR": "upscaler", "Restoration": "restorer", "FaceSR": "face restorer", "Inpainting": "inpainter"}


def pad_to_requirements(x: torch.Tensor, multiple: int, minimum: int, square: bool) -> torch.Tensor:
    """Reflect-pad [N,C,H,W] at the bottom/right (replicate beyond what reflection can give), as spandrel."""
    h, w = x.shape[-2:]
    th, tw = max(h, minimum), max(w, minimum)
    th, tw = -(-th // multiple) * multiple, -(-tw // multiple) * multiple
    if square:
        th = tw = max(th, tw)
    ph, pw = th - h, tw - w
    if ph or pw:
        rh, rw = min(ph, h - 1), min(pw, w - 1)
        x = F.pad(x, (0, rw, 0, rh), mode="reflect")
        x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
    return x


class SpandrelNet(nn.Module):
    """A spandrel ``ImageModelDescriptor`` / ``MaskedImageModelDescriptor`` as an nn.Module."""

    io_convention = "unit"
    input_mean = 0.0
    input_std = 1.0
    needs_global_stats = False

    def __init__(self, descriptor: Any):
        super().__init__()
        self.model = descriptor.model  # the spandrel-built module (its own attribute names = checkpoint keys)
        self._call_fn = getattr(descriptor, "_call_fn", None)
        arch = descriptor.architecture
        self.arch_id = str(arch.id)
        self.arch_name = f"spandrel:{self.arch_id}"
        self.purpose = str(descriptor.purpose)
        self.kind = KINDS.get(self.purpose, "restorer")
        self.restore_stage = {"FaceSR": "faces", "Inpainting": "inpaint", "SR": "upscale"}.get(self.purpose, "global")
        self.scale = int(descriptor.scale)
        self.input_channels = int(descriptor.input_channels)
        self.output_channels = int(descriptor.output_channels)
        req = descriptor.size_requirements
        self.size_multiple = int(req.multiple_of)
        self.min_size, self.square = int(req.minimum), bool(req.square)
        self.tags = list(descriptor.tags)
        self.tiling_discouraged = getattr(descriptor.tiling, "name", "SUPPORTED") != "SUPPORTED"
        self._radius: int | None | str = "unknown"
        if self.input_channels not in (1, 3) or self.output_channels not in (1, 3):
            raise ValueError(f"{self.arch_id} takes {self.input_channels} and gives {self.output_channels} channels; "
                             "only gray and RGB models are supported")

    # --- calling ---------------------------------------------------------------------------
    def _call(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            return self._call_fn(self.model, x, mask) if self._call_fn else self.model(x, mask)
        return self._call_fn(self.model, x) if self._call_fn else self.model(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """RGB [N,3,H,W] in [0,1] (+ a [N,1,H,W] mask for inpainters) -> [N,3,H*s,W*s] in [0,1]."""
        return self.unclamped(x, mask).clamp(0, 1)

    def unclamped(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``forward`` before the final clamp (what the receptive-field probe differentiates)."""
        assert x.ndim == 4 and x.shape[1] == 3, x.shape
        h, w = x.shape[-2:]
        if self.input_channels == 1:  # gray models see the luma
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = pad_to_requirements(x, self.size_multiple, self.min_size, self.square)
        if mask is not None:
            mask = pad_to_requirements(mask, self.size_multiple, self.min_size, self.square)
        y = self._call(x, mask)
        assert isinstance(y, torch.Tensor), f"{self.arch_id} returned {type(y).__name__}, not a tensor"
        y = y[..., : h * self.scale, : w * self.scale]
        return y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y

    # --- tiling facts ----------------------------------------------------------------------
    @property
    def receptive_radius(self) -> int | None:
        """Input pixels each output pixel depends on, each side; None when unbounded (see module docstring)."""
        if self._radius == "unknown":  # faces are run on aligned crops, inpainters (LaMa: Fourier convs) whole
            whole = self.tiling_discouraged or self.purpose in ("FaceSR", "Inpainting")
            self._radius = None if whole else measure_receptive_radius(self)
        return self._radius

    def describe(self) -> dict[str, object]:
        """Facts for ``ganeditor info`` and the model library."""
        r = self.receptive_radius
        tiling = (f"exact tiles (receptive field {r} px each side)" if r is not None else
                  "overlap-blended tiles (its receptive field is global or wider than measured: "
                  "tiles differ slightly from a whole-image run)")
        return {"summary": f"{self.arch_id} {self.kind} x{self.scale} (through spandrel)", "arch": self.arch_name,
                "kind": self.kind, "scale": self.scale, "channels": f"{self.input_channels} -> {self.output_channels}",
                "tags": ", ".join(self.tags), "size_multiple": self.size_multiple, "tiling": tiling}
