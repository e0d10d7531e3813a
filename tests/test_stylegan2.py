"""StyleGAN2 (i2s.stylegan2) against NVIDIA's own pixels, and the TensorFlow (version 4) reader.

The reference images (tests/fixtures/stylegan2_reference.npz) were rendered by NVIDIA's
stylegan2-ada-pytorch (legacy.py, training/networks.py, CPU reference ops, ``force_fp32=True``,
``noise_mode='const'``) from the fixture pickles that tests/fixtures_sg2.py writes; here i2s reads
the same pickles and must reproduce them. They are stored as float16, so the tolerance is 1e-3 plus
half a float16 step of the stored value (≤ 2.4e-4 within [-1, 1]). Networks above 32 px are
compared on a 32-px centre crop and on the whole image average-pooled to 32 px.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import i2s
from i2s.stylegan2 import StyleGAN2, StyleGAN2Config, config_problems, generator_elements
from i2s.weights import WeightsFormatError
from i2s.weights.ada_pickle import network_pickle_kind
from i2s.weights.converted import load_converted, save_converted
from i2s.weights.tf_stylegan2 import convert_tf_stylegan2, load_tf_stylegan2

try:
    from fixtures_sg2 import REFERENCE_NPZ, SPECS, make_ada_pickle, make_tf4_pickle, reference_inputs, sg2_params
    from fixtures_tf import make_gs_pickle
except ImportError:  # tests/ imported as a package
    from tests.fixtures_sg2 import (REFERENCE_NPZ, SPECS, make_ada_pickle, make_tf4_pickle, reference_inputs,
                                    sg2_params)
    from tests.fixtures_tf import make_gs_pickle


def _cfg(spec: dict) -> StyleGAN2Config:
    return StyleGAN2Config(resolution=spec["resolution"], z_dim=spec["z_dim"], w_dim=spec["w_dim"],
                           mapping_layers=spec["mapping_layers"], mapping_features=spec["mapping_features"],
                           channel_base=spec["channel_base"], channel_max=spec["channel_max"],
                           conv_clamp=spec["conv_clamp"])


def _parts(img: np.ndarray, res: int) -> dict[str, np.ndarray]:
    if res <= 32:
        return {"full": img}
    c = (res - 32) // 2
    return {"crop": img[..., c:c + 32, c:c + 32],
            "pooled": torch.nn.functional.avg_pool2d(torch.from_numpy(img), res // 32).numpy()}


def assert_reference(got: np.ndarray, ref16: np.ndarray, what: str) -> None:
    ref = ref16.astype(np.float32)
    tol = 1e-3 + np.spacing(np.abs(ref16)).astype(np.float32) / 2
    diff = np.abs(got - ref)
    assert got.shape == ref.shape and np.all(diff <= tol), (what, float(diff.max()))


# --------------------------------------------------------------------------- the architecture


@pytest.mark.parametrize("name", sorted(SPECS))
def test_state_dict_is_nvidias(name):
    """Names and shapes of training/networks.py (written out independently in fixtures_sg2)."""
    spec = SPECS[name]
    want = {k: v.shape for k, v in sg2_params(spec).items()}
    G = StyleGAN2(_cfg(spec))
    assert {k: tuple(v.shape) for k, v in G.state_dict().items()} == want
    assert generator_elements(G.cfg) == sum(t.numel() for t in G.state_dict().values())
    assert G.num_layers == 2 * int(math.log2(spec["resolution"])) - 2 == len(G.synthesis.layers)


def test_ffhq_config_f_counts():
    cfg = StyleGAN2Config.ffhq1024()
    with torch.device("meta"):
        G = StyleGAN2(cfg)
    assert G.num_layers == 18
    assert sum(p.numel() for p in G.parameters()) == 30_370_060  # reference-facts §3: Gs trainables of config-f
    assert [cfg.channels(r) for r in cfg.block_resolutions] == [512] * 5 + [256, 128, 64, 32]
    assert generator_elements(cfg) == 33_167_164 and config_problems(cfg) == []
    assert config_problems(StyleGAN2Config(resolution=2048))  # beyond the kit's bounds
    assert config_problems(StyleGAN2Config(channel_base=2**20, channel_max=1024))


# --------------------------------------------------------------------------- NVIDIA's pixels


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE_NPZ)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_reproduces_nvidias_images(name, reference, tmp_path):
    spec = SPECS[name]
    path = tmp_path / f"{name}.pkl"
    (make_ada_pickle if spec["kind"] == "ada" else make_tf4_pickle)(path, spec)
    assert network_pickle_kind(path) == ("stylegan2-ada-pytorch" if spec["kind"] == "ada" else "tf-v4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the placeholder module source is not NVIDIA's (tested in test_ada_pickle)
        G = i2s.load_generator(path, verbose=False)
    assert isinstance(G, StyleGAN2) and G.domain == "unknown" and G.resolution == spec["resolution"]
    z, ws = (torch.from_numpy(a) for a in reference_inputs(spec))
    with torch.no_grad():
        renders = {"z_psi0.7": G(z[:1], truncation_psi=0.7),
                   "z_psi0.5_cut3": G.synthesis(G.mapping(z[1:], truncation_psi=0.5, truncation_cutoff=3)),
                   "ws": G.synthesis(ws), "ws_noise_none": G.synthesis(ws[:1], noise_mode="none")}
        np.testing.assert_allclose(G.mapping.w(z).numpy(), reference[f"{name}/w"], rtol=0, atol=1e-4)
    for tag, img in renders.items():
        for part, got in _parts(img.numpy(), spec["resolution"]).items():
            assert_reference(got, reference[f"{name}/{tag}/{part}"], f"{name} {tag} {part}")


def test_clamp_is_active_in_the_clamped_fixture(reference):
    """ada64clamp's conv_clamp 0.5 matters: without it the images differ from NVIDIA's."""
    spec = SPECS["ada64clamp"]
    G = StyleGAN2(StyleGAN2Config(**{**_cfg(spec).to_dict(), "conv_clamp": None}))
    G.load_state_dict({k: torch.from_numpy(v) for k, v in sg2_params(spec).items()})
    _, ws = reference_inputs(spec)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ws)).numpy()
    ref = reference["ada64clamp/ws/crop"].astype(np.float32)
    assert np.abs(_parts(img, 64)["crop"] - ref).max() > 0.01


# --------------------------------------------------------------------------- behaviour


@pytest.fixture(scope="module")
def G32():
    spec = SPECS["ada32"]
    G = StyleGAN2(_cfg(spec))
    G.load_state_dict({k: torch.from_numpy(v) for k, v in sg2_params(spec).items()})
    G.info = {"name": "sg2-test", "tier": "random", "domain": "cats"}
    return G.eval().requires_grad_(False)


def test_noise_modes_truncation_and_dtypes(G32):
    w = G32.mapping(torch.randn(2, G32.z_dim, generator=torch.Generator().manual_seed(0)))
    a, b = G32.synthesis(w, noise_mode="random"), G32.synthesis(w, noise_mode="random")
    assert not torch.equal(a, b) and torch.equal(G32.synthesis(w), G32.synthesis(w, noise_mode="const"))
    with pytest.raises(ValueError, match="noise_mode"):
        G32.synthesis(w, noise_mode="fresh")
    with pytest.raises(ValueError, match="w_plus must have shape"):
        G32.synthesis(w[:, :3])
    t = G32.mapping.truncate(w, 0.0)
    assert torch.allclose(t, G32.w_avg.expand_as(w))
    assert torch.equal(G32.mapping.truncate(w, 0.0, 2)[:, 2:], w[:, 2:])
    import copy

    G64 = copy.deepcopy(G32).double()
    assert torch.allclose(G64.synthesis(w.double()).float(), G32.synthesis(w), atol=1e-4)
    assert G32.domain == "cats" and "resolution=32" in repr(G32)


def test_the_kits_style_and_noise_accessors_work(G32):
    """SeFa (layer.epilogue.style) and the noise-variation experiment (layer.epilogue.noise_const)
    read v1's attribute names; a StyleGAN2 generator answers them."""
    from i2s.directions import sefa

    d = sefa(G32, k=4, n_sigma=200)
    assert d.vectors.shape == (4, G32.w_dim) and torch.isfinite(d.vectors).all()
    G = __import__("copy").deepcopy(G32)
    for layer in G.synthesis.layers:  # as i2s.experiments.latent_space_choice.noise_variation does
        buf = layer.epilogue.noise_const
        buf.copy_(torch.randn(buf.shape).to(buf))
    w = G32.mapping(torch.zeros(1, G32.z_dim))
    assert not torch.equal(G.synthesis(w), G32.synthesis(w))
    assert G.synthesis.layers[-1].noise_const.numel() == 0  # the last ToRGB has no noise


def test_embedding_runs_on_stylegan2(G32, random_vgg):
    from i2s.loss import EmbeddingLoss
    from i2s.runner import embed

    with torch.no_grad():
        target = G32.synthesis(G32.mapping(torch.randn(1, G32.z_dim, generator=torch.Generator().manual_seed(1))))
    res = embed(G32, target.clamp(-1, 1), steps=5, loss_fn=EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1]),
                progress=False)
    assert res.w_plus.shape == (1, G32.num_layers, G32.w_dim) and res.loss[0] < res.loss_curve[0, 0]


def test_converted_file_round_trip(G32, tmp_path):
    path = save_converted(tmp_path / "g.pt", G32.cfg, G32.state_dict(), G32.info)
    G = load_converted(path)
    assert isinstance(G, StyleGAN2) and G.cfg == G32.cfg and G.info["domain"] == "cats"
    w = G32.mapping(torch.zeros(1, G32.z_dim))
    assert torch.equal(G.synthesis(w), G32.synthesis(w))
    torch.save({"format": "i2s-stylegan2", "format_version": 1,
                "config": {**G32.cfg.to_dict(), "resolution": 4096}, "state_dict": {}, "info": {}}, tmp_path / "big.pt")
    with pytest.raises(WeightsFormatError, match="resolution=4096"):
        load_converted(tmp_path / "big.pt")


# --------------------------------------------------------------------------- the TF (version 4) reader


def test_tf_reader_refuses_what_it_cannot_render(tmp_path):
    spec = SPECS["tf32"]
    p = tmp_path / "kw.pkl"
    make_tf4_pickle(p, spec, static_kwargs={"resolution_w": 32})  # NVlabs/stylegan2-ada-pytorch#36
    with pytest.raises(WeightsFormatError, match="unknown TensorFlow kwarg.*resolution_w") as e:
        convert_tf_stylegan2(p)
    assert str(p) in str(e.value)
    make_tf4_pickle(p, spec, static_kwargs={"architecture": "resnet"})
    with pytest.raises(WeightsFormatError, match="architecture='resnet' is not supported"):
        convert_tf_stylegan2(p)

    def drop_and_add(v):
        v["synthesis"] = [(n, a) for n, a in v["synthesis"] if n != "8x8/Conv1/mod_bias"]
        v["synthesis"].append(("8x8/Skip/weight", np.zeros((1, 1, 32, 32), np.float32)))
        v["Gs"][0] = ("lod", np.float32(1.0))

    make_tf4_pickle(p, spec, edit=drop_and_add)
    with pytest.raises(WeightsFormatError) as e:
        convert_tf_stylegan2(p)
    msg = str(e.value)
    assert "1 missing: synthesis/8x8/Conv1/mod_bias" in msg and "synthesis/8x8/Skip/weight" in msg and "lod" in msg


def test_tf_reader_and_v1_reader_keep_to_their_versions(tmp_path):
    v1 = tmp_path / "v1.pkl"
    make_gs_pickle(v1, 8, fmap_base=64, fmap_max=16)
    with pytest.raises(WeightsFormatError, match="version 3, not 4.*StyleGAN v1"):
        load_tf_stylegan2(v1)
    assert network_pickle_kind(v1) == "tf"
    v4 = tmp_path / "v4.pkl"
    make_tf4_pickle(v4, "tf32")
    from i2s.weights import load_tf_pickle

    with pytest.raises(WeightsFormatError, match="only StyleGAN v1"):
        load_tf_pickle(v4)
    G = i2s.load_generator(v4, verbose=False)  # the dispatch reads it with the version-4 reader
    assert G.info["source_format"] == "nvlabs-stylegan2-tf-pickle" and G.info["tf_network_version"] == 4


# --------------------------------------------------------------------------- registry and names


def test_registry_and_model_names():
    from i2s.models import MODEL_NAMES, STYLEGAN2_MODELS, short_name
    from i2s.weights.registry import REGISTRY

    for short, (full, domain) in STYLEGAN2_MODELS.items():
        assert MODEL_NAMES[short] == full and short_name(full) == short
        c = REGISTRY[full]
        assert c.kind == "stylegan2-ada-pytorch-pickle" and c.urls[0].startswith("https://nvlabs-fi-cdn.nvidia.com/")
        assert c.sha256 is None and not c.sha256_confirmed and c.size is None  # none is published
    assert REGISTRY["stylegan2-ffhq-config-f"].kind == "stylegan2-tf-pickle"
    assert STYLEGAN2_MODELS["stylegan2-afhqcat"][1] == "cats"


def test_registry_model_from_an_imported_file(tmp_path):
    """`i2s weights import stylegan2-afhqcat-512 FILE`, then load_generator('stylegan2-afhqcat'):
    validated before it is installed, converted once, and the generator says its domain."""
    from i2s.weights import WeightsUnavailable, import_file

    with pytest.raises(WeightsUnavailable, match="i2s weights fetch stylegan2-afhqcat-512"):
        i2s.load_generator("stylegan2-afhqcat", verbose=False)
    src = tmp_path / "cat.pkl"
    make_ada_pickle(src, "ada32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_file("stylegan2-afhqcat-512", src)
        G = i2s.load_generator("stylegan2-afhqcat", verbose=False)
    assert (G.name, G.info["tier"], G.domain) == ("stylegan2-afhqcat-512", "stylegan2", "cats")
    assert i2s.load_generator("stylegan2-afhqcat", verbose=False).info["path"].endswith(".pt")  # the cached conversion
    from i2s.models import describe_tier, domain

    assert "StyleGAN2" in describe_tier(G) and domain(G) == "cats"
    assert domain(i2s.load_generator("random-mini", verbose=False)) == "faces"


# --------------------------------------------------------------------------- the domain in results


def test_report_counts_the_generators_domain_not_faces(tmp_path):
    """REPORT's claims about faces are about the generator's domain: for a cat generator its cats are
    the in-domain images, and the photos of faces are 'other classes'; folders without a recorded
    domain (written before) stay face folders."""
    import pandas as pd

    from i2s.report import claims, write_report

    def verdict(results, domain):
        tag = {"model": "m", "tier": "stylegan2", "perceptual_net": "vgg16-random", "profile": "quick"}
        if domain is not None:
            tag["domain"] = domain
        rng = np.random.default_rng(0)
        rows = [{"image": f"faces/f{i}", "class": "faces", "dist_to_w_avg": 10 + rng.random(), "loss_x1e5": 0.3,
                 **tag} for i in range(6)]
        rows += [{"image": f"cats/c{i}", "class": "cats", "dist_to_w_avg": 30 + rng.random(), "loss_x1e5": 0.2,
                  **tag} for i in range(6)]
        results.mkdir()
        pd.DataFrame(rows).to_csv(results / "class_embedding.csv", index=False)
        return next((v for v in claims(results) if v.claim.startswith("Faces embed close to w̄")), None)

    assert verdict(tmp_path / "old", None).verdict == "agrees"  # faces near w̄, cats far
    assert verdict(tmp_path / "faces", "faces").verdict == "agrees"
    cats = verdict(tmp_path / "cats", "cats")
    assert cats.verdict == "disagrees" and cats.comparison.effect > 0  # cats (in-domain) minus faces
    assert "Its domain is cats" in write_report(tmp_path / "cats").read_text()
    assert verdict(tmp_path / "unknown", "unknown") is None  # no in-domain image: not decided
