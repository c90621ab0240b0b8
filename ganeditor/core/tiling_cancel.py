"""Cancel points inside a network's forward: every tiling engine runs its networks under ``CancelPoints``.

A tile, a band or a column chunk can hold seconds of work (a 512-pixel tile of Real-ESRGAN is
~30 s on one core), so checking the cancel token between tiles is not enough.  ``CancelPoints`` is a
``TorchFunctionMode`` (thread-local, so it sees exactly the work of the thread that entered it,
and it changes no module): every ``conv2d`` / ``conv_transpose2d`` call first checks the task's
token, and one of more than ``max_flops`` is computed in chunks of output rows of at most
``max_flops`` each, with a check before each chunk.  Each chunk reads the input rows its outputs
depend on (zero padding only at the true top/bottom) and is written straight into the output
(oneDNN's ``mkldnn_convolution.out`` for channels_last CPU tensors, else copied), so the result equals
the one-piece convolution (the same sums per output value; only float rounding may differ).

With the default 2 GFLOP per chunk a check comes every ~20 ms of one core's fp32 work (this
machine's 3x3 peak is ~110 GFLOP/s), far inside the ~0.2 s the window's cancel bound allows even on
a loaded machine; the engines' own loops check between tiles, bands and chunks as well.  Chunking
also keeps a huge convolution's working set cache-sized.  ``checks`` and ``flops`` count what
happened, so tests can prove the granularity without timing anything.  Work is counted in fp32
FLOPs: a bf16/fp16 FLOP on CPU counts ``LOW_PRECISION_WORK`` (its convolutions run ~5x faster), so
the fast mode gets the same time between checks with fewer, larger chunks.  At the true top and
bottom the convolution pads the chunk itself and the rows it invents are cropped (no padded copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ganeditor.core.progress import Task

CHECK_FLOPS = 2e9  # most work (multiply-adds x 2, fp32) between two checks inside one convolution
LOW_PRECISION_WORK = 0.25  # fp32-equivalent work per bf16/fp16 FLOP on CPU


def _pair(v: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _work_per_flop(x: torch.Tensor) -> float:
    """fp32-equivalent work of one FLOP of a convolution on ``x``: bf16/fp16 on CPU (given, or by
    autocast) counts LOW_PRECISION_WORK (oneDNN's bf16 convolutions run ~5x faster than fp32 here)."""
    if x.device.type != "cpu":
        return 1.0
    low = x.dtype in (torch.bfloat16, torch.float16) or (
        torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") in (torch.bfloat16, torch.float16))
    return LOW_PRECISION_WORK if low else 1.0


def conv_flops(x: torch.Tensor, weight: torch.Tensor, out_rows: int, out_cols: int) -> float:
    """Multiply-adds x 2 of a conv2d producing [N, C_out, out_rows, out_cols] from ``x``."""
    return 2.0 * x.shape[0] * weight.shape[0] * weight[0].numel() * out_rows * out_cols


class CancelPoints(TorchFunctionMode):
    """Check ``task`` before every convolution and between row chunks of large ones (see the module)."""

    def __init__(self, task: Task, max_flops: float | None = None) -> None:
        super().__init__()
        self.task, self.max_flops = task, max_flops or CHECK_FLOPS
        self.checks = 0  # token checks made
        self.flops = 0.0  # convolution work done (fp32-equivalent FLOPs)
        self.max_between = 0.0  # most convolution work between two consecutive checks
        self._since = 0.0
        self._direct = True  # chunks of channels_last CPU convolutions are written into the output in place

    def check(self) -> None:
        """Raise ``Cancelled`` if the task was cancelled (counts the check)."""
        self.checks += 1
        self._since = 0.0
        self.task.check()

    def _did(self, flops: float) -> None:
        self.flops += flops
        self._since += flops
        self.max_between = max(self.max_between, self._since)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - the TorchFunctionMode API
        kwargs = kwargs or {}
        if func is F.conv2d:
            return self._conv2d(*args, **kwargs)
        if func is F.conv_transpose2d:
            return self._conv_transpose2d(*args, **kwargs)
        return func(*args, **kwargs)

    def _conv2d(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: ANN001 - F.conv2d's
        self.check()
        if x.ndim != 4 or isinstance(padding, str):
            y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
            self._did(conv_flops(x, weight, y.shape[2], y.shape[3]) * _work_per_flop(x))
            return y
        (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
        reach = dh * (weight.shape[2] - 1) + 1  # input rows one output row reads
        n_in = x.shape[2]
        rows = (n_in + 2 * ph - reach) // sh + 1
        cols = (x.shape[3] + 2 * pw - dw * (weight.shape[3] - 1) - 1) // sw + 1

        def part(a: int, b: int, out: torch.Tensor | None = None) -> torch.Tensor:  # output rows [a, b)
            lo, hi = a * sh - ph, (b - 1) * sh - ph + reach  # only the input rows they read
            top, bot = max(0, -lo), max(0, hi - n_in)
            xs = x[:, :, max(0, lo) : min(n_in, hi)]
            if top != bot:  # the true image top or bottom: zero rows there only
                pad = max(top, bot)  # the convolution pads both sides, the rows it invents are cropped
                skip, odd = divmod(pad - top, sh)  # (a padded copy cost as much as a third of the conv)
                if not odd:
                    return F.conv2d(xs, weight, bias, (sh, sw), (pad, pw), (dh, dw), groups)[:, :, skip : skip + b - a]
                xs, top = F.pad(xs, (0, 0, top, bot)), 0
            if out is not None and self._direct:
                return self._conv_into(out, xs, weight, bias, (top, pw), (sh, sw), (dh, dw), groups)
            return F.conv2d(xs, weight, bias, (sh, sw), (top, pw), (dh, dw), groups)

        return self._in_row_chunks(part, rows, conv_flops(x, weight, rows, cols) * _work_per_flop(x))

    def _conv_into(self, out, x, weight, bias, padding, stride, dilation, groups):  # noqa: ANN001
        """conv2d written straight into ``out`` (a row slice of the output) by oneDNN, as F.conv2d would
        compute it (autocast included); returns ``out``, or a new tensor where that is not possible."""
        if torch.is_autocast_enabled("cpu"):
            dt = torch.get_autocast_dtype("cpu")
            x, weight, bias = x.to(dt), weight.to(dt), None if bias is None else bias.to(dt)
        cl = torch.channels_last
        if x.device.type != "cpu" or x.dtype != out.dtype or weight.dtype != out.dtype or \
                not (x.is_contiguous(memory_format=cl) and out.is_contiguous(memory_format=cl)):
            return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
        try:
            return torch.ops.aten.mkldnn_convolution.out(x, weight.contiguous(memory_format=cl), bias, list(padding),
                                                         list(stride), list(dilation), groups, out=out)
        except (RuntimeError, AttributeError):  # not available in this build: copy the chunks instead
            self._direct = False
            return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    def _conv_transpose2d(self, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,  # noqa: ANN001
                          dilation=1):
        self.check()
        (sh, sw), (ph, pw), (oph, opw) = _pair(stride), _pair(padding), _pair(output_padding)
        k, n_in = weight.shape[2], x.shape[2]
        flops = 2.0 * x[0].numel() * x.shape[0] * weight.shape[1] * weight[0, 0].numel() * groups * _work_per_flop(x)
        if x.ndim != 4 or _pair(dilation) != (1, 1) or oph > ph or k < sh:
            y = F.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)
            self._did(flops)
            return y
        rows = (n_in - 1) * sh - 2 * ph + k + oph

        def part(a: int, b: int, out: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG001 - copied
            # output row g gathers input rows i with g = i*s - p + t, 0 <= t < k
            lo, hi = max(0, -((k - 1 - a - ph) // sh)), min(n_in, (b - 1 + ph) // sh + 1)
            y = F.conv_transpose2d(x[:, :, lo:hi], weight, bias, (sh, sw), (0, pw), (0, opw), groups)
            first = a - lo * sh + ph  # chunk output row o is global row o + lo*s - p
            return y[:, :, first : first + (b - a)]

        return self._in_row_chunks(part, rows, flops)

    def _in_row_chunks(self, part, rows: int, total: float) -> torch.Tensor:  # noqa: ANN001
        """Output rows in chunks of at most ``max_flops`` (one piece when small), a check between chunks."""
        if total <= self.max_flops or rows < 2:
            y = part(0, rows)
            self._did(total)
            return y
        step = max(1, int(self.max_flops * rows // total))  # rows per chunk
        y = None
        for a in range(0, rows, step):
            if a:
                self.check()
            b = min(rows, a + step)
            piece = part(a, b) if y is None else part(a, b, y[:, :, a:b])
            if y is None:  # the output, in the chunks' memory format; later chunks are written into it
                cl = piece.is_contiguous(memory_format=torch.channels_last) and not piece.is_contiguous()
                y = torch.empty((piece.shape[0], piece.shape[1], rows, piece.shape[3]), dtype=piece.dtype,
                                device=piece.device, memory_format=torch.channels_last if cl else torch.contiguous_format)
            if piece.data_ptr() != y[:, :, a:b].data_ptr():
                y[:, :, a:b] = piece
            self._did(total * (b - a) / rows)
        return y
