"""Statistics that compare a generated image set with a real one, on features or on the images.

- ``frechet_distance``: FID's formula (Heusel et al. 2017) on any feature space: |mu1 - mu2|^2 +
  Tr(S1 + S2 - 2 (S1 S2)^1/2), in float64.  The trace of the matrix square root is taken from the
  eigenvalues of S1^1/2 S2 S1^1/2 (symmetric, the same spectrum as S1 S2), which agrees with
  pytorch-fid's ``scipy.linalg.sqrtm`` route (tested).
- ``kernel_distance``: KID (Binkowski et al. 2018), the unbiased MMD^2 with the cubic polynomial
  kernel (x.y / d + 1)^3, averaged over random subsets as torchmetrics does (tested).
- ``precision_recall``: improved precision and recall (Kynkaanniemi et al. 2019): a sample counts as
  covered when it lies inside the k-nearest-neighbour ball of some sample of the other set.
- ``mean_pairwise_distance``: sample diversity.
- ``attribute_coverage``: per attribute, the smallest ratio (generated share / real share) over the
  attribute's bins -- on/off for binary attributes, real-data quintiles otherwise -- so 1 means the
  generated set visits every part of the attribute's range as often as the data, 0 that it never
  shows some part (e.g. no glasses).
- ``sliced_wasserstein``: SWD of Laplacian-pyramid patches (Karras et al. 2018), needs no network.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _as64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x.detach().cpu()).double()


def frechet_distance(real, fake) -> float:
    """FID's Frechet distance between Gaussians fitted to two feature sets [N, D]."""
    a, b = _as64(real), _as64(fake)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    ev, vec = torch.linalg.eigh(s1)
    root1 = (vec * ev.clamp_min(0).sqrt()) @ vec.T
    mid = torch.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = mid.clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean)


def _poly_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m = x.shape[0]
    diag_x, diag_y = torch.diagonal(kxx), torch.diagonal(kyy)
    kt_xx = kxx.sum() - diag_x.sum()
    kt_yy = kyy.sum() - diag_y.sum()
    return (kt_xx + kt_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m)


def kernel_distance(real, fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets of ``subset_size`` samples of each set)."""
    a, b = _as64(real), _as64(fake)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    g = torch.Generator().manual_seed(seed)
    vals = torch.stack([_poly_mmd(a[torch.randperm(len(a), generator=g)[:size]],
                                  b[torch.randperm(len(b), generator=g)[:size]]) for _ in range(subsets)])
    return float(vals.mean()), float(vals.std(unbiased=False))


def _knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 0th neighbour is the point itself


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision (fakes inside the real manifold) and recall (reals inside the fake manifold)."""
    a, b = _as64(real), _as64(fake)
    k = min(k, len(a) - 1, len(b) - 1)
    if k < 1:
        raise ValueError("precision/recall need at least 2 samples in each set")
    ra, rb = _knn_radii(a, k), _knn_radii(b, k)
    d = torch.cdist(b, a)  # [fake, real]
    precision = (d <= ra[None, :]).any(dim=1).double().mean()
    recall = (d.T <= rb[None, :]).any(dim=1).double().mean()
    return float(precision), float(recall)


def mean_pairwise_distance(feats) -> float:
    """Mean Euclidean distance between distinct samples (sample diversity)."""
    x = _as64(feats)
    n = len(x)
    if n < 2:
        return 0.0
    return float(torch.cdist(x, x).sum() / (n * (n - 1)))


def attribute_coverage(real: np.ndarray, fake: np.ndarray, names: Sequence[str], binary: Sequence[str] = (),
                       bins: int = 5) -> dict[str, dict[str, float]]:
    """Per attribute: ``coverage`` (min over bins of fake share / real share), and the shares of the worst bin.

    ``real``/``fake`` are attribute scores [N, A] (binary attributes as probabilities)."""
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        r, f = np.asarray(real[:, j], np.float64), np.asarray(fake[:, j], np.float64)
        if name in binary:
            edges = np.array([0.5])
        else:
            edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
        rs = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1) / len(r)
        fs = np.bincount(np.searchsorted(edges, f, side="right"), minlength=len(edges) + 1) / len(f)
        ok = rs > 0
        ratio = fs[ok] / rs[ok]
        worst = int(np.argmin(ratio))
        out[name] = {"coverage": float(ratio[worst]), "real_share": float(rs[ok][worst]),
                     "fake_share": float(fs[ok][worst]), "bin": int(np.flatnonzero(ok)[worst]), "bins": int(len(rs))}
    return out


# --- sliced Wasserstein distance on image patches ----------------------------------------------


def _pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid (finest first, coarsest = the low-pass residual) of [N,3,H,W] in [-1,1]."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None, :] / 256).expand(3, 1, 5, 5)
    out = []
    for _ in range(levels - 1):
        low = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, groups=3)[..., ::2, ::2]
        up = F.conv_transpose2d(low, k * 4, stride=2, padding=2, output_padding=1, groups=3)
        out.append(x - up)
        x = low
    out.append(x)
    return out


def _descriptors(x: torch.Tensor, per_image: int, rng: np.random.Generator) -> torch.Tensor:
    """``per_image`` random 7x7 patches of each image, flattened [N*per_image, 147]."""
    n, c, h, w = x.shape
    ys = torch.from_numpy(rng.integers(0, h - 6, (n, per_image)))
    xs = torch.from_numpy(rng.integers(0, w - 6, (n, per_image)))
    d = torch.arange(7)
    rows = (ys[..., None, None] + d[:, None]).expand(n, per_image, 7, 7)
    cols = (xs[..., None, None] + d[None, :]).expand(n, per_image, 7, 7)
    idx = torch.arange(n)[:, None, None, None].expand_as(rows)
    return x.permute(0, 2, 3, 1)[idx, rows, cols].reshape(n * per_image, -1)


def _normalize(d: torch.Tensor) -> torch.Tensor:
    return (d - d.mean(0, keepdim=True)) / d.std(0, keepdim=True).clamp_min(1e-8)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, seed: int = 0, dirs: int = 128, repeats: int = 4) -> list[float]:
    """SWD x 1e3 per pyramid level (finest first) between image sets [N,3,H,W] in [-1,1] (at least 16 px)."""
    assert a.shape[1:] == b.shape[1:] and a.shape[-1] >= 16, f"a {list(a.shape)} b {list(b.shape)}"
    levels = max(1, int(np.log2(a.shape[-1] // 16)) + 1)
    rng = np.random.default_rng(seed)
    out = []
    for la, lb in zip(_pyramid(a.float().cpu(), levels), _pyramid(b.float().cpu(), levels)):
        da, db = _normalize(_descriptors(la, 64, rng)), _normalize(_descriptors(lb, 64, rng))
        m = min(len(da), len(db))
        da, db = da[:m], db[:m]
        total = 0.0
        for _ in range(repeats):
            p = torch.from_numpy(rng.standard_normal((da.shape[1], dirs))).float()
            p = p / p.norm(dim=0, keepdim=True)
            pa, pb = (da @ p).t().contiguous(), (db @ p).t().contiguous()  # [dirs, M]: sorting rows is fast
            total += float((torch.sort(pa, 1).values - torch.sort(pb, 1).values).abs().mean())
        out.append(1e3 * total / repeats)
    return out
