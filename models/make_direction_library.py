"""Build the direction library of a portrait StyleGAN: InterFaceGAN boundaries for every attribute
(fitted on generator samples labelled by the attribute regressor), conditional boundaries (every
other attribute projected out), SeFa (all layers and coarse/middle/fine thirds) and GANSpace; then
check every direction at the sliders' full range with the regressor (``pipelines.sliders``: a named
slider is offered under its name only if its attribute moves >= 1σ and no other attribute more).

    nice -n 5 python models/make_direction_library.py --generator models/portrait-stylegan2.safetensors \\
        --out models/portrait-stylegan2-directions.safetensors
    python models/make_direction_library.py --generator ... --out LIB --check-only   # re-check LIB in place

Uses the directions engine (``ganeditor.pipelines.directions``: fit_boundary_from_scores,
project_out, sefa, ganspace; ``direction_io.save_library``).  Deterministic for given arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganeditor.core.atomic import atomic_write  # noqa: E402
from ganeditor.core.device import pick_device  # noqa: E402
from ganeditor.core.progress import Task  # noqa: E402
from ganeditor.formats import load_checkpoint  # noqa: E402
from ganeditor.pipelines.attributes import load_regressor  # noqa: E402
from ganeditor.pipelines.direction_io import generator_fingerprint, save_library  # noqa: E402
from ganeditor.pipelines.directions import Direction, DirectionLibrary, ganspace, sefa  # noqa: E402
from ganeditor.pipelines.direction_io import load_library  # noqa: E402
from ganeditor.pipelines.edit_quality import attribute_boundaries, label_latents  # noqa: E402
from ganeditor.pipelines.sliders import check_directions  # noqa: E402


def sefa_sets(G: torch.nn.Module, num: int, per_part: int, sigma_samples: int) -> list[Direction]:
    """SeFa on all layers (``num``) and on the coarse/middle/fine thirds of ws (``per_part`` each)."""
    out = sefa(G, None, num, sigma_samples)
    n = G.num_ws
    cuts = [0, max(1, n // 3), max(2, 2 * n // 3), n]
    for part, (a, b) in zip(("coarse", "middle", "fine"), zip(cuts[:-1], cuts[1:])):
        if per_part and b > a:
            for i, d in enumerate(sefa(G, list(range(a, b)), per_part, sigma_samples)):
                d.name = f"sefa_{part}_{i}"
                out.append(d)
    return out


def build_library(
    G: torch.nn.Module,  # StyleGAN generator
    regressor: torch.nn.Module,  # attribute regressor
    samples: int = 5000,  # labelled samples for the boundaries
    ratio: float = 0.2,  # InterFaceGAN positive/negative fraction
    num_sefa: int = 12,  # SeFa directions on all layers
    sefa_per_part: int = 6,  # SeFa directions per coarse/middle/fine third
    num_ganspace: int = 20,  # GANSpace components
    seed: int = 0,  # sampling seed
    batch: int = 16,  # images per forward
    task: Task | None = None,  # progress + cancel
) -> DirectionLibrary:
    """Every direction source for ``G`` in one library."""
    w, scores = label_latents(G, regressor, samples, seed, batch, task)
    dirs = attribute_boundaries(regressor, w, scores, ratio)
    dirs += sefa_sets(G, num_sefa, sefa_per_part, 2000)
    dirs += ganspace(G, num_ganspace, None, 20000, seed)
    prov = {"samples": samples, "ratio": ratio, "seed": seed, "regressor_attributes": list(regressor.attributes),
            "sources": sorted({d.source for d in dirs})}  # fmt: skip
    return DirectionLibrary(dirs, G.w_dim, G.num_ws, generator_fingerprint(G), prov)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", required=True, help="portrait StyleGAN2 checkpoint")
    p.add_argument("--regressor", default=str(ROOT / "models" / "portrait-attributes.safetensors"))
    p.add_argument("--out", required=True, help="library to write (.safetensors)")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--ratio", type=float, default=0.2)
    p.add_argument("--sefa", type=int, default=12)
    p.add_argument("--sefa-per-part", type=int, default=6)
    p.add_argument("--ganspace", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--check-n", type=int, default=32, help="latents per direction in the slider check")
    p.add_argument("--check-only", action="store_true", help="only (re)check the directions of --out, in place")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    t0 = time.perf_counter()
    G = load_checkpoint(args.generator, device).primary
    reg = load_regressor(args.regressor, device)

    def show(ev) -> None:
        if ev.total and (int(ev.done) % 1000 < 16 or ev.done >= ev.total):
            print(f"  {ev.message} {int(ev.done)}/{int(ev.total)}", flush=True)

    if args.check_only:
        lib = load_library(args.out)
    else:
        lib = build_library(G, reg, args.samples, args.ratio, args.sefa, args.sefa_per_part, args.ganspace, args.seed,
                            task=Task(show, min_interval=0))  # fmt: skip
    t1 = time.perf_counter()
    check_directions(G, reg, lib.directions, n=args.check_n, task=Task(show, min_interval=0))
    lib.provenance["check"] = {"n": args.check_n, "seconds": round(time.perf_counter() - t1, 1),
                               "regressor": Path(args.regressor).name}  # fmt: skip
    lib.provenance.update({
        "generator": Path(args.generator).name,
        "generator_sha256": hashlib.sha256(Path(args.generator).read_bytes()).hexdigest(),
        "regressor": Path(args.regressor).name,
        "regressor_sha256": hashlib.sha256(Path(args.regressor).read_bytes()).hexdigest(),
        **({} if args.check_only else {
            "command": "python models/make_direction_library.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "seconds": round(time.perf_counter() - t0, 1)}),
    })  # fmt: skip
    save_library(lib, args.out)
    for d in lib.directions:
        a, b = d.layer_range(G.num_ws)
        acc = d.info.get("accuracy")
        extra = f"  accuracy {acc:.3f}" if acc is not None else ""
        c = d.info["check"]
        extra += f"  check: {'pass' if c['passed'] else 'FAIL'} {c['target_sigma']:+.2f}σ" if c.get("target") else ""
        print(f"{d.source:>24}  {d.name:<22} layers {a}-{b - 1}  σ {d.sigma:.4g}{extra}")
    card = write_card(lib, G.num_ws, Path(args.out))
    print(f"wrote {len(lib.directions)} directions to {args.out} and {card} in {time.perf_counter() - t0:.0f} s")
    return 0


def write_card(lib: DirectionLibrary, num_ws: int, path: Path) -> Path:
    """``<library>.md`` beside the library: provenance, SHA-256 and one row per direction."""
    prov = lib.provenance
    passed = [d.name for d in lib.directions if (d.info.get("check") or {}).get("passed")]
    rows = []
    for d in lib.directions:
        a, b = d.layer_range(num_ws)
        acc = d.info.get("accuracy")
        rows.append(f"| `{d.name}` | {d.source} | {a}–{b - 1} | {d.sigma:.4g} | {'' if acc is None else f'{acc:.3f}'} "
                    f"| {_check_cell(d.info.get('check') or {})} |")
    lines = [
        f"# Direction library for `{prov['generator']}` — card", "",
        "| | |", "|---|---|",
        f"| file | `models/{path.name}` ({path.stat().st_size:,} bytes) |",
        f"| SHA-256 | `{hashlib.sha256(path.read_bytes()).hexdigest()}` |",
        f"| generator | `{prov['generator']}` (SHA-256 `{prov['generator_sha256']}`), fingerprint `{lib.generator}` |",
        f"| labels | `{prov['regressor']}` on {prov['samples']:,} generator samples; InterFaceGAN uses the top and "
        f"bottom {prov['ratio']:.0%} per attribute |",
        f"| sources | {', '.join(prov['sources'])} ({len(lib.directions)} directions) |",
        f"| built in | {prov['seconds']} s; slider check {prov['check']['seconds']} s ({prov['check']['n']} latents per direction) |",
        "| licence | MIT (same as GAN Editor); computed from our own generator and regressor. |", "",
        "## Reproduce", "", "```", prov["command"],
        "# the slider check alone (what the window's names rest on), in place:",
        f"python models/make_direction_library.py --generator models/{prov['generator']} --out models/{path.name} --check-only",
        "```", "",
        "## Directions", "",
        "Layers are the ws rows a direction moves; σ is the spread of W along it (a slider value of 1 = 1σ); "
        "accuracy is the InterFaceGAN linear classifier's held-out accuracy. Slider check: how far the regressor "
        "sees each attribute move (population σ) at the slider's end (α = 3); a named direction passes when its "
        "attribute moves ≥ 1σ and no other more — only those are offered under their names in the window.", "",
        f"Named sliders passing: {', '.join(passed) or 'none'}.", "",
        "| name | source | layers | σ | accuracy | slider check |", "|---|---|---|---|---|---|", *rows,
    ]  # fmt: skip
    card = path.with_suffix(".md")
    with atomic_write(card, "w") as f:
        f.write("\n".join(lines) + "\n")
    return card


def _check_cell(c: dict) -> str:
    if c.get("target"):
        return (f"{'**pass**' if c['passed'] else 'fail'}: {c['target']} {c['target_sigma']:+.2f}, "
                f"largest other {c['worst']} {c['worst_sigma']:.2f}")  # fmt: skip
    eff = sorted(((abs(v), a) for a, v in (c.get("effects") or {}).items()), reverse=True)[:2]
    return "moves " + ", ".join(f"{a} {v:.2f}" for v, a in eff) if eff else ""


if __name__ == "__main__":
    raise SystemExit(main())
