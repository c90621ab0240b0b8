"""`ganeditor generate` through the real CLI reproduces the original scripts' PNGs (NVlabs goldens)."""

import json
import subprocess
import sys

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganeditor.core.errors import GanEditorError
from ganeditor.formats import load_checkpoint
from ganeditor.pipelines.generate import FaceRequest, generate, generate_face, mix_layers

CASES = [  # (net, seed, trunc, translate, rotate); conditional nets, class 1 (see the cases JSON)
    (net, seed, trunc, translate, rotate)
    for net in ("sg3r", "sg3t")
    for seed, trunc, translate, rotate in [(1, 0.7, "0.25,-0.15", 0.0), (3, 1.0, "-0.3,0.1", -35.0)]
]


@pytest.mark.parametrize("name, seed, trunc, translate, rotate", CASES)
def test_generate_cli_matches_stylegan3_goldens(data_dir, tmp_path, name, seed, trunc, translate, rotate):
    tx, ty = (float(v) for v in translate.split(","))
    golden = data_dir / "stylegan3" / f"{name}_seed{seed:04d}_psi{trunc:.1f}_tx{tx}_ty{ty}_rot{rotate}.png"
    assert golden.is_file(), golden
    class_idx = json.loads((data_dir / "stylegan3" / f"{name}_cases.json").read_text())["class_idx"]
    class_args = [] if class_idx is None else ["--class", str(class_idx)]
    r = subprocess.run(
        [sys.executable, "-m", "ganeditor", "generate", "--network", str(data_dir / "stylegan3" / f"{name}_tiny.safetensors"),
         "--seeds", str(seed), "--trunc", str(trunc), f"--translate={translate}", "--rotate", str(rotate),
         *class_args, "--outdir", str(tmp_path), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    ours = np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png"), dtype=np.int16)
    ref = np.asarray(Image.open(golden), dtype=np.int16)
    assert ours.shape == ref.shape and np.abs(ours - ref).max() <= 1


def test_generate_face_helpers_follow_the_seed_contract_and_mix_styles():
    G = load_checkpoint(Path(__file__).parent / "data" / "invert" / "g16.safetensors").primary.eval()
    assert [mix_layers(G, [p]) for p in ("coarse", "middle", "fine")] == [[0, 1, 2, 3], [4, 5], []]
    ws, img = generate_face(G, FaceRequest(seed=7, truncation_psi=0.7))
    assert np.array_equal(img, next(generate(G, [7], 0.7))[1])  # the same face as `ganeditor generate`
    mixed, _ = generate_face(G, FaceRequest(seed=7, truncation_psi=0.7, mix_seed=8, mix_parts=("middle",)))
    other, _ = generate_face(G, FaceRequest(seed=8, truncation_psi=0.7))
    assert torch.equal(mixed[:, :4], ws[:, :4]) and torch.equal(mixed[:, 4:], other[:, 4:])
    with pytest.raises(GanEditorError, match="unknown style-mixing part"):
        mix_layers(G, ["hair"])
    with pytest.raises(GanEditorError, match="unknown noise mode"):
        generate_face(G, FaceRequest(noise_mode="pink"))

