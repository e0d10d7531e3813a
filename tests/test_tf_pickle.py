"""Tests of the TensorFlow-free reader/converter of NVIDIA's StyleGAN v1 pickle.

All pickles are synthetic (tests/fixtures_tf.py): same structure, names and shapes as
``karras2019stylegan-ffhq-1024x1024.pkl`` (NVlabs/stylegan ``dnnlib/tflib/network.py``,
``training/networks_stylegan.py``), random or constant values.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
import time

import numpy as np
import pytest
import torch

try:
    from fixtures_tf import (OFFICIAL_LAYER_PARAMS, OFFICIAL_TOTAL_TRAINABLE, flat_shapes,
                             gs_variable_shapes, make_gs_pickle)
except ImportError:  # tests/ imported as a package
    from tests.fixtures_tf import (OFFICIAL_LAYER_PARAMS, OFFICIAL_TOTAL_TRAINABLE, flat_shapes,
                                   gs_variable_shapes, make_gs_pickle)

from i2s.stylegan import StyleGAN, StyleGANConfig
from i2s.weights import (UnsafePickleError, WeightsFormatError, convert_pickle, load_converted,
                         load_tf_pickle)
from i2s.weights.converted import save_converted
from i2s.weights.tf_pickle import (SafeUnpickler, TFNetworkStub, collect_variables, config_from_stub,
                                   convert_gs)

SMALL = {  # two small layouts: default-size mapping, and a shrunken mapping network
    32: dict(fmap_base=512, fmap_max=64),
    64: dict(fmap_base=256, fmap_max=32, latent_size=64, dlatent_size=48, mapping_layers=3, mapping_fmaps=40),
}


@pytest.fixture(params=sorted(SMALL), ids=lambda r: f"{r}px")
def small(request, tmp_path):
    res = request.param
    path = tmp_path / f"gs{res}.pkl"
    flat = make_gs_pickle(path, res, seed=res, **SMALL[res])
    return res, path, flat


def _fingerprint(a: np.ndarray | torch.Tensor) -> bytes:
    arr = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return hashlib.sha1(np.sort(arr.astype(np.float32).ravel()).tobytes()).digest()


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("numpy_names", ["legacy", "current"])
def test_load_gives_stubs_and_needs_no_dnnlib(tmp_path, numpy_names):
    path = tmp_path / "gs.pkl"
    make_gs_pickle(path, 16, fmap_base=256, fmap_max=32, numpy_names=numpy_names)
    assert "dnnlib" not in sys.modules and "dnnlib.tflib.network" not in sys.modules
    G, D, Gs = load_tf_pickle(path)
    assert all(isinstance(n, TFNetworkStub) for n in (G, D, Gs))
    assert (G.name, D.name, Gs.name) == ("G", "D", "Gs")
    assert Gs.version == 3 and Gs.build_func_name == "G_style"
    assert list(Gs.components) == ["synthesis", "mapping"]
    assert Gs.components["synthesis"].name == "G_synthesis"
    assert isinstance(Gs.variables, list) and Gs.variables[0][0] == "lod"
    assert "dnnlib" not in sys.modules  # the loader did not import (or fake) dnnlib


def test_collect_variables_names_and_shapes(small):
    res, path, flat = small
    _, _, Gs = load_tf_pickle(path)
    v = collect_variables(Gs)
    assert set(v) == set(flat)
    assert {k: tuple(a.shape) for k, a in v.items()} == {k: tuple(a.shape) for k, a in flat.items()}
    assert v["lod"].shape == () and v["synthesis/lod"].shape == ()
    for k in v:
        np.testing.assert_array_equal(v[k], flat[k])


def test_config_from_stub(small):
    res, path, _ = small
    _, _, Gs = load_tf_pickle(path)
    cfg = config_from_stub(Gs)
    kw = SMALL[res]
    assert cfg.resolution == res and cfg.num_layers == 2 * int(np.log2(res)) - 2
    assert (cfg.fmap_base, cfg.fmap_max) == (kw["fmap_base"], kw["fmap_max"])
    assert cfg.z_dim == kw.get("latent_size", 512) and cfg.w_dim == kw.get("dlatent_size", 512)
    assert cfg.mapping_layers == kw.get("mapping_layers", 8)
    assert cfg.mapping_fmaps == kw.get("mapping_fmaps", 512)
    assert cfg.fused_min_res == 128 and cfg.mapping_lrmul == 0.01


def test_config_infers_omitted_kwargs(tmp_path):
    path = tmp_path / "gs.pkl"
    make_gs_pickle(path, 64, fmap_base=256, fmap_max=32, latent_size=64, dlatent_size=48, mapping_layers=3,
                   mapping_fmaps=40, omit_kwargs=["resolution", "num_channels", "latent_size", "dlatent_size",
                                                  "mapping_layers", "mapping_fmaps", "dlatent_broadcast"])
    cfg = config_from_stub(load_tf_pickle(path)[2])
    assert (cfg.resolution, cfg.num_channels, cfg.z_dim, cfg.w_dim, cfg.mapping_layers, cfg.mapping_fmaps) == \
        (64, 3, 64, 48, 3, 40)


# --------------------------------------------------------------------------- conversion


def test_every_variable_is_mapped_once(small):
    res, path, flat = small
    _, _, Gs = load_tf_pickle(path)
    cfg = config_from_stub(Gs)
    sd = convert_gs(Gs, cfg)
    ref = StyleGAN(cfg).state_dict()
    assert list(sd) == list(ref)
    assert {k: tuple(t.shape) for k, t in sd.items()} == {k: tuple(t.shape) for k, t in ref.items()}
    assert all(t.dtype == torch.float32 for t in sd.values())
    # Each TF variable but the two lods ends up in exactly one tensor (values are random,
    # so a sorted-values fingerprint identifies a variable whatever the transpose).
    ours = [_fingerprint(t) for t in sd.values()]
    theirs = [_fingerprint(a) for k, a in flat.items() if k not in ("lod", "synthesis/lod")]
    assert sorted(ours) == sorted(theirs)
    assert sum(t.numel() for t in sd.values()) == sum(a.size for a in flat.values()) - 2


def test_named_variables_round_trip(small):
    res, path, f = small
    sd = convert_gs(load_tf_pickle(path)[2])
    t = lambda a: torch.from_numpy(np.asarray(a))  # noqa: E731
    L = int(np.log2(res)) - 2
    checks = {
        "mapping.layers.0.weight": t(f["mapping/Dense0/weight"]).T,
        "mapping.layers.1.bias": t(f["mapping/Dense1/bias"]),
        "mapping.w_avg": t(f["dlatent_avg"]),
        "synthesis.layers.0.const": t(f["synthesis/4x4/Const/const"]),
        "synthesis.layers.0.epilogue.noise_strength": t(f["synthesis/4x4/Const/Noise/weight"]),
        "synthesis.layers.0.epilogue.bias": t(f["synthesis/4x4/Const/bias"]),
        "synthesis.layers.0.epilogue.style.weight": t(f["synthesis/4x4/Const/StyleMod/weight"]).T,
        "synthesis.layers.0.epilogue.style.bias": t(f["synthesis/4x4/Const/StyleMod/bias"]),
        "synthesis.layers.0.epilogue.noise_const": t(f["synthesis/noise0"]),
        "synthesis.layers.1.conv.weight": t(f["synthesis/4x4/Conv/weight"]).permute(3, 2, 0, 1),
        "synthesis.layers.1.epilogue.noise_const": t(f["synthesis/noise1"]),
        "synthesis.layers.4.conv.weight": t(f["synthesis/16x16/Conv0_up/weight"]).permute(3, 2, 0, 1),
        "synthesis.layers.5.conv.weight": t(f["synthesis/16x16/Conv1/weight"]).permute(3, 2, 0, 1),
        "synthesis.layers.5.epilogue.style.weight": t(f["synthesis/16x16/Conv1/StyleMod/weight"]).T,
        "synthesis.layers.5.epilogue.noise_const": t(f["synthesis/noise5"]),
        f"synthesis.torgb.{L}.conv.weight": t(f["synthesis/ToRGB_lod0/weight"]).permute(3, 2, 0, 1),
        f"synthesis.torgb.{L}.bias": t(f["synthesis/ToRGB_lod0/bias"]),
        "synthesis.torgb.0.conv.weight": t(f[f"synthesis/ToRGB_lod{L}/weight"]).permute(3, 2, 0, 1),
    }
    for key, want in checks.items():
        assert torch.equal(sd[key], want), key
    # [3,3,in,out] -> [out,in,3,3] without flipping: element (o, i, y, x) is TF (y, x, i, o).
    w = f["synthesis/4x4/Conv/weight"]
    assert sd["synthesis.layers.1.conv.weight"][5, 2, 0, 2].item() == w[0, 2, 2, 5]


def test_converted_generator_runs_and_round_trips(small, tmp_path):
    res, path, flat = small
    out = tmp_path / "out" / "g.pt"
    G = convert_pickle(path, out)
    assert G.info["tier"] == "custom" and G.info["source"] == str(path)
    assert G.info["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = G.synthesis(G.mapping(z))
    assert img.shape == (2, 3, res, res) and torch.isfinite(img).all()

    raw = torch.load(out, weights_only=True)
    assert raw["format"] == "i2s-stylegan1" and raw["format_version"] == 1
    assert StyleGANConfig.from_dict(raw["config"]) == G.cfg
    assert not list(out.parent.glob("*.tmp"))  # atomic write left no temp file

    G2 = load_converted(out)
    assert G2.info["name"] == G.info["name"] and G2.info["source_sha256"] == G.info["source_sha256"]
    sd1, sd2 = G.state_dict(), G2.state_dict()
    assert list(sd1) == list(sd2)
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    # w_avg and every stored noise map are bit-exact copies of the pickle's values.
    assert torch.equal(G2.w_avg, torch.from_numpy(flat["dlatent_avg"]))
    for k in range(G2.num_layers):
        assert torch.equal(G2.synthesis.layers[k].epilogue.noise_const,
                           torch.from_numpy(flat[f"synthesis/noise{k}"])), k
    with torch.no_grad():
        assert torch.equal(G2.synthesis(G2.mapping(z)), img)


def test_load_converted_casts_fp16_and_checks_format(tmp_path):
    cfg = StyleGANConfig(resolution=8, fmap_base=64, fmap_max=16, z_dim=16, w_dim=16, mapping_fmaps=16,
                         mapping_layers=2)
    G = StyleGAN(cfg)
    half = {k: v.half() for k, v in G.state_dict().items()}
    p = save_converted(tmp_path / "h.pt", cfg, half, {"name": "half", "tier": "custom"})
    G2 = load_converted(p)
    assert all(t.dtype == torch.float32 for t in G2.state_dict().values())
    assert torch.equal(G2.w_avg, half["mapping.w_avg"].float()) and G2.info["name"] == "half"
    torch.save({"format": "something-else"}, tmp_path / "x.pt")
    with pytest.raises(WeightsFormatError, match="i2s-stylegan1"):
        load_converted(tmp_path / "x.pt")
    bad = {k: v for k, v in G.state_dict().items() if k != "mapping.w_avg"}
    save_converted(tmp_path / "m.pt", cfg, bad, {})
    with pytest.raises(WeightsFormatError, match="w_avg"):
        load_converted(tmp_path / "m.pt")


def test_fused_scale_and_structure_kwargs(tmp_path):
    path = tmp_path / "gs.pkl"
    make_gs_pickle(path, 16, fmap_base=128, fmap_max=16, static_kwargs={"fused_scale": True, "structure": "recursive",
                                                                           "randomize_noise": False})
    cfg = config_from_stub(load_tf_pickle(path)[2])
    assert cfg.fused_min_res == 8


# --------------------------------------------------------------------------- the paper's layout


@pytest.mark.slow
def test_full_ffhq1024_layout(tmp_path):
    t0 = time.perf_counter()
    path = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    try:
        flat = make_gs_pickle(path, 1024, values="const")
        shapes = flat_shapes(gs_variable_shapes(1024))
        assert {k: tuple(v.shape) for k, v in flat.items()} == shapes
        tf_trainable = {k: v for k, v in flat.items() if k not in ("lod", "synthesis/lod", "dlatent_avg")
                        and not k.startswith("synthesis/noise")}
        assert sum(v.size for v in tf_trainable.values()) == OFFICIAL_TOTAL_TRAINABLE
        for scope, n in OFFICIAL_LAYER_PARAMS.items():
            assert sum(v.size for k, v in tf_trainable.items() if k.startswith(f"synthesis/{scope}/")) == n, scope

        G = convert_pickle(path)
    finally:
        path.unlink(missing_ok=True)
    elapsed = time.perf_counter() - t0
    assert G.num_layers == 18 and G.resolution == 1024
    assert G.cfg == StyleGANConfig.ffhq1024()
    assert G.info["tier"] == "paper" and G.info["name"] == "stylegan1-ffhq-1024"
    # The official total (Gs.print_layers(): 26,219,627) counts every ToRGB_lod*; so do our
    # parameters (buffers w_avg and noise_const are the non-trainable dlatent_avg / noise{k}).
    assert sum(p.numel() for p in G.parameters()) == OFFICIAL_TOTAL_TRAINABLE
    n_torgb_lod_gt0 = sum(p.numel() for t in G.synthesis.torgb[:-1] for p in t.parameters())
    assert n_torgb_lod_gt0 == 7_608
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    layers = G.synthesis.layers
    assert count(layers[0]) == OFFICIAL_LAYER_PARAMS["4x4/Const"]
    assert count(layers[1]) == OFFICIAL_LAYER_PARAMS["4x4/Conv"]
    assert count(layers[8]) == OFFICIAL_LAYER_PARAMS["64x64/Conv0_up"]
    assert count(layers[17]) == OFFICIAL_LAYER_PARAMS["1024x1024/Conv1"]
    assert count(G.synthesis.torgb[8]) == OFFICIAL_LAYER_PARAMS["ToRGB_lod0"]
    assert count(G.mapping) == 2_101_248
    # Spot-check a few (constant-filled) variables against their destination.
    assert torch.equal(G.synthesis.torgb[8].bias, torch.from_numpy(flat["synthesis/ToRGB_lod0/bias"]))
    assert torch.equal(G.synthesis.layers[17].epilogue.noise_const, torch.from_numpy(flat["synthesis/noise17"]))
    assert G.synthesis.layers[17].epilogue.noise_const.shape == (1, 1, 1024, 1024)
    assert torch.equal(G.w_avg, torch.from_numpy(flat["dlatent_avg"]))
    print(f"\n1024 px synthetic pickle: write + convert took {elapsed:.1f} s")
    assert elapsed < 60


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("foreign, global_name", [("os.system", "system"), ("exec", "builtins.exec")])
def test_foreign_global_is_refused_without_running(tmp_path, foreign, global_name):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    make_gs_pickle(path, 8, fmap_base=64, fmap_max=16, foreign=foreign, marker=marker)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match=global_name) as exc:
        load_tf_pickle(path)
    assert str(path) in str(exc.value)
    assert isinstance(exc.value, pickle.UnpicklingError)
    with pytest.raises(UnsafePickleError):
        convert_pickle(path, tmp_path / "never.pt")
    assert not marker.exists()
    assert not (tmp_path / "never.pt").exists()


def test_find_class_allow_list_imports_nothing():
    up = SafeUnpickler(io.BytesIO(b""), source="mem.pkl")
    mod = "i2s_test_module_that_must_not_be_imported"
    with pytest.raises(UnsafePickleError, match=f"{mod}.boom") as exc:
        up.find_class(mod, "boom")
    assert "mem.pkl" in str(exc.value) and mod not in sys.modules
    for module, name in [("numpy", "load"), ("numpy.core.multiarray", "frombuffer"), ("builtins", "getattr"),
                         ("dnnlib.tflib.network", "Other"), ("torch", "load"), ("os", "system")]:
        with pytest.raises(UnsafePickleError):
            up.find_class(module, name)
    assert up.find_class("dnnlib.tflib.network", "Network") is TFNetworkStub
    # numpy's names are answered with inert stand-ins: nothing numpy builds is reachable from a pickle
    # (np.ndarray(shape) would allocate, numpy's _reconstruct/dtype would accept crafted state).
    answers = [up.find_class("numpy", "ndarray"), up.find_class("numpy", "dtype")]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        assert callable(up.find_class(module, "_reconstruct")) and callable(up.find_class(module, "scalar"))
        answers += [up.find_class(module, "_reconstruct"), up.find_class(module, "scalar")]
    assert all(a.__module__ == "i2s.weights.tf_pickle" for a in answers)
    assert not {np.ndarray, np.dtype} & set(answers)
    assert not hasattr(TFNetworkStub, "__setstate__")


def test_missing_extra_and_misshaped_variables_are_listed(tmp_path):
    kw = dict(fmap_base=128, fmap_max=16)
    cases = {
        "missing": dict(drop=["synthesis/8x8/Conv1/StyleMod/bias", "mapping/Dense5/bias"]),
        "extra": dict(extra={"synthesis/8x8/Conv1/Blur/weight": np.zeros(3, np.float32),
                             "bogus": np.zeros(1, np.float32)}),
        "misshaped": dict(misshape=["synthesis/noise3", "synthesis/ToRGB_lod1/weight"]),
    }
    for what, opts in cases.items():
        path = tmp_path / f"{what}.pkl"
        make_gs_pickle(path, 16, **kw, **opts)
        with pytest.raises(WeightsFormatError) as exc:
            convert_pickle(path)
        msg = str(exc.value)
        assert what.replace("misshaped", "wrong shape").replace("extra", "unexpected") in msg, msg
        names = opts.get("drop") or list(opts.get("extra", {})) or opts.get("misshape")
        for name in names:
            assert name in msg, (what, name, msg)
    # All at once: one error listing every problem.
    path = tmp_path / "all.pkl"
    make_gs_pickle(path, 16, **kw, drop=["synthesis/4x4/Const/const"], extra={"mapping/Dense9/weight": np.zeros(2, np.float32)},
                   misshape=["dlatent_avg"])
    with pytest.raises(WeightsFormatError) as exc:
        convert_gs(load_tf_pickle(path)[2])
    for name in ("synthesis/4x4/Const/const", "mapping/Dense9/weight", "dlatent_avg"):
        assert name in str(exc.value)


def test_nonzero_lod_is_refused(tmp_path):
    path = tmp_path / "lod.pkl"
    make_gs_pickle(path, 8, fmap_base=64, fmap_max=16, lod=1.5)
    with pytest.raises(WeightsFormatError, match="fully grown"):
        convert_pickle(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"use_styles": False}, "use_styles"),
    ({"use_pixel_norm": True}, "use_pixel_norm"),
    ({"use_instance_norm": False}, "use_instance_norm"),
    ({"const_input_layer": False}, "const_input_layer"),
    ({"blur_filter": [1, 3, 3, 1]}, "blur_filter"),
    ({"blur_filter": None}, "blur_filter"),
    ({"label_size": 10}, "label_size"),
    ({"structure": "fixed"}, "structure"),
    ({"fmap_max": 32}, "feature maps"),
    ({"resolution": 32}, "resolution"),
])
def test_unsupported_architecture_kwargs(tmp_path, kwargs, match):
    path = tmp_path / "arch.pkl"
    make_gs_pickle(path, 16, fmap_base=128, fmap_max=16, static_kwargs=kwargs)
    with pytest.raises(WeightsFormatError, match=match):
        convert_pickle(path)


def test_unknown_kwarg_warns(tmp_path):
    path = tmp_path / "unk.pkl"
    make_gs_pickle(path, 8, fmap_base=64, fmap_max=16, static_kwargs={"some_future_flag": 1})
    with pytest.warns(UserWarning, match="some_future_flag"):
        convert_pickle(path)


def test_stylegan2_version_4_is_refused(tmp_path):
    path = tmp_path / "sg2.pkl"
    make_gs_pickle(path, 8, fmap_base=64, fmap_max=16, version=4)
    with pytest.raises(WeightsFormatError, match="StyleGAN2") as exc:
        load_tf_pickle(path)
    assert "only StyleGAN v1" in str(exc.value)


def test_html_page_saved_as_pkl(tmp_path):
    path = tmp_path / "karras2019stylegan-ffhq-1024x1024.pkl"
    path.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>"
                    "<body>Too many users have viewed or downloaded this file recently.</body></html>")
    with pytest.raises(WeightsFormatError, match="HTML page") as exc:
        load_tf_pickle(path)
    msg = str(exc.value)
    assert "Google Drive" in msg and str(path) in msg and "Quota exceeded" in msg


def test_empty_truncated_and_missing_files(tmp_path):
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="empty") as exc:
        load_tf_pickle(empty)
    assert "--force" in str(exc.value) and str(empty) in str(exc.value)

    full = tmp_path / "full.pkl"
    make_gs_pickle(full, 16, fmap_base=128, fmap_max=16)
    data = full.read_bytes()
    for cut in (3, 100, len(data) // 2, len(data) - 1):
        part = tmp_path / f"cut{cut}.pkl"
        part.write_bytes(data[:cut])
        with pytest.raises(WeightsFormatError, match="truncated") as exc:
            load_tf_pickle(part)
        assert "i2s weights fetch stylegan1-ffhq-1024 --force" in str(exc.value) and str(part) in str(exc.value)

    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        load_tf_pickle(tmp_path / "nope.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(WeightsFormatError, match="not a binary pickle"):
        load_tf_pickle(junk)


def test_not_a_network_tuple(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([1, 2], protocol=4))
    with pytest.raises(WeightsFormatError, match="3-tuple"):
        load_tf_pickle(path)
