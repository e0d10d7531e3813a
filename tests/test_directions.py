"""Directions from the generator alone: SeFa and GANSpace, caching, refusal on another generator."""

from __future__ import annotations

import pytest
import torch

from conftest import make_generator
from i2s import directions as D


def test_sefa_directions_move_the_styles_most():
    G = make_generator(16, seed=0)
    d = D.sefa(G, k=4, layers=(0, 3))
    assert d.vectors.shape == (4, G.w_dim) and torch.allclose(d.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    assert (d.score[:-1] >= d.score[1:]).all() and (d.sigma > 0).all()
    A = torch.cat([l.epilogue.style.weight * l.epilogue.style.weight_gain for l in G.synthesis.layers[0:3]])
    top = (A @ d.vectors[0]).norm()
    rand = torch.randn(50, G.w_dim)
    rand = rand / rand.norm(dim=1, keepdim=True)
    assert top >= (A @ rand.T).norm(dim=0).max()  # no random unit direction moves the styles more
    assert top.item() ** 2 == pytest.approx(d.score[0].item(), rel=1e-4)


def test_ganspace_components_are_the_principal_axes_of_w():
    G = make_generator(16, seed=0)
    d = D.ganspace(G, k=3, n=4000)
    w = D._w_samples(G, 4000, 0)
    proj_var = ((w - w.mean(0)) @ d.vectors.T).var(0)
    torch.testing.assert_close(proj_var, d.score, rtol=1e-3, atol=1e-6)
    assert proj_var[0] >= ((w - w.mean(0)) @ torch.nn.functional.normalize(torch.randn(G.w_dim), dim=0)).var()


def test_apply_moves_only_the_chosen_layers_by_sigma_units():
    G = make_generator(16, seed=0)
    d = D.sefa(G, k=2, layers=(1, 3))
    w = G.w_avg.expand(G.num_layers, -1).clone()
    out = D.apply(w, d, 0, torch.tensor([-2.0, 0.0, 3.0]))
    assert out.shape == (3, G.num_layers, G.w_dim)
    assert torch.equal(out[1], w) and torch.equal(out[:, 0], w[0].expand(3, -1))
    step = (out[2, 1] - w[1]).norm().item()
    assert step == pytest.approx(3 * d.sigma[0].item(), rel=1e-4)
    with pytest.raises(ValueError):
        D.apply(w, d, 5, 1.0)


def test_cached_once_and_refused_for_another_generator(tmp_path):
    G = make_generator(16, seed=0)
    a = D.directions_for(G, "sefa", k=3, cache_dir=tmp_path)
    (f,) = tmp_path.glob("*.pt")
    mtime = f.stat().st_mtime_ns
    b = D.directions_for(G, "sefa", k=3, cache_dir=tmp_path)
    assert torch.equal(a.vectors, b.vectors) and f.stat().st_mtime_ns == mtime
    other = make_generator(16, seed=1)
    with pytest.raises(ValueError, match="not of"):
        D.Directions.load(f, other)
    assert D.Directions.load(f, G).method == "sefa"
    f.write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable direction file"):
        D.Directions.load(f)
