"""What every training recipe provides to the engine."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.device import cpu_has_bf16
from ganeditor.core.state_io import match_param_layout
from ganeditor.formats.base import Checkpoint
from ganeditor.pipelines.train.dist import DistEnv, average_gradients


_FUSED_ADAM_DEVICES = ("cpu", "cuda")


@dataclass
class TrainContext:
    """Device, precision and process group a recipe trains in."""

    device: torch.device
    precision: str = "fp32"  # fp32 | bf16 (CPU/CUDA autocast) | fp16 (CUDA AMP with a grad scaler)
    dist: DistEnv = field(default_factory=DistEnv)
    seed: int = 0
    channels_last_pref: bool | None = None  # None: channels_last exactly in mixed precision

    @staticmethod
    def resolve_precision(requested: str, device: torch.device) -> str:
        """'auto' -> fp16 AMP on CUDA, bf16 on CPUs with native bf16, else fp32."""
        if requested != "auto":
            return requested
        if device.type == "cuda":
            return "fp16"
        if device.type == "cpu" and cpu_has_bf16():
            return "bf16"
        return "fp32"

    @property
    def channels_last(self) -> bool:
        """Memory format of weights and batches (recipes may override through ``channels_last_pref``)."""
        if self.channels_last_pref is not None:
            return self.channels_last_pref
        return self.precision != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move to the device (channels_last in mixed precision)."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def to_batch(self, x: torch.Tensor) -> torch.Tensor:
        """A data batch on the device, in the memory format the networks use (no per-layer conversion)."""
        fmt = torch.channels_last if self.channels_last and x.ndim == 4 else torch.contiguous_format
        return x.to(self.device, memory_format=fmt)

    def adam(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """torch.optim.Adam with the fused kernel where this torch has one for the device.

        Fused Adam is the same update in fp32 (differences of about one ulp) in one pass over the
        parameters instead of five.  A resumed run keeps the flag its checkpoint was written with.
        """
        if self.device.type in _FUSED_ADAM_DEVICES and self.precision != "fp16":
            kwargs.setdefault("fused", True)
        return torch.optim.Adam(params, **kwargs)

    def sync(self, *modules: nn.Module) -> None:
        """Average gradients over processes (no-op with one process)."""
        average_gradients(self.dist, *modules)


class Recipe:
    """Base of the CycleGAN / SRGAN / StyleGAN2 / encoder recipes.

    A recipe builds its networks/optimisers from ``options`` and a ``TrainContext``; the engine
    calls ``train_step`` and saves/restores everything through ``state_dict``.
    """

    name = "recipe"
    #: options a resumed run must share with the run folder's config (architecture-defining)
    identity_options: tuple[str, ...] = ()
    #: option values that runs started before the option existed used (a resumed run keeps them)
    former_defaults: dict[str, Any] = {}
    #: memory format in mixed precision: "auto" (channels_last) or False where the recipe's layers
    #: (instance norm, reflection padding) have no channels_last kernels and would convert each call
    default_channels_last: bool | str = "auto"

    def __init__(self, options: dict[str, Any], ctx: TrainContext, data: list[str]):
        self.options = options
        self.ctx = ctx
        self.data = data
        self.grad_clip: float | None = options.get("grad_clip")
        cl = self.option("channels_last", self.default_channels_last)
        if cl != "auto":
            ctx.channels_last_pref = bool(cl)
        self._scalers: dict[str, torch.amp.GradScaler] = {}

    def option(self, key: str, default: Any) -> Any:
        """An option with its default recorded, so config.json shows every value used."""
        return self.options.setdefault(key, default)

    def optimize(self, name: str, loss: torch.Tensor, opt: torch.optim.Optimizer, *modules: nn.Module) -> None:
        """Backward, average gradients over processes, clip (option), step — AMP-aware."""
        if self.ctx.precision == "fp16":
            scaler = self._scalers.setdefault(name, torch.amp.GradScaler(self.ctx.device.type))
            scaler.scale(loss).backward()
            self.ctx.sync(*modules)
            if self.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], self.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            self.ctx.sync(*modules)
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for m in modules for p in m.parameters()], self.grad_clip)
            opt.step()
        opt.zero_grad(set_to_none=True)

    # --- what subclasses implement -------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """Every network whose weights are part of the training state."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def schedulers(self) -> dict[str, Any]:
        return {}

    def extra_state(self) -> dict[str, Any]:
        """Adaptive state beyond modules/optimisers (image pools, ADA p, EMA counters...)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def train_step(self, step: int, batch_size: int) -> dict[str, float]:
        """One optimisation step on this process's share of the global batch; returns losses."""
        raise NotImplementedError

    def samples(self) -> np.ndarray:
        """A uint8 HxWx3 grid showing what the model does now."""
        raise NotImplementedError

    def export(self) -> Checkpoint:
        """The trained model(s) as a Checkpoint in our format (e.g. G_ema + D)."""
        raise NotImplementedError

    def validate(self) -> dict[str, float]:
        """Validation metrics (e.g. PSNR/SSIM); empty when the recipe has none."""
        return {}

    #: whether ``health_sets`` is implemented (GAN recipes): the engine then measures the run's health
    has_health = False

    def health_sets(self, count: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Named (generated, real) image batches [N,3,H,W] in [-1,1] for the health figures (``train.health``):
        the same latents/inputs and the same real images at every call of a run."""
        raise NotImplementedError

    # --- provided ----------------------------------------------------------------------
    def images_per_step(self, batch_size: int) -> int:
        return batch_size

    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers().items()},
            "extra": self.extra_state(),
            "scalers": {k: s.state_dict() for k, s in self._scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
            match_param_layout(o)  # state files are contiguous; channels_last params need their layout back
        for k, s in self.schedulers().items():
            s.load_state_dict(state["schedulers"][k])
        self.load_extra_state(state.get("extra", {}))
        for k, sd in state.get("scalers", {}).items():
            self._scalers.setdefault(k, torch.amp.GradScaler(self.ctx.device.type)).load_state_dict(sd)

    def iter_parameters(self) -> Iterator[torch.Tensor]:
        for m in self.modules().values():
            yield from m.parameters()
