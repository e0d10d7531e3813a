"""The embedding cache: reuse exactly-equal work, never a stale entry."""

from __future__ import annotations

import torch

import i2s.cache as C
import i2s.runner as R
from i2s.loss import EmbeddingLoss
from conftest import make_generator


def _setup(random_vgg):
    G = make_generator(16, seed=3)
    with torch.no_grad():
        imgs = G.synthesis(G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))))
    return G, imgs, EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1])


def test_reuse_and_invalidation(tmp_path, random_vgg, monkeypatch, capsys):
    G, imgs, loss = _setup(random_vgg)
    import i2s.runner as B

    calls = []  # the cache computes its misses through embed_in_batches -> embed
    real = B.embed
    monkeypatch.setattr(B, "embed", lambda G, x, **kw: calls.append(len(x)) or real(G, x, **kw))
    kw = dict(loss_fn=loss, cache_dir=tmp_path, steps=4, progress=False)
    a = R.cached_embed(G, imgs, **kw)
    assert calls == [3] and len(list(tmp_path.glob("*.pt"))) == 3
    b = R.cached_embed(G, imgs, **kw)
    assert calls == [3] and torch.equal(a.w_plus, b.w_plus) and torch.equal(a.loss_curve, b.loss_curve)
    assert "3 of 3 embeddings reused" in capsys.readouterr().out
    R.cached_embed(G, imgs[:2], **{**kw, "steps": 5})  # another setting: recomputed
    assert calls == [3, 2]
    R.cached_embed(G, imgs.flip(0), **kw)  # same images, other order: all reused, order kept
    assert calls == [3, 2]
    changed = imgs.clone()
    changed[1, 0, 0, 0] += 0.01  # one pixel of one image
    r = R.cached_embed(G, changed, **kw)
    assert calls == [3, 2, 1] and torch.equal(r.w_plus[0], a.w_plus[0])
    G2 = make_generator(16, seed=4)  # other weights, same architecture
    R.cached_embed(G2, imgs[:1], **kw)
    assert calls == [3, 2, 1, 1]
    R.cached_embed(G, imgs[:1], **{**kw, "init": "uniform", "seed": 1})
    assert calls == [3, 2, 1, 1, 1]
    # the defaults spelled out are the same settings: reused, not recomputed
    R.cached_embed(G, imgs, **{**kw, "space": "w+", "init": "mean", "lr": 0.01, "schedule": "paper", "amp": False})
    assert calls == [3, 2, 1, 1, 1]
    R.cached_embed(G, imgs[:1], **{**kw, "space": "w"})  # another space: recomputed
    assert calls == [3, 2, 1, 1, 1, 1]
    other_vgg = EmbeddingLoss(vgg=random_vgg[0], vgg_label="vgg16-other")  # another perceptual network
    R.cached_embed(G, imgs[:1], **{**kw, "loss_fn": other_vgg})
    assert calls == [3, 2, 1, 1, 1, 1, 1]


def test_corrupt_entry_is_recomputed(tmp_path, random_vgg):
    G, imgs, loss = _setup(random_vgg)
    kw = dict(loss_fn=loss, cache_dir=tmp_path, steps=3, progress=False)
    a = R.cached_embed(G, imgs[:1], **kw)
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"half a file")
    b = R.cached_embed(G, imgs[:1], **kw)
    assert torch.allclose(a.w_plus, b.w_plus) and entry.stat().st_size > 100
    assert C.clear(tmp_path) == 1


def test_speed_options_stay_out_of_the_key_and_the_version_is_in_it(tmp_path, random_vgg, monkeypatch):
    from i2s.embed import EmbedSettings

    G, imgs, loss = _setup(random_vgg)
    kw = dict(loss_fn=loss, cache_dir=tmp_path, steps=3, progress=False)
    R.cached_embed(G, imgs[:1], **kw)
    R.cached_embed(G, imgs[:1], **kw, channels_last=True, desc="other", checkpoint_every=7)
    assert len(list(tmp_path.glob("*.pt"))) == 1  # reused: speed options do not change results
    ident = EmbedSettings(steps=3).identity(G, loss)
    key = C.entry_key(G, imgs[0], ident)
    assert (tmp_path / f"{key}.pt").is_file()  # the key derives from the run identity alone
    monkeypatch.setattr(C, "EMBED_ALGORITHM_VERSION", C.EMBED_ALGORITHM_VERSION - 1)
    assert C.entry_key(G, imgs[0], ident) != key  # entries of an older version are missed by name


def test_invalid_entries_are_recomputed_not_trusted(tmp_path, random_vgg):
    G, imgs, loss = _setup(random_vgg)
    kw = dict(loss_fn=loss, cache_dir=tmp_path, steps=3, progress=False)
    a = R.cached_embed(G, imgs[:2], **kw)
    e0, e1 = (tmp_path / f"{C.entry_key(G, imgs[i], a.settings)}.pt" for i in range(2))
    assert e0.is_file() and e1.is_file()
    entry = torch.load(e0, weights_only=True)
    # another image's entry under this key, with the wrong shapes
    torch.save({**entry, "images": torch.zeros(3, 8, 8)}, e0)
    # a non-JSON settings field
    torch.save({**torch.load(e1, weights_only=True), "settings": "{not json"}, e1)
    b = R.cached_embed(G, imgs[:2], **kw)
    assert torch.allclose(a.w_plus, b.w_plus)
    assert torch.load(e0, weights_only=True)["images"].shape == (3, 16, 16)
    e1.unlink()
    e1.mkdir()  # a directory at the entry path: recomputed, the directory is not trusted
    c = R.cached_embed(G, imgs[:2], **kw)
    assert torch.allclose(a.w_plus, c.w_plus, atol=1e-4)  # one image now embedded alone: float rounding
