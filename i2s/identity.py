"""Face descriptors: dlib's face-recognition ResNet (128-d), for identity distances and
generator metrics that do not use any network a discriminator or a loss has seen.

``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet-29 trained for face verification;
Euclidean distance below 0.6 = the same person, dlib's threshold) and the 5-point landmark
model come with the PyPI package ``face_recognition_models`` (located with importlib: importing
it needs the removed ``pkg_resources``).

The kit's faces are already aligned (FFHQ recipe; ``mini`` at zoom 0.7), so no detector runs:
the face box is a fixed fraction of the image (:data:`FACE_BOX`, the mean HOG-detector box on
hold-out faces aligned at zoom 0.7, measured), the 5-point model places the landmarks inside
it, and dlib's own ``get_face_chip`` (150 px, padding 0.25) makes the chip the ResNet reads.
Real and generated images go through the same steps.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

__all__ = ["NAME", "SAME_PERSON", "FACE_BOX", "model_path", "descriptors", "identity_distance", "to_uint8",
           "landmarks68", "smile_ratio", "or_nan", "face_detected", "face_score", "FACE_IOU", "FACE_SCORE_FLOOR"]

NAME = "dlib-resnet-face-descriptor"
SAME_PERSON = 0.6  # dlib's threshold on the Euclidean distance of two descriptors
# (left, top, right, bottom) of dlib's HOG face box as fractions of an image aligned at zoom 0.7:
# mean over 54 of the first 60 hold-out faces (64 px, bicubic to 256; std 0.03-0.05 per side).
FACE_BOX = {0.7: (0.1244, 0.2386, 0.8777, 0.9900)}
WORK_SIZE = 256  # images are resized to this before landmarks and chips
FACE_IOU = 0.3  # a detection counts as the aligned face when its box overlaps FACE_BOX this much (IoU)


def _face_box(zoom: float):
    """dlib's rectangle of :data:`FACE_BOX` at ``zoom`` in WORK_SIZE-px coordinates (ValueError if unmeasured)."""
    import dlib

    if zoom not in FACE_BOX:
        raise ValueError(f"no face box measured for zoom {zoom} (have {sorted(FACE_BOX)})")
    return dlib.rectangle(*(round(v * WORK_SIZE) for v in FACE_BOX[zoom]))


def or_nan(what: str, compute: Callable[[], np.ndarray], shape: tuple[int, ...],
           say: Callable[[str], None] = print) -> np.ndarray:
    """``compute()``, or an all-NaN array of ``shape`` where a face measure cannot be made here
    (no face box measured for this framing, dlib or its models missing), the reason said: a
    missing measure never stops an experiment."""
    try:
        return compute()
    except (ImportError, FileNotFoundError, ValueError) as e:
        say(f"[i2s] {what} not measured: {e}")
        return np.full(shape, np.nan)


def model_path(name: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face_recognition_models is not installed: pip install face_recognition_models")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; reinstall face_recognition_models")
    return path


@lru_cache(maxsize=1)
def _models():
    import dlib

    return (dlib.shape_predictor(str(model_path("shape_predictor_5_face_landmarks.dat"))),
            dlib.face_recognition_model_v1(str(model_path("dlib_face_recognition_resnet_model_v1.dat"))))


@lru_cache(maxsize=1)
def _predictor68():
    import dlib

    return dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))


def _work_images(images: torch.Tensor | np.ndarray):
    for im in to_uint8(images):
        if im.shape[0] != WORK_SIZE:
            im = np.asarray(Image.fromarray(im).resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BICUBIC))
        yield im


def landmarks68(images: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """dlib's 68 landmarks of each aligned face (float [N, 68, 2], in WORK_SIZE-px coordinates),
    placed inside the fixed face box like :func:`descriptors`."""
    box, sp = _face_box(zoom), _predictor68()
    return np.stack([np.array([(p.x, p.y) for p in sp(im, box).parts()], dtype=float) for im in _work_images(images)])


def smile_ratio(images: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """Mouth width over eye distance per face: the distance of the mouth corners (landmarks 48
    and 54) divided by the distance of the eye centres (means of 36-41 and 42-47). A smile
    widens the mouth, so the ratio grows (typically 0.75-0.85 neutral, 0.9-1.05 smiling)."""
    lm = landmarks68(images, zoom)
    mouth = np.linalg.norm(lm[:, 54] - lm[:, 48], axis=1)
    eyes = np.linalg.norm(lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1), axis=1)
    return mouth / eyes


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] (a tensor) or uint8 [N, H, W, 3] -> uint8 [N, H, W, 3]."""
    if isinstance(images, torch.Tensor):
        x = (images.detach().float().cpu() * 127.5 + 127.5).clamp(0, 255).round().to(torch.uint8)
        return x.permute(0, 2, 3, 1).contiguous().numpy()
    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"want uint8 [N, H, W, 3] or a [-1, 1] tensor, got {arr.dtype} {arr.shape}")
    return arr


def descriptors(images: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """128-d dlib face descriptors, one row per aligned face image (float64 [N, 128])."""
    import dlib

    box, (sp, rec) = _face_box(zoom), _models()
    out = np.empty((len(images), 128))
    for i, im in enumerate(_work_images(images)):
        chip = dlib.get_face_chip(im, sp(im, box), size=150, padding=0.25)
        out[i] = np.asarray(rec.compute_face_descriptor(chip))
    return out


def identity_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """Per-pair Euclidean distance of the descriptors of ``a[i]`` and ``b[i]`` (< 0.6: same person)."""
    return np.linalg.norm(descriptors(a, zoom) - descriptors(b, zoom), axis=1)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


@lru_cache(maxsize=1)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


FACE_SCORE_FLOOR = -1.5  # face_score where the detector finds nothing near the face box even at this threshold


def face_score(images: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """How much of a face dlib's HOG face detector sees where the aligned face should be: per
    image, the best detection score among boxes overlapping the face box (:data:`FACE_BOX`) by at
    least :data:`FACE_IOU` (run on the WORK_SIZE-px image, no upsampling, the detector's threshold
    lowered to :data:`FACE_SCORE_FLOOR`; floored there when nothing is found). A score >= 0 is a
    detection at the detector's own threshold (:func:`face_detected`); below 0, face-like
    contours that fall short of one (§4.1's "contours of human faces")."""
    if zoom not in FACE_BOX:
        raise ValueError(f"no face box measured for zoom {zoom} (have {sorted(FACE_BOX)})")
    expected = tuple(v * WORK_SIZE for v in FACE_BOX[zoom])
    det = _detector()
    out = np.full(len(images), FACE_SCORE_FLOOR)
    for i, im in enumerate(_work_images(images)):
        boxes, scores, _ = det.run(im, 0, FACE_SCORE_FLOOR)
        near = [sc for r, sc in zip(boxes, scores)
                if _iou((r.left(), r.top(), r.right(), r.bottom()), expected) >= FACE_IOU]
        if near:
            out[i] = max(max(near), FACE_SCORE_FLOOR)
    return out


def face_detected(images: torch.Tensor | np.ndarray, zoom: float = 0.7) -> np.ndarray:
    """Is each image still a face? dlib's HOG face detector must find a face, at its own threshold,
    whose box overlaps the aligned face's box (:data:`FACE_BOX`) by at least :data:`FACE_IOU`
    (:func:`face_score` >= 0). The other measures of this module place landmarks inside that fixed
    box whatever the image shows; this is the check that a face is there at all (bool [N])."""
    return face_score(images, zoom) >= 0
