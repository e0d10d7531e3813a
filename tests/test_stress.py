"""Tests of i2s.stress: the stress-test inputs of §3.2 (Fig. 2 / Table 1, Fig. 3 / Table 3)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2s import data as D
from i2s import stress as S
from i2s.align import canonical_eyes


def _random_images(r: int, n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, r, r, generator=g) * 2 - 1


# ------------------------------------------------------------------ affine transforms (Table 1)


@pytest.mark.parametrize("r,right,left", [(64, 9, 10), (256, 35, 40), (1024, 140, 160)])
def test_translation_exact(r, right, left):
    assert S.shift_pixels(r, 140) == right and S.shift_pixels(r, 160) == left
    x = _random_images(r, n=1)
    t = S.affine_transforms(x)
    tr, tl = t["translate_right_140"], t["translate_left_160"]
    assert torch.equal(tr[..., right:], x[..., : r - right])
    assert (tr[..., :right] == S.FILL).all()
    assert torch.equal(tl[..., : r - left], x[..., left:])
    assert (tl[..., r - left :] == S.FILL).all()


def test_zoom_out_and_in():
    r = 64
    x = _random_images(r)
    out = S.zoom_out_2x(x)
    assert out.shape == x.shape
    q = r // 4
    assert torch.allclose(out[..., q : q + r // 2, q : q + r // 2], F.avg_pool2d(x, 2), atol=1e-6)
    border = torch.ones(r, r, dtype=torch.bool)
    border[q : q + r // 2, q : q + r // 2] = False
    assert (out[..., border] == S.FILL).all()

    # zoom in: a centred square block of side R/4 becomes R/2; the centre pixel keeps its colour
    block = torch.full((1, 3, r, r), -0.5)
    block[..., 3 * r // 8 : 5 * r // 8, 3 * r // 8 : 5 * r // 8] = torch.tensor([0.8, -0.2, 0.3])[:, None, None]
    zin = S.zoom_in_2x(block)
    assert zin.shape == block.shape
    c = r // 2
    assert torch.allclose(zin[..., c, c], block[..., c, c]) and torch.allclose(zin[..., c - 1, c - 1], block[..., c, c])
    inside = zin[..., r // 4 + 4 : 3 * r // 4 - 4, r // 4 + 4 : 3 * r // 4 - 4]  # bicubic ringing: 4 px at the edges
    assert torch.allclose(inside, block[..., c : c + 1, c : c + 1].expand_as(inside), atol=1e-5)
    assert torch.allclose(zin[..., :4, :4], torch.tensor(-0.5))  # the outside of the block, doubled away
    # zoom in of the zoomed-out image comes back close to the original (up to the blur of the two resamplings)
    smooth = F.interpolate(_random_images(8, n=1), size=(r, r), mode="bilinear", align_corners=False)
    back = S.zoom_in_2x(S.zoom_out_2x(smooth))
    assert (back - smooth)[..., 4:-4, 4:-4].abs().max() < 0.1


def test_rotations_exact():
    x = _random_images(32)
    t = S.affine_transforms(x)
    r90, r180 = t["rotate_90"], t["rotate_180"]
    # counter-clockwise: the top-right corner moves to the top-left, the top row becomes the left column
    assert torch.equal(r90[..., 0, 0], x[..., 0, -1])
    assert torch.equal(r90[..., :, 0], x[..., 0, :].flip(-1))
    assert torch.equal(r180, x.flip(-1).flip(-2))
    y = x
    for _ in range(4):
        y = S.affine_transforms(y)["rotate_90"]
    assert torch.equal(y, x)


@pytest.mark.parametrize("r", [32, 64, 256])
def test_transforms_keep_shape_and_range(r):
    x = _random_images(r)
    x[0, :, r // 2] = 1.0  # saturated values: bicubic overshoot must be clamped
    x[0, :, r // 2 + 1] = -1.0
    t = S.affine_transforms(x)
    assert tuple(t) == S.TRANSFORMS
    for name, y in t.items():
        assert y.shape == x.shape and y.dtype == x.dtype, name
        assert y.min() >= -1 and y.max() <= 1, name
    with pytest.raises(ValueError):
        S.affine_transforms(x[0])


# ------------------------------------------------------------------ defects (Table 3)


@lru_cache(maxsize=None)
def _face(size: int, zoom: float):
    face = D.find_image("faces/astronaut_eileen_collins")
    img, lm = S.aligned_face_and_landmarks(face, size, zoom)
    return img, lm


def _synthetic_landmarks(size: int = 128) -> np.ndarray:
    """A plausible frontal face layout (68 points) in a ``size`` px image."""
    s = size / 128
    lm = np.zeros((68, 2))
    lm[0:17] = np.stack([np.linspace(20, 108, 17), 60 + 40 * np.sin(np.linspace(0, np.pi, 17))], 1)
    lm[17:27] = np.stack([np.r_[np.linspace(32, 56, 5), np.linspace(72, 96, 5)], np.full(10, 46)], 1)
    for start, cx in ((36, 48), (42, 80)):
        ang = np.linspace(np.pi, -np.pi, 6, endpoint=False)
        lm[start : start + 6] = np.stack([cx + 9 * np.cos(ang), 56 + 3.5 * np.sin(ang)], 1)
    lm[27:31] = np.stack([np.full(4, 64), np.linspace(56, 74, 4)], 1)
    lm[31:36] = np.stack([np.linspace(56, 72, 5), [78, 79, 80, 79, 78]], 1)
    ang = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    lm[48:60] = np.stack([64 + 15 * np.cos(ang), 92 + 6 * np.sin(ang)], 1)
    ang = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    lm[60:68] = np.stack([64 + 10 * np.cos(ang), 92 + 2 * np.sin(ang)], 1)
    return (lm + 0.5) * s - 0.5


def _check_masks(masks: dict, size: int) -> None:
    assert tuple(masks) == S.DEFECTS
    for name, m in masks.items():
        assert m.shape == (size, size) and m.dtype == bool, name
        assert m.any(), f"{name}: empty mask"
        # inside the image: the region does not reach the border
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()), name
        assert m.mean() < 0.25, f"{name}: covers {m.mean():.2f} of the image"
    e, n, mo = masks["eyes"], masks["nose"], masks["mouth"]
    assert not (e & n).any() and not (e & mo).any() and not (n & mo).any()
    assert np.array_equal(masks["eyes+mouth"], e | mo)
    assert np.array_equal(masks["eyes+nose+mouth"], e | n | mo)


@pytest.mark.parametrize("size", [64, 256])
def test_defect_masks_synthetic(size):
    lm = _synthetic_landmarks(size)
    masks = S.defect_masks(lm, size)
    _check_masks(masks, size)
    # each landmark of a region lies in its own mask
    for part, sls in S.PART_POINTS.items():
        for sl in sls:
            for x, y in lm[sl]:
                assert masks[part][int(round(y)), int(round(x))], (part, x, y)
    # the eyes mask has two separate blobs, one per eye; the eyebrows (17:27) are kept
    e = masks["eyes"]
    assert not e[:, size // 2].any()
    for x, y in lm[17:27]:
        assert not e[int(round(y)), int(round(x))]


@pytest.mark.parametrize("size,zoom", [(64, 0.7), (256, 1.0)])
def test_remove_features_real_face(size, zoom):
    img, lm = _face(size, zoom)
    assert img.size == (size, size) and lm.shape == (68, 2)
    masks = S.defect_masks(lm, size)
    _check_masks(masks, size)
    # the landmarks scaled from the 256 px detection sit on this face: eyes where the recipe puts them
    (lx, ly), (rx, ry) = lm[36:42].mean(0), lm[42:48].mean(0)
    (cx0, cy0), (cx1, cy1) = canonical_eyes(size, zoom)
    assert max(abs(lx - cx0), abs(ly - cy0), abs(rx - cx1), abs(ry - cy1)) < 0.03 * size

    inputs = S.defect_inputs(D.find_image("faces/astronaut_eileen_collins"), size, zoom)
    assert tuple(inputs) == ("non-defective",) + S.DEFECTS
    base = inputs["non-defective"]
    assert torch.equal(base, D.load_target("faces/astronaut_eileen_collins", size, zoom))
    for name in S.DEFECTS:
        y = inputs[name]
        assert y.shape == (1, 3, size, size) and y.min() >= -1 and y.max() <= 1
        m = torch.from_numpy(masks[name])
        diff = (y - base).abs().amax(1)[0]
        assert torch.equal(y[..., ~m], base[..., ~m]), f"{name}: pixels outside the mask changed"
        assert diff[m].mean() > 0.05, f"{name}: the masked region hardly changed ({diff[m].mean():.3f})"
    # remove_features accepts the PIL image and a list of parts too
    again = S.remove_features(img, lm, ["eyes", "mouth"])
    assert torch.allclose(again, inputs["eyes+mouth"], atol=1e-6)
    with pytest.raises(ValueError, match="unknown facial part"):
        S.remove_features(img, lm, "ears")


def test_stress_figure(tmp_path):
    from PIL import Image

    path = S.stress_figure(tmp_path / "sub" / "stress.png", size=64, zoom=0.7)
    assert path == tmp_path / "sub" / "stress.png"
    img = Image.open(path)
    assert img.width > 1000 and img.height > 300
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["stress.png"]  # no temp file left
