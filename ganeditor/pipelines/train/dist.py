"""Several processes (``torchrun --nproc_per_node N``): NCCL on CUDA, Gloo on CPU.

Gradients are averaged across processes after each backward pass (what DistributedDataParallel
does, done explicitly as NVlabs' StyleGAN trainers do, because GAN steps freeze and unfreeze
networks between forward passes).  Each process sees its share of every global batch; only rank
0 writes checkpoints, logs and samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as tdist
import torch.nn as nn


@dataclass
class DistEnv:
    """Where this process stands in a (possibly 1-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_from_env(device: torch.device) -> DistEnv:
    """Join the process group when started by torchrun (RANK/WORLD_SIZE set); else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not tdist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        tdist.init_process_group(backend=backend)
    return DistEnv(rank, world, local)


def shutdown(env: DistEnv) -> None:
    if env.enabled and tdist.is_initialized():
        tdist.destroy_process_group()


def broadcast_module(env: DistEnv, module: nn.Module) -> None:
    """Make every process start from rank 0's parameters and buffers."""
    if not env.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        tdist.broadcast(t.data, src=0)


def average_gradients(env: DistEnv, *modules: nn.Module) -> None:
    """All-reduce (mean) the gradients of ``modules`` in one flat buffer per dtype."""
    if not env.enabled:
        return
    params = [p for m in modules for p in m.parameters() if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    tdist.all_reduce(flat)
    flat /= env.world
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def mean_scalars(env: DistEnv, values: dict[str, float]) -> dict[str, float]:
    """Average logged scalars over processes."""
    if not env.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    tdist.all_reduce(t)
    return {k: float(v) / env.world for k, v in zip(keys, t)}


def gather_objects(env: DistEnv, obj: Any) -> list[Any]:
    """Every process's ``obj`` (e.g. RNG states), in rank order."""
    if not env.enabled:
        return [obj]
    out: list[Any] = [None] * env.world
    tdist.all_gather_object(out, obj)
    return out


def barrier(env: DistEnv) -> None:
    if env.enabled:
        tdist.barrier()
