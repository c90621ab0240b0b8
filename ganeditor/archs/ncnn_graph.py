"""A generic nn.Module that executes an imported ncnn graph (``.param`` layer list + weights).

The graph is described by JSON-able kwargs (the parsed layer list), so our safetensors format
can store it; weights are parameters named ``layers.<layer name>.<weight name>``.
Layer semantics follow the ncnn reference (CPU, fp32) implementation; see ``ncnn_ops``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganeditor.archs import ncnn_ops as ops
from ganeditor.archs.ncnn_ops import aparam, fparam, param
from ganeditor.archs.image2image_api import ImageToImageNet
from ganeditor.archs.registry import register

# Weights of each layer type in .bin order: (name, load type) where type 0 = tagged (fp32, fp16,
# int8 or 8-bit table), 1 = raw fp32.  Shapes come from ``weight_shapes``.
CONV_TYPES = ("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise")
ELEMENTWISE = ("ReLU", "Sigmoid", "TanH", "Clip", "ELU", "HardSigmoid", "HardSwish", "Mish", "Swish", "AbsVal")
PASS_THROUGH = ("Noop", "Dropout")
PER_CHANNEL = ("InnerProduct", "PReLU", "Scale", "BatchNorm", "Bias")
SUPPORTED = (
    ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "UnaryOp", "Interp", "PixelShuffle", "Pooling")
    + ("Crop", "Padding", "Reshape", "Permute", "Flatten", "InnerProduct", "PReLU", "Scale", "BatchNorm", "Bias")
    + CONV_TYPES
    + ELEMENTWISE
    + PASS_THROUGH
)


def weight_shapes(kind: str, p: ops.Params) -> list[tuple[str, tuple[int, ...], int]]:
    """(name, shape, .bin load type) of the stored weights of one layer, in file order."""
    if kind in CONV_TYPES:
        if param(p, 8, 0):
            raise ValueError("int8-quantized layers are not supported")
        if param(p, 19 if kind.startswith("Conv") else 28, 0):
            raise ValueError("dynamic-weight layers are not supported")
        out, kw = param(p, 0, 0), param(p, 1, 0)
        kh = param(p, 11, kw)
        size = param(p, 6, 0)
        if out <= 0 or kw <= 0 or kh <= 0 or size % (out * kw * kh):
            raise ValueError(f"inconsistent weight_data_size {size} for {out} outputs, kernel {kh}x{kw}")
        shapes = [("weight", (out, size // (out * kw * kh), kh, kw), 0)]
        return shapes + ([("bias", (out,), 1)] if param(p, 5, 0) else [])
    if kind == "InnerProduct":
        if param(p, 8, 0):
            raise ValueError("int8-quantized layers are not supported")
        out, size = param(p, 0, 0), param(p, 2, 0)
        if out <= 0 or size % out:
            raise ValueError(f"inconsistent weight_data_size {size} for {out} outputs")
        return [("weight", (out, size // out), 0)] + ([("bias", (out,), 1)] if param(p, 1, 0) else [])
    if kind == "PReLU":
        return [("slope", (max(param(p, 0, 0), 1),), 1)]
    if kind == "Scale":
        n = param(p, 0, 0)
        if n == -233:
            return []
        return [("scale", (n,), 1)] + ([("bias", (n,), 1)] if param(p, 1, 0) else [])
    if kind == "BatchNorm":
        n = param(p, 0, 0)
        return [(name, (n,), 1) for name in ("slope", "mean", "var", "bias")]
    if kind == "Bias":
        return [("bias", (param(p, 0, 0),), 1)]
    if kind == "Padding" and param(p, 6, 0) > 0:
        return [("per_channel", (param(p, 6, 0),), 1)]
    return []


def _per_channel(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Shape ``v`` to act per channel (3-D), per row (2-D) or per element (1-D) of blob ``x``."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def _safe_key(name: str, taken: set[str]) -> str:
    key = re.sub(r"\W", "_", name) or "layer"
    if key[0].isdigit():
        key = "_" + key
    base, i = key, 1
    while key in taken:
        i += 1
        key = f"{base}_{i}"
    taken.add(key)
    return key


class _Weights(nn.Module):
    """The stored weights of one ncnn layer."""

    def __init__(self, shapes: list[tuple[str, tuple[int, ...], int]]) -> None:
        super().__init__()
        for name, shape, _ in shapes:
            setattr(self, name, nn.Parameter(torch.zeros(shape)))


@register("ncnn-graph")
class NcnnGraph(nn.Module, ImageToImageNet):
    """Executes an ncnn network: one tensor in (the first Input blob), one tensor out."""

    # io_convention 'unit': Real-ESRGAN / waifu2x ncnn models take RGB [0, 1] in and out (ncnn apps x1/255, x255);
    # size_multiple 1: callers may give any size, forward() pads and crops.
    input_mean = 0.0
    input_std = 1.0

    def __init__(
        self,
        layers: list[dict[str, Any]],  # parsed .param: {type, name, bottoms, tops, params{"id": value}}
        scale: int | None = None,  # output/input size ratio of an upscaler, when known
        title: str = "",  # a name for people, e.g. the .param file's stem
        prepad: int = 0,  # forward() replicate-pads the input by this (graphs with unpadded convs)
        size_multiple: int = 1,  # forward() pads the padded sides up to a multiple of this
    ) -> None:
        super().__init__()
        self.specs = layers
        self.scale = scale
        self.title = title
        self.prepad = prepad
        self.pad_multiple = size_multiple
        self.needs_global_stats = any(
            s["type"] == "Pooling" and (param(s["params"], 4, 0) or param(s["params"], 7, 0)) for s in layers
        )
        self.layers = nn.ModuleDict()
        self.keys: list[str | None] = []
        taken: set[str] = set()
        consumed: Counter[str] = Counter()
        for spec in layers:
            kind = spec["type"]
            if kind not in SUPPORTED:
                raise ValueError(f"ncnn layer type {kind!r} is not supported (layer {spec['name']!r})")
            consumed.update(spec["bottoms"])
            shapes = weight_shapes(kind, spec["params"])
            key = _safe_key(spec["name"], taken) if shapes else None
            if key is not None:
                self.layers[key] = _Weights(shapes)
            self.keys.append(key)
        self.consumers = consumed
        self.input_names = [t for s in layers if s["type"] == "Input" for t in s["tops"]]
        produced = [t for s in layers for t in s["tops"]]
        self.output_names = [t for t in produced if t not in consumed]
        if not self.input_names:
            self.input_names = [b for s in layers for b in s["bottoms"] if b not in produced][:1]
        if not self.input_names or not self.output_names:
            raise ValueError("the ncnn graph has no input or no output blob")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the graph on ``x`` [N, C, H, W] fed to the first input blob; return the first output.

        With ``prepad``/``size_multiple`` the input is replicate-padded (as waifu2x-ncnn-vulkan
        does) and the output cropped to ``scale`` times the input size."""
        assert x.dim() == 4, f"expected [N, C, H, W], got {tuple(x.shape)}"
        name = self.output_names[-1]
        H, W = x.shape[-2:]
        p, m = self.prepad, self.pad_multiple
        extra_h, extra_w = (-(H + 2 * p)) % m, (-(W + 2 * p)) % m
        if p or extra_h or extra_w:
            x = F.pad(x, (p, p + extra_w, p, p + extra_h), mode="replicate")
        y = self.run({self.input_names[0]: x}, [name])[name]
        if (p or extra_h or extra_w) and self.scale:
            y = y[..., : H * self.scale, : W * self.scale]
        return y

    def run(self, inputs: dict[str, torch.Tensor], outputs: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Run the graph from named input blobs; return the named output blobs (default: all sinks)."""
        wanted = set(outputs or self.output_names)
        blobs: dict[str, torch.Tensor] = dict(inputs)
        left = Counter(self.consumers)
        for spec, key in zip(self.specs, self.keys):
            if spec["type"] == "Input":
                missing = [t for t in spec["tops"] if t not in blobs]
                if missing:
                    raise ValueError(f"no tensor given for input blob {missing[0]!r}")
                continue
            ins = [blobs[b] for b in spec["bottoms"]]
            for b in spec["bottoms"]:
                left[b] -= 1
                if left[b] == 0 and b not in wanted:
                    del blobs[b]
            w = self.layers[key] if key is not None else None
            outs = self._layer_forward(spec["type"], spec["params"], ins, w, len(spec["tops"]))
            blobs.update(zip(spec["tops"], outs))
            if wanted <= blobs.keys():
                break
        return {name: blobs[name] for name in wanted}

    def _layer_forward(
        self, kind: str, p: ops.Params, ins: list[torch.Tensor], w: nn.Module | None, n_out: int
    ) -> list[torch.Tensor]:
        """The output blobs of one layer of type ``kind`` from its input blobs and its weights ``w``."""
        x = ins[0]
        if kind == "Split":
            return [x] * n_out
        if kind in PASS_THROUGH:
            s = fparam(p, 0, 1.0) if kind == "Dropout" else 1.0
            return [t * s if s != 1.0 else t for t in ins]
        if kind in CONV_TYPES:
            return [self._conv(kind, p, x, w)]
        if kind in ELEMENTWISE:
            return [self._elementwise(kind, p, x)]
        if kind in PER_CHANNEL:
            return [self._per_channel_layer(kind, p, ins, w)]
        if kind == "Eltwise":
            return [self._eltwise(p, ins)]
        return [self._blob_op(kind, p, ins, w)]

    @staticmethod
    def _per_channel_layer(kind: str, p: ops.Params, ins: list[torch.Tensor], w: nn.Module | None) -> torch.Tensor:
        """InnerProduct and the layers that scale or shift each channel by stored weights."""
        x = ins[0]
        if kind == "InnerProduct":
            if x.dim() == 3 and x.shape[2] == w.weight.shape[1]:
                y = F.linear(x, w.weight, getattr(w, "bias", None))
            else:
                y = F.linear(x.flatten(1), w.weight, getattr(w, "bias", None))
            return ops.activation(y, param(p, 9, 0), aparam(p, 10))
        if kind == "PReLU":
            slope = _per_channel(x, w.slope) if w.slope.numel() > 1 else w.slope
            return torch.where(x < 0, x * slope, x)
        if kind == "Scale":
            if len(ins) > 1:  # one scale blob per sample: [N, C] acts per channel of [N, C, ...]
                s = ins[1].reshape(ins[1].shape[0], ins[1].shape[1], *([1] * (x.dim() - 2)))
            else:
                s = _per_channel(x, w.scale)
            y = x * s
            if w is not None and hasattr(w, "bias"):
                y = y + _per_channel(x, w.bias)
            return y
        if kind == "BatchNorm":
            sqrt_var = torch.sqrt(w.var + fparam(p, 1, 0.0))
            sqrt_var = torch.where(sqrt_var == 0, torch.full_like(sqrt_var, 1e-4), sqrt_var)
            a = w.bias - w.slope * w.mean / sqrt_var
            return x * _per_channel(x, w.slope / sqrt_var) + _per_channel(x, a)
        assert kind == "Bias", kind
        return x + _per_channel(x, w.bias)

    @staticmethod
    def _blob_op(kind: str, p: ops.Params, ins: list[torch.Tensor], w: nn.Module | None) -> torch.Tensor:
        """Arithmetic, resampling and reshaping of blobs (no stored weights but Padding's values)."""
        x = ins[0]
        second = ins[1] if len(ins) > 1 else None
        if kind == "BinaryOp":
            return ops.binary(x, fparam(p, 2, 0.0) if param(p, 1, 0) else ins[1], param(p, 0, 0))
        if kind == "UnaryOp":
            return ops.UNARY[param(p, 0, 0)](x)
        if kind == "Concat":
            axis = param(p, 0, 0)
            return torch.cat(ins, dim=(axis + x.dim() - 1 if axis < 0 else axis) + 1)
        if kind == "Interp":
            return ops.interp(x, p, second)
        if kind == "PixelShuffle":
            return ops.pixel_shuffle(x, p)
        if kind == "Pooling":
            return ops.pooling(x, p)
        if kind == "Crop":
            return ops.crop(x, p, second)
        if kind == "Padding":
            return ops.padding(x, p, getattr(w, "per_channel", None) if w is not None else None)
        if kind == "Reshape":
            return ops.reshape(x, p)
        if kind == "Permute":
            return ops.permute(x, p)
        if kind == "Flatten":
            return x.flatten(1)
        raise ValueError(f"ncnn layer type {kind!r} is not supported")

    @staticmethod
    def _conv(kind: str, p: ops.Params, x: torch.Tensor, w: nn.Module) -> torch.Tensor:
        kw = param(p, 1, 0)
        kh = param(p, 11, kw)
        dw = param(p, 2, 1)
        dh = param(p, 12, dw)
        sw = param(p, 3, 1)
        sh = param(p, 13, sw)
        groups = param(p, 7, 1) if kind.endswith("DepthWise") else 1
        bias = getattr(w, "bias", None)
        if kind.startswith("Convolution"):
            x = ops.conv_padding(x, p, kh, kw, dh, dw, sh, sw)
            y = F.conv2d(x, w.weight, bias, stride=(sh, sw), dilation=(dh, dw), groups=groups)
        else:  # ncnn stores [out, in/g, kh, kw]; PyTorch wants [in, out/g, kh, kw]
            out, in_g = w.weight.shape[:2]
            wt = w.weight.view(groups, out // groups, in_g, kh, kw).transpose(1, 2)
            wt = wt.reshape(groups * in_g, out // groups, kh, kw)
            y = F.conv_transpose2d(x, wt, None, stride=(sh, sw), dilation=(dh, dw), groups=groups)
            opad_r = param(p, 18, 0)
            opad_b = param(p, 19, opad_r)
            if opad_r or opad_b:
                y = F.pad(y, (0, opad_r, 0, opad_b))
            if bias is not None:
                y = y + bias.view(1, -1, 1, 1)
        y = ops.activation(y, param(p, 9, 0), aparam(p, 10))
        return y if kind.startswith("Convolution") else ops.deconv_cut(y, p)

    @staticmethod
    def _elementwise(kind: str, p: ops.Params, x: torch.Tensor) -> torch.Tensor:
        if kind == "ReLU":
            slope = fparam(p, 0, 0.0)
            return F.relu(x) if slope == 0 else torch.where(x < 0, x * slope, x)
        if kind == "Sigmoid":
            return torch.sigmoid(x)
        if kind == "TanH":
            return torch.tanh(x)
        if kind == "Clip":
            return x.clamp(fparam(p, 0, -3.402823466e38), fparam(p, 1, 3.402823466e38))
        if kind == "ELU":
            return torch.where(x < 0, fparam(p, 0, 0.1) * (torch.exp(x) - 1), x)
        if kind == "HardSigmoid":
            a, b = fparam(p, 0, 0.2), fparam(p, 1, 0.5)
            mid = torch.where(x > 1 / a - b / a, torch.ones_like(x), x * a + b)
            return torch.where(x < -b / a, torch.zeros_like(x), mid)
        if kind == "HardSwish":
            return ops.hardswish(x, fparam(p, 0, 0.2), fparam(p, 1, 0.5))
        if kind == "Mish":
            return x * torch.tanh(F.softplus(x))
        if kind == "Swish":
            return x * torch.sigmoid(x)
        return torch.abs(x)  # AbsVal

    @staticmethod
    def _eltwise(p: ops.Params, ins: list[torch.Tensor]) -> torch.Tensor:
        op, coeffs = param(p, 0, 0), aparam(p, 1)
        y = ins[0] * coeffs[0] if op == 1 and coeffs else ins[0]
        for i, t in enumerate(ins[1:], 1):
            if op == 0:
                y = y * t
            elif op == 1:
                y = y + (t * coeffs[i] if coeffs else t)
            elif op == 2:
                y = torch.maximum(y, t)
            else:
                raise ValueError(f"Eltwise op_type {op} is not supported")
        return y

    def set_geometry(self, scale: int | None, prepad: int, size_multiple: int) -> None:
        """Set the size facts found after construction (also in ``init_kwargs`` for saving)."""
        self.scale, self.prepad, self.pad_multiple = scale, prepad, size_multiple
        if hasattr(self, "init_kwargs"):
            self.init_kwargs.update(scale=scale, prepad=prepad, size_multiple=size_multiple)

    def describe(self) -> dict[str, object]:
        """Facts ``ganeditor info`` prints."""
        counts = Counter(s["type"] for s in self.specs)
        return {
            "architecture": "ncnn graph" + (f" ({self.title})" if self.title else ""),
            "scale": self.scale,
            "layers": len(self.specs),
            "layer types": ", ".join(f"{k} {v}" for k, v in counts.most_common()),
            "parameters": sum(t.numel() for t in self.parameters()),
            "input padding": f"{self.prepad} (sides padded to a multiple of {self.pad_multiple})",
            "input blob": self.input_names[0],
            "output blob": self.output_names[-1],
        }
