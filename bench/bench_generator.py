"""StyleGAN2 generator speed on this machine: ms/image, FLOPs, ratio to the compute floor.

    python bench/bench_generator.py [--res 256 1024] [--repeat 3] [--threads 2]
                                    [--original /tmp/stylegan2-ada-pytorch]

Random weights of the real sizes (256: paper256, channel_base 16384; 1024: config-f, channel_base
32768; channel_max 512, 8 mapping layers, z/w 512).  Modes: `exact` (fp32, our default path),
`fast` (bf16 autocast + channels_last), `preview` (a slider preview through
``pipelines.edit.PreviewRenderer``: an edit of the last two ws entries, so only the last block
re-runs from cached activations; exact and fast).  `--original` also times the NVlabs code
from a checkout given by path (imported at run time, never copied), fp32, same weights, and
reports the output difference.  The peak is measured in the same run with a large matmul and
conv.  Each row gives the median wall time and the median process CPU time (less sensitive to
other jobs on a shared machine; with 1 thread, wall ~ CPU on a quiet machine), the spread of the
wall times, and the process peak RSS after that resolution.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perf_common as pc  # noqa: E402

from ganeditor.archs import build  # noqa: E402
from ganeditor.pipelines.edit import PreviewRenderer  # noqa: E402

CONFIGS = {
    256: dict(channel_base=16384, channel_max=512),  # paper256
    1024: dict(channel_base=32768, channel_max=512),  # config-f
}


def timeit(fn, repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls after one warm-up call."""
    return interleaved({"f": fn}, repeat)["f"][0]


def interleaved(fns: dict, repeat: int) -> dict[str, tuple[float, float, float, float]]:
    """Per function, calling them in turn (one warm-up each): (median wall s, median CPU s, min, max wall)."""
    for fn in fns.values():
        fn()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    cs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            c, t = time.process_time(), time.perf_counter()
            fn()
            ts[k].append(time.perf_counter() - t)
            cs[k].append(time.process_time() - c)
    return {k: (statistics.median(v), statistics.median(cs[k]), min(v), max(v)) for k, v in ts.items()}


def peaks(repeat: int) -> dict[str, float]:
    """Measured GFLOP/s: fp32 matmul/conv, bf16 channels_last conv."""
    out = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    out["matmul fp32"] = 2 * 2048**3 / timeit(lambda: a @ b, repeat) / 1e9
    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    flops = 2 * 64 * 64 * 512 * 512 * 9
    out["conv fp32"] = flops / timeit(lambda: F.conv2d(x, w, padding=1), repeat) / 1e9
    xc, wc = x.to(memory_format=torch.channels_last).bfloat16(), w.to(memory_format=torch.channels_last).bfloat16()
    out["conv bf16 CL"] = flops / timeit(lambda: F.conv2d(xc, wc, padding=1), repeat) / 1e9
    return out


def make_generator(res: int) -> torch.nn.Module:
    torch.manual_seed(0)
    G = build("stylegan2-generator", z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
              mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res])  # fmt: skip
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        G.mapping.w_avg.normal_(0, 0.3)
    return G.eval()


def count_flops(G, ws) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        G.synthesis(ws, noise_mode="const")
    return float(fc.get_total_flops())


def load_original(path: str):
    sys.path.insert(0, path)
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib imports it, unused here
    from training.networks import Generator  # noqa: PLC0415  (the user's checkout, at run time)

    return Generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", nargs=3, metavar=("RES", "IMPL", "LAYERS"), help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--make-weights", nargs=2, metavar=("RES", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--res", type=int, nargs="+", default=[256, 1024], choices=sorted(CONFIGS))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--original", help="path of an NVlabs stylegan2-ada-pytorch checkout to time side by side")
    ap.add_argument("--modes", nargs="+", default=["exact", "fast", "preview"])
    args = ap.parse_args()
    if args.make_weights:
        make_weights(int(args.make_weights[0]), args.make_weights[1])
        return
    if args.serve:
        serve(int(args.serve[0]), args.serve[1], args.serve[2], args.weights, args.original, args.threads)
        return
    torch.set_num_threads(args.threads)
    pk = peaks(args.repeat)
    print("peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in pk.items()))
    print(f"{'res':>5} {'mode':<9} {'ms/image':>9} {'cpu ms':>8} {'spread ms':>13} {'GFLOP':>7} {'GFLOP/s':>8} "
          f"{'floor ms':>9} {'x floor':>7}  notes")  # fmt: skip
    for res in args.res:
        G = make_generator(res)
        z = torch.from_numpy(np.random.RandomState(0).randn(1, 512)).float()
        with torch.inference_mode():
            ws = G.mapping(z, None, truncation_psi=0.7)
            ref = G.synthesis(ws, noise_mode="const")
        flops = count_flops(G, ws)
        floor32 = flops / (pk["conv fp32"] * 1e9)
        floor16 = flops / (pk["conv bf16 CL"] * 1e9)
        fns, notes = {}, {}
        og = None
        if args.original:  # timed interleaved with ours, so that load from other processes hits both alike
            Orig = load_original(args.original)
            og = Orig(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                      mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res]).eval()  # fmt: skip
            og.load_state_dict(G.state_dict(), strict=True)
            fns["original"] = lambda: og.synthesis(ws, noise_mode="const", force_fp32=True)
            with torch.no_grad():
                oimg = og.synthesis(ws.clone(), noise_mode="const", force_fp32=True)
            d8 = np.abs(to_u8(oimg).astype(int) - to_u8(ref).astype(int))
            notes["original"] = f"ours vs original: 8-bit max {d8.max()}, float max {float((oimg - ref).abs().max()):.1e}"
        if "exact" in args.modes:
            fns["exact"] = lambda: G.synthesis(ws, noise_mode="const")
            notes["exact"] = "fp32"
        if "fast" in args.modes:
            fns["fast"] = lambda: fast_synthesis(G, ws)
            with torch.inference_mode():
                img = fast_synthesis(G, ws).float()
            d8 = np.abs(to_u8(img).astype(int) - to_u8(ref).astype(int))
            notes["fast"] = f"bf16 drift vs exact: 8-bit max {d8.max()}, mean {d8.mean():.2f}"
        if "preview" in args.modes:
            for kind in ("exact", "fast"):
                fns[f"prev-{kind}"], notes[f"prev-{kind}"] = preview_fn(G, ws, fast=kind == "fast")
        with torch.inference_mode():
            times = interleaved(fns, args.repeat)
        for mode, (t, c, lo, hi) in times.items():
            full = not mode.startswith("prev")
            floor = (floor16 if mode == "fast" else floor32) if full else None
            fl_s = f"{flops / 1e9:7.1f}" if full else f"{'':>7}"
            rate = f"{flops / t / 1e9:8.0f}" if full else f"{'':>8}"
            fls = f"{floor * 1e3:9.0f}" if floor else f"{'':>9}"
            xf = f"{t / floor:7.2f}" if floor else f"{'':>7}"
            spread = f"{lo * 1e3:.0f}-{hi * 1e3:.0f}"
            print(f"{res:>5} {mode:<9} {t * 1e3:9.0f} {c * 1e3:8.0f} {spread:>13} {fl_s} {rate} {fls} {xf}  {notes[mode]}")
        if "exact" in times and "original" in times:
            print(f"{res:>5} speed-up exact vs original: {times['original'][0] / times['exact'][0]:.2f}x wall, "
                  f"{times['original'][1] / times['exact'][1]:.2f}x CPU")  # fmt: skip
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        print(f"{res:>5} process peak RSS so far: {rss:.2f} GiB")


def fast_synthesis(G, ws: torch.Tensor) -> torch.Tensor:
    """The fast mode: bf16 autocast + channels_last."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return G.synthesis(ws, noise_mode="const", channels_last=True)


def preview_fn(G, ws: torch.Tensor, fast: bool):
    """A slider drag on the last two ws entries through PreviewRenderer: returns (call, note)."""
    pr = PreviewRenderer(G, noise_mode="const")
    d = torch.randn(1, 1, ws.shape[2], generator=torch.Generator().manual_seed(1))
    state = {"alpha": 0.0}
    with torch.inference_mode():
        pr.render(ws)  # fills the cache

    def call():
        state["alpha"] += 0.1
        wse = ws.clone()
        wse[:, -2:] += state["alpha"] * d
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            out = pr.render(wse)
        assert pr.last_blocks_run == 1
        return out

    return call, f"PreviewRenderer, edit of ws[-2:]: 1 block re-run ({'bf16' if fast else 'fp32'})"


def to_u8(img: torch.Tensor) -> np.ndarray:
    return (img.float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


# ----------------------------------------------------------------------------------------------
# Rows of the combined perf table (bench_perf.py): each implementation in its own child process


def init_kwargs(res: int) -> dict:
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                mapping_kwargs={"num_layers": 8}, synthesis_kwargs=CONFIGS[res])  # fmt: skip


def make_weights(res: int, path: str) -> None:
    """The generator of ``make_generator(res)`` and its ws (psi 0.7) for the serving children."""
    G = make_generator(res)
    with torch.inference_mode():
        ws = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, 512)).float(), None, truncation_psi=0.7)
    torch.save({"state": G.state_dict(), "ws": ws.clone()}, path)


def _slider(ws: torch.Tensor, layers: tuple[int, int], render):
    """A slider drag on ws[:, a:b]: each call moves it one notch and renders through ``render``."""
    d = torch.randn(1, 1, ws.shape[2], generator=torch.Generator().manual_seed(1))
    state = {"alpha": 0.0}

    def call():
        state["alpha"] += 0.1
        wse = ws.clone()
        wse[:, layers[0] : layers[1]] += state["alpha"] * d
        return render(wse)

    return call


def serve(res: int, impl: str, layers: str, weights: str, original: str | None, threads: int) -> None:
    """Child: ``impl`` in original / exact / fast (full synthesis), preview / preview-fast (our
    PreviewRenderer) or draftN (PreviewRenderer's draft at N px, fp32); ``layers`` 'A-B' moves a
    slider on ws[:, A:B] each call, '-' renders ws as is."""

    def make():
        data = torch.load(weights, weights_only=True)
        ws = data["ws"]
        if impl == "original":
            pc.prepare_original(original, expect=("training/networks.py",))
            from training.networks import Generator  # noqa: PLC0415  (the checkout, at run time)

            G = Generator(**init_kwargs(res)).eval()
            G.load_state_dict(data["state"], strict=True)

            def render(w):
                with torch.no_grad():
                    return G.synthesis(w, noise_mode="const", force_fp32=True)
        else:
            G = build("stylegan2-generator", **init_kwargs(res)).eval()
            G.load_state_dict(data["state"], strict=True)
            fast = impl.endswith("fast")
            pr = PreviewRenderer(G, noise_mode="const") if impl.startswith(("preview", "draft")) else None
            # 'draft512': a face shown at <= 512 px; 'draft512-bf16': that draft in bf16, as the window drafts on such CPUs
            max_res = int(impl[5:].removesuffix("-bf16")) if impl.startswith("draft") else None
            bf16_draft = impl.endswith("-bf16")
            if pr is not None:
                with torch.inference_mode():
                    pr.render(ws)  # fills the cache, as the window does after an inversion

            def render(w):
                with torch.inference_mode():
                    if bf16_draft:
                        return pr.render(w, max_res, fast=True)
                    if pr is not None:
                        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                            return pr.render(w, max_res).float()
                    return (fast_synthesis(G, w) if fast else G.synthesis(w, noise_mode="const")).float()

        if layers == "-":
            return lambda: render(ws)
        a, b = (int(v) for v in layers.split("-"))
        return _slider(ws, (a, b), render)

    pc.serve(make, threads, to_u8=lambda img: to_u8(img)[0])


def perf_cases(res: int, original: str | None, tmp: str, threads: int, preview_layers: list[str]) -> list[pc.Case]:
    """The StyleGAN2 rows: full synthesis, then a slider preview per ws range in ``preview_layers``."""
    weights = str(Path(tmp) / f"sg2-{res}.pt")
    r = subprocess.run([sys.executable, __file__, "--make-weights", str(res), weights], capture_output=True, text=True,
                       cwd=pc.ROOT, env=pc.child_env(threads))  # fmt: skip
    if r.returncode:
        raise SystemExit(f"StyleGAN2 {res}: making weights failed: {r.stderr.strip().splitlines()[-1:]}")
    G = make_generator(res)
    with torch.inference_mode():
        flops = count_flops(G, G.mapping(torch.zeros(1, 512), None))

    def argv(impl: str, layers: str) -> list[str]:
        cmd = [sys.executable, __file__, "--weights", weights, "--threads", str(threads), "--serve", str(res), impl, layers]
        return cmd + (["--original", original] if impl == "original" else [])

    orig = {"original": argv("original", "-")} if original else {}
    cases = [pc.Case(f"StyleGAN2-ADA {res}", orig | {"exact": argv("exact", "-"), "fast": argv("fast", "-")}, flops,
                     note="original: NVlabs stylegan2-ada-pytorch G.synthesis(force_fp32=True); fast: bf16 autocast + channels_last")]
    for layers in preview_layers:
        a, b = (int(v) for v in layers.split("-"))
        blocks = {i for i, (s, e) in enumerate(PreviewRenderer(G)._ranges) if s < b and a < e}
        orig = {"original": argv("original", layers)} if original else {}
        draft = f"draft{res // 2}"
        impls = orig | {"exact": argv("preview", layers), "fast": argv("preview-fast", layers), draft: argv(draft, layers),
                        f"{draft}-bf16": argv(f"{draft}-bf16", layers), "full": argv("exact", layers)}  # fmt: skip
        cases.append(pc.Case(f"slider preview {res}, ws {a}-{b - 1}", impls,
                             note=f"a slider on ws[{a}:{b}] moves each call; original: NVlabs full synthesis of the edited ws; "
                                  f"exact/fast: our PreviewRenderer (blocks from {min(blocks)} of {len(PreviewRenderer(G)._ranges)} re-run); "
                                  f"{draft}: its fp32 draft for a face shown at <= {res // 2} px (stops at that block), "
                                  f"{draft}-bf16 the same in bf16 (the window's drafts on CPUs with native bf16); "
                                  "full: our full fp32 synthesis (preview ÷ full is printed below the table)"))  # fmt: skip
    return cases


if __name__ == "__main__":
    main()
