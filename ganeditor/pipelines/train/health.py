"""Training health: how a GAN run is doing, measured every N steps on a fixed evaluation set, and a
mode-collapse alarm.

A recipe that generates images offers ``health_sets(count)``: named pairs of (generated, real)
image batches, both fixed for the whole run (the same latents, the same inputs, the same real
images).  ``HealthMonitor`` turns them into figures, in the best feature space this machine has:

- ``inception-v3`` -- FID and KID on the pool3 features of the FID Inception network, when its
  weights are on disk (``pipelines.inception``): the published metrics.
- ``attribute-regressor`` -- for the procedural portrait world, the hidden layer of our attribute
  regressor (``models/portrait-attributes``).  FID/KID there ("FD"/"KD" in the regressor's space) are
  not comparable with published FIDs, but rank runs the same way; the regressor's scores also give
  the per-attribute coverage.
- ``pixels-16`` -- otherwise, images shrunk to 16x16: only diversity is reported there.
Improved precision/recall use the same feature space; SWD (image patches, no network) is always
reported.  ``alarms(history)`` reads the records so far and names what looks like mode collapse:
recall falling, an attribute shown at under half its data frequency while the images already look
real, or sample diversity collapsing -- each with what to try.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.pipelines.train import health_stats as S

FEATURE_SPACES = ("inception-v3", "attribute-regressor", "pixels-16")
PORTRAIT_WORLD = "world:portraits"
REGRESSOR_MODEL = "portrait-attributes"
BATCH = 64


@dataclass(frozen=True)
class HealthOptions:
    """How a run measures itself (``TrainConfig.eval_*``)."""

    every: int = 500  # steps between evaluations (0: never)
    count: int = 512  # generated and real images per evaluation
    inception: str | None = None  # FID Inception weights file (else $GANEDITOR_INCEPTION, the hub cache)
    feature_space: str = "auto"  # auto | inception-v3 | attribute-regressor | pixels-16


@dataclass(frozen=True)
class Alarm:
    """One sign of mode collapse, with what to try."""

    kind: str  # recall | coverage | diversity
    message: str
    advice: str

    def text(self) -> str:
        return f"{self.message} Try: {self.advice}"


class FeatureSpace:
    """Features [N, D] (and for the portrait world attribute scores) of images [N, 3, H, W] in [-1, 1]."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor], note: str,
                 scorer: Any = None):  # fmt: skip
        self.name, self.fn, self.note, self.scorer = name, fn, note, scorer

    @property
    def distances(self) -> bool:
        """Whether FID/KID/precision/recall mean something here (not on raw pixels)."""
        return self.name != "pixels-16"

    @torch.no_grad()
    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.fn(imgs[i:i + BATCH]).float().cpu() for i in range(0, len(imgs), BATCH)])

    @torch.no_grad()
    def scores(self, imgs: torch.Tensor) -> np.ndarray | None:
        if self.scorer is None:
            return None
        from ganeditor.pipelines.attributes import score_array

        return score_array(self.scorer, imgs, batch=BATCH)


def _regressor_space(device: torch.device) -> FeatureSpace | None:
    from ganeditor.core.errors import GanEditorError
    from ganeditor.core.model_store import resolve_model
    from ganeditor.pipelines.attributes import load_regressor

    try:
        reg = load_regressor(resolve_model(REGRESSOR_MODEL), device).float().eval()
    except GanEditorError:
        return None
    hidden = reg.head[:-1]  # Flatten, Linear, SiLU: the layer the attribute outputs read

    def fn(x: torch.Tensor) -> torch.Tensor:
        return hidden(reg.features(reg.prepare(x.to(device).float())))

    return FeatureSpace("attribute-regressor", fn, f"hidden layer of {REGRESSOR_MODEL} (procedural portraits)", reg)


def _pixel_space(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x.float(), size=(16, 16), mode="area").flatten(1)


def choose_feature_space(opts: HealthOptions, data: Sequence[str], device: torch.device) -> FeatureSpace:
    """The best feature space available for this run's data (see the module docstring)."""
    from ganeditor.pipelines.inception import load_fid_inception

    want = opts.feature_space
    if want not in ("auto", *FEATURE_SPACES):
        raise ValueError(f"unknown feature space {want!r} (auto, {', '.join(FEATURE_SPACES)})")
    if want in ("auto", "inception-v3"):
        net = load_fid_inception(opts.inception, device)
        if net is not None:
            return FeatureSpace("inception-v3", lambda x: net(x.to(device)), "FID Inception pool3 (2048)")
    portraits = any(str(d).split("?")[0] == PORTRAIT_WORLD for d in data)
    if want in ("auto", "attribute-regressor") and (portraits or want == "attribute-regressor"):
        space = _regressor_space(device)
        if space is not None:
            return space
    return FeatureSpace("pixels-16", _pixel_space, "16x16 thumbnails (no feature network on disk)")


class HealthMonitor:
    """Measures a recipe's ``health_sets`` against real features computed once."""

    def __init__(self, sets: Callable[[], dict[str, tuple[torch.Tensor, torch.Tensor]]], space: FeatureSpace):
        self.sets, self.space = sets, space
        self._real: dict[str, tuple[torch.Tensor, np.ndarray | None, torch.Tensor]] = {}

    def _real_stats(self, name: str, real: torch.Tensor) -> tuple[torch.Tensor, np.ndarray | None, torch.Tensor]:
        if name not in self._real:
            self._real[name] = (self.space.features(real), self.space.scores(real), real.float().cpu())
        return self._real[name]

    def evaluate(self) -> dict[str, Any]:
        """One evaluation: a flat record (suffix ``_<set>`` when a recipe has several sets)."""
        out: dict[str, Any] = {"feature_space": self.space.name}
        pairs = self.sets()
        for name, (fake, real) in pairs.items():
            sfx = "" if len(pairs) == 1 else f"_{name}"
            rf, rscores, rimg = self._real_stats(name, real)
            ff = self.space.features(fake)
            for k, v in _set_metrics(self.space, rf, ff, rimg, fake.float().cpu()).items():
                out[k + sfx] = v
            if rscores is not None:
                cov = S.attribute_coverage(rscores, self.space.scores(fake), self.space.scorer.attributes,
                                           self.space.scorer.binary)
                out["coverage_min" + sfx] = round(min(c["coverage"] for c in cov.values()), 4)
                for attr, c in cov.items():
                    out[f"coverage/{attr}{sfx}"] = round(c["coverage"], 4)
        return out


def _set_metrics(space: FeatureSpace, rf: torch.Tensor, ff: torch.Tensor, rimg: torch.Tensor,
                 fimg: torch.Tensor) -> dict[str, float]:
    m: dict[str, float] = {}
    if space.distances:
        m["fid"] = round(S.frechet_distance(rf, ff), 4)
        kid, _ = S.kernel_distance(rf, ff, subsets=50, subset_size=min(1000, len(rf), len(ff)))
        m["kid_x1e3"] = round(kid * 1e3, 4)
        m["precision"], m["recall"] = (round(v, 4) for v in S.precision_recall(rf, ff))
    m["diversity"] = round(S.mean_pairwise_distance(ff) / max(S.mean_pairwise_distance(rf), 1e-12), 4)
    if rimg.shape[-1] >= 16:
        m["swd_x1e3"] = round(float(np.mean(S.sliced_wasserstein(fimg, rimg))), 3)
    return m


# --- the alarm ----------------------------------------------------------------------------------

RECALL_DROP = 0.6  # recall below this fraction of its best so far
COVERAGE_MIN = 0.5  # an attribute bin shown at under half its data frequency...
PRECISION_READY = 0.5  # ...while at least this share of the images already looks real
DIVERSITY_MIN = 0.5  # generated diversity (mean pairwise feature distance) under half the data's

ADVICE = {
    "recall": "resume from the checkpoint before the drop with a lower learning rate (lr), a larger r1_gamma, "
              "or loss=r3gan (relativistic pairing with R1 + R2, built for mode coverage)",
    "coverage": "train longer; loss=r3gan; keep minibatch stddev on (mbstd_channels=1); "
                "a larger batch; check that the data really holds the attribute",
    "diversity": "mode collapse: resume from an earlier checkpoint with a lower lr, a larger r1_gamma, "
                 "loss=r3gan, or minibatch stddev on",
}


def alarms(history: Sequence[dict[str, Any]]) -> list[Alarm]:
    """Alarms raised by the latest health record given the earlier ones (records as ``evaluate`` writes)."""
    if not history:
        return []
    now, before = history[-1], history[:-1]
    out: list[Alarm] = []
    keys = sorted(k for k in now if k.startswith("recall"))
    for k in keys:
        best = max((float(h[k]) for h in before if k in h), default=None)
        if best is not None and best >= 0.1 and now[k] < RECALL_DROP * best:
            out.append(Alarm("recall", f"Recall fell from {best:.2f} to {now[k]:.2f}: the generator is dropping "
                             "modes it had learned.", ADVICE["recall"]))
    cov = {k[len("coverage/"):]: float(v) for k, v in now.items() if k.startswith("coverage/")}
    low = sorted((v, a) for a, v in cov.items() if v < COVERAGE_MIN)
    prec = min((float(v) for k, v in now.items() if k.startswith("precision")), default=0.0)
    if low and prec >= PRECISION_READY:
        names = ", ".join(f"{a} {v:.2f}x" for v, a in low[:4])
        out.append(Alarm("coverage", f"Some attributes appear at under half their data frequency: {names} "
                         f"(precision {prec:.2f}: the generated images land near real ones, but not near all "
                         "kinds of them).", ADVICE["coverage"]))
    for k in sorted(k for k in now if k.startswith("diversity")):
        seen = [float(h[k]) for h in before if k in h]
        v = float(now[k])
        if seen and v < DIVERSITY_MIN:  # the first evaluation (an untrained generator) is exempt
            out.append(Alarm("diversity", f"Sample diversity collapsed to {v:.2f}x the data's "
                             f"(best so far {max(seen):.2f}x).", ADVICE["diversity"]))
    return out


def health_history(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The health records among a run's metrics records (those carrying a feature space)."""
    return [r for r in records if "feature_space" in r]


def describe_space(name: str) -> str:
    """A short phrase for the panel and the log."""
    return {"inception-v3": "Inception-v3 (FID/KID as published)",
            "attribute-regressor": "attribute-regressor features (FD/KD, not comparable with published FID)",
            "pixels-16": "16x16 thumbnails (no feature network on disk: SWD and diversity only)"}.get(name, name)


def weights_hint() -> str:
    """Where FID's Inception weights go."""
    from ganeditor.pipelines.inception import FID_WEIGHTS_FILE

    return f"put {FID_WEIGHTS_FILE} in {Path(torch.hub.get_dir()) / 'checkpoints'} or set $GANEDITOR_INCEPTION"
