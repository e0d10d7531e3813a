"""Latent-space edits of §4: morphing (§4.1), style transfer by crossover (§4.2) and
expression transfer (§4.3), with §4.3's threshold rule read for the generator at hand
(:func:`expression_rule`). All operate on W+ codes of shape [..., num_layers, w_dim].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from .stylegan import StyleGAN

Normalize = Literal["global", "per_layer", "none"]


def morph(w1: torch.Tensor, w2: torch.Tensor, lam: float | torch.Tensor) -> torch.Tensor:
    """§4.1: ``w = λ w1 + (1 - λ) w2``. λ = 1 gives w1, λ = 0 gives w2.

    ``lam`` may be a tensor of several λ values (shape [K]); the result then has a leading
    axis of size K.
    """
    lam_t = torch.as_tensor(lam, dtype=w1.dtype, device=w1.device)
    if lam_t.ndim == 1:
        lam_t = lam_t.view(-1, *[1] * w1.ndim)
    return lam_t * w1 + (1 - lam_t) * w2


def default_crossover_layer(num_layers: int) -> int:
    """The paper's split, scaled to the model: the first half of the style layers.

    At 1024 px (18 layers) the paper keeps the content code for "the first 9 layers
    (corresponding to spatial resolution 4²–64²)" and takes the style code for the other 9
    (§4.2). For a model with fewer layers we keep the same fraction, ``round(L / 2)``:
    the 64-px mini model (10 layers) splits at 5, i.e. content for 4²–16² and the first
    32² layer, style for the rest. Splitting by resolution instead (content up to 64²) would
    leave a 64-px model with no style layers at all, so the fraction is the rule that carries
    over.
    """
    return round(num_layers / 2)


def crossover(w_content: torch.Tensor, w_style: torch.Tensor, layer: int | None = None) -> torch.Tensor:
    """§4.2: the first ``layer`` rows (coarse, low resolution) from ``w_content``, the rest from
    ``w_style``. ``layer=None`` uses :func:`default_crossover_layer` (9 of 18 at 1024 px)."""
    if w_content.shape != w_style.shape:
        raise ValueError(f"w_content and w_style must have the same shape, got {tuple(w_content.shape)} and {tuple(w_style.shape)}")
    num_layers = w_content.shape[-2]
    layer = default_crossover_layer(num_layers) if layer is None else layer
    if not 0 <= layer <= num_layers:
        raise ValueError(f"layer must be in [0, {num_layers}], got {layer}")
    out = w_style.clone()
    out[..., :layer, :] = w_content[..., :layer, :]
    return out


def expression_direction(w2: torch.Tensor, w3: torch.Tensor, threshold: float = 1.0,
                         normalize: Normalize = "none", relative: bool = False) -> torch.Tensor:
    """The expression code of §4.3 from a neutral (w2) and an expressive (w3) embedding.

    Our reading of the paper ("a lower bound threshold on the L2-norm of the channels of the
    difference latent code, below which the channel is replaced by a zero vector ... the threshold
    is 1. We normalize the resultant vectors"): ``d = w3 - w2``; every *layer row* of d (a 512-d
    "channel" of the W+ code) whose L2 norm is below the threshold becomes zero, which removes
    layers that differ only by noise (e.g. background).

    Then the paper normalises "to control the intensity", without saying to what. ``"none"``
    (default) keeps the thresholded difference itself, so λ is the share of the source's own
    change: λ = 1 moves the target as far as the source moved from neutral to expressive, on
    any model. ``"global"`` divides by the norm of the whole code (λ in W+ units: a model's
    useful range depends on how far its embeddings lie apart; mini's neutral/smiling pairs
    differ by ~36, so λ = 4.5 moved a target an eighth of the way and the smile measure saw
    nothing, issue 17), ``"per_layer"`` makes each kept row unit length.

    ``relative=False`` is the paper's absolute threshold (1.0, in the units of the FFHQ model's
    5000-step embeddings). How far two embeddings differ depends on the model and on how long
    they were optimised (quick-profile embeddings of ``mini`` differ by well under 1 in every
    row, so the absolute rule zeroes everything); ``relative=True`` scales the threshold with the
    code's own row norms: a row is kept when its norm is at least ``threshold`` times the mean
    row norm of d (1.0: the rows that change more than average). A direction that comes out all
    zeros (nothing to transfer) gives a warning, never a silent no-op.
    """
    d = w3 - w2
    norms = d.norm(dim=-1, keepdim=True)
    bound = threshold * norms.mean(dim=-2, keepdim=True) if relative else torch.as_tensor(threshold)
    d = torch.where(norms >= bound, d, torch.zeros_like(d))
    if not bool((d != 0).any()):
        warnings.warn(f"expression direction is all zeros: every layer row of w3 - w2 has an L2 norm below "
                      f"{'the relative ' if relative else ''}threshold {threshold:g} (largest row norm "
                      f"{norms.max().item():.3g}); expression transfer changes nothing. Use "
                      f"{'a smaller threshold' if relative else 'relative=True or a smaller threshold'}",
                      RuntimeWarning, stacklevel=2)
    if normalize == "global":
        total = d.flatten(-2).norm(dim=-1).clamp_min(1e-12)
        d = d / total[..., None, None]
    elif normalize == "per_layer":
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    elif normalize != "none":
        raise ValueError(f"normalize must be 'global', 'per_layer' or 'none', got {normalize!r}")
    return d


def expression_transfer(w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, lam: float | torch.Tensor,
                        threshold: float = 1.0, normalize: Normalize = "none", relative: bool = False) -> torch.Tensor:
    """§4.3: ``w = w1 + λ · d`` with d the thresholded ``w3 - w2`` (:func:`expression_direction`;
    ``relative`` scales the threshold with d's row norms; by default λ = 1 is the source's own change).

    ``w1``: the target face; ``w2``: the source person's neutral face; ``w3``: the same
    person's expressive (e.g. smiling) face. Negative λ moves the other way (Fig. 7, left).
    ``lam`` may be a [K] tensor for a row of strengths.
    """
    d = expression_direction(w2, w3, threshold, normalize, relative)
    lam_t = torch.as_tensor(lam, dtype=w1.dtype, device=w1.device)
    if lam_t.ndim == 1:
        lam_t = lam_t.view(-1, *[1] * w1.ndim)
    return w1 + lam_t * d


@dataclass(frozen=True)
class ExpressionRule:
    """How §4.3's direction is made (:func:`i2s.edits.expression_direction`):
    ``relative=False``: rows of w3 − w2 with an L2 norm below ``threshold`` are zeroed (the
    paper's rule); ``relative=True``: rows below ``threshold`` x the mean row norm are;
    ``normalize``: what λ = 1 means (``"none"``: the source's own change)."""

    threshold: float = 1.0
    relative: bool = False
    normalize: str = "none"

    def describe(self) -> str:
        """The rule in words, for figure titles and tables."""
        if self.relative:
            rows = f"rows of w3 − w2 kept where ‖row‖ ≥ {self.threshold:g} × mean row norm (relative threshold)"
        else:
            rows = f"rows of w3 − w2 kept where ‖row‖ ≥ {self.threshold:g} (the paper's absolute threshold)"
        units = {"none": "λ = 1: the source's own change", "global": "d of unit norm",
                 "per_layer": "each kept row of unit norm"}[self.normalize]
        return f"{rows}; {units}"


def expression_rule(G: StyleGAN, threshold: float | None = None) -> ExpressionRule:
    """§4.3's threshold, read for the generator at hand.

    The paper: "a lower bound threshold on the L2-norm of the channels of the difference latent
    code, below which the channel is replaced by a zero vector ... the threshold is 1". That 1 is
    in the units of the official FFHQ-1024 model's 5000-step embeddings, so the paper tier
    (``G.info["tier"] == "paper"``) keeps it as an absolute bound (default 1.0). Every other tier
    (``mini``, random weights) scales it with the difference's own row norms (``relative=True``:
    keep the rows that change at least ``threshold`` x the average; default 0.5): at mini's scale
    every row of w3 − w2 is below 1.0, and the absolute rule would zero the whole direction.

    Why 0.5 (issue 17, mini v1, 20 source/target pairs of 5 people, full-profile embeddings): at
    1.0 one pair's direction widened other people's smiles by +0.039 [0.019, 0.059] (mouth/eye
    ratio, λ > 0) but the mean of the other pairs' by an inconclusive +0.010; at 0.5 both agree
    (+0.067 [0.032, 0.103] and +0.061 [0.010, 0.104]): the smile lives partly in rows whose
    change is below the average."""
    paper = G.info.get("tier") == "paper"
    return ExpressionRule((1.0 if paper else 0.5) if threshold is None else threshold, relative=not paper)
