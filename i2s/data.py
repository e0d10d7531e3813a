"""The evaluation set, by class, with stable names (§3.1 of Image2StyleGAN).

The paper embeds "a small-scale dataset of 25 diverse images spanning 5 categories (i.e. faces,
cats, dogs, cars, and paintings)" (§3.1, supplementary Fig. 17), plus style images for style
transfer (§4.3, Fig. 6 / Fig. 8) and neutral/smiling pairs for expression transfer (§4.2, Fig. 7).
Our stand-in lives in the repository under ``data/i2s-eval`` (provenance and licences in
``data/i2s-eval/SOURCES.md``)::

    data/i2s-eval/{faces,cats,dogs,cars,paintings}/*.jpg   5 images each (§3.1)
    data/i2s-eval/style/*.jpg                              3 style images (§4.3)
    data/i2s-eval/expressions/<id>_{neutral,smiling}.jpg   5 pairs (§4.2)

Names are ``"<class>/<file stem>"`` (e.g. ``"faces/astronaut_eileen_collins"``): they do not depend
on the file extension or the folder the set lives in, so results keyed by name stay comparable.

Framing. "We use the code provided by StyleGAN to preprocess the face images" (§3.1): faces (and
the expression photos) are FFHQ-aligned (:mod:`i2s.align`); the other classes are centre-cropped
to a square and resized (the paper aligns faces only). Every loader takes ``size`` and ``zoom`` so
it serves both generators of the kit: the official FFHQ-1024 (zoom 1.0, the FFHQ recipe) and the
64-px ``mini`` model, whose training faces were aligned with ``align(img, size=64, zoom=0.7)``. A
generator carries its framing in ``G.info.get("align_zoom", 1.0)``. ``zoom`` only affects aligned
images; centre crops ignore it.

The set's folder is ``EVAL_DIR``; set ``$I2S_EVAL_DIR`` to use another copy (read at every call,
so tests can point it at a temporary folder).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

import torch

if TYPE_CHECKING:
    from .stylegan import StyleGAN

__all__ = [
    "EVAL_DIR",
    "EVAL_DIR_ENV",
    "CLASSES",
    "FACE_CLASSES",
    "is_face",
    "in_domain",
    "image_stem",
    "IMAGE_EXTENSIONS",
    "EvalImage",
    "eval_dir",
    "eval_images",
    "style_images",
    "expression_pairs",
    "find_image",
    "load_target",
    "load_class_batch",
    "HOLDOUT_LIST",
    "holdout_faces",
    "benchmark_set",
]

#: Environment variable that overrides the evaluation set's folder.
EVAL_DIR_ENV = "I2S_EVAL_DIR"
_REPO_EVAL_DIR = Path(__file__).resolve().parents[1] / "data" / "i2s-eval"
#: The evaluation set's folder (``$I2S_EVAL_DIR`` at import time, else the repository's
#: ``data/i2s-eval``). The functions below re-read the variable at each call (:func:`eval_dir`).
EVAL_DIR = Path(os.environ.get(EVAL_DIR_ENV) or _REPO_EVAL_DIR)

#: The five classes of §3.1, in the paper's order.
CLASSES: tuple[str, ...] = ("faces", "cats", "dogs", "cars", "paintings")
#: The classes whose images are human face photos: FFHQ-aligned before embedding (§3.1) and measured
#: with the face metrics (identity distance). ``holdout`` names mini's held-out training photos.
FACE_CLASSES: tuple[str, ...] = ("faces", "expressions", "holdout")
STYLE_CLASS = "style"
EXPRESSION_CLASS = "expressions"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

PathLike = Union[str, os.PathLike]


def is_face(name: str | None) -> bool:
    """True when ``name`` (an image name ``"<class>/<stem>"``, or a class) is of a face class
    (:data:`FACE_CLASSES`); the kit's one test of "is this image a face"."""
    return bool(name) and str(name).split("/", 1)[0] in FACE_CLASSES


def in_domain(domain: str) -> Callable[[str | None], bool]:
    """Which images claims about "faces" are about for a generator of ``domain``: for a face
    generator :func:`is_face`; for another (a cat generator: ``"cats"``) the images of that class,
    so that photos of faces are not counted as its in-domain images."""
    if domain == "faces":
        return is_face
    return lambda name: bool(name) and str(name).split("/", 1)[0] == domain


def image_stem(name: str) -> str:
    """An image's name without its class folder (``faces/astronaut_eileen_collins`` ->
    ``astronaut_eileen_collins``), for figure labels."""
    return name.split("/")[-1]


@dataclass(frozen=True)
class EvalImage:
    """One image of the evaluation set: ``name`` (``"<class>/<stem>"``), its class and its file."""

    name: str
    cls: str
    path: Path

    @property
    def stem(self) -> str:
        return self.name.split("/", 1)[1]


def eval_dir() -> Path:
    """The evaluation set's folder now: ``$I2S_EVAL_DIR`` if set, else the repository's copy."""
    env = os.environ.get(EVAL_DIR_ENV)
    return Path(env).expanduser() if env else _REPO_EVAL_DIR


def _list_folder(cls: str) -> list[EvalImage]:
    folder = eval_dir() / cls
    if not folder.is_dir():
        raise FileNotFoundError(
            f"evaluation class folder {folder} does not exist (set ${EVAL_DIR_ENV} to the folder holding "
            f"{', '.join(CLASSES)}, or restore data/i2s-eval from the repository)"
        )
    items: dict[str, EvalImage] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        name = f"{cls}/{p.stem}"
        if name in items:
            raise ValueError(f"two files in {folder} share the name {name!r}: {items[name].path.name}, {p.name}")
        items[name] = EvalImage(name, cls, p)
    return [items[k] for k in sorted(items)]


def eval_images(classes: Sequence[str] | str = CLASSES) -> list[EvalImage]:
    """The images of the given classes (§3.1): classes in the order given, names sorted within each.

    ``classes`` may be one class name. Any folder of the set is accepted (``"style"`` and
    ``"expressions"`` too); an unknown class raises ``ValueError``.
    """
    if isinstance(classes, str):
        classes = (classes,)
    known = CLASSES + (STYLE_CLASS, EXPRESSION_CLASS)
    out: list[EvalImage] = []
    for cls in classes:
        if cls not in known:
            raise ValueError(f"unknown class {cls!r}; choose from {', '.join(known)}")
        out.extend(_list_folder(cls))
    return out


def style_images() -> list[EvalImage]:
    """The style images of the style-transfer experiments (§4.3, Fig. 6 and Fig. 8), sorted by name."""
    return _list_folder(STYLE_CLASS)


def expression_pairs() -> list[tuple[str, EvalImage, EvalImage]]:
    """``(person id, neutral, smiling)`` for expression transfer (§4.2, Fig. 7), sorted by id.

    Files are named ``<id>_neutral.*`` and ``<id>_smiling.*``; a file without its partner is
    reported with a warning and left out.
    """
    neutral: dict[str, EvalImage] = {}
    smiling: dict[str, EvalImage] = {}
    for item in _list_folder(EXPRESSION_CLASS):
        pid, _, kind = item.stem.rpartition("_")
        if kind == "neutral" and pid:
            neutral[pid] = item
        elif kind == "smiling" and pid:
            smiling[pid] = item
        else:
            warnings.warn(f"{item.path}: not named <id>_neutral or <id>_smiling; ignored", stacklevel=2)
    for pid in sorted(set(neutral) ^ set(smiling)):
        have = neutral.get(pid) or smiling.get(pid)
        warnings.warn(f"{have.path}: expression pair {pid!r} is incomplete; ignored", stacklevel=2)
    return [(pid, neutral[pid], smiling[pid]) for pid in sorted(set(neutral) & set(smiling))]


def find_image(name: str) -> EvalImage:
    """The evaluation image called ``name`` (``"<class>/<stem>"``); ``KeyError`` if there is none."""
    cls = name.split("/", 1)[0]
    try:
        items = _list_folder(cls) if "/" in name else []
    except FileNotFoundError:
        items = []
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no evaluation image named {name!r} under {eval_dir()}")


def _resolve(item_or_path: EvalImage | PathLike) -> tuple[Path, str | None]:
    """(file, class or None). A string that is not an existing file is looked up as a set name."""
    if isinstance(item_or_path, EvalImage):
        return item_or_path.path, item_or_path.cls
    path = Path(item_or_path)
    if isinstance(item_or_path, str) and not path.exists() and "/" in item_or_path and not path.suffix:
        item = find_image(item_or_path)
        return item.path, item.cls
    cls = path.parent.name
    return path, cls if cls in CLASSES + (STYLE_CLASS, EXPRESSION_CLASS) else None


def load_target(
    item_or_path: EvalImage | PathLike, size: "int | StyleGAN", zoom: float | None = None, align: bool | None = None
) -> torch.Tensor:
    """One image as an embedding target: ``[1, 3, size, size]`` float32 in [-1, 1].

    ``size`` is a resolution, or the generator itself: then the target is framed for it, at its
    resolution and its training framing (``G.info["align_zoom"]``: 0.7 for ``mini``, 1 for FFHQ).
    ``zoom`` defaults to that framing (1.0 when ``size`` is a number).

    * ``align=True``: FFHQ alignment (§3.1, :func:`i2s.align.align`) at ``size`` px and ``zoom``;
      the first (left-most) face is used; ``NoFaceError`` if dlib finds none.
    * ``align=False``: centre crop to a square and a Lanczos resize (the other classes: the paper
      aligns faces only).
    * ``align=None`` (default): align when the image's class is a face class (:func:`is_face`: an
      :class:`EvalImage`'s ``cls``, or the name of the file's folder for a plain path).

    ``item_or_path`` is an :class:`EvalImage`, a file path, or a set name like
    ``"faces/astronaut_eileen_collins"``. Unreadable files raise :class:`i2s.align.ImageReadError`.
    """
    from .align import align as align_faces
    from .align import load_rgb
    from .io import pil_to_tensor

    if not isinstance(size, (int, float)) and hasattr(size, "resolution"):  # a generator
        zoom = float(size.info.get("align_zoom", 1.0)) if zoom is None else zoom
        size = size.resolution
    zoom = 1.0 if zoom is None else zoom
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    path, cls = _resolve(item_or_path)
    if align is None:
        align = is_face(cls)
    if align:
        faces = align_faces(path, size=size, zoom=float(zoom))
        return pil_to_tensor(faces[0])
    return pil_to_tensor(load_rgb(path), size)


def load_class_batch(cls: str, size: int, zoom: float = 1.0) -> tuple[list[str], torch.Tensor]:
    """All images of a class as ``(names, [N, 3, size, size])``, aligned or cropped as in
    :func:`load_target` (faces and expressions aligned at ``zoom``).

    A file that cannot be read, or a face photo without a detectable face, is reported with a
    ``UserWarning`` naming it and skipped; the others are returned. With none left, the tensor is
    ``[0, 3, size, size]``.
    """
    from .align import LandmarkModelMissing

    names: list[str] = []
    tensors: list[torch.Tensor] = []
    for item in eval_images((cls,)):
        try:
            tensors.append(load_target(item, size, zoom))
        except LandmarkModelMissing:  # a set-up problem, not a bad file
            raise
        except (ValueError, OSError) as e:  # ImageReadError, NoFaceError (ValueErrors), I/O errors
            warnings.warn(f"skipped {item.name} ({item.path}): {e}", stacklevel=2)
            continue
        names.append(item.name)
    if not tensors:
        warnings.warn(f"no image of class {cls!r} under {eval_dir() / cls} could be loaded", stacklevel=2)
        return names, torch.empty(0, 3, int(size), int(size))
    return names, torch.cat(tensors)


#: The names of mini's 200 held-out training photos (never trained on; ``scripts/prepare_mini_data.py``).
HOLDOUT_LIST = _REPO_EVAL_DIR.parent / "mini-holdout.txt"


def holdout_faces(n: int | None = None, size: int = 64, zoom: float = 0.7, cache: Path | None = None,
                  photos: Path | None = None) -> torch.Tensor:
    """mini's held-out faces ``[n, 3, size, size]`` in [-1, 1], framed as its training set.

    Read from ``holdout64.npy`` in ``cache`` (``$I2S_HOME/train-data``, written by
    ``scripts/prepare_mini_data.py``) when ``size`` is 64; otherwise (or when that file is
    missing and ``photos``, the folder of the face photos, is given) aligned again from the photos
    listed in ``data/mini-holdout.txt`` (a photo without a detectable face is centre-cropped, as
    the training set framed it).
    """
    import numpy as np

    from .weights.fetch import i2s_home

    names = HOLDOUT_LIST.read_text().split()
    arr_path = (cache or i2s_home() / "train-data") / "holdout64.npy"
    if size == 64 and arr_path.is_file():
        arr = np.load(arr_path, allow_pickle=False)
        if arr.shape != (len(names), 64, 64, 3) or arr.dtype != np.uint8:
            raise ValueError(f"{arr_path}: {arr.shape} {arr.dtype}, not the {len(names)} held-out faces of "
                             f"{HOLDOUT_LIST.name} (uint8, 64 px): run scripts/prepare_mini_data.py again")
        arr = arr[:n]
    elif photos is not None:
        from PIL import Image

        from .align import NoFaceError, align, load_rgb

        imgs = []
        for name in names[:n]:
            path = photos / name
            try:
                imgs.append(np.asarray(align(path, size=size, zoom=zoom)[0]))
            except NoFaceError:
                imgs.append(np.asarray(load_rgb(path).resize((size, size), Image.Resampling.LANCZOS)))
        arr = np.stack(imgs)
    else:
        raise FileNotFoundError(f"{arr_path} is missing: run scripts/prepare_mini_data.py (it writes the held-out "
                                "faces there), or give the folder of the face photos")
    return torch.from_numpy(arr.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1


def benchmark_set(G: "StyleGAN", holdout: int, per_class: int) -> tuple[list[str], torch.Tensor]:
    """The images the benchmarks share (so their runs share the embedding cache): the first
    ``holdout`` held-out faces (mini at 64 px only; none when the array is missing) and the
    first ``per_class`` evaluation images of each class, framed for ``G``."""
    names: list[str] = []
    xs: list[torch.Tensor] = []
    if holdout and G.resolution == 64:
        try:
            x = holdout_faces(holdout, 64, float(G.info.get("align_zoom", 0.7)))
            xs.append(x)
            names += [f"holdout/{i:03d}" for i in range(len(x))]
        except FileNotFoundError as e:
            warnings.warn(f"no held-out faces: {e}", stacklevel=2)
    for cls in CLASSES:
        for item in eval_images((cls,))[:per_class]:
            xs.append(load_target(item, G))
            names.append(item.name)
    return names, torch.cat(xs)
