"""Face restoration: find the faces, align each, restore it with a face prior, blend by a fidelity
weight and paste it back seamlessly (the portrait pipeline's detection, alignment and paste-back).

Priors, in the order they are chosen:
  * a face restoration network read through spandrel (GFPGAN, RestoreFormer, ... a ``FaceSR`` model),
    run on the 512-pixel FFHQ-aligned crop;
  * else our StyleGAN prior: the aligned crop at the generator's resolution is inverted (its learned
    encoder, then ``steps`` of W+ optimisation when asked) and re-synthesised.

The restored crop is ``fidelity * crop + (1 - fidelity) * prior(crop)`` (fidelity 1 keeps the face,
0 takes the prior's face), the prior's face first brought to the crop's mean colour (and only its
luma used with our StyleGAN prior and on black-and-white or toned prints), then ``strength`` of the
change is pasted back through the face's
ellipse mask with colour matching.  A prior smaller than the face in the photo adds only its change
(paste-back's 'detail' blend), so the photo keeps its own full-resolution detail.  Faces are found on
the photo before upscaling (``landmark_scale`` maps them onto the upscaled photo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ganeditor.core.imageio import max_value
from ganeditor.core.progress import Task, null_task
from ganeditor.core.tiling_cancel import CancelPoints
from ganeditor.pipelines.align import align_face
from ganeditor.pipelines.face_detect import detect_faces, get_detector, unavailable_message
from ganeditor.pipelines.generate import to_uint8
from ganeditor.pipelines.paste_back import paste_back
from ganeditor.pipelines.portrait import to_uint8_rgb

MIN_EYE_DISTANCE = 6.0  # px in the photo: smaller faces are left alone


@dataclass
class FacePrior:
    """What restores an aligned face: a spandrel face network, or a StyleGAN generator (+ encoder)."""

    net: nn.Module | None = None  # spandrel FaceSR (RGB [0,1] -> RGB [0,1] at ``size``)
    G: nn.Module | None = None  # StyleGAN generator (our prior)
    E: nn.Module | None = None  # its encoder (instant inversion)
    steps: int = 0  # W+ optimisation steps after the encoder
    name: str = ""

    @property
    def size(self) -> int:
        """Side of the aligned crop the prior works on."""
        return 512 if self.net is not None else int(self.G.img_resolution)

    def __call__(self, crop: np.ndarray, task: Task) -> np.ndarray:
        """uint8 [S, S, 3] aligned face -> the prior's face, uint8 [S, S, 3]."""
        dev = next(iter((self.net or self.G).parameters())).device
        if self.net is not None:
            x = torch.from_numpy(crop.astype(np.float32) / 255).permute(2, 0, 1)[None].to(dev)
            with torch.inference_mode():
                y = self.net(x)[0].clamp(0, 1)
            return (y.permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
        return self._invert(crop, task)

    def _invert(self, crop: np.ndarray, task: Task) -> np.ndarray:
        """The generator's rendering of the crop's inversion: encoder, then W+ steps (W steps without one)."""
        from ganeditor.pipelines.invert import ProjectOptions, encode, project
        from ganeditor.pipelines.invert_loss import make_inversion_loss

        result = None
        if self.E is not None:
            result = _last_stage(encode(self.G, self.E, crop, task))
        if self.E is None or self.steps > 0:
            loss = make_inversion_loss(self.G, None, next(self.G.parameters()).device, prefer="pixel")
            space, init = ("wplus", result.ws) if result is not None else ("w", None)
            result = _last_stage(project(self.G, crop, loss, space, init_ws=init, task=task,
                                         options=ProjectOptions(steps=max(self.steps, 1), preview_every=0)))
        task.check()  # the projector ends early with its best result when cancelled: stop here
        return result.image


def _last_stage(updates):
    """The stage result an inversion generator ends with."""
    res = None
    for up in updates:
        res = up.stage_result or res
    return res


MONOCHROME_CHROMA = 6.0  # mean |Cb|, |Cr| (8-bit levels) below which a face counts as black-and-white/toned


def _match_prior(crop: np.ndarray, prior: np.ndarray, colour: bool) -> np.ndarray:
    """The prior's face with the crop's colour: its mean per channel (centre of the crop) matched, and only
    its luma kept when the prior's colours are not to be trusted (``colour`` False: our StyleGAN prior,
    trained on procedural faces) or on black-and-white and toned prints (a face prior must not colourise)."""
    a, b = crop.astype(np.float32), prior.astype(np.float32)
    s = a.shape[0]
    centre = (slice(s // 4, 3 * s // 4), slice(s // 4, 3 * s // 4))
    b = b + (a[centre].mean((0, 1)) - b[centre].mean((0, 1)))
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    ya, yb = a @ luma, b @ luma
    chroma = a - ya[..., None]
    if not colour or np.abs(chroma[centre]).mean() < MONOCHROME_CHROMA:
        b = chroma + yb[..., None]
    return b


def _blend(crop: np.ndarray, prior: np.ndarray, fidelity: float, strength: float, colour: bool) -> np.ndarray:
    a, b = crop.astype(np.float32), _match_prior(crop, prior, colour)
    mixed = fidelity * a + (1 - fidelity) * b
    return np.clip(np.round(a + strength * (mixed - a)), 0, 255).astype(np.uint8)


def _to_photo_depth(face: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A uint8 RGB face crop in the photo's channels (gray: luma) and bit depth."""
    f = face.astype(np.float32)
    if like.shape[2] == 1:
        f = (f @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    peak = max_value(like.dtype)
    return np.clip(np.round(f / 255 * peak), 0, peak).astype(like.dtype)


def restore_faces(prior: FacePrior, photo: np.ndarray, *, detect_on: np.ndarray | None = None,
                  landmark_scale: float = 1.0, fidelity: float = 0.7, strength: float = 1.0,
                  device: torch.device | str = "cpu", task: Task | None = None) -> tuple[np.ndarray, int, list[str]]:
    """Every face of ``photo`` [H, W, 1|3] (uint8/uint16) restored; returns (photo, faces restored, notes).

    ``detect_on``: the image faces are found on (default ``photo``), ``landmark_scale`` times smaller."""
    task = task or null_task()
    if get_detector(device) is None:
        return photo, 0, ["faces: skipped, " + unavailable_message()]
    source = to_uint8_rgb(photo if detect_on is None else detect_on)
    with CancelPoints(task):  # detection of a large photo and a 512-px face network are seconds of work
        faces = [f for f in detect_faces(source, device) if f.eye_distance >= MIN_EYE_DISTANCE / landmark_scale]
        return _restore_each(prior, photo, faces, landmark_scale, fidelity, strength, device, task)


def _restore_each(prior: FacePrior, photo: np.ndarray, faces: list, landmark_scale: float, fidelity: float,
                  strength: float, device: torch.device | str, task: Task) -> tuple[np.ndarray, int, list[str]]:
    if not faces:
        return photo, 0, ["faces: no face found"]
    notes = []
    out = photo
    task.report(0, len(faces), f"restoring {len(faces)} face(s)")
    for k, face in enumerate(faces):
        aligned = align_face(out, landmarks=face.landmarks * landmark_scale, output_size=prior.size, device=device)
        crop8 = to_uint8_rgb(aligned.image)
        restored = _blend(crop8, prior(crop8, task.sub(k, 1, len(faces))), fidelity, strength, prior.net is not None)
        out = paste_back(out, _to_photo_depth(restored, out), aligned, mask="ellipse", device=device,
                         reconstruction=_to_photo_depth(crop8, out), blend="auto")
        task.report(k + 1, len(faces), f"face {k + 1}/{len(faces)}")
    notes.append(f"faces: {len(faces)} restored with {prior.name} (fidelity {fidelity:g})")
    return out, len(faces), notes
