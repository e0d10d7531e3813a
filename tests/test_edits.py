"""§4 latent edits: morph, crossover, expression transfer."""

from __future__ import annotations

import pytest
import torch

from i2s.edits import crossover, default_crossover_layer, expression_direction, expression_transfer, morph


def test_morph_endpoints_and_rows():
    w1, w2 = torch.randn(18, 512), torch.randn(18, 512)
    assert torch.equal(morph(w1, w2, 1.0), w1) and torch.equal(morph(w1, w2, 0.0), w2)
    assert torch.allclose(morph(w1, w2, 0.25), 0.25 * w1 + 0.75 * w2)
    row = morph(w1, w2, torch.linspace(0, 1, 5))
    assert row.shape == (5, 18, 512) and torch.allclose(row[2], (w1 + w2) / 2)


def test_crossover_rows_and_default_split():
    wc, ws = torch.zeros(2, 18, 512), torch.ones(2, 18, 512)
    out = crossover(wc, ws)
    assert (out[:, :9] == 0).all() and (out[:, 9:] == 1).all()  # the paper's 9 of 18
    assert default_crossover_layer(18) == 9 and default_crossover_layer(10) == 5
    assert torch.equal(crossover(wc, ws, 0), ws) and torch.equal(crossover(wc, ws, 18), wc)
    with pytest.raises(ValueError):
        crossover(wc, ws, 19)
    with pytest.raises(ValueError):
        crossover(wc, ws[:, :10])


def test_expression_threshold_and_normalisation():
    w2 = torch.zeros(4, 3)
    w3 = torch.tensor([[3.0, 4, 0], [0.5, 0, 0], [0, 0, 0], [0, 0, 2]])  # row norms 5, 0.5, 0, 2
    d = expression_direction(w2, w3, threshold=1.0, normalize="none")
    assert torch.equal(d[1], torch.zeros(3)) and torch.equal(d[0], w3[0]) and torch.equal(d[3], w3[3])
    assert torch.equal(expression_direction(w2, w3, threshold=1.0), d)  # default: λ = 1 is the source's own change
    g = expression_direction(w2, w3, threshold=1.0, normalize="global")
    assert g.norm().item() == pytest.approx(1.0) and torch.allclose(g[0], w3[0] / (29 ** 0.5))
    p = expression_direction(w2, w3, threshold=1.0, normalize="per_layer")
    assert p[0].norm().item() == pytest.approx(1.0) and p[3].norm().item() == pytest.approx(1.0) and p[1].norm() == 0
    w1 = torch.randn(4, 3)
    assert torch.allclose(expression_transfer(w1, w2, w3, 2.0, normalize="global"), w1 + 2 * g)
    assert torch.allclose(expression_transfer(w1, w2, w3, -1.0), w1 - d)
    assert torch.allclose(expression_transfer(w2, w2, w3, 1.0), w2 + d)  # λ = 1: as far as the source moved
    assert expression_transfer(w1, w2, w3, torch.tensor([-1.0, 0.0, 1.0])).shape == (3, 4, 3)
    # a threshold above every row norm leaves no direction at all (no division by zero)
    assert torch.equal(expression_direction(w2, w3, threshold=10.0), torch.zeros(4, 3))


def test_relative_threshold_where_the_absolute_one_zeroed_everything():
    """Quick-profile mini embeddings: every row of w3 - w2 under 1.0. The paper's absolute rule
    zeroes the direction (and says so); the relative rule keeps the rows that change most."""
    g = torch.Generator().manual_seed(0)
    w2 = torch.randn(10, 512, generator=g)
    d = torch.zeros(10, 512)
    d[3] = 0.02 * torch.randn(512, generator=g)  # the "mouth" rows change most ...
    d[4] = 0.015 * torch.randn(512, generator=g)
    d[7:] = 0.001 * torch.randn(3, 512, generator=g)  # ... others by noise
    w3 = w2 + d
    assert d.norm(dim=-1).max() < 1.0
    with pytest.warns(RuntimeWarning, match="all zeros"):
        zero = expression_direction(w2, w3)
    assert torch.equal(zero, torch.zeros_like(zero))
    rel = expression_direction(w2, w3, relative=True)
    kept = (rel.norm(dim=-1) > 0).nonzero().flatten().tolist()
    assert kept == [3, 4] and torch.allclose(rel[3:5], d[3:5], atol=1e-6)  # kept rows: the source's own change
    moved = expression_transfer(w2, w2, w3, 2.0, relative=True)
    assert not torch.equal(moved, w2) and torch.equal(moved[0], w2[0])  # background rows untouched
