"""Stress-test inputs of §3.2 ("How robust is the embedding of face images?"), at any resolution.

Two families of inputs, both made from FFHQ-aligned faces:

**Affine transformations** (§3.2, Fig. 2, Table 1): the aligned face translated 140 px to the
right and 160 px to the left (pixel counts of the 1024-px original; at resolution R the shift is
``round(140 * R / 1024)`` resp. ``round(160 * R / 1024)``, rounding halves up), zoomed out 2x,
zoomed in 2x, rotated by 90 and 180 degrees (:data:`TRANSFORMS`, :func:`affine_transforms`).
Choices the paper leaves open, fixed here:

* **Fill** (:data:`FILL`): the area a translation or the zoom-out uncovers is black, the value
  ``-1`` in the [-1, 1] range of the tensors (one fill for all transforms).
* **Zoom out 2x**: the image shrunk to half its size by 2x2 box averaging (``F.interpolate``
  ``mode="area"``; antialiased bilinear for odd R) and centred on the fill.
* **Zoom in 2x**: the central half (rows and columns ``R//4 : R//4 + R//2``) up-sampled 2x with
  bicubic interpolation (PyTorch, ``align_corners=False``), clamped to [-1, 1].
* **Rotations**: exact, ``torch.rot90`` over (H, W); 90 degrees is *counter-clockwise* as the
  image is viewed (the top-right corner moves to the top-left).

**Defective faces** (§3.2 "Embedding defective images", Fig. 3, supplementary Table 3): the eyes,
the nose, the mouth, eyes and mouth, or eyes, nose and mouth removed (:data:`DEFECTS`). Regions
come from dlib's 68 landmarks (:func:`defect_masks`):

* eyes = points 36:42 and 42:48, one convex hull per eye (the eyebrows 17:27 are kept: they are a
  feature of their own, and the paper's test is about the eyes);
* nose = points 27:36 (bridge and nostrils), one hull;
* mouth = points 48:68 (outer and inner lip contours), one hull;
* each hull is dilated by a margin relative to the eye distance ``d`` (distance of the two eye
  centres): :data:`MARGINS` = eyes 0.15 d (eyelids and lashes), nose 0.12 d (the nostril wings),
  mouth 0.12 d (the lip border). Distances are measured exactly from pixel centres to the hull
  polygon, so masks at different resolutions agree;
* where two dilated regions meet, each pixel goes to the region it lies deeper inside
  (smallest ``distance - margin``), so the eyes, nose and mouth masks are disjoint; the compound
  defects are unions.

**Fill of a removed feature** (:func:`remove_features`): harmonic (membrane) inpainting, the masked
pixels are replaced by the solution of Laplace's equation whose boundary values are the pixels
around the mask (4-neighbour, solved exactly with a sparse direct solver, per colour channel). It
is deterministic, continuous with the surrounding skin (no seam, so no feathering is needed) and
carries the skin's shading gradient across the hole. Pixels outside the mask are left untouched.

Landmarks (:func:`aligned_face_and_landmarks`): the face is aligned at :data:`LANDMARK_SIZE`
(256 px, where dlib's detector and predictor work well whatever the target size) with the FFHQ
framing (zoom 1: the whole face in view, also for the tighter zoom-0.7 crops of the mini model),
the landmarks are detected there and carried to the target zoom and size; masks are then drawn at
the target size.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "TRANSFORMS",
    "DEFECTS",
    "PARTS",
    "FILL",
    "MARGINS",
    "LANDMARK_SIZE",
    "shift_pixels",
    "translate",
    "zoom_out_2x",
    "zoom_in_2x",
    "affine_transforms",
    "scale_landmarks",
    "part_masks",
    "defect_masks",
    "remove_features",
    "aligned_face_and_landmarks",
    "defect_inputs",
    "stress_figure",
]

PathLike = Union[str, os.PathLike]

#: Table 1 / Fig. 2 (b)-(g), in the paper's order.
TRANSFORMS: tuple[str, ...] = (
    "translate_right_140",
    "translate_left_160",
    "zoom_out_2x",
    "zoom_in_2x",
    "rotate_90",
    "rotate_180",
)
#: Table 3 / Fig. 3, in the paper's order.
DEFECTS: tuple[str, ...] = ("eyes", "nose", "mouth", "eyes+mouth", "eyes+nose+mouth")
#: The elementary regions the defects are made of.
PARTS: tuple[str, ...] = ("eyes", "nose", "mouth")
#: Key of the unmodified face in :func:`defect_inputs` (Table 3's "non-defective" row).
NON_DEFECTIVE = "non-defective"

#: Value of the area uncovered by translations and the zoom-out: black in [-1, 1].
FILL = -1.0
#: Dilation of each region's convex hull, as a fraction of the eye distance.
MARGINS: dict[str, float] = {"eyes": 0.15, "nose": 0.12, "mouth": 0.12}
#: dlib landmark index ranges of each region (eyes: one hull per eye).
PART_POINTS: dict[str, tuple[slice, ...]] = {
    "eyes": (slice(36, 42), slice(42, 48)),
    "nose": (slice(27, 36),),
    "mouth": (slice(48, 68),),
}
#: Resolution at which landmarks are detected on the aligned face.
LANDMARK_SIZE = 256


# --------------------------------------------------------------------------------------------
# Affine transformations (Fig. 2, Table 1)
# --------------------------------------------------------------------------------------------


def shift_pixels(resolution: int, pixels_at_1024: int) -> int:
    """A shift of ``pixels_at_1024`` px at 1024 px, scaled to ``resolution``, rounded half up:
    ``shift_pixels(1024, 140) == 140``, ``shift_pixels(256, 140) == 35``, ``shift_pixels(64, 140) == 9``."""
    return int(math.floor(pixels_at_1024 * resolution / 1024 + 0.5))


def _check(img: torch.Tensor) -> None:
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, R, R], got shape {tuple(img.shape)}")


def translate(img: torch.Tensor, dx: int, fill: float = FILL) -> torch.Tensor:
    """Shift ``[N, C, H, W]`` images by ``dx`` px horizontally (positive = right); the uncovered
    columns get ``fill``. Exact (no resampling)."""
    out = torch.full_like(img, fill)
    w = img.shape[-1]
    if abs(dx) >= w:
        return out
    if dx >= 0:
        out[..., dx:] = img[..., : w - dx]
    else:
        out[..., : w + dx] = img[..., -dx:]
    return out


def zoom_out_2x(img: torch.Tensor, fill: float = FILL) -> torch.Tensor:
    """Fig. 2 (d): the image shrunk to half size (2x2 box average; antialiased bilinear for odd
    sizes), centred on ``fill``."""
    _check(img)
    h, w = img.shape[-2:]
    h2, w2 = max(h // 2, 1), max(w // 2, 1)
    if h % 2 == 0 and w % 2 == 0:
        small = F.interpolate(img, size=(h2, w2), mode="area")
    else:
        small = F.interpolate(img, size=(h2, w2), mode="bilinear", align_corners=False, antialias=True)
    out = torch.full_like(img, fill)
    top, left = (h - h2) // 2, (w - w2) // 2
    out[..., top : top + h2, left : left + w2] = small
    return out


def zoom_in_2x(img: torch.Tensor) -> torch.Tensor:
    """Fig. 2 (e): the central half (``R//4 : R//4 + R//2``) up-sampled 2x, bicubic
    (``align_corners=False``), clamped to [-1, 1]. Exactly 2x when R is a multiple of 4."""
    _check(img)
    h, w = img.shape[-2:]
    top, left = h // 4, w // 4
    crop = img[..., top : h - top, left : w - left]
    return F.interpolate(crop, size=(h, w), mode="bicubic", align_corners=False).clamp(-1.0, 1.0)


def affine_transforms(img: torch.Tensor) -> dict[str, torch.Tensor]:
    """The six transformed inputs of Table 1 / Fig. 2 (b)-(g) for aligned faces ``[N, 3, R, R]``
    in [-1, 1], keyed by :data:`TRANSFORMS`. Shapes are kept; see the module docstring for the
    fill (black, -1), the resampling filters and the rotation direction (counter-clockwise)."""
    _check(img)
    r = img.shape[-1]
    return {
        "translate_right_140": translate(img, shift_pixels(r, 140)),
        "translate_left_160": translate(img, -shift_pixels(r, 160)),
        "zoom_out_2x": zoom_out_2x(img),
        "zoom_in_2x": zoom_in_2x(img),
        "rotate_90": torch.rot90(img, 1, dims=(-2, -1)),
        "rotate_180": torch.rot90(img, 2, dims=(-2, -1)),
    }


# --------------------------------------------------------------------------------------------
# Defect masks (Fig. 3, Table 3)
# --------------------------------------------------------------------------------------------


def scale_landmarks(landmarks: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Landmarks of a ``from_size`` px image in the pixel coordinates of the same image resized to
    ``to_size`` px (dlib's convention: pixel centres at integers)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return (lm + 0.5) * (to_size / from_size) - 0.5


def _eye_distance(lm: np.ndarray) -> float:
    return float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))


def _polygon_distance(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Euclidean distance of the grid points (xs, ys) to the convex hull of ``points`` (0 inside)."""
    from scipy.spatial import ConvexHull  # noqa: PLC0415

    hull = points[ConvexHull(points).vertices]  # counter-clockwise in (x, y)
    px, py = xs[..., None], ys[..., None]
    a, b = hull, np.roll(hull, -1, axis=0)
    ex, ey = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    rx, ry = px - a[:, 0], py - a[:, 1]
    cross = ex * ry - ey * rx
    inside = (cross >= 0).all(-1)
    t = np.clip((rx * ex + ry * ey) / np.maximum(ex * ex + ey * ey, 1e-12), 0.0, 1.0)
    d = np.hypot(rx - t * ex, ry - t * ey).min(-1)
    return np.where(inside, 0.0, d)


def part_masks(landmarks: np.ndarray, size: int, margins: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Boolean ``[size, size]`` masks of the eyes, the nose and the mouth (:data:`PARTS`) for 68
    landmarks in the pixel coordinates of a ``size`` px image: convex hulls of
    :data:`PART_POINTS` dilated by ``margins`` x eye distance, made disjoint (a pixel claimed by
    two regions goes to the one it lies deeper inside)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) landmarks, got shape {lm.shape}")
    margins = {**MARGINS, **(margins or {})}
    d = _eye_distance(lm)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    depth = {}
    for part in PARTS:
        m = margins[part] * d
        dist = np.full((size, size), np.inf)
        for sl in PART_POINTS[part]:
            pts = lm[sl]
            x0, y0 = np.floor(pts.min(0) - m - 1).astype(int)
            x1, y1 = np.ceil(pts.max(0) + m + 1).astype(int)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, size), min(y1 + 1, size)
            if x0 >= x1 or y0 >= y1:
                continue
            sub = _polygon_distance(pts, xs[y0:y1, x0:x1], ys[y0:y1, x0:x1])
            dist[y0:y1, x0:x1] = np.minimum(dist[y0:y1, x0:x1], sub)
        depth[part] = dist - m  # <= 0 inside the dilated region
    stack = np.stack([depth[p] for p in PARTS])
    owner = stack.argmin(0)
    return {p: (depth[p] <= 0) & (owner == k) for k, p in enumerate(PARTS)}


def _parts_of(defect: str | Sequence[str]) -> tuple[str, ...]:
    parts = tuple(defect.split("+")) if isinstance(defect, str) else tuple(defect)
    for p in parts:
        if p not in PARTS:
            raise ValueError(f"unknown facial part {p!r} in {defect!r}; parts are {', '.join(PARTS)}")
    return parts


def defect_masks(landmarks: np.ndarray, size: int, margins: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Boolean ``[size, size]`` masks of the five defects of Table 3 / Fig. 3 (:data:`DEFECTS`) for
    68 landmarks in the pixel coordinates of a ``size`` px aligned face. ``eyes``, ``nose`` and
    ``mouth`` are disjoint (:func:`part_masks`); the compound defects are their unions."""
    parts = part_masks(landmarks, size, margins)
    out = {}
    for defect in DEFECTS:
        m = np.zeros((size, size), dtype=bool)
        for p in _parts_of(defect):
            m |= parts[p]
        out[defect] = m
    return out


def _harmonic_fill(arr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``arr`` [H, W, C] with the ``mask`` pixels replaced by the harmonic interpolation of their
    surroundings (discrete Laplace equation, 4 neighbours; Neumann at the image border)."""
    import scipy.sparse as sp  # noqa: PLC0415
    from scipy.sparse.linalg import spsolve  # noqa: PLC0415

    h, w, c = arr.shape
    ys, xs = np.nonzero(mask)
    n = len(ys)
    if n == 0:
        return arr.copy()
    if n == h * w:
        raise ValueError("the mask covers the whole image: nothing to inpaint from")
    index = np.full((h, w), -1, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    rows, cols = [], []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = ys + dy, xs + dx
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        diag += valid
        nyc, nxc = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
        unknown = valid & mask[nyc, nxc]
        known = valid & ~mask[nyc, nxc]
        rows.append(np.nonzero(unknown)[0])
        cols.append(index[nyc[unknown], nxc[unknown]])
        rhs[known] += arr[nyc[known], nxc[known]]
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    ii = np.concatenate([np.arange(n), rows_a])
    jj = np.concatenate([np.arange(n), cols_a])
    vals = np.concatenate([diag, -np.ones(len(rows_a))])
    a = sp.csc_matrix((vals, (ii, jj)), shape=(n, n))
    sol = spsolve(a, rhs)
    out = arr.copy()
    out[ys, xs] = np.asarray(sol).reshape(n, c)
    return out


def _as_tensor(img: Image.Image | torch.Tensor) -> torch.Tensor:
    from .io import pil_to_tensor  # noqa: PLC0415

    if isinstance(img, Image.Image):
        return pil_to_tensor(img)
    t = img.detach().float().cpu()
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        raise ValueError(f"expected one image [1, 3, H, W] or [3, H, W], got {tuple(img.shape)}")
    return t


def remove_features(
    aligned: Image.Image | torch.Tensor,
    landmarks: np.ndarray,
    parts: str | Sequence[str],
    margins: dict[str, float] | None = None,
) -> torch.Tensor:
    """Fig. 3: remove facial features from an aligned face. Returns ``[1, 3, S, S]`` in [-1, 1].

    ``aligned`` is an RGB PIL image or a ``[1, 3, S, S]`` / ``[3, S, S]`` tensor in [-1, 1];
    ``landmarks`` its 68 dlib landmarks in its own pixel coordinates (see :func:`scale_landmarks`);
    ``parts`` a defect name (``"eyes+mouth"``) or a sequence of :data:`PARTS`. The masked region
    (:func:`defect_masks`) is filled by harmonic inpainting from the pixels around it; every pixel
    outside it is returned unchanged.
    """
    t = _as_tensor(aligned)
    s_h, s_w = t.shape[-2:]
    if s_h != s_w:
        raise ValueError(f"expected a square aligned face, got {s_w}x{s_h}")
    pm = part_masks(landmarks, s_h, margins)
    mask = np.zeros((s_h, s_w), dtype=bool)
    for p in _parts_of(parts):
        mask |= pm[p]
    arr = t[0].permute(1, 2, 0).numpy().astype(np.float64)
    filled = _harmonic_fill(arr, mask)
    out = torch.from_numpy(filled.astype(np.float32)).permute(2, 0, 1).unsqueeze(0)
    # keep the untouched pixels bit-identical (float64 round trip of float32 is exact, but be explicit)
    keep = torch.from_numpy(~mask)[None, None]
    return torch.where(keep, t, out).clamp(-1.0, 1.0)


# --------------------------------------------------------------------------------------------
# From a photo
# --------------------------------------------------------------------------------------------


def _map_through_quad(lm: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Photo landmarks -> pixel coordinates of the ``size`` px image that the FFHQ quad maps to."""
    u, v = quad[3] - quad[0], quad[1] - quad[0]
    rel = lm - quad[0]
    return np.stack([rel @ u / (u @ u), rel @ v / (v @ v)], axis=1) * size - 0.5


def _zoom_landmarks(lm: np.ndarray, size: int, zoom: float) -> np.ndarray:
    """Landmarks of a zoom-1 aligned ``size`` px face in the pixel coordinates of the same face
    aligned with ``zoom``: the quad shrinks about its centre, which maps to the image centre."""
    centre = size / 2.0
    return (np.asarray(lm, dtype=np.float64) + 0.5 - centre) / zoom + centre - 0.5


def aligned_face_and_landmarks(path, size: int, zoom: float = 1.0) -> tuple[Image.Image, np.ndarray]:
    """The first (left-most) face of a photo FFHQ-aligned at ``size`` px and ``zoom`` (§3.1), and its
    68 landmarks in that image's pixel coordinates.

    The landmarks are detected by dlib on the same face aligned at :data:`LANDMARK_SIZE` px with the
    FFHQ framing (zoom 1, the whole face and jaw in view, whatever ``zoom``), then carried to
    ``zoom`` (a scaling about the image centre) and ``size``. If dlib finds no face there (rare: an
    aligned face is large and frontal), the photo's own landmarks are mapped through the alignment
    quad instead. ``path`` may be a file, a PIL image or an :class:`i2s.data.EvalImage`. Raises
    ``NoFaceError`` / ``ImageReadError``.
    """
    from . import align as A  # noqa: PLC0415
    from .data import EvalImage  # noqa: PLC0415

    if isinstance(path, EvalImage):
        path = path.path
    img, name = A._as_rgb_image(path)
    lms = A.detect_landmarks(img, upsample=1)
    if not lms:
        raise A.NoFaceError(
            f"{name}: dlib found no face (HOG detector, upsample 1); the stress tests need a face photo"
        )
    lm_photo = lms[0]
    face = A.align_face(img, lm_photo, output_size=size, zoom=zoom)
    if size == LANDMARK_SIZE and zoom == 1.0:
        face_lm = face
    else:
        face_lm = A.align_face(img, lm_photo, output_size=LANDMARK_SIZE, zoom=1.0)
    found = A.detect_landmarks(face_lm, upsample=1)
    if found:
        centre = (LANDMARK_SIZE - 1) / 2
        lm = min(found, key=lambda p: float(np.hypot(*(p[27:48].mean(0) - centre))))
        lm = scale_landmarks(_zoom_landmarks(lm, LANDMARK_SIZE, zoom), LANDMARK_SIZE, size)
    else:
        quad, _ = A.ffhq_quad(lm_photo, zoom=zoom)
        lm = _map_through_quad(lm_photo, quad, size)
    return face, lm


def defect_inputs(
    path, size: int, zoom: float = 1.0, margins: dict[str, float] | None = None
) -> dict[str, torch.Tensor]:
    """The inputs of Table 3 / Fig. 3 for one face photo, each ``[1, 3, size, size]`` in [-1, 1]:
    ``"non-defective"`` (the aligned face, as :func:`i2s.data.load_target` gives it) followed by the
    five :data:`DEFECTS`."""
    from .io import pil_to_tensor  # noqa: PLC0415

    face, lm = aligned_face_and_landmarks(path, size, zoom)
    base = pil_to_tensor(face)
    out = {NON_DEFECTIVE: base}
    for defect in DEFECTS:
        out[defect] = remove_features(base, lm, defect, margins)
    return out


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def stress_figure(path_out: PathLike, size: int = 256, zoom: float = 1.0, face=None) -> Path:
    """A figure of all stress-test inputs of §3.2 for one face, saved atomically as PNG.

    Top row: the 7 inputs of Fig. 2 (the aligned original and the 6 :data:`TRANSFORMS`); bottom
    row: the 6 inputs of Fig. 3 (non-defective and the 5 :data:`DEFECTS`), each titled with its
    name. ``face``: an :class:`i2s.data.EvalImage` or a photo path; default the first face of the
    evaluation set. Rendered with matplotlib's Agg backend (no display needed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    from .data import EvalImage, eval_images  # noqa: PLC0415
    from .io import atomic_write_bytes, tensor_to_pil  # noqa: PLC0415

    if face is None:
        face = eval_images(("faces",))[0]
    label = face.name if isinstance(face, EvalImage) else Path(face).stem
    defects = defect_inputs(face, size, zoom)
    original = defects[NON_DEFECTIVE]
    transforms = affine_transforms(original)
    r = original.shape[-1]
    titles = {
        "translate_right_140": f"translate_right_140\n({shift_pixels(r, 140)} px at {r})",
        "translate_left_160": f"translate_left_160\n({shift_pixels(r, 160)} px at {r})",
        "rotate_90": "rotate_90\n(counter-clockwise)",
    }
    row1 = [("original", original)] + [(titles.get(k, k), v) for k, v in transforms.items()]
    row2 = list(defects.items())

    ncols = max(len(row1), len(row2))
    fig = Figure(figsize=(2.0 * ncols, 4.9), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, ncols, squeeze=False)
    for row, items in enumerate((row1, row2)):
        for col in range(ncols):
            ax = axes[row][col]
            ax.set_axis_off()
            if col < len(items):
                title, img = items[col]
                ax.imshow(np.asarray(tensor_to_pil(img)), interpolation="nearest")
                ax.set_title(title, fontsize=8)
    fig.text(0.005, 0.73, "Fig. 2 / Table 1", rotation=90, va="center", fontsize=8)
    fig.text(0.005, 0.27, "Fig. 3 / Table 3", rotation=90, va="center", fontsize=8)
    fig.suptitle(
        f"Stress-test inputs (§3.2): {label}, {r} px, zoom {zoom:g}; fill = black (-1); "
        f"defects filled by harmonic inpainting",
        fontsize=9,
    )
    fig.subplots_adjust(left=0.02, right=0.995, top=0.86, bottom=0.01, wspace=0.05, hspace=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path_out, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    """``python -m i2s.stress OUT.png [--size N] [--zoom Z] [--face PATH]``: write :func:`stress_figure`."""
    import argparse  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="python -m i2s.stress", description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--zoom", type=float, default=1.0)
    p.add_argument("--face", default=None, help="a face photo (default: the first face of the evaluation set)")
    args = p.parse_args(argv)
    print(stress_figure(args.out, args.size, args.zoom, args.face))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
