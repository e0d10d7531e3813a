"""Shared fixtures: small generators with the real architecture, an isolated i2s cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from i2s.stylegan import StyleGAN, StyleGANConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("I2S_SHARED", REPO.parent / "shared"))

# One thread: the test tensors are small, and a second thread only thrashes when anything else
# (a background training run, a second pytest) shares the two cores.
torch.set_num_threads(1)


def tiny_config(resolution: int = 32) -> StyleGANConfig:
    """The StyleGAN v1 architecture, narrow: cheap enough for many optimiser steps in a test."""
    return StyleGANConfig(resolution=resolution, fmap_base=256, fmap_max=32, mapping_fmaps=64, z_dim=64, w_dim=64)


def make_generator(resolution: int = 32, seed: int = 0) -> StyleGAN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = StyleGAN(tiny_config(resolution))
        # Trained networks have non-zero biases/noise strengths; give the test net some too.
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.data.normal_(0, 0.1)
    G.mapping.w_avg.copy_(G.estimate_w_avg(n=2000))
    G.info = {"name": f"tiny{resolution}-seed{seed}", "tier": "random"}
    return G.eval().requires_grad_(False)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty i2s cache and torch hub dir: no test sees real weights."""
    home = tmp_path_factory.mktemp("i2s_home")
    monkeypatch.setenv("I2S_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("I2S_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def random_vgg():
    from i2s.loss import load_vgg16_features

    return load_vgg16_features("random")


@pytest.fixture(scope="module")
def tiny_generator_file(tmp_path_factory):
    """A converted-generator file of a tiny random generator (for CLI tests)."""
    from i2s.weights.converted import save_converted

    G = make_generator(32, seed=2)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_converted(path, G.cfg, G.state_dict(), {"name": "tiny-cli", "tier": "random"})
    return path
