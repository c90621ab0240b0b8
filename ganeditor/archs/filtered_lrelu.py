"""StyleGAN3 ops in pure PyTorch: low-pass filter design and the filtered leaky ReLU.

Same semantics as NVlabs ``torch_utils/ops/filtered_lrelu.py`` (its reference path): add bias,
upsample by zero insertion + pad + FIR ``fu`` (gain ``up**2``), leaky ReLU times ``gain``, clamp,
FIR ``fd`` and keep every ``down``-th sample.  Written anew from those facts.

``impl='ref'`` is that textbook sequence (big zero-stuffed intermediates).  ``impl='fast'``
computes the same linear maps one axis at a time in horizontal strips (the upsampled
intermediate never exists for the whole image), channels_last: along H as banded block matrix
products with a long contiguous inner dimension, along W as depthwise oneDNN convolutions
(polyphase transposed convolution for up: no multiplications by inserted zeros; strided for
down: only kept samples are computed).  A 2-D down filter of rank 1 (by SVD) is applied as its
two 1-D factors; one of higher rank (radial) as one 2-D depthwise strided convolution.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ganeditor.archs import ops

# Upper bound on the floats of one strip of the upsampled intermediate (fast path).
STRIP_FLOATS = 1 << 22
# Fewest output rows per strip: neighbouring strips recompute (down-filter taps - down) upsampled
# rows, so short strips of wide layers would compute each upsampled row several times.
MIN_STRIP_ROWS = 32
# Output rows per block of the banded matrix products, in units of up/gcd(up, down): small
# blocks waste fewer multiplications on the band's zeros (4 -> about 1.5x the taps).
BLOCK_ROWS = 4
# Separable terms of a 2-D filter whose singular value is below this fraction of the largest are
# dropped (their effect, < 1e-6 of the output, is under float32 rounding of the filter itself):
# a filter left with one term runs as two 1-D passes, one with more as a 2-D convolution.
SVD_REL_TOL = 1e-6


# ----------------------------------------------------------------------------------------------
# Filter design (scipy.signal.firwin / kaiser semantics, without scipy)


def _kaiser_beta(atten: float) -> float:
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def _kaiser_atten(numtaps: int, width: float) -> float:
    return 2.285 * (numtaps - 1) * np.pi * width + 7.95


def design_lowpass_filter(
    numtaps: int,  # number of taps; 1 = identity (returns None)
    cutoff: float,  # cutoff frequency
    width: float,  # transition band width
    fs: float,  # sampling rate
    radial: bool = False,  # radially symmetric jinc filter [numtaps, numtaps] instead of 1-D
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter as StyleGAN3 designs it (float32), None if 1 tap."""
    assert numtaps >= 1
    if numtaps == 1:
        return None
    nyq = fs / 2
    beta = _kaiser_beta(_kaiser_atten(numtaps, width / nyq))
    win = np.kaiser(numtaps, beta)
    if not radial:
        c = cutoff / nyq
        m = np.arange(numtaps) - 0.5 * (numtaps - 1)
        h = c * np.sinc(c * m) * win
        return torch.as_tensor(h / h.sum(), dtype=torch.float32)
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    pr = torch.as_tensor(np.pi * r, dtype=torch.float64)
    j1 = torch.special.bessel_j1(2 * cutoff * pr)
    f = torch.where(pr > 0, j1 / pr.clamp_min(1e-300), torch.full_like(pr, cutoff)).numpy()
    f = f * np.outer(win, win)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Reference path


def _parse_padding(padding: int | list[int] | tuple[int, ...]) -> tuple[int, int, int, int]:
    if isinstance(padding, (int, np.integer)):
        padding = [int(padding)] * 2
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    assert len(padding) == 4
    return padding[0], padding[1], padding[2], padding[3]


def _size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; 1-D filters are separable."""
    return (1, 1) if f is None else (int(f.shape[-1]), int(f.shape[0]))


def out_size(in_w: int, in_h: int, fu, fd, up: int, down: int, padding) -> tuple[int, int]:
    """Output (width, height) of ``filtered_lrelu``."""
    px0, px1, py0, py1 = _parse_padding(padding)
    (fuw, fuh), (fdw, fdh) = _size(fu), _size(fd)
    w = (in_w * up + px0 + px1 - (fuw - 1) - (fdw - 1) + (down - 1)) // down
    h = (in_h * up + py0 + py1 - (fuh - 1) - (fdh - 1) + (down - 1)) // down
    return w, h


def filtered_lrelu_ref(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False):
    """Reference filtered leaky ReLU: bias, upfirdn2d up, lrelu*gain, clamp, upfirdn2d down."""
    assert x.ndim == 4
    x = ops.bias_act(x, b, impl="ref")
    x = ops.upfirdn2d(x, fu, up=up, padding=list(_parse_padding(padding)), gain=up**2, flip_filter=flip_filter, impl="ref")
    x = ops.bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp, impl="ref")
    return ops.upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl="ref")


# ----------------------------------------------------------------------------------------------
# Fast path: banded block products along dim 0


@lru_cache(maxsize=512)
def _block_matrix(taps: tuple[float, ...], up: int, down: int, phase: int, rows: int) -> tuple[np.ndarray, int]:
    """Block [rows, cols] of the banded matrix and its first input row, for outputs
    starting at an index whose ``o*down - pad0`` is ``phase`` (mod ``up``)."""
    length = len(taps)
    lo = -(-phase // up)  # ceil
    hi = ((rows - 1) * down + phase + length - 1) // up
    q = np.arange(lo, hi + 1)[None, :]
    r = np.arange(rows)[:, None]
    idx = q * up - phase - r * down
    h = np.asarray(taps, dtype=np.float64)
    k = np.where((idx >= 0) & (idx < length), h[np.clip(idx, 0, length - 1)], 0.0)
    return k.astype(np.float32), lo


def _fir_rows(x: torch.Tensor, n_sig: int, off: int, taps: tuple[float, ...], up: int, down: int, pad0: int, o0: int,
              m: int, out: torch.Tensor | None = None, accumulate: bool = False) -> torch.Tensor:
    """Rows ``o0 .. o0+m-1`` of a 1-D upfirdn along dim 0 (correlation with ``taps``), [m, *rest].

    ``x`` holds rows ``off .. off+len(x)-1`` of a signal of ``n_sig`` rows (zero outside); each
    row must be contiguous, rows may be further apart (a column crop of a wider tensor).
    ``out``: a contiguous [m, *rest] tensor that receives the result (``accumulate``: is added to);
    the products write into it directly when the row blocks fit it.
    """
    rest = x.shape[1:]
    cols = x[0].numel()
    assert x[0].is_contiguous(), "rows must be contiguous"
    x2 = x.as_strided((x.shape[0], cols), (x.stride(0) if x.shape[0] > 1 else cols, 1), x.storage_offset())
    if len(taps) == 1 and up == 1 and down == 1:  # identity filter: shift and pad only
        res = x2.new_zeros(m, cols)
        a, z = max(o0 - pad0, 0, off), min(o0 - pad0 + m, n_sig, off + x2.shape[0])
        if z > a:
            torch.mul(x2[a - off : z - off], taps[0], out=res[a - (o0 - pad0) : z - (o0 - pad0)])
        return _deliver(res.view(m, *rest), out, accumulate)
    length = len(taps)
    step_mult = up // math.gcd(up, down)
    rows = min(BLOCK_ROWS * step_mult, -(-m // step_mult) * step_mult)
    nb = -(-m // rows)
    s = rows * down // up
    base = o0 * down - pad0
    phase = base % up
    k, lo = _block_matrix(taps, up, down, phase, rows)
    kin = k.shape[1]
    first = (base - phase) // up + lo  # first global input row needed
    need0 = max(0, -(-(o0 * down - pad0) // up))  # rows the m wanted outputs need
    need1 = min(n_sig, ((o0 + m - 1) * down - pad0 + length - 1) // up + 1)
    assert off <= need0 and off + x2.shape[0] >= need1, "strip does not cover the rows it needs"
    direct = out is not None and nb * rows == m
    res = out.view(nb, rows, cols) if direct else torch.empty(nb, rows, cols, dtype=x.dtype, device=x.device)
    kt = torch.from_numpy(k).to(device=x.device, dtype=x.dtype)
    lo_av, hi_av = max(0, off), min(n_sig, off + x2.shape[0])  # rows that hold real data
    b0 = min(nb, max(0, -(-(lo_av - first) // s)))  # blocks whose windows need no padding
    b1 = max(b0, min(nb, (hi_av - first - kin) // s + 1))
    for p, q in ((0, b0), (b0, b1), (b1, nb)):
        if q <= p:
            continue
        r0, r1 = first + p * s, first + (q - 1) * s + kin  # global input rows of these blocks
        if p == b0 and q == b1:
            xe = x2[r0 - off : r1 - off]
        else:
            xe = x2.new_zeros(r1 - r0, cols)
            a, z = max(r0, lo_av), min(r1, hi_av)
            if z > a:
                xe[a - r0 : z - r0] = x2[a - off : z - off]
        rs = xe.stride(0) if xe.shape[0] > 1 else cols
        win = xe.as_strided((q - p, kin, cols), (s * rs, rs, 1), xe.storage_offset())
        if direct and accumulate:
            res[p:q].baddbmm_(kt.expand(q - p, *kt.shape), win)
        else:
            torch.matmul(kt, win, out=res[p:q])
    if direct:
        return out
    return _deliver(res.view(nb * rows, cols)[:m].view(m, *rest), out, accumulate)


def _deliver(res: torch.Tensor, out: torch.Tensor | None, accumulate: bool) -> torch.Tensor:
    if out is None:
        return res
    return out.add_(res) if accumulate else out.copy_(res)


def _depthwise(taps: tuple[float, ...], c: int, like: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """[C, 1, 1, L] depthwise weight holding ``taps`` (reversed if ``flip``) for every channel."""
    t = torch.tensor(taps[::-1] if flip else taps, dtype=like.dtype, device=like.device)
    return t.reshape(1, 1, 1, -1).expand(c, 1, 1, len(taps)).contiguous()


def _crop_cols(y: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Columns ``start .. start+n-1`` of [1, C, R, W] (zeros outside); a view when inside."""
    if start >= 0 and start + n <= y.shape[3]:
        return y[:, :, :, start : start + n]
    out = y.new_zeros(y.shape[0], y.shape[1], y.shape[2], n).contiguous(memory_format=torch.channels_last)
    a, z = max(start, 0), min(start + n, y.shape[3])
    if z > a:
        out[:, :, :, a - start : z - start] = y[:, :, :, a:z]
    return out


def _fir_cols(x: torch.Tensor, taps: tuple[float, ...], up: int, down: int, pad0: int, n_out: int) -> torch.Tensor:
    """1-D upfirdn along W of a channels_last [1, C, R, W] tensor (correlation with ``taps``;
    output j = sum_k taps[k] * xu[j*down + k - pad0], ``xu`` zero-inserted): [1, C, R, n_out].

    Runs as one depthwise convolution in oneDNN (transposed for ``up``: polyphase, no
    multiplications by inserted zeros), which reads the channels_last layout directly.
    """
    c, length = x.shape[1], len(taps)
    if up > 1:  # conv_transpose output i = sum_m x[m] * w[i - up*m]: with w = reversed taps, j -> i = j + L-1-pad0
        assert down == 1
        start = length - 1 - pad0
        full = (x.shape[3] - 1) * up + length
        w = _depthwise(taps, c, x, flip=True)
        if start >= 0 and full - 2 * start == n_out:
            return F.conv_transpose2d(x, w, stride=(1, up), padding=(0, start), groups=c)
        return _crop_cols(F.conv_transpose2d(x, w, stride=(1, up), groups=c), start, n_out)
    need = (n_out - 1) * down + length  # input columns from -pad0
    if pad0 > 0 or need - pad0 > x.shape[3]:
        x = _crop_cols(x, -pad0, need)
    elif pad0 < 0:
        x = x[:, :, :, -pad0:]
    y = F.conv2d(x, _depthwise(taps, c, x), stride=(1, down), groups=c)
    return y if y.shape[3] == n_out else y[:, :, :, :n_out]


def _down_2d(y: torch.Tensor, w2d: torch.Tensor, down: int, valid_rows: int, m: int, n_out: int) -> torch.Tensor:
    """2-D downfiltering of a channels_last strip [1, C, rows, W] (correlation with ``w2d`` [C, 1, kh, kw],
    stride ``down``): [1, C, m, n_out].  Rows from ``valid_rows`` on lie past the signal: zeroed."""
    if valid_rows < y.shape[2]:
        y[:, :, max(valid_rows, 0) :] = 0
    need = (n_out - 1) * down + w2d.shape[3]
    if need > y.shape[3]:
        y = _crop_cols(y, 0, need)
    z = F.conv2d(y, w2d, stride=down, groups=y.shape[1])
    return z[:, :, :m, :n_out]


def _taps(f: torch.Tensor | None, flip: bool, scale: float) -> tuple[float, ...]:
    if f is None:
        return (float(scale),)
    t = f.detach().double().cpu() * scale
    return tuple((t if flip else t.flip(0)).tolist())


def _separable_terms(fd: torch.Tensor | None, flip: bool) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """(vertical taps, horizontal taps) pairs whose outer products sum to the 2-D filter."""
    if fd is None or fd.ndim == 1:
        t = _taps(fd, flip, 1.0)
        return [(t, t)]
    f = fd.detach().double().cpu()
    f = f if flip else f.flip([0, 1])
    u, s, vt = torch.linalg.svd(f)
    keep = int((s > s[0] * SVD_REL_TOL).sum())
    return [(tuple((u[:, i] * s[i]).tolist()), tuple(vt[i].tolist())) for i in range(keep)]


def _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _parse_padding(padding)
    assert fu is None or fu.ndim == 1, "fast path needs a separable (1-D) up filter"
    fuw = _size(fu)[0]
    tw, th = w * up + px0 + px1 - (fuw - 1), h * up + py0 + py1 - (fuw - 1)  # upsampled size
    ow, oh = out_size(w, h, fu, fd, up, down, padding)
    tu_x = _taps(fu, flip_filter, up)
    tu_y = _taps(fu, flip_filter, up * float(gain))  # lrelu(g*x) == g*lrelu(x) for g > 0
    terms = _separable_terms(fd, flip_filter)
    fdh = len(terms[0][0])
    w2d = None  # a filter of rank > 1 (radial): one 2-D depthwise convolution reads the strip once
    if len(terms) > 1:
        f2 = fd.detach().to(dtype=x.dtype, device=x.device)
        w2d = (f2 if flip_filter else f2.flip([0, 1])).expand(c, 1, *f2.shape).contiguous()
    reach = max(sum(abs(t) for t in tu_x[p::up]) for p in range(up))  # worst polyphase gain of the up filter
    x = x.contiguous(memory_format=torch.channels_last)
    out = torch.empty(n, c, oh, ow, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    rows = max(min(MIN_STRIP_ROWS, oh), (STRIP_FLOATS // max(1, tw * c) - fdh + down) // down)
    rows = rows - rows % BLOCK_ROWS if rows > BLOCK_ROWS else rows  # whole row blocks go straight into the output
    bias = None if b is None else b.to(x.dtype).reshape(1, -1, 1, 1)
    for i in range(n):
        for o0 in range(0, oh, rows):
            m = min(rows, oh - o0)
            t0, t1 = o0 * down, (o0 + m - 1) * down + fdh  # upsampled rows needed
            i0 = max(0, -(-(t0 - py0) // up))
            i1 = min(h, (t1 - 1 - py0 + fuw - 1) // up + 1)
            xs = x[i : i + 1, :, i0:i1]  # [1, C, rows, W] channels_last
            xs = xs + bias if bias is not None else xs
            strip_clamp = clamp
            if clamp is not None:  # skip the clamp pass when no value of this strip can reach it
                lo_, hi_ = torch.aminmax(xs.permute(0, 2, 3, 1).reshape(-1))
                if max(-float(lo_), float(hi_)) * float(gain) * reach**2 < clamp:
                    strip_clamp = None
            y = _fir_rows(xs.permute(0, 2, 3, 1)[0], h, i0, tu_y, up, 1, py0, t0, t1 - t0)  # [rows', W, C]: V-up
            y = _fir_cols(y.unsqueeze(0).permute(0, 3, 1, 2), tu_x, up, 1, px0, tw)  # [1, C, rows', tW]: H-up
            if strip_clamp is not None:
                y.clamp_(-strip_clamp / slope if slope > 0 else 0.0, strip_clamp)
            if slope != 1:
                F.leaky_relu_(y, slope) if slope > 0 else y.relu_()
            dst = out[i : i + 1, :, o0 : o0 + m].permute(0, 2, 3, 1)[0]  # [m, oW, C] (contiguous rows of out)
            if w2d is not None:
                dst.copy_(_down_2d(y, w2d, down, th - t0, m, ow).permute(0, 2, 3, 1)[0])
                continue
            for k, (tv, th_) in enumerate(terms):  # the separable terms of the down filter, summed into dst
                z = _fir_cols(y, th_, 1, down, 0, ow).permute(0, 2, 3, 1)[0]  # [rows', oW, C]: H-down
                _fir_rows(z, th, t0, tv, 1, down, 0, o0, m, out=dst, accumulate=k > 0)  # [m, oW, C]: V-down
    return out


def filtered_lrelu(
    x: torch.Tensor,  # [N, C, H, W]
    fu: torch.Tensor | None = None,  # up filter: [taps] (separable) or None (identity)
    fd: torch.Tensor | None = None,  # down filter: [taps], [h, w] (e.g. radial) or None
    b: torch.Tensor | None = None,  # bias [C] or None
    up: int = 1,  # upsampling factor
    down: int = 1,  # downsampling factor
    padding=0,  # padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1]
    gain: float = math.sqrt(2),  # scale after the leaky ReLU
    slope: float = 0.2,  # leaky ReLU negative slope
    clamp: float | None = None,  # clamp to [-clamp, clamp] after gain, None = no clamp
    flip_filter: bool = False,  # False = convolution, True = correlation
    impl: str = "fast",  # 'fast' (strips, polyphase) or 'ref'
) -> torch.Tensor:
    """Filtered leaky ReLU (NVlabs semantics); the fast path returns a channels_last tensor."""
    assert x.ndim == 4, f"expected [N,C,H,W], got {list(x.shape)}"
    assert b is None or (b.ndim == 1 and b.shape[0] == x.shape[1])
    assert isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1
    assert gain > 0 and slope >= 0 and (clamp is None or clamp >= 0)
    fast_ok = fu is None or fu.ndim == 1
    if impl == "ref" or not fast_ok or (torch.is_grad_enabled() and x.requires_grad):
        return filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    if x.device.type == "cpu" and (x.dtype != torch.float32 or torch.is_autocast_enabled("cpu")):
        # oneDNN's depthwise (transposed) convolutions with these filters run ~4x slower in bf16 than in
        # fp32 on CPU, and the work is memory-bound anyway: filter in fp32, give back x's dtype
        with torch.autocast("cpu", enabled=False):
            y = _filtered_lrelu_fast(x.float(), fu, fd, None if b is None else b.float(), up, down, padding, gain,
                                     slope, clamp, flip_filter)
        return y.to(x.dtype)
    return _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
