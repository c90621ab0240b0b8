"""Face detection with MTCNN (boxes + 5 landmarks), using the weights of PyPI ``facenet-pytorch==2.5.3``
(MIT) shipped as ``models/mtcnn.safetensors`` (made by ``models/make_mtcnn.py``) — found like every
other model (``core.model_store``), never downloaded at run time.

The cascade follows facenet-pytorch's ``detect_face`` step by step (so boxes and landmarks agree
with it): an image pyramid from ``12 / min_face_size`` shrinking by ``factor`` while the short side
stays >= 12 px (area resampling); P-Net windows (stride 2, cell 12) above threshold 1, NMS 0.5 per
scale then 0.7; box regression, squaring; R-Net on 24x24 area-resampled crops (crops clipped to the
image), threshold 2, NMS 0.7, regression, squaring; O-Net on 48x48 crops, threshold 3, landmarks
``box_size * p + corner - 1``, regression, NMS 0.7 by overlap / smaller area.  All faces are
returned, largest box first.  IoU NMS is ``torchvision.ops.nms`` (as facenet-pytorch uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import nms

from ganeditor.core.errors import CheckpointError, GanEditorError
from ganeditor.core.model_store import resolve_model
from ganeditor.formats import load_checkpoint

MODEL_NAME = "mtcnn"  # models/mtcnn.safetensors: roles pnet, rnet, onet
MANUAL_HINT = ("give the landmarks by hand: 5 points (left eye, right eye, nose, left and right mouth corner) "
               "or 4 (eyes and mouth corners)")


@dataclass
class Face:
    """One detection in source pixels: box (x1, y1, x2, y2), probability, landmarks [5, 2] (x, y)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def eye_distance(self) -> float:
        """Distance between the two eye landmarks, in source pixels."""
        return float(np.hypot(*(self.landmarks[1] - self.landmarks[0])))

    @property
    def size(self) -> float:
        """The box's longer side, in source pixels."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


# ----------------------------------------------------------------------------------------- weights


def find_weights(chosen: str | Path | None = None) -> Path | None:
    """The MTCNN weights file: ``chosen`` (a file of our format, or a folder holding mtcnn.safetensors)
    when given, else ``mtcnn`` in the model folders; None if absent."""
    if chosen:
        p = Path(chosen).expanduser()
        p = p / f"{MODEL_NAME}.safetensors" if p.is_dir() else p
        return p if p.is_file() else None
    try:
        return resolve_model(MODEL_NAME)
    except CheckpointError:
        return None


# ---------------------------------------------------------------------------------------- cascade


def _nms_min(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy NMS by intersection over the smaller box (inclusive pixel areas), as MTCNN's last stage."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)  # ascending: the best is last
    keep = []
    while order.size > 0:
        i, rest = order[-1], order[:-1]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= thresh]
    return np.array(keep, dtype=np.int64)


def _square(b: torch.Tensor) -> torch.Tensor:
    """Make boxes [K, >=4] square around their centres (side = longer side)."""
    b = b.clone()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = torch.maximum(w, h)
    b[:, 0] = b[:, 0] + w * 0.5 - side * 0.5
    b[:, 1] = b[:, 1] + h * 0.5 - side * 0.5
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(b: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply R/O-Net box offsets (fractions of the inclusive box size)."""
    b = b.clone()
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    b[:, :4] = b[:, :4] + reg * torch.stack([w, h, w, h], dim=1)
    return b


def _crops(img: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of ``boxes`` (clipped to the image, truncated to ints) area-resampled to size x size;
    also the indices of the boxes that had a non-empty crop."""
    h, w = img.shape[2:]
    b = boxes[:, :4].trunc().to(torch.int64).cpu().numpy()
    x, y = np.maximum(b[:, 0], 1), np.maximum(b[:, 1], 1)
    ex, ey = np.minimum(b[:, 2], w), np.minimum(b[:, 3], h)
    ok = np.nonzero((ey > y - 1) & (ex > x - 1) & (ey > 0) & (ex > 0))[0]
    out = [F.interpolate(img[:, :, y[k] - 1:ey[k], x[k] - 1:ex[k]], size=(size, size), mode="area") for k in ok]
    data = torch.cat(out) if out else img.new_zeros((0, 3, size, size))
    return (data - 127.5) * 0.0078125, torch.as_tensor(ok, dtype=torch.long, device=boxes.device)


def _batched(net: torch.nn.Module, x: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, ...]:
    outs = [net(x[i:i + batch]) for i in range(0, len(x), batch)]
    return tuple(torch.cat(v) for v in zip(*outs))


class MTCNN:
    """The three-stage cascade; ``detect(image)`` -> all faces, largest first."""

    name = "MTCNN (facenet-pytorch 2.5.3 weights)"

    def __init__(
        self,
        pnet: torch.nn.Module,  # registered 'mtcnn_pnet' with weights loaded
        rnet: torch.nn.Module,  # 'mtcnn_rnet'
        onet: torch.nn.Module,  # 'mtcnn_onet'
        min_face_size: float = 20,  # smallest face searched for, in source pixels (box side)
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),  # face probability per stage
        factor: float = 0.709,  # pyramid step
    ):
        self.pnet, self.rnet, self.onet = pnet.eval(), rnet.eval(), onet.eval()
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu", **kwargs) -> "MTCNN":
        """The cascade from our weights file (roles ``pnet``, ``rnet``, ``onet``)."""
        ckpt = load_checkpoint(path, device)
        missing = [r for r in ("pnet", "rnet", "onet") if r not in ckpt.nets]
        if missing:
            raise CheckpointError(f"not MTCNN weights (no {', '.join(missing)} network)", path)
        return cls(ckpt.nets["pnet"], ckpt.nets["rnet"], ckpt.nets["onet"], **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.pnet.parameters()).device

    def scales(self, h: int, w: int) -> list[float]:
        """The pyramid scales for an h x w image."""
        m = 12.0 / self.min_face_size
        minl, s, out = min(h, w) * m, m, []
        while minl >= 12:
            out.append(s)
            s, minl = s * self.factor, minl * self.factor
        return out

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an [H, W, C] uint8/uint16 RGB (or gray) image, largest box first."""
        assert image.ndim == 3 and image.dtype in (np.uint8, np.uint16), (image.shape, image.dtype)
        a = image[:, :, :3] if image.shape[2] >= 3 else np.repeat(image[:, :, :1], 3, axis=2)
        img = torch.from_numpy(np.array(a, copy=True)).to(self.device).permute(2, 0, 1)[None].float()  # [NCHW]
        if image.dtype == np.uint16:
            img = img / 257.0
        boxes = self._stage1(img)
        if len(boxes):
            boxes = self._stage2(img, boxes)
        if not len(boxes):
            return []
        boxes, points = self._stage3(img, boxes)
        b, p = boxes.cpu().numpy(), points.cpu().numpy()
        order = np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[::-1]
        return [Face(b[i, :4].astype(np.float64), float(b[i, 4]), p[i].astype(np.float64)) for i in order]

    def _stage1(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[2:]
        picked = []
        for s in self.scales(h, w):
            x = (F.interpolate(img, size=(int(h * s + 1), int(w * s + 1)), mode="area") - 127.5) * 0.0078125
            reg, prob = self.pnet(x)
            mask = prob[0, 1] >= self.thresholds[0]
            cells = mask.nonzero()  # [K, 2] (y, x), row-major
            if not len(cells):
                continue
            xy = cells.flip(1).to(reg.dtype)
            q1, q2 = ((2 * xy + 1) / s).floor(), ((2 * xy + 12) / s).floor()
            b = torch.cat([q1, q2, prob[0, 1][mask][:, None], reg[0][:, mask].T], dim=1)  # [K, 9]
            picked.append(b[nms(b[:, :4], b[:, 4], 0.5)])
        if not picked:
            return img.new_zeros((0, 5))
        b = torch.cat(picked)
        b = b[nms(b[:, :4], b[:, 4], 0.7)]
        w_, h_ = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        q = b[:, :4] + b[:, 5:9] * torch.stack([w_, h_, w_, h_], dim=1)
        return _square(torch.cat([q, b[:, 4:5]], dim=1))

    def _stage2(self, img: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        data, ok = _crops(img, boxes, 24)
        if not len(ok):
            return boxes[:0]
        reg, prob = _batched(self.rnet, data)
        boxes, score = boxes[ok], prob[:, 1]
        keep = score > self.thresholds[1]
        boxes = torch.cat([boxes[keep, :4], score[keep, None]], dim=1)
        reg = reg[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage3(self, img: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data, ok = _crops(img, boxes, 48)
        if not len(ok):
            return boxes[:0], boxes.new_zeros((0, 5, 2))
        reg, lm, prob = _batched(self.onet, data)
        boxes, score = boxes[ok], prob[:, 1]
        keep = score > self.thresholds[2]
        boxes = torch.cat([boxes[keep, :4], score[keep, None]], dim=1)
        reg, lm = reg[keep], lm[keep]
        bw, bh = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        px = bw[:, None] * lm[:, :5] + boxes[:, 0:1] - 1
        py = bh[:, None] * lm[:, 5:] + boxes[:, 1:2] - 1
        points = torch.stack([px, py], dim=2)  # [K, 5, 2]
        boxes = _regress(boxes, reg)
        pick = torch.as_tensor(_nms_min(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7), device=boxes.device)
        return boxes[pick], points[pick]


# ------------------------------------------------------------------------------------------ entry


@lru_cache(maxsize=4)
def _cached(path: str, device: str) -> MTCNN:
    return MTCNN.load(path, device)


def get_detector(device: torch.device | str = "cpu", chosen: str | Path | None = None) -> MTCNN | None:
    """The MTCNN detector (cached per file and device) from ``find_weights(chosen)``; None if absent."""
    path = find_weights(chosen)
    return None if path is None else _cached(str(path), str(torch.device(device)))


def unavailable_message() -> str:
    """One line explaining that automatic detection is off and what to do."""
    return (f"automatic face detection is unavailable: the MTCNN weights ('{MODEL_NAME}.safetensors', shipped in "
            "models/) were not found in any model folder; " + MANUAL_HINT)


def detect_faces(image: np.ndarray, device: torch.device | str = "cpu", detector: MTCNN | None = None) -> list[Face]:
    """All faces in ``image`` (largest first); GanEditorError when no detector is available."""
    detector = detector or get_detector(device)
    if detector is None:
        raise GanEditorError(unavailable_message())
    return detector.detect(image)


def face_at(faces: list[Face], x: float, y: float) -> int | None:
    """Index of the face whose box holds the photo point (x, y) (the smallest such box), else None."""
    inside = [(f.size, i) for i, f in enumerate(faces) if f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3]]
    return min(inside)[1] if inside else None
