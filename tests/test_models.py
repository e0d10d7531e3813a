"""load_generator: names, tiers, 'auto' and its one visible line, file paths, clear errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

from i2s import load_generator
from i2s.models import MINI_PATH, converted_ffhq_path
from i2s.weights.converted import save_converted
from i2s.weights.fetch import WeightsUnavailable
from conftest import make_generator


def test_auto_picks_ffhq_only_when_cached(isolated_cache, capsys, monkeypatch):
    import i2s.models as models

    # no official weights: auto -> mini (pointed at a stand-in file, whatever the repo ships)
    G = make_generator(16)
    stand_in = isolated_cache / "mini-stand-in.pt"
    save_converted(stand_in, G.cfg, G.state_dict(), {"name": "mini-faces64", "tier": "embedded"})
    monkeypatch.setitem(models.MINI_FILES, models.MINI_NAME, stand_in)
    g = load_generator("auto")
    out = capsys.readouterr().out
    assert "model=auto -> mini" in out and "embedded tier" in out and g.info["tier"] == "embedded"
    # the converted official generator in the cache (keyed by the recorded sha256 of the official
    # pickle, whose conversion it must be): auto -> ffhq
    assert converted_ffhq_path() is None  # no reference hash yet: nothing counts as the paper's generator
    sha = "ab" * 32
    (isolated_cache / "hashes.json").write_text(json.dumps({"stylegan1-ffhq-1024": {
        "filename": "karras2019stylegan-ffhq-1024x1024.pkl", "sha256": sha}}))
    save_converted(converted_ffhq_path(), G.cfg, G.state_dict(),
                   {"name": "stylegan1-ffhq-1024", "tier": "paper", "source_sha256": sha})
    g = load_generator("auto")
    out = capsys.readouterr().out
    assert "model=auto -> ffhq" in out and "paper tier" in out and g.name == "stylegan1-ffhq-1024"
    assert not g.training and not any(p.requires_grad for p in g.parameters())


def test_ffhq_missing_says_what_to_do(isolated_cache):
    with pytest.raises(WeightsUnavailable, match="i2s weights fetch stylegan1-ffhq-1024"):
        load_generator("ffhq")


def test_random_and_path_and_unknown(tmp_path):
    g = load_generator("random-mini", verbose=False)
    assert g.resolution == 64 and g.num_layers == 10 and g.info["tier"] == "random"
    G = make_generator(16)
    p = tmp_path / "g.pt"
    save_converted(p, G.cfg, {k: v.half() if v.is_floating_point() else v for k, v in G.state_dict().items()},
                   {"name": "half", "tier": "custom"})
    h = load_generator(p, verbose=False)  # fp16 storage comes back as float32
    assert h.w_avg.dtype == torch.float32
    assert torch.allclose(h.w_avg, G.w_avg, atol=1e-2)
    with pytest.raises(FileNotFoundError, match="known names"):
        load_generator("no-such-model")


def test_shipped_mini_loads_generates_and_embeds(random_vgg):
    assert MINI_PATH.is_file(), f"{MINI_PATH} is missing: it ships with the repository"
    G = load_generator("mini", verbose=False)
    assert G.resolution == 64 and G.num_layers == 10 and G.info["tier"] == "embedded"
    assert G.info.get("align_zoom") == 0.7 and G.w_avg.abs().sum() > 0
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = G(z, truncation_psi=0.7)
        # an interim export is only trained up to info["trained_resolution"]: judge the images there
        block = int(math.log2(G.info.get("trained_resolution", 64))) - 2
        y = G.synthesis.forward(G.mapping(z, truncation_psi=0.7), block=block)
    assert x.shape == (2, 3, 64, 64) and torch.isfinite(x).all()
    assert 0.05 < y.std() < 2.0  # a real image, not a constant or an explosion
    from i2s import embed
    from i2s.data import load_class_batch
    from i2s.loss import EmbeddingLoss

    names, faces = load_class_batch("faces", 64, zoom=G.info["align_zoom"])
    res = embed(G, faces[:2], steps=20, loss_fn=EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1]), progress=False)
    assert (res.loss < res.loss_curve[0]).all() and torch.isfinite(res.w_plus).all()


def test_every_shipped_mini_version_loads_by_its_own_short_name(monkeypatch):
    """mini-v1 stays v1 whatever `mini` becomes: each file of MINI_FILES loads by the short name that
    maps to its full name, carries that name, and `mini` is MINI_NAME's file."""
    from i2s import models
    from i2s.models import MINI_FILES, MINI_NAME, MODEL_NAMES, short_name

    assert MODEL_NAMES["mini-v1"] == "mini-faces64" and MODEL_NAMES["mini"] == MINI_NAME
    for full, path in MINI_FILES.items():
        assert path.is_file(), f"{path} is missing: it ships with the repository"
        shorts = [s for s, f in MODEL_NAMES.items() if f == full]
        for s in shorts:
            G = load_generator(s, verbose=False)
            assert G.name == full and G.info["tier"] == "embedded"
        assert short_name(full) == shorts[0]
    assert short_name(MINI_NAME) == "mini"
    # a missing version file: one line naming the file and the fix
    monkeypatch.setitem(MINI_FILES, "mini-faces64", models.REPO_ROOT / "data" / "models" / "no-such.pt")
    with pytest.raises(FileNotFoundError, match="the mini-v1 model is missing: .*no-such.pt.*git checkout"):
        load_generator("mini-v1", verbose=False)


def test_describe_tier_says_how_far_mini_training_got():
    from i2s.models import describe_tier

    G = make_generator(16)
    G.info = {"name": "mini-faces64", "tier": "embedded", "kimg": 146.0, "fully_grown": True, "finished": False,
              "planned_kimg": 250.0}
    assert "trained on 146k images" in describe_tier(G) and "250k planned" in describe_tier(G)
    G.info.update(fully_grown=False, trained_resolution=16)
    assert "only grown to 16 px" in describe_tier(G)
    G.info.update(fully_grown=True, finished=True)
    assert "interim" not in describe_tier(G)
