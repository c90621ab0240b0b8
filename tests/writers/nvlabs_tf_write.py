"""Test-only writer (not part of the app): our StyleGAN2 networks as a legacy TensorFlow NVlabs
pickle ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` records, by the conversion rules of
``ganeditor.formats.nvlabs_tf`` inverted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from ganeditor.core.atomic import atomic_write
from ganeditor.formats.nvlabs_tf import D_RULES, G_RULES, _tf_name, _transform
from writers.nvlabs_pkl_write import NVlabsPickler, _Global


def tf_variables(net: nn.Module, kind: str) -> dict[str, np.ndarray]:
    """The TF variables (by full name) of our network: the conversion rules inverted."""
    out = {}
    for key, t in net.state_dict().items():
        found = _tf_name(G_RULES if kind == "G" else D_RULES, key)
        if found is not None:
            out[found[0]] = np.array(_transform(found[1], found[0], t.detach().cpu().numpy(), to_tf=True), order="C")
    return out


def save_tf_pickle(path: str | Path, nets: dict[str, nn.Module], static_kwargs: dict[str, dict[str, Any]]) -> None:
    """Write ``(G, D, Gs)`` TF network records for our 'G', 'D', 'G_ema' (``static_kwargs`` per role)."""
    class TFNet:
        def __init__(self, state: dict[str, Any]):
            self.state = state

    def record(role: str) -> TFNet:
        kind = "D" if role == "D" else "G"
        vs = tf_variables(nets[role], kind)
        own = lambda pre: [(k[len(pre):], v) for k, v in vs.items() if k.startswith(pre)]  # noqa: E731
        comps = {} if kind == "D" else {c: TFNet({"version": 4, "name": c, "static_kwargs": {}, "components": {},
                                                  "build_module_src": "", "build_func_name": c,
                                                  "variables": own(c + "/")}) for c in ("mapping", "synthesis")}  # fmt: skip
        top = [(k, v) for k, v in vs.items() if kind == "D" or "/" not in k]
        return TFNet({"version": 4, "name": role, "static_kwargs": static_kwargs.get(role, {}), "components": comps,
                      "build_module_src": "", "build_func_name": role, "variables": top})  # fmt: skip

    network = _Global("dnnlib.tflib.network", "Network")

    class TFPickler(NVlabsPickler):
        dispatch = dict(NVlabsPickler.dispatch)

        def save_tfnet(self, obj: TFNet) -> None:
            self.save(network)
            self.save(())
            self.write(b"\x81")  # NEWOBJ
            self.memoize(obj)
            self.save(obj.state)
            self.write(b"b")  # BUILD

        dispatch[TFNet] = save_tfnet

    with atomic_write(path) as f:
        TFPickler(f).dump((record("G"), record("D"), record("G_ema")))
