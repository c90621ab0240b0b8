"""Latent directions: SeFa, GANSpace, InterFaceGAN boundaries (fitted from labels or scores,
conditional projection), and the in-memory direction library.

A ``Direction`` moves ws[:, start:end] by α·sigma·vector ("sigma" units, sigma = the spread of
W along the vector) or α·vector ("absolute" units).  Facts used (FORMATS.md "Directions"):
SeFa = eigenvectors of W·Wᵀ where W concatenates the chosen layers' style-affine weights
transposed ([w_dim, C_in] each) with unit-norm columns; GANSpace = PCA of sampled W, edits
``w[l] += comp·stdev·σ`` for l in [start, end); InterFaceGAN = unit normal of a linear classifier,
conditional boundaries remove the components along the condition normals.
Sign convention (ours, for SeFa and GANSpace): the largest-magnitude entry of each vector is positive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.errors import GanEditorError

UNITS = ("sigma", "absolute")


@dataclass
class Direction:
    """One editing direction in W, applied on ws layers [start, end)."""

    name: str
    vector: np.ndarray  # [w_dim] float32
    start: int = 0  # first ws layer moved
    end: int | None = None  # one past the last ws layer moved, None = all
    unit: str = "sigma"  # 'sigma': α·sigma·vector; 'absolute': α·vector
    sigma: float = 1.0  # spread of W along the vector (sigma units)
    source: str = ""  # 'sefa', 'ganspace', 'interfacegan', 'user', ...
    info: dict[str, Any] = field(default_factory=dict)  # eigenvalue, variance ratio, accuracy...

    def __post_init__(self) -> None:
        self.vector = np.asarray(self.vector, dtype=np.float32).reshape(-1)
        if self.unit not in UNITS:
            raise GanEditorError(f"direction {self.name!r}: unknown unit {self.unit!r} (sigma or absolute)")

    def layer_range(self, num_ws: int) -> tuple[int, int]:
        """[start, end) clipped to ``num_ws``."""
        end = num_ws if self.end is None else min(self.end, num_ws)
        return max(0, self.start), end

    def step(self) -> np.ndarray:
        """The shift for α = 1, in W units."""
        return self.vector * (self.sigma if self.unit == "sigma" else 1.0)


@dataclass
class DirectionLibrary:
    """Named directions for one generator (``generator`` = its fingerprint, None = any with this w_dim)."""

    directions: list[Direction]
    w_dim: int
    num_ws: int | None = None
    generator: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [d.name for d in self.directions]

    def __getitem__(self, name: str) -> Direction:
        for d in self.directions:
            if d.name == name:
                return d
        raise GanEditorError(f"no direction named {name!r} (library has: {', '.join(self.names()[:12])})")

    def check_generator(self, fingerprint: str, w_dim: int, where: Any = None) -> None:
        """Raise a one-line error when the library was made for another generator."""
        if self.w_dim != w_dim:
            raise GanEditorError(f"directions have w_dim {self.w_dim}, the generator has {w_dim}", where)
        if self.generator and self.generator != fingerprint:
            raise GanEditorError(f"directions were made for another generator ({self.generator}, this is {fingerprint})", where)


def _fix_sign(v: np.ndarray) -> np.ndarray:
    """Flip rows so that each row's largest-magnitude entry is positive."""
    idx = np.abs(v).argmax(axis=1)
    s = np.sign(v[np.arange(len(v)), idx])
    s[s == 0] = 1
    return v * s[:, None]


def style_affines(G: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, affine weight [C_in, w_dim]) of the layer that reads each ws index, in ws order.

    StyleGAN2: b4.conv1, b8.conv0, b8.conv1, …, the last block's torgb (other torgbs share a ws
    index with the next conv and are left out, as SeFa does).  StyleGAN3: input, L0, …, L14.
    """
    mods = [(n, m) for n, m in G.synthesis.named_modules() if hasattr(m, "affine") and n]
    last = mods[-1][0]
    out = [(n, m.affine.weight.detach()) for n, m in mods if not (n.endswith("torgb") and n != last)]
    if len(out) != G.num_ws:
        raise GanEditorError(f"found {len(out)} style layers for {G.num_ws} ws: unsupported generator")
    return out


def sample_w(G: nn.Module, num: int = 10000, seed: int = 0, batch: int = 2000) -> np.ndarray:
    """Mapped W of ``num`` seeded z samples, [num, w_dim] float64."""
    device = next(G.parameters()).device
    z = np.random.RandomState(seed).randn(num, G.z_dim)
    out = []
    with torch.no_grad():
        for i in range(0, num, batch):
            zb = torch.from_numpy(z[i : i + batch]).to(device)
            c = torch.zeros([len(zb), G.c_dim], device=device)
            w = G.mapping(zb, c)
            out.append((w[:, 0] if w.ndim == 3 else w).double().cpu().numpy())
    return np.concatenate(out)


def sefa(
    G: nn.Module,  # StyleGAN generator
    layers: Sequence[int] | None = None,  # ws indices whose affine weights are factorised, None = all
    num: int = 10,  # directions kept (largest eigenvalues first)
    sigma_samples: int = 2000,  # W samples used to express each direction in σ units (0: absolute)
) -> list[Direction]:
    """SeFa: closed-form directions from the style-affine weights of ``layers``."""
    aff = style_affines(G)
    layers = list(range(G.num_ws)) if layers is None else sorted(set(layers))
    if not layers or layers[0] < 0 or layers[-1] >= G.num_ws:
        raise GanEditorError(f"SeFa layers must be within 0..{G.num_ws - 1}")
    W = np.concatenate([aff[i][1].double().cpu().numpy().T for i in layers], axis=1)  # [w_dim, sum C]
    W = W / np.linalg.norm(W, axis=0, keepdims=True)
    vals, vecs = np.linalg.eigh(W @ W.T)  # ascending, orthonormal columns
    order = np.argsort(-vals, kind="stable")[:num]
    vals, vecs = vals[order], _fix_sign(vecs[:, order].T)
    sig = _sigmas(G, vecs, sigma_samples)
    start, end = layers[0], layers[-1] + 1
    return [Direction(f"sefa_{i}", v, start, end, "sigma" if sigma_samples else "absolute", s, "sefa",
                      {"eigenvalue": float(e), "layers": layers}) for i, (v, e, s) in enumerate(zip(vecs, vals, sig))]  # fmt: skip


def _sigmas(G: nn.Module, vecs: np.ndarray, samples: int) -> np.ndarray:
    if not samples:
        return np.ones(len(vecs))
    w = sample_w(G, samples, seed=1)
    return ((w - w.mean(0)) @ vecs.T).std(axis=0)


@dataclass
class PCA:
    """GANSpace-style PCA of W: components [K, w_dim], stdevs [K], mean [w_dim], variance ratios [K]."""

    components: np.ndarray
    stdevs: np.ndarray
    mean: np.ndarray
    var_ratio: np.ndarray


def pca_w(G: nn.Module, num_components: int = 20, samples: int = 20000, seed: int = 0) -> PCA:
    """PCA of ``samples`` mapped W (sorted by variance, sign-fixed)."""
    w = sample_w(G, samples, seed)
    mean = w.mean(0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    var = s**2 / (len(w) - 1)
    k = min(num_components, len(var))
    return PCA(_fix_sign(vt[:k]), np.sqrt(var[:k]), mean, var[:k] / var.sum())


def ganspace(
    G: nn.Module,  # StyleGAN generator
    num: int = 20,  # components kept
    layers: tuple[int, int] | None = None,  # default [start, end) for every component, None = all
    samples: int = 20000,  # W samples
    seed: int = 0,  # sampling seed
) -> list[Direction]:
    """GANSpace directions: principal components of W in σ units."""
    p = pca_w(G, num, samples, seed)
    start, end = layers if layers is not None else (0, None)
    return [Direction(f"ganspace_{i}", p.components[i], start, end, "sigma", float(p.stdevs[i]), "ganspace",
                      {"var_ratio": float(p.var_ratio[i])}) for i in range(len(p.stdevs))]  # fmt: skip


def fit_boundary(
    latents: np.ndarray,  # [N, w_dim] W codes
    labels: np.ndarray,  # [N] 0/1 marks (or booleans)
    l2: float = 1e-3,  # ridge penalty (per sample) keeping separable data finite
    iters: int = 50,  # Newton steps
) -> tuple[np.ndarray, float]:
    """Logistic-regression boundary: (unit normal [w_dim], training accuracy)."""
    x = np.asarray(latents, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise GanEditorError(f"latents {list(x.shape)} and labels {list(y.shape)} do not match")
    if len(np.unique(y)) != 2 or not set(np.unique(y)) <= {0.0, 1.0}:
        raise GanEditorError("labels must contain both classes (0 and 1)")
    mu, sd = x.mean(0), x.std(0) + 1e-12
    xs = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], axis=1)
    beta = np.zeros(xs.shape[1])
    reg = np.full(xs.shape[1], l2 * len(x))
    reg[-1] = 0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(xs @ beta, -30, 30)))
        grad = xs.T @ (p - y) + reg * beta
        hess = (xs * (p * (1 - p))[:, None]).T @ xs + np.diag(reg + 1e-9)
        delta = np.linalg.solve(hess, grad)
        beta -= delta
        if np.abs(delta).max() < 1e-8:
            break
    normal = beta[:-1] / sd  # back to raw W coordinates
    acc = float(((xs @ beta > 0) == (y > 0.5)).mean())
    return normal / np.linalg.norm(normal), acc


def fit_boundary_from_scores(
    latents: np.ndarray,  # [N, w_dim]
    scores: np.ndarray,  # [N] attribute scores
    ratio: float = 0.2,  # fraction taken as positives (top) and as negatives (bottom), as InterFaceGAN
) -> tuple[np.ndarray, float]:
    """InterFaceGAN's recipe: the top/bottom ``ratio`` by score become the two classes."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    k = max(1, int(len(scores) * ratio))
    order = np.argsort(scores, kind="stable")
    idx = np.concatenate([order[:k], order[-k:]])
    return fit_boundary(np.asarray(latents)[idx], np.r_[np.zeros(k), np.ones(k)])


def label_with_scorer(
    G: nn.Module,  # generator
    score_fn: Callable[[torch.Tensor], np.ndarray],  # images [N, C, R, R] in [-1, 1] -> scores [N]
    num: int = 1000,  # samples
    seed: int = 0,  # z seed
    batch: int = 16,  # images per forward
) -> tuple[np.ndarray, np.ndarray]:
    """Sample W, render, score: (latents [N, w_dim], scores [N])."""
    w = sample_w(G, num, seed)
    device = next(G.parameters()).device
    scores = []
    with torch.no_grad():
        for i in range(0, num, batch):
            wb = torch.from_numpy(w[i : i + batch]).float().to(device)
            img = G.synthesis(wb[:, None].repeat(1, G.num_ws, 1), noise_mode="const")
            scores.append(np.asarray(score_fn(img), dtype=np.float64).reshape(-1))
    return w, np.concatenate(scores)


def project_out(primal: np.ndarray, *conditions: np.ndarray) -> np.ndarray:
    """Conditional boundary: ``primal`` minus its components along the condition normals, unit norm."""
    v = np.asarray(primal, dtype=np.float64).reshape(-1)
    if conditions:
        c = np.stack([np.asarray(x, dtype=np.float64).reshape(-1) for x in conditions], axis=1)
        q, _ = np.linalg.qr(c)
        v = v - q @ (q.T @ v)
    n = np.linalg.norm(v)
    if n < 1e-8:
        raise GanEditorError("the direction lies in the span of the conditions: nothing is left after projection")
    return v / n


def pretty_name(name: str) -> str:
    """A direction's name for people: 'hair_colour' -> 'Hair colour'; 'sefa_coarse_2' -> 'SeFa coarse 2'."""
    text = name.replace("_", " ").strip()
    for raw, nice in (("sefa", "SeFa"), ("ganspace", "GANSpace"), ("cond", "(cond.)")):
        text = text.replace(raw, nice)
    return text[:1].upper() + text[1:]
