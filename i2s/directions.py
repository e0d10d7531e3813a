"""Edit directions found from the generator alone (no labels, no classifiers).

* **SeFa** (Shen & Zhou, *Closed-Form Factorization of Latent Semantics in GANs*, CVPR 2021):
  a direction ``n`` in W moves the styles of layers ``l`` by ``A_l n`` (``A_l`` the style affine
  of the layer, StyleGAN v1's ``StyleMod`` dense, with its equalized-lr scale). The unit
  directions that move the chosen layers' styles most are the top eigenvectors of
  ``sum_l A_l^T A_l``.
* **GANSpace** (Härkönen et al., *GANSpace: Discovering Interpretable GAN Controls*, NeurIPS
  2020): principal components of ``w = mapping(z)`` over sampled z.

Either way a :class:`Directions` holds K unit vectors in W (512-d), their order, the layer range
they were computed for and are applied to, and ``sigma``: the standard deviation of sampled w
along each direction, so that strengths are in standard deviations (:func:`apply`:
``w_plus[layers] += strength * sigma_k * n_k``). Computed once per generator and cached in
``$I2S_HOME/directions``; a file records the generator's weight hash and refuses another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from .io import atomic_torch_save
from .models import weights_hash
from .weights.limits import load_kit_file

__all__ = ["Directions", "sefa", "ganspace", "apply", "directions_for", "FORMAT"]

Method = Literal["sefa", "ganspace"]
FORMAT = "i2s-directions"


@dataclass
class Directions:
    """K unit directions in W for the style layers ``layers`` (a half-open range)."""

    method: str
    vectors: torch.Tensor  # [K, w_dim], unit rows, most important first
    sigma: torch.Tensor  # [K]: std of sampled w along each direction
    score: torch.Tensor  # [K]: eigenvalue (SeFa) or explained variance (GANSpace)
    layers: tuple[int, int]
    model: str
    model_sha256: str

    def save(self, path: str | Path) -> Path:
        return atomic_torch_save({"format": FORMAT, "method": self.method, "vectors": self.vectors,
                                  "sigma": self.sigma, "score": self.score, "layers": list(self.layers),
                                  "model": self.model, "model_sha256": self.model_sha256}, path)

    @classmethod
    def load(cls, path: str | Path, G=None) -> "Directions":
        """Load a direction file; with ``G``, refuse it unless it was computed for G's weights."""
        obj = load_kit_file(path, MAX_FILE_BYTES, "direction file")
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ValueError(f"{path}: not an i2s direction file")
        d = cls(method=str(obj["method"]), vectors=obj["vectors"].float(), sigma=obj["sigma"].float(),
                score=obj["score"].float(), layers=tuple(int(v) for v in obj["layers"]),
                model=str(obj["model"]), model_sha256=str(obj["model_sha256"]))
        if G is not None:
            if d.model_sha256 != weights_hash(G):
                raise ValueError(f"{path}: directions of the generator {d.model!r} (weights sha256 "
                                 f"{d.model_sha256[:12]}…), not of {G.name!r} ({weights_hash(G)[:12]}…); "
                                 "compute them for this generator")
            if d.vectors.shape[1] != G.w_dim or not 0 <= d.layers[0] < d.layers[1] <= G.num_layers:
                raise ValueError(f"{path}: shapes do not fit {G.name!r}")
        return d

    def describe(self) -> str:
        return (f"{self.method} directions of {self.model}, layers {self.layers[0]}-{self.layers[1] - 1}, "
                f"top score {self.score[0].item():.4g}")


#: A direction file holds K x w_dim floats and a few fields: 64 MiB is far above any real one.
MAX_FILE_BYTES = 64 << 20


def _layer_range(G, layers: tuple[int, int] | None) -> tuple[int, int]:
    a, b = layers if layers is not None else (0, G.num_layers)
    if not 0 <= a < b <= G.num_layers:
        raise ValueError(f"layer range must lie in [0, {G.num_layers}], got {a}-{b}")
    return int(a), int(b)


@torch.no_grad()
def _w_samples(G, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g).to(G.device)
    return torch.cat([G.mapping.w(c) for c in z.split(2048)]).float().cpu()


def _sigma(w: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return (w @ vectors.T).std(0)


@torch.no_grad()
def sefa(G, k: int = 16, layers: tuple[int, int] | None = None, n_sigma: int = 10_000, seed: int = 0) -> Directions:
    """SeFa: top-``k`` eigenvectors of ``sum_l A_l^T A_l`` over the style layers ``layers``."""
    a, b = _layer_range(G, layers)
    A = torch.cat([(layer.epilogue.style.weight * layer.epilogue.style.weight_gain).float().cpu()
                   for layer in G.synthesis.layers[a:b]])
    evals, evecs = torch.linalg.eigh(A.T @ A)  # ascending
    order = evals.argsort(descending=True)[:k]
    vectors = evecs[:, order].T.contiguous()
    return Directions("sefa", vectors, _sigma(_w_samples(G, n_sigma, seed), vectors), evals[order], (a, b),
                      G.name, weights_hash(G))


@torch.no_grad()
def ganspace(G, k: int = 16, layers: tuple[int, int] | None = None, n: int = 20_000, seed: int = 0) -> Directions:
    """GANSpace: the top-``k`` principal components of sampled w (applied to ``layers``)."""
    a, b = _layer_range(G, layers)
    w = _w_samples(G, n, seed)
    wc = w - w.mean(0)
    _, s, vh = torch.linalg.svd(wc, full_matrices=False)
    vectors = vh[:k].contiguous()
    var = s[:k] ** 2 / (len(w) - 1)
    return Directions("ganspace", vectors, var.sqrt(), var, (a, b), G.name, weights_hash(G))


def apply(w_plus: torch.Tensor, d: Directions, index: int, strength: float | torch.Tensor,
          layers: tuple[int, int] | None = None) -> torch.Tensor:
    """``w_plus`` moved by ``strength`` standard deviations along direction ``index`` on the
    style layers ``layers`` (default: the range the directions were computed for). ``strength``
    may be a [K] tensor: the result then has a leading axis of size K."""
    a, b = d.layers if layers is None else layers
    if not 0 <= index < len(d.vectors):
        raise ValueError(f"direction index must be in [0, {len(d.vectors)}), got {index}")
    step = (d.sigma[index] * d.vectors[index]).to(w_plus)
    s = torch.as_tensor(strength, dtype=w_plus.dtype, device=w_plus.device)
    mask = torch.zeros(w_plus.shape[-2], 1, dtype=w_plus.dtype, device=w_plus.device)
    mask[a:b] = 1
    if s.ndim == 1:
        s = s.view(-1, *[1] * w_plus.ndim)
    return w_plus + s * mask * step


def directions_for(G, method: Method = "sefa", k: int = 16, layers: tuple[int, int] | None = None,
                   cache_dir: str | Path | None = None) -> Directions:
    """The directions of ``G``, computed once and cached (keyed by the weights and the options)."""
    from .weights.fetch import i2s_home

    a, b = _layer_range(G, layers)
    folder = Path(cache_dir) if cache_dir is not None else i2s_home() / "directions"
    key = json.dumps([method, k, a, b]).encode()
    path = folder / f"{weights_hash(G)[:16]}-{hashlib.sha256(key).hexdigest()[:12]}.pt"
    if path.is_file():
        try:
            return Directions.load(path, G)
        except ValueError:
            pass  # damaged: recompute
    fn = {"sefa": sefa, "ganspace": ganspace}.get(method)
    if fn is None:
        raise ValueError(f"method must be 'sefa' or 'ganspace', got {method!r}")
    d = fn(G, k=k, layers=(a, b))
    d.save(path)
    return d
