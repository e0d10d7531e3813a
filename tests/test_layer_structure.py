"""i2s.layer_structure: the measures of mini v3's layer structure give known answers on synthetic generators."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from i2s import layer_structure as L


class LinearG(torch.nn.Module):
    """A generator whose image is ``sum_k gain[k] * M_k (w_k - w_avg)``: row k of W+ moves the
    image by exactly ``gain[k]`` times a fixed random pattern of its own, so every swap has a known size."""

    def __init__(self, gains, w_dim: int = 8, res: int = 16, cutoff: int | None = None) -> None:
        super().__init__()
        self.num_layers, self.z_dim, self.w_dim = len(gains), w_dim, w_dim
        g = torch.Generator().manual_seed(0)
        self.register_buffer("w_avg", torch.full((w_dim,), 0.5))
        self.M = torch.randn(len(gains), 3 * res * res, w_dim, generator=g) / w_dim**0.5
        self.gains = torch.tensor(gains, dtype=torch.float32)
        self.res = res
        self.cfg = SimpleNamespace(truncation_cutoff=cutoff or len(gains))

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return (z + 0.5).unsqueeze(1).repeat(1, self.num_layers, 1)

    def synthesis(self, w_plus: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        x = torch.einsum("kpd,nkd,k->np", self.M, w_plus - self.w_avg, self.gains)
        return x.view(-1, 3, self.res, self.res)


def test_swaps_of_rows_that_do_nothing_change_nothing():
    G = LinearG([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])  # only the coarse rows draw
    st = L.structure(G, n=32, landmarks=False)
    assert st.fine_swap == pytest.approx(0.0, abs=1e-6)
    assert st.coarse_swap > 0.1 and st.coarse_over_fine > 1e4
    G = LinearG([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # only the fine rows draw: mini v1's extreme
    st = L.structure(G, n=32, landmarks=False)
    assert st.coarse_swap == pytest.approx(0.0, abs=1e-6) and st.coarse_over_fine == pytest.approx(0.0, abs=1e-6)


def test_coarse_over_fine_follows_the_rows_gains():
    """Four coarse rows of gain 1 against two fine rows of gain 4: independent Gaussian patterns add
    in quadrature, so the changes are in the ratio sqrt(4 * 1) : sqrt(2 * 16) = 0.354."""
    G = LinearG([1, 1, 1, 1, 0, 0, 0, 0, 4, 4], res=32)
    st = L.structure(G, n=256, landmarks=False)
    assert st.coarse_over_fine == pytest.approx(2 / 32**0.5, rel=0.08)
    assert st.n == 256 and st.coarse_swap_std > 0


def test_truncation_share_is_half_of_what_the_truncated_rows_carry():
    """psi = 0.5 halves (w - w_avg) on the truncated rows. All ten rows truncated: the image moves by
    half of itself, and two samples differ by sqrt(2) times one: share 0.5 / sqrt(2). With the
    fine rows (which carry everything) left out of the truncation, nothing moves."""
    G = LinearG([1] * 10, res=32)
    moved, between = L.truncation_share(G, 0.5, n=256)
    assert moved.mean() / between == pytest.approx(0.5 / 2**0.5, rel=0.08)
    G = LinearG([0] * 8 + [1, 1], res=32, cutoff=8)
    moved, between = L.truncation_share(G, 0.5, n=64)
    assert moved.mean() == pytest.approx(0.0, abs=1e-6) and between > 0.1


def _patched(n: int, corner: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(120, 20, (n, 1, 1, 3)) + rng.normal(0, 8, (n, 64, 64, 3)), 0, 255).astype(np.uint8)
    if corner:
        x[:, -4:, -4:] = (250, 20, 200)  # a magenta patch in the bottom-right 4x4 block
    return x


def test_corner_patch_stands_out_only_when_painted():
    with_patch, without = L.corner_patch(_patched(50, True)), L.corner_patch(_patched(50, False))
    assert with_patch["patch"] and with_patch["bottom_right"] > 3 * with_patch["others_max"]
    assert not without["patch"] and without["bottom_right"] < without["others_max"]


def test_corner_patch_takes_kit_tensors_too():
    x = torch.from_numpy(_patched(8, True)).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert L.corner_patch(x)["patch"]


def test_landmark_shift_is_zero_for_the_same_face_and_grows_with_a_shift():
    from PIL import Image

    from conftest import REPO
    from i2s.align import align

    faces = sorted((REPO / "data" / "i2s-eval" / "faces").glob("*.jpg"))[:2]
    imgs = np.stack([np.asarray(align(Image.open(p).convert("RGB"), size=64, zoom=0.7)[0]) for p in faces])
    assert np.allclose(L.landmark_shift(imgs, imgs), 0.0)
    # 4 px down: the fixed face box stays, the face moves; dlib follows it (part of the way)
    moved = np.concatenate([imgs[:, :1].repeat(4, axis=1), imgs[:, :-4]], axis=1)
    shift = L.landmark_shift(imgs, moved)
    assert (shift > 0.01).all() and (shift < 0.2).all()


def test_fixed_patch_finds_a_blob_drawn_at_one_place_wherever_it_is():
    """mini v3 run 1's failure: the same black blob below the mouth in most samples. A blob at one
    place (not a corner), even when it moves by a few pixels, is found there; samples drawn like
    the photos, or uniformly lighter than them, have no patch."""
    reals = _patched(256, False, seed=1)
    blob = _patched(256, False, seed=2)
    shift = np.random.default_rng(0).integers(0, 4, 256)
    for i, s in enumerate(shift):
        blob[i, 40 + s: 48 + s, 24: 32] = 5  # black, a few pixels up or down
    found = L.fixed_patch(blob, reals)
    assert found["patch"] and 10 <= found["where"][0] <= 12 and 5 <= found["where"][1] <= 8
    assert found["max_departure"] > 10 * found["floor"]
    clean = L.fixed_patch(_patched(256, False, seed=3), reals)
    assert not clean["patch"] and clean["max_departure"] < 3 * clean["floor"]
    lighter = np.clip(_patched(256, False, seed=4).astype(np.int64) + 60, 0, 255).astype(np.uint8)
    assert not L.fixed_patch(lighter, reals)["patch"]


def test_structure_reports_the_fixed_patch_only_with_reals():
    G = LinearG([1] * 10, res=16)
    assert L.structure(G, n=8, landmarks=False).fixed is None
    reals = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    fixed = L.structure(G, n=8, landmarks=False, reals=reals).fixed
    assert set(fixed) == {"max_departure", "where", "floor", "patch"}


def test_structure_gives_intervals_around_its_ratios():
    """The intervals over the pairs hold the point ratios, and a generator whose coarse and fine rows
    are far apart gets an interval that decides the target."""
    G = LinearG([1, 1, 1, 1, 0, 0, 0, 0, 4, 4], res=32)
    st = L.structure(G, n=128, landmarks=False)
    for key, value in (("coarse_over_fine", st.coarse_over_fine), ("truncation_share", st.truncation_share)):
        lo, hi = st.intervals[key]
        assert lo < value < hi and hi - lo < 0.5 * value
    assert st.intervals["coarse_over_fine"][1] < 0.6  # 0.35 with its interval well below the target
    assert "landmark_shift_fine_over_coarse" not in st.intervals and np.isnan(st.fine_landmark_floor)


def test_recolour_takes_the_colours_and_keeps_the_layout():
    """recolour(x, like): per image and channel, the mean and std of `like`; the pattern of x kept
    (correlation 1 with x where nothing is clipped)."""
    g = torch.Generator().manual_seed(0)
    x = 0.2 * torch.randn(4, 3, 16, 16, generator=g)
    like = 0.1 * torch.randn(4, 3, 16, 16, generator=g) + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)
    y = L.recolour(x, like)
    assert torch.allclose(y.mean(dim=(2, 3)), like.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(y.std(dim=(2, 3)), like.std(dim=(2, 3)), atol=1e-5)
    xc, yc = x - x.mean(dim=(2, 3), keepdim=True), y - y.mean(dim=(2, 3), keepdim=True)
    corr = (xc * yc).sum(dim=(2, 3)) / (xc.norm(dim=(2, 3)) * yc.norm(dim=(2, 3)))
    assert torch.allclose(corr, torch.ones_like(corr), atol=1e-5)
    assert torch.equal(L.recolour(x, x).clamp(-1, 1), L.recolour(x, x)) and torch.allclose(L.recolour(x, x), x, atol=1e-5)
