"""FFHQ face alignment, as used by Image2StyleGAN (§3.1: "We use the code provided by StyleGAN to
preprocess the face images").

This re-implements, step by step, the alignment of NVlabs/ffhq-dataset (``recreate_aligned_images``
with its defaults: rotation on, no random shift, padding on):

1. 68 dlib landmarks (HOG frontal face detector, upsample 1, then the 68-point shape predictor).
2. Eye centres = mean of points 36:42 and 42:48; mouth corners = points 48 and 54.
3. An oriented square ``quad`` around ``c = eye_avg + 0.1 * eye_to_mouth`` whose half side is
   ``max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|)`` (``ffhq_quad``).
4. Shrink the photo by an integer factor when the quad is much larger than the output.
5. Crop to the quad plus a border of 10 % of its size.
6. Where the quad leaves the photo: reflect-pad, blur the padding towards the edge and blend it to
   the median colour.
7. ``Image.transform(QUAD, BILINEAR)`` to ``transform_size`` and a LANCZOS resize to
   ``output_size``.

Differences from the 2019 script, all deliberate:

* Pillow 10 removed ``Image.ANTIALIAS``; ``Image.Resampling.LANCZOS`` is the same filter.
  ``Image.Transform.QUAD`` / ``Image.Resampling.BILINEAR`` are the enum names of the old aliases.
* Images are converted to RGB *before* alignment (``load_rgb``): the padding path of the original
  corrupts RGBA / palette / grey images (pbaylies/stylegan-encoder#18).
* ``zoom`` (default 1.0 = FFHQ exactly) shrinks the quad about its centre ``c``; ``zoom=0.7`` gives a
  tighter crop (the framing of the mini model's training set, ``scripts/prepare_mini_data.py``).
* ``transform_size`` defaults to ``4 * output_size`` (the official 4096 for 1024), but never more than
  4096 unless ``output_size`` itself is larger (see ``default_transform_size``).

The landmark model is the dlib 68-point predictor (``shape_predictor_68_face_landmarks.dat``, trained on
iBUG 300-W, whose licence excludes commercial use). It is found in the PyPI package
``face_recognition_models`` or Debian's ``libdlib-data``; see ``landmark_model_path``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageReadError",
    "NoFaceError",
    "LandmarkModelMissing",
    "load_rgb",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "MIN_TARGET_SIZE",
    "landmark_model_path",
    "get_detector",
    "get_predictor",
    "detect_landmarks",
    "eye_centres",
    "ffhq_quad",
    "default_transform_size",
    "align_quad",
    "align_face",
    "align",
    "canonical_eyes",
    "CANONICAL_EYES_ZOOM1",
]

PathLike = Union[str, os.PathLike]

#: Background for transparent pixels (RGBA, LA, palette with transparency). A neutral mid grey rather
#: than white or black: it keeps the face detector and the GAN's colour statistics away from an
#: extreme, and the alignment's reflect padding does not smear a saturated colour around the face.
DEFAULT_BACKGROUND = (128, 128, 128)

LANDMARK_FILE = "shape_predictor_68_face_landmarks.dat"
DEBIAN_LANDMARK_PATH = Path("/usr/share/dlib") / LANDMARK_FILE
#: Environment variable that may point at the .dat file (checked first).
LANDMARK_ENV = "I2S_DLIB_LANDMARKS"


class ImageReadError(ValueError):
    """The file could not be opened or decoded as an image."""


class NoFaceError(ValueError):
    """dlib found no face in the image."""


class LandmarkModelMissing(FileNotFoundError):
    """The dlib 68-point landmark model could not be found."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _sixteen_bit_to_8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale an integer / float single-channel array to uint8 (not clip).

    ``I;16*`` is 16-bit by definition: ``/257`` maps 0..65535 onto 0..255 exactly. Mode ``I``
    (32-bit int; Pillow also uses it for some 16-bit PNGs) is treated as 16-bit when its maximum
    exceeds 255, else as 8-bit. ``F`` is treated as [0, 1] when its maximum is <= 1, else as 0..255
    (or 16-bit when it exceeds 255).
    """
    a = arr.astype(np.float64)
    if mode.startswith("I;16"):
        scale = 257.0
    elif mode == "F" and np.nanmax(a) <= 1.0:
        scale = 1.0 / 255.0
    elif np.nanmax(a) > 255.0:
        scale = 257.0
    else:
        scale = 1.0
    return np.clip(np.rint(np.nan_to_num(a) / scale), 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image, background: Sequence[int]) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_sixteen_bit_to_8(np.asarray(img), mode), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    # CMYK (Pillow undoes Adobe's inverted CMYK JPEGs on decode), P, L, 1, YCbCr, LAB, HSV, ...
    return img.convert("RGB")


#: The smallest side an image may have to be used as an embedding target (``i2s.io.pil_to_tensor``
#: with a ``size``): below it there is too little detail for an up-scale to mean anything.
MIN_TARGET_SIZE = 32

# Leading bytes of HEIF/HEIC/AVIF containers (ISO BMFF "ftyp" box), which Pillow 10 cannot read.
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")

_pillow_globals_lock = threading.Lock()


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the decompression-bomb limit; it was not decoded."""


class ImageTooSmallError(ImageReadError):
    """The image is smaller than :data:`MIN_TARGET_SIZE` on its shorter side."""


def _fix_hint(head: bytes) -> str:
    """What to do with a file Pillow does not recognise, from its first bytes."""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ("it is a HEIC/HEIF/AVIF photo (iPhone default), which Pillow cannot read: export or "
                "convert it to JPEG or PNG (or `pip install pillow-heif`)")
    if head.lstrip()[:1] == b"<":
        return "it is a text/HTML/SVG file, not a raster image: save the picture itself as JPEG or PNG"
    return "convert it to PNG or JPEG, or check that the path points at an image"


def bomb_message(path: PathLike, size: tuple[int, int] | None, limit: int | None,
                 pixels: int | None = None) -> str:
    """The refusal for an image above the decompression-bomb limit (shared by :func:`load_rgb`)."""
    if size:
        dims = f"{size[0]} x {size[1]} = {size[0] * size[1]:,} pixels"
    else:
        dims = f"{pixels:,} pixels" if pixels else "too many pixels"
    lim = f"the limit of {limit:,} pixels" if limit else "Pillow's limit"
    return (f"{path}: refusing to decode an image of {dims}, more than {lim} "
            "(protection against decompression bombs: a small file that expands to gigabytes). "
            "If it is a genuine photo, downscale it first (e.g. to 4096 px on the long side), "
            "or raise the limit with PIL.Image.MAX_IMAGE_PIXELS = N in Python")


#: The formats a photo may come in. Restricting Image.open to them keeps Pillow from handing an
#: EPS or PostScript file to Ghostscript (an external interpreter) where it is installed.
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM")


def _decode(path: Path, limit: int | None, background: Sequence[int]) -> Image.Image:
    """Open, check the pixel count from the header, decode, apply EXIF orientation, convert."""
    with Image.open(path, formats=IMAGE_FORMATS) as im:
        if limit and im.size[0] * im.size[1] > limit:
            raise ImageTooLargeError(bomb_message(path, im.size, limit))
        im.load()
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception as e:  # noqa: BLE001 - a broken EXIF block must not lose the image
            warnings.warn(f"{path}: ignoring its unreadable EXIF orientation ({e})", stacklevel=3)
            upright = im
        img = _to_rgb(upright, background)
        img.load()
    return img


def load_rgb(path: PathLike, background: Sequence[int] = DEFAULT_BACKGROUND, *,
             max_pixels: int | None | str = "pillow", min_size: int = 0) -> Image.Image:
    """Open an image file as an upright 8-bit RGB ``PIL.Image``.

    Converted:

    * EXIF orientation is applied (``ImageOps.exif_transpose``), so phone photos come out upright.
      An unreadable EXIF block gives a warning and the image as stored.
    * Transparency (RGBA, LA, PA, P or L with a transparent colour) is alpha-composited onto
      ``background`` (neutral grey by default). The known fix ``convert('RGBA').convert('RGB')`` only
      drops the alpha channel, which exposes whatever colour the transparent pixels happen to store.
    * 16-bit (``I;16``, ``I;16B``, ``I``) and float (``F``) grey images are scaled to 8 bit, not
      clipped. 16-bit RGB(A) PNGs are reduced to 8 bit by Pillow itself (the high byte: at most one
      level below ``round(v / 257)``).
    * CMYK, palette, grey, 1-bit, YCbCr, LAB and HSV go through Pillow's ``convert('RGB')``.
    * Multi-frame files (animated GIF/PNG/WebP, multi-page TIFF): the first frame.
    * Any size is returned as it is; cropping to a square happens in ``i2s.io.pil_to_tensor``.

    Refused, with an :class:`ImageReadError` (a ``ValueError``) whose message names the file and
    says what to do:

    * a missing file, a directory, a zero-byte file, a file that is not an image Pillow can read
      (with a hint for HEIC and HTML), a truncated or corrupt image (never padded: should other code
      have set Pillow's ``LOAD_TRUNCATED_IMAGES``, it is held off while this function decodes);
    * more than ``max_pixels`` pixels (:class:`ImageTooLargeError`), checked from the header before
      anything is decoded. ``"pillow"`` (default) means ``PIL.Image.MAX_IMAGE_PIXELS`` (89.5 MP,
      the threshold at which Pillow starts to warn about decompression bombs), ``None`` no limit.
      (Holding Pillow's two globals to other values takes a lock for the decode.)
    * a shorter side below ``min_size`` (:class:`ImageTooSmallError`; default 0: no minimum).
    """
    path = Path(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels == "pillow" else max_pixels
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image file; pass the image files inside "
                             f"it instead (e.g. {path}/*.jpg)")
    try:
        st = path.stat()
        nbytes = st.st_size
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: no such file; check the path") from e
    except OSError as e:
        raise ImageReadError(f"{path}: cannot access the file ({e})") from e
    import stat as _stat

    kind = next((k for test, k in ((_stat.S_ISFIFO, "a named pipe (FIFO)"), (_stat.S_ISCHR, "a character device"),
                                   (_stat.S_ISBLK, "a block device"), (_stat.S_ISSOCK, "a socket"))
                 if test(st.st_mode)), None)
    if kind is not None:
        raise ImageReadError(f"{path}: is {kind}, not an image file; save the image to a regular file first")
    if nbytes == 0:
        raise ImageReadError(f"{path}: the file is empty (0 bytes), probably an interrupted copy or "
                             "download; copy or download it again")
    try:
        if ImageFile.LOAD_TRUNCATED_IMAGES or limit != Image.MAX_IMAGE_PIXELS:
            # Pillow's globals say otherwise: hold them to what this call asks while it decodes.
            with _pillow_globals_lock:
                saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
                ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = False, limit
                try:
                    img = _decode(path, limit, background)
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved
        else:
            img = _decode(path, limit, background)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:  # above twice the limit: Pillow refuses in Image.open
        m = re.search(r"\((\d+) pixels\)", str(e))
        raise ImageTooLargeError(bomb_message(path, None, limit, int(m.group(1)) if m else None)) from e
    except FileNotFoundError as e:
        raise ImageReadError(f"{path}: no such file; check the path") from e
    except IsADirectoryError as e:
        raise ImageReadError(f"{path}: is a directory, not an image file") from e
    except UnidentifiedImageError as e:
        with open(path, "rb") as f:
            head = f.read(64)
        raise ImageReadError(f"{path}: not an image file Pillow can read ({nbytes:,} bytes starting "
                             f"{head[:12]!r}); {_fix_hint(head)}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt data, odd modes
        raise ImageReadError(f"{path}: cannot decode the image, it is truncated, corrupt or an unsupported "
                             f"variant ({type(e).__name__}: {e}); re-download it, or re-export it as a "
                             "complete PNG or JPEG") from e
    except MemoryError as e:
        raise ImageReadError(f"{path}: not enough memory to decode this {nbytes:,}-byte image; "
                             "downscale it first") from e
    if min(img.size) < min_size:
        raise ImageTooSmallError(too_small_message(path, img.size, min_size))
    img.info["i2s_source"] = str(path)  # lets later checks (pil_to_tensor) name the file
    return img


def too_small_message(path: PathLike | str, size: tuple[int, int], minimum: int) -> str:
    """The refusal for an image whose shorter side is below ``minimum``."""
    return (f"{path}: the image is only {size[0]} x {size[1]} px; embedding needs at least {minimum} px "
            f"on the shorter side (an up-scaled thumbnail has no detail to embed). Use a larger image")


def _as_rgb_image(img_or_path) -> tuple[Image.Image, str]:
    """(RGB image, a name for messages)."""
    if isinstance(img_or_path, Image.Image):
        name = getattr(img_or_path, "filename", "") or "<in-memory image>"
        return _to_rgb(img_or_path, DEFAULT_BACKGROUND), name
    if isinstance(img_or_path, np.ndarray):
        arr = img_or_path
        if arr.dtype != np.uint8:
            raise TypeError(f"expected a uint8 HxWx3 array, got {arr.dtype}")
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, -1)
        return Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB"), "<array>"
    return load_rgb(img_or_path), str(img_or_path)


# --------------------------------------------------------------------------------------------
# dlib
# --------------------------------------------------------------------------------------------


def landmark_model_path() -> Path:
    """Path of dlib's ``shape_predictor_68_face_landmarks.dat``.

    Looked up in this order: ``$I2S_DLIB_LANDMARKS``; the PyPI package ``face_recognition_models``
    (located with ``importlib.util.find_spec``, because importing it needs the deprecated
    ``pkg_resources``); Debian/Ubuntu's ``libdlib-data`` at ``/usr/share/dlib/``.
    """
    tried = []
    env = os.environ.get(LANDMARK_ENV)
    if env:
        p = Path(env).expanduser()
        if p.is_file():
            return p
        tried.append(f"${LANDMARK_ENV}={p}")
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        p = Path(spec.origin).parent / "models" / LANDMARK_FILE
        if p.is_file():
            return p
        tried.append(str(p))
    else:
        tried.append("PyPI package face_recognition_models (not installed)")
    if DEBIAN_LANDMARK_PATH.is_file():
        return DEBIAN_LANDMARK_PATH
    tried.append(str(DEBIAN_LANDMARK_PATH))
    raise LandmarkModelMissing(
        "dlib's 68-point landmark model (shape_predictor_68_face_landmarks.dat) was not found; tried: "
        + "; ".join(tried)
        + ". Install it with `pip install face_recognition_models` (a 100 MB sdist holding the model), "
        "or `apt-get install libdlib-data` on Debian/Ubuntu, or download "
        "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2, decompress it and set "
        f"${LANDMARK_ENV} to its path. Note: the model was trained on iBUG 300-W, whose licence "
        "excludes commercial use."
    )


_lock = threading.Lock()
_detector = None
_predictor = None


def _dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "face alignment needs dlib: `pip install dlib-bin` (prebuilt wheels) or `pip install dlib` "
            "(builds from source with CMake and a C++ compiler)"
        ) from e
    return dlib


def get_detector():
    """The (cached, lazily created) dlib HOG frontal face detector."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = _dlib().get_frontal_face_detector()
    return _detector


def get_predictor():
    """The (cached, lazily created) dlib 68-point shape predictor."""
    global _predictor
    if _predictor is None:
        with _lock:
            if _predictor is None:
                _predictor = _dlib().shape_predictor(str(landmark_model_path()))
    return _predictor


def detect_landmarks(img: Image.Image, upsample: int = 1) -> list[np.ndarray]:
    """68 dlib landmarks per detected face: a list of float64 [68, 2] (x, y) arrays in pixel
    coordinates of ``img``, sorted left to right (by the detection box's left edge)."""
    if isinstance(img, Image.Image):
        arr = np.asarray(_to_rgb(img, DEFAULT_BACKGROUND))
    else:
        arr = np.asarray(img)
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    detector, predictor = get_detector(), get_predictor()
    dets = sorted(detector(arr, int(upsample)), key=lambda r: (r.left(), r.top()))
    out = []
    for det in dets:
        shape = predictor(arr, det)
        out.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64))
    return out


# --------------------------------------------------------------------------------------------
# The FFHQ recipe
# --------------------------------------------------------------------------------------------


def eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) eye centres of 68 landmarks: means of points 36:42 and 42:48 (image left first)."""
    lm = np.asarray(lm, dtype=np.float64)
    return lm[36:42].mean(0), lm[42:48].mean(0)


def ffhq_quad(lm: np.ndarray, zoom: float = 1.0) -> tuple[np.ndarray, float]:
    """The FFHQ oriented crop of 68 landmarks: ``(quad [4, 2], qsize)``.

    ``quad`` is (top-left, bottom-left, bottom-right, top-right), the corner order of PIL's QUAD
    transform; ``qsize`` its side length. ``zoom < 1`` shrinks the quad about its centre ``c``
    (a tighter crop, the face larger in the output); ``zoom = 1`` is FFHQ exactly.
    """
    if zoom <= 0:
        raise ValueError(f"zoom must be > 0, got {zoom}")
    lm = np.asarray(lm, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) landmarks, got shape {lm.shape}")
    eye_left, eye_right = eye_centres(lm)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_left, mouth_right = lm[48], lm[54]
    mouth_avg = (mouth_left + mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg

    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    x *= zoom
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    qsize = float(np.hypot(*x) * 2)
    return quad, qsize


def default_transform_size(output_size: int) -> int:
    """Supersampling size of the QUAD transform: ``4 * output_size`` (the official 4096 for 1024),
    capped at 4096 (a 4096^2 RGB intermediate is 48 MB) but never below ``output_size``."""
    return max(int(output_size), min(4 * int(output_size), 4096))


def align_quad(
    img: Image.Image,
    quad: np.ndarray,
    qsize: float | None = None,
    output_size: int = 1024,
    transform_size: int | None = None,
    enable_padding: bool = True,
) -> Image.Image:
    """Steps 4-7 of the recipe (shrink, crop, pad, transform) for a given quad (TL, BL, BR, TR)."""
    import scipy.ndimage  # noqa: PLC0415

    img = _to_rgb(img, DEFAULT_BACKGROUND)
    quad = np.array(quad, dtype=np.float64).copy()
    if qsize is None:
        qsize = float(np.hypot(*(quad[3] - quad[0])))
    output_size = int(output_size)
    if transform_size is None:
        transform_size = default_transform_size(output_size)

    # Shrink.
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        img = img.resize(rsize, Image.Resampling.LANCZOS)
        quad /= shrink
        qsize /= shrink

    # Crop.
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (
        int(np.floor(min(quad[:, 0]))),
        int(np.floor(min(quad[:, 1]))),
        int(np.ceil(max(quad[:, 0]))),
        int(np.ceil(max(quad[:, 1]))),
    )
    crop = (
        max(crop[0] - border, 0),
        max(crop[1] - border, 0),
        min(crop[2] + border, img.size[0]),
        min(crop[3] + border, img.size[1]),
    )
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]

    # Pad.
    pad = (
        int(np.floor(min(quad[:, 0]))),
        int(np.floor(min(quad[:, 1]))),
        int(np.ceil(max(quad[:, 0]))),
        int(np.ceil(max(quad[:, 1]))),
    )
    pad = (
        max(-pad[0] + border, 0),
        max(-pad[1] + border, 0),
        max(pad[2] - img.size[0] + border, 0),
        max(pad[3] - img.size[1] + border, 0),
    )
    if enable_padding and max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
        h, w, _ = arr.shape
        y, x, _ = np.ogrid[:h, :w, :1]
        p = np.maximum(pad, 1).astype(np.float32)  # guard against a zero pad on tiny quads
        mask = np.maximum(
            1.0 - np.minimum(np.float32(x) / p[0], np.float32(w - 1 - x) / p[2]),
            1.0 - np.minimum(np.float32(y) / p[1], np.float32(h - 1 - y) / p[3]),
        )
        blur = qsize * 0.02
        arr += (scipy.ndimage.gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad += pad[:2]

    # Transform.
    img = img.transform(
        (transform_size, transform_size),
        Image.Transform.QUAD,
        (quad + 0.5).flatten(),
        Image.Resampling.BILINEAR,
    )
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.Resampling.LANCZOS)
    return img


def align_face(
    img: Image.Image,
    lm: np.ndarray,
    output_size: int = 1024,
    transform_size: int | None = None,
    zoom: float = 1.0,
    enable_padding: bool = True,
) -> Image.Image:
    """Align one face given its 68 landmarks: FFHQ's ``recreate_aligned_images`` for one face.

    ``transform_size`` defaults to ``default_transform_size(output_size)`` (4096 for 1024, as FFHQ).
    """
    quad, qsize = ffhq_quad(lm, zoom=zoom)
    return align_quad(img, quad, qsize, output_size, transform_size, enable_padding)


def align(
    img_or_path,
    size: int = 1024,
    zoom: float = 1.0,
    upsample: int = 1,
    transform_size: int | None = None,
    enable_padding: bool = True,
) -> list[Image.Image]:
    """Detect every face in an image (path, PIL image or uint8 array) and align each one.

    Returns one ``size`` x ``size`` RGB image per face, left to right. Raises ``NoFaceError`` when
    dlib finds none. Paths go through ``load_rgb`` (EXIF orientation, mode conversion); a PIL image
    is used as given apart from the conversion to RGB (apply ``ImageOps.exif_transpose`` yourself).
    """
    img, name = _as_rgb_image(img_or_path)
    lms = detect_landmarks(img, upsample=upsample)
    if not lms:
        raise NoFaceError(
            f"{name}: dlib found no face (HOG detector, upsample {upsample}). If the image is "
            "already a cropped, roughly centred face, or not a face (a cat, a car, a painting), leave out "
            "--align (align=False: a centre crop and resize); otherwise try a larger or more frontal photo."
        )
    return [align_face(img, lm, size, transform_size, zoom, enable_padding) for lm in lms]


# --------------------------------------------------------------------------------------------
# Where the recipe puts the eyes
# --------------------------------------------------------------------------------------------

#: Eye centres ((x, y) left, (x, y) right) as fractions of the output width at zoom 1, in continuous
#: coordinates (the image spans [0, 1]; pixel i covers [i, i+1) / size). Measured, not derived: the
#: 5 photos of i2s-eval/faces were aligned at zoom 1 to 1024 px, dlib re-detected the landmarks on
#: each output (upsample 0) and the eye centres (means of points 36:42 / 42:48, + 0.5 px) were
#: averaged: per-face spread (std) 0.0014 in x, 0.004 in y; at 512 and 256 px the means agree
#: within 0.001. This matches the recipe's geometry: when 2 * |eye_to_eye| sets the quad (typical
#: proportions), the quad side is 4 eye distances, so the eyes sit 0.125 either side of the centre,
#: and 0.1 * |eye_to_mouth| / qsize (~0.025) above it.
CANONICAL_EYES_ZOOM1 = ((0.3752, 0.4747), (0.6246, 0.4731))


def canonical_eyes(size: int, zoom: float = 1.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the recipe puts the eye centres of a face with typical proportions in a ``size`` px
    aligned image: ``((x, y) left, (x, y) right)`` in pixel coordinates as dlib reports landmarks
    (pixel centres at integers).

    For ``zoom`` z the zoom-1 positions are scaled by 1/z about the image centre (the quad shrinks
    about its centre ``c``, which maps to the centre of the output). E.g. at zoom 0.7 the eye
    distance is 0.2494 / 0.7 = 0.356 of the width.
    """
    out = []
    for ex, ey in CANONICAL_EYES_ZOOM1:
        fx, fy = 0.5 + (ex - 0.5) / zoom, 0.5 + (ey - 0.5) / zoom
        out.append((size * fx - 0.5, size * fy - 0.5))
    return tuple(out[0]), tuple(out[1])
