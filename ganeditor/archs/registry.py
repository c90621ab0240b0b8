"""A small name -> nn.Module class registry, filled by explicit imports in ``archs/__init__``."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch.nn as nn

from ganeditor.core.errors import CheckpointError

T = TypeVar("T", bound=type)

ARCHS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make ``cls`` buildable by ``build(name, **kwargs)``."""

    def deco(cls: T) -> T:
        if name in ARCHS and ARCHS[name] is not cls:
            raise ValueError(f"architecture name {name!r} registered twice")
        ARCHS[name] = cls
        cls.arch_name = name
        return cls

    return deco


def build(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate the registered architecture ``name`` with ``kwargs``."""
    try:
        cls = ARCHS[name]
    except KeyError:
        raise CheckpointError(f"unknown architecture {name!r} (known: {', '.join(sorted(ARCHS))})") from None
    net = cls(**kwargs)
    net.init_kwargs = dict(kwargs)  # recorded so our format can rebuild the network
    return net
