"""The run folder: config, rolling checkpoints, metrics, samples, the exported model.

```
RUN_DIR/config.json                  recipe, options, data, seed (checked on --resume)
RUN_DIR/checkpoints/step-000100.state.safetensors   full training state (last K kept)
RUN_DIR/checkpoints/LATEST           name of the newest complete checkpoint (written last)
RUN_DIR/model.safetensors            the trained model in GAN Editor's format
RUN_DIR/metrics.jsonl                one JSON object per logged step (``time``: the run's training seconds)
RUN_DIR/samples/step-000100.png      sample grids
```
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganeditor.core.atomic import atomic_write
from ganeditor.core.errors import GanEditorError
from ganeditor.core.state_io import load_state, save_state


class RunDir:
    """Reads and writes one training run's folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.ckpt_dir = self.root / "checkpoints"
        self.samples_dir = self.root / "samples"
        self._tb = None
        self._tb_purge: int | None = None  # TensorBoard events from this step on are dropped (a resume)

    # --- config ---------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir.mkdir(exist_ok=True)
        self.samples_dir.mkdir(exist_ok=True)
        with atomic_write(self.root / "config.json", "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)

    def read_config(self) -> dict[str, Any]:
        p = self.root / "config.json"
        if not p.is_file():
            raise GanEditorError("not a training run folder (no config.json) — cannot resume", self.root)
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise GanEditorError(f"damaged config.json ({e})", self.root) from None

    # --- checkpoints ----------------------------------------------------------------------
    def latest_checkpoint(self) -> Path | None:
        marker = self.ckpt_dir / "LATEST"
        if not marker.is_file():
            return None
        p = self.ckpt_dir / marker.read_text().strip()
        return p if p.is_file() else None

    def latest_step(self) -> int | None:
        """The step of the latest checkpoint (None when there is none)."""
        p = self.latest_checkpoint()
        return None if p is None else int(p.name.split("-")[1].split(".")[0])

    def save_checkpoint(self, step: int, state: dict[str, Any], keep: int) -> Path:
        """Write the state atomically, then point LATEST at it, then prune old ones."""
        name = f"step-{step:08d}.state.safetensors"
        path = self.ckpt_dir / name
        try:
            save_state(path, state, {"step": str(step)})
            with atomic_write(self.ckpt_dir / "LATEST", "w") as f:
                f.write(name)
        except OSError as e:
            prev = self.latest_checkpoint()
            keep_msg = f"; the previous checkpoint {prev.name} is intact" if prev else ""
            raise GanEditorError(f"could not write checkpoint ({e.strerror or e}){keep_msg}", path) from None
        olds = sorted(self.ckpt_dir.glob("step-*.state.safetensors"))
        for old in olds[: max(0, len(olds) - keep)]:
            if old != path:
                old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self) -> dict[str, Any] | None:
        p = self.latest_checkpoint()
        if p is None:
            return None
        state, _ = load_state(p)
        return state

    # --- logs -----------------------------------------------------------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        path = self.root / "metrics.jsonl"
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as e:  # e.g. a full disk: say which file
            raise GanEditorError(f"cannot write ({e.strerror or e})", path) from None
        tb = self._tensorboard()
        if tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "time"):
                    tb.add_scalar(k, v, record["step"])

    def truncate_metrics(self, step: int) -> None:
        """Drop records after ``step`` (they belong to work lost since the last checkpoint), in
        TensorBoard's event files too (when the writer opens)."""
        self._tb_purge = step + 1
        p = self.root / "metrics.jsonl"
        if not p.is_file():
            return
        keep = [ln for ln in p.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= step]
        with atomic_write(p, "w") as f:
            f.write("".join(ln + "\n" for ln in keep))

    def read_metrics(self) -> list[dict[str, Any]]:
        p = self.root / "metrics.jsonl"
        return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.is_file() else []

    def save_sample(self, step: int, grid: np.ndarray) -> Path:
        path = self.samples_dir / f"step-{step:08d}.png"
        buf = io.BytesIO()
        Image.fromarray(grid).save(buf, format="PNG")
        with atomic_write(path) as f:
            f.write(buf.getvalue())
        tb = self._tensorboard()
        if tb is not None:
            tb.add_image("samples", grid, step, dataformats="HWC")
        return path

    def _tensorboard(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # tensorboard not installed: JSON lines only
                self._tb = False
            else:
                self._tb = SummaryWriter(str(self.root), purge_step=self._tb_purge)
        return self._tb or None

    def close(self) -> None:
        if self._tb:
            self._tb.close()
