"""How a generator's style layers divide the work: the measures of mini v3's layer structure.

The applications of Image2StyleGAN §4 lean on StyleGAN's layer structure (Karras et al. 2019 §3,
Fig. 3): the coarse layers (4-8 px) carry pose and face shape, the fine ones colour and
micro-structure. Crossover (§4.2) and expression transfer (§4.3) only stay on the face manifold
when a generator has that structure. These measures say whether it does:

* :func:`swap_change`: mean |pixel change| of a sample when some of its W+ rows are taken from
  another sample (images in [-1, 1]); :func:`structure` compares the coarse rows 0-3 with the last
  two rows (``coarse_over_fine``);
* the **truncation share**: how far ψ = 0.5 moves a sample (on the model's truncation layers), as a
  share of the mean difference between two samples;
* **landmark displacement**: how far dlib's 68 landmarks move under each swap (coarse swaps move
  the face, fine swaps should not), and the floor of the fine one: how far they move when a sample
  only takes the fine-swapped image's colours (:func:`recolour`), which is the detector's jitter;
* :func:`corner_patch`: the colour of each 4x4 border block against the blocks around it, so a
  patch painted into one corner (mini v2's bottom-right) stands out against the other border blocks;
* :func:`fixed_patch`: where the samples' mean image departs locally from the real photos' mean
  image, against the same between two halves of the photos, so a patch drawn at one place in many
  samples (mini v3 run 1's black blob below the mouth), wherever it is, stands out.

Every function takes a generator with the kit's interface (``mapping(z)`` -> W+,
``synthesis(w_plus, noise_mode)``, ``num_layers``, ``w_avg``, ``z_dim``); samples come from
seeds, so two generators are compared on the same z's. Per-sample values are returned, so a
caller can give n and the spread; :func:`structure` gives the ratios' 95 % bootstrap intervals
over the sample pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch

from .stats import ratio_interval

__all__ = ["COARSE", "swap_change", "truncation_share", "landmark_shift", "recolour", "corner_patch", "fixed_patch",
           "Structure", "structure"]

COARSE = (0, 1, 2, 3)  # the 4- and 8-px rows of W+: pose and face shape in StyleGAN (Fig. 3)
BLOCK = 4  # px of the border blocks :func:`corner_patch` compares


def _z(G, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, G.z_dim, generator=g).to(G.w_avg.device)


@torch.no_grad()
def _render(G, w_plus: torch.Tensor, batch: int = 64) -> torch.Tensor:
    return torch.cat([G.synthesis(w, noise_mode="const").float().cpu() for w in w_plus.split(batch)])


@torch.no_grad()
def _pairs(G, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W+ codes of ``n`` samples and of ``n`` other samples (ψ = 1)."""
    return G.mapping(_z(G, n, seed)), G.mapping(_z(G, n, seed + 1))


def _swapped(w_a: torch.Tensor, w_b: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    out = w_a.clone()
    out[:, list(rows)] = w_b[:, list(rows)]
    return out


def _fine(G) -> tuple[int, int]:
    return (G.num_layers - 2, G.num_layers - 1)


@torch.no_grad()
def swap_change(G, rows: Sequence[int], n: int = 64, seed: int = 0) -> np.ndarray:
    """Per sample: mean |x(w_a with ``rows`` of w_b) - x(w_a)| over pixels and channels."""
    w_a, w_b = _pairs(G, n, seed)
    x_a = _render(G, w_a)
    return (_render(G, _swapped(w_a, w_b, rows)) - x_a).abs().mean(dim=(1, 2, 3)).numpy()


@torch.no_grad()
def truncation_share(G, psi: float = 0.5, n: int = 64, seed: int = 0) -> tuple[np.ndarray, float]:
    """Per sample: mean |x(ψ) - x(1)| on the model's truncation layers (``cfg.truncation_cutoff``
    of them, all rows if it has none), and the mean |x(w_a) - x(w_b)| it is a share of."""
    w_a, w_b = _pairs(G, n, seed)
    x_a = _render(G, w_a)
    return _truncation_moved(G, w_a, x_a, psi), float((_render(G, w_b) - x_a).abs().mean())


def _truncation_moved(G, w_a: torch.Tensor, x_a: torch.Tensor, psi: float) -> np.ndarray:
    cutoff = getattr(getattr(G, "cfg", None), "truncation_cutoff", None) or G.num_layers
    w_t = w_a.clone()
    w_t[:, :cutoff] = torch.lerp(G.w_avg.to(w_a), w_a[:, :cutoff], psi)
    return (_render(G, w_t) - x_a).abs().mean(dim=(1, 2, 3)).numpy()


def landmark_shift(before: torch.Tensor, after: torch.Tensor, zoom: float = 0.7) -> np.ndarray:
    """Per pair: mean distance of dlib's 68 landmarks between two aligned face images, as a
    fraction of the image width (:func:`i2s.identity.landmarks68`, fixed face box)."""
    from .identity import WORK_SIZE, landmarks68

    return np.linalg.norm(landmarks68(before, zoom) - landmarks68(after, zoom), axis=2).mean(1) / WORK_SIZE


def corner_patch(images: torch.Tensor | np.ndarray) -> dict:
    """Colour of each ``BLOCK``-px border block against its neighbouring blocks, mean over images.

    For every block on the image border: the RGB distance (0-255 levels) between its mean colour
    and the mean colour of the up to eight blocks around it, averaged over the images. A patch
    painted into the same corner of every image stands out there. Returns the bottom-right
    block's value, the other border blocks' mean, std and max, and ``patch``: the bottom-right
    value lies above all the others."""
    from .identity import to_uint8

    x = to_uint8(images).astype(np.float64)  # [N, H, W, 3]
    n, h, w, _ = x.shape
    gh, gw = h // BLOCK, w // BLOCK
    blocks = x[:, : gh * BLOCK, : gw * BLOCK].reshape(n, gh, BLOCK, gw, BLOCK, 3).mean(axis=(2, 4))  # [N, gh, gw, 3]
    values = {}
    for i in range(gh):
        for j in range(gw):
            if 0 < i < gh - 1 and 0 < j < gw - 1:
                continue
            ring = [blocks[:, a, b] for a in range(max(i - 1, 0), min(i + 2, gh)) for b in range(max(j - 1, 0), min(j + 2, gw))
                    if (a, b) != (i, j)]
            values[(i, j)] = float(np.linalg.norm(blocks[:, i, j] - np.mean(ring, axis=0), axis=1).mean())
    corner = values.pop((gh - 1, gw - 1))
    others = np.array(list(values.values()))
    return {"bottom_right": corner, "others_mean": float(others.mean()), "others_std": float(others.std()),
            "others_max": float(others.max()), "patch": bool(corner > others.max())}


def _blocks(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean RGB (levels 0-255) of every ``BLOCK``-px block: [N, H / BLOCK, W / BLOCK, 3]."""
    from .identity import to_uint8

    x = to_uint8(images).astype(np.float64)  # [N, H, W, 3]
    n, h, w, _ = x.shape
    gh, gw = h // BLOCK, w // BLOCK
    return x[:, : gh * BLOCK, : gw * BLOCK].reshape(n, gh, BLOCK, gw, BLOCK, 3).mean(axis=(2, 4))


def _local(m: np.ndarray) -> np.ndarray:
    """Each block of a [gh, gw, 3] map minus the mean of its eight neighbours (edges repeated)."""
    gh, gw = m.shape[:2]
    pad = np.pad(m, ((1, 1), (1, 1), (0, 0)), mode="edge")
    ring = sum(pad[1 + dy: 1 + dy + gh, 1 + dx: 1 + dx + gw] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    return m - ring / 8


def _departure(blocks: np.ndarray, reals_blocks: np.ndarray) -> np.ndarray:
    """|local(mean image - the reals' mean image)| per block, in units of the reals' spread (std
    across photos) at that block; both as :func:`_blocks` gives them: [gh, gw]."""
    spread = reals_blocks.std(axis=0).mean(axis=-1)
    diff = blocks.mean(axis=0) - reals_blocks.mean(axis=0)
    return np.linalg.norm(_local(diff), axis=-1) / np.maximum(spread, 1e-6)


def fixed_patch(images: torch.Tensor | np.ndarray, reals: torch.Tensor | np.ndarray, factor: float = 3.0) -> dict:
    """Something drawn at the same place in many samples (mini v3 run 1's black blob below the
    mouth, or every face in one pose): a place where the samples' mean image departs from the real
    photos' mean image more than at the places around it.

    Per ``BLOCK``-px block: the difference of the two mean images, minus its eight neighbours'
    (so a smooth shift, e.g. lighter backgrounds, cancels), in units of the photos' spread there.
    Sampling noise sets the scale: the same measure between two halves of ``reals`` is the floor.
    Returns the largest departure, where it is (block row, column), the floor, and ``patch``: the
    largest departure is above ``factor`` times the floor. ``images`` and ``reals`` have one size;
    the floor needs at least 4 reals."""
    rb = _blocks(reals)
    half = len(rb) // 2
    z = _departure(_blocks(images), rb)
    floor = float(_departure(rb[:half], rb[half:]).max()) if half >= 2 else float("nan")
    where = np.unravel_index(int(z.argmax()), z.shape)
    return {"max_departure": float(z.max()), "where": [int(where[0]), int(where[1])], "floor": floor,
            "patch": bool(z.max() > factor * floor)}


@dataclass
class Structure:
    """The layer-structure measures of one generator (means over ``n`` samples, with their std)."""

    n: int
    coarse_swap: float
    coarse_swap_std: float
    fine_swap: float
    fine_swap_std: float
    coarse_over_fine: float
    truncation_share: float
    coarse_landmark_shift: float
    fine_landmark_shift: float
    landmark_shift_fine_over_coarse: float
    corner: dict
    fixed: dict | None = None  # :func:`fixed_patch` against the reals given to :func:`structure`
    #: 95 % bootstrap intervals over the sample pairs of the three ratios ([low, high]; i2s.stats.ratio_interval)
    intervals: dict | None = None
    #: dlib's landmark shift when a sample only takes the fine-swapped image's colours (per-channel
    #: mean and std): how much of ``fine_landmark_shift`` a pure colour change already gives
    fine_landmark_floor: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def structure(G, n: int = 64, seed: int = 0, landmarks: bool = True,
              reals: torch.Tensor | np.ndarray | None = None) -> Structure:
    """All measures of the module on the same ``n`` sample pairs (``landmarks=False`` skips dlib;
    :func:`fixed_patch` only when real photos of G's size are given)."""
    w_a, w_b = _pairs(G, n, seed)
    x_a, x_b = _render(G, w_a), _render(G, w_b)
    x_c = _render(G, _swapped(w_a, w_b, COARSE))
    x_f = _render(G, _swapped(w_a, w_b, _fine(G)))
    coarse = (x_c - x_a).abs().mean(dim=(1, 2, 3)).numpy()
    fine = (x_f - x_a).abs().mean(dim=(1, 2, 3)).numpy()
    moved, between = _truncation_moved(G, w_a, x_a, 0.5), (x_b - x_a).abs().mean(dim=(1, 2, 3)).numpy()
    intervals = {"coarse_over_fine": ratio_interval(coarse, fine)[1:],
                 "truncation_share": ratio_interval(moved, between)[1:]}
    if landmarks:
        shift_c, shift_f = landmark_shift(x_a, x_c), landmark_shift(x_a, x_f)
        lm_c, lm_f = float(shift_c.mean()), float(shift_f.mean())
        intervals["landmark_shift_fine_over_coarse"] = ratio_interval(shift_f, shift_c)[1:]
        lm_floor = float(landmark_shift(x_a, recolour(x_a, x_f)).mean())
    else:
        lm_c = lm_f = lm_floor = float("nan")
    return Structure(n=n, coarse_swap=float(coarse.mean()), coarse_swap_std=float(coarse.std()),
                     fine_swap=float(fine.mean()), fine_swap_std=float(fine.std()),
                     coarse_over_fine=float(coarse.mean() / max(fine.mean(), 1e-12)),
                     truncation_share=float(moved.mean() / max(between.mean(), 1e-12)),
                     coarse_landmark_shift=lm_c, fine_landmark_shift=lm_f,
                     landmark_shift_fine_over_coarse=lm_f / lm_c if lm_c > 0 else float("nan"),
                     corner=corner_patch(torch.cat([x_a, x_b])),
                     fixed=fixed_patch(torch.cat([x_a, x_b]), reals) if reals is not None else None,
                     intervals={k: [float(v) for v in lh] for k, lh in intervals.items()},
                     fine_landmark_floor=lm_floor)


def recolour(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` with the per-image, per-channel mean and std of ``like`` (images in [-1, 1], [N, 3, H, W]):
    a change of colour only, so dlib's landmarks on it move by the detector's own jitter."""
    mx, sx = x.mean(dim=(2, 3), keepdim=True), x.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    ml, sl = like.mean(dim=(2, 3), keepdim=True), like.std(dim=(2, 3), keepdim=True)
    return ((x - mx) / sx * sl + ml).clamp(-1, 1)
