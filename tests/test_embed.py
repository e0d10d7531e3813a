"""Algorithm 1: convergence on a generated image, batch == singles, spaces, resume, NaN."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from i2s.embed import initial_latent
from i2s.runner import embed
from i2s.loss import EmbeddingLoss, LossSettings
from conftest import REPO, make_generator


@pytest.fixture(scope="module")
def G():
    return make_generator(32, seed=1)


@pytest.fixture(scope="module")
def loss_fn(random_vgg):
    return EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1])


def _targets(G, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    w_true = G.mapping(z)
    with torch.no_grad():
        return G.synthesis(w_true), w_true


@pytest.mark.slow
def test_w_plus_embedding_recovers_a_generated_image(G, loss_fn):
    img, w_true = _targets(G, n=1, seed=3)
    res = embed(G, img, steps=300, loss_fn=loss_fn, progress=False)
    start, end = res.loss_curve[0, 0].item(), res.loss[0].item()
    assert end < 0.1 * start, (start, end)
    w0 = G.w_avg.expand_as(w_true)
    assert (res.w_plus - w_true).norm() < 0.95 * (w0 - w_true).norm()  # moved towards the true latent
    assert res.psnr[0] > 20
    assert res.images.shape == img.shape and res.loss_curve.shape == (300, 1)
    assert res.settings["perceptual_net"] == "vgg16-random" and res.settings["lr"] == 0.01
    assert res.dist_to_w_avg[0] == pytest.approx((res.w_plus[0] - G.w_avg).norm().item(), rel=1e-5)


@pytest.mark.slow
def test_batch_equals_single_runs(G, loss_fn):
    """A batch of N is N independent problems. Checked in float64: in float32 the batched and
    single convolutions round differently, and Adam's normalised update turns ~1e-7 gradient
    noise on near-zero gradient components into lr-sized steps, so only float64 shows that the
    computation itself is the same."""
    import copy

    G64, loss64 = copy.deepcopy(G).double(), copy.deepcopy(loss_fn).double()
    img, _ = _targets(G, n=3, seed=4)
    img = img.double()
    for init in ("mean", "uniform"):
        batch = embed(G64, img, steps=12, init=init, seed=7, loss_fn=loss64, progress=False)
        for i in range(3):
            single = embed(G64, img[i:i + 1], steps=12, init=init, seed=7, loss_fn=loss64, progress=False)
            assert torch.allclose(batch.w_plus[i], single.w_plus[0], atol=1e-9)
            assert batch.loss[i].item() == pytest.approx(single.loss[0].item(), rel=1e-9)
    # and in float32 the losses still agree closely
    b32 = embed(G, img.float(), steps=25, seed=7, loss_fn=loss_fn, progress=False)
    s32 = embed(G, img[1:2].float(), steps=25, seed=7, loss_fn=loss_fn, progress=False)
    assert b32.loss[1].item() == pytest.approx(s32.loss[0].item(), rel=1e-2)


def test_spaces_and_inits(G, loss_fn):
    img, _ = _targets(G, n=2, seed=5)
    w = embed(G, img, space="w", steps=5, loss_fn=loss_fn, progress=False)
    assert w.latent.shape == (2, G.w_dim) and torch.equal(w.w_plus[:, 0], w.w_plus[:, -1])
    z = embed(G, img, space="z", init="normal", steps=5, loss_fn=loss_fn, progress=False)
    assert z.latent.shape == (2, G.z_dim)
    assert torch.allclose(z.w_plus, G.mapping(z.latent), atol=1e-6)
    u = initial_latent(G, 2, "w+", "uniform", seed=0)
    assert u.min() >= -1 and u.max() <= 1 and torch.equal(u[0], u[1])
    assert torch.equal(initial_latent(G, 1, "w+", "mean", 0)[0], G.w_avg.expand(G.num_layers, -1))
    with pytest.raises(ValueError, match="Z"):
        embed(G, img, space="z", init="mean", steps=1, loss_fn=loss_fn, progress=False)
    with pytest.raises(ValueError, match="images must be"):
        embed(G, img[:, :, :16], steps=1, loss_fn=loss_fn, progress=False)


def test_ablation_variant_runs(G, random_vgg):
    img, _ = _targets(G, n=1, seed=6)
    res = embed(G, img, steps=20, loss_fn=EmbeddingLoss(LossSettings(variant="mse")), progress=False)
    assert res.settings["loss"]["variant"] == "mse" and res.settings["perceptual_net"] == "none"
    assert res.loss[0] < res.loss_curve[0, 0]


class _Interrupting(torch.nn.Module):
    """Wraps a loss and raises KeyboardInterrupt on its ``at``-th call."""

    def __init__(self, inner, at):
        super().__init__()
        self.inner, self.at, self.calls = inner, at, 0
        self.settings, self.perceptual_net = inner.settings, inner.perceptual_net

    def target(self, img):
        return self.inner.target(img)

    def forward(self, x, t):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.inner(x, t)


def test_checkpoint_resume_continues_exactly(G, loss_fn, tmp_path):
    img, _ = _targets(G, n=2, seed=8)
    ref = embed(G, img, steps=30, loss_fn=loss_fn, progress=False)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        embed(G, img, steps=30, loss_fn=_Interrupting(loss_fn, at=18), checkpoint=ck, checkpoint_every=10, progress=False)
    state = torch.load(ck, weights_only=True)
    assert state["step"] == 17  # saved where it stopped, not only at the last multiple of 10
    resumed = embed(G, img, steps=30, loss_fn=loss_fn, checkpoint=ck, checkpoint_every=10, progress=False)
    assert torch.allclose(resumed.w_plus, ref.w_plus, atol=1e-6)
    assert torch.allclose(resumed.loss_curve, ref.loss_curve, rtol=1e-5)
    with pytest.raises(ValueError, match="different run"):
        embed(G, img.flip(-1), steps=30, loss_fn=loss_fn, checkpoint=ck, progress=False)


class _NaNAfter(torch.nn.Module):
    def __init__(self, inner, image, step):
        super().__init__()
        self.inner, self.image, self.step, self.calls = inner, image, step, 0
        self.settings, self.perceptual_net = inner.settings, inner.perceptual_net

    def target(self, img):
        return self.inner.target(img)

    def forward(self, x, t):
        out = self.inner(x, t)
        if self.calls >= self.step:
            out = out.clone()
            out[self.image] = float("nan")
        self.calls += 1
        return out


def test_nan_loss_stops_that_image_only(G, loss_fn):
    img, _ = _targets(G, n=2, seed=9)
    ref = embed(G, img, steps=12, loss_fn=loss_fn, progress=False)
    partial = embed(G, img, steps=4, loss_fn=loss_fn, progress=False)  # latent 5 gave the NaN: latent 4 is the last good one
    res = embed(G, img, steps=12, loss_fn=_NaNAfter(loss_fn, image=1, step=5), progress=False)
    assert res.stopped_at.tolist() == [-1, 5]
    assert torch.allclose(res.w_plus[0], ref.w_plus[0], atol=1e-6)  # the other image is untouched
    assert torch.allclose(res.w_plus[1], partial.w_plus[1], atol=1e-6)
    assert torch.isfinite(res.w_plus).all() and "step 5" in res.messages[0]


# ---------------------------------------------------------------- EmbedSettings (issue 16)

def _legacy():
    spec = importlib.util.spec_from_file_location("embed_before_settings", REPO / "tests" / "legacy" / "embed_before_settings.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("kw", [dict(), dict(space="w", init="uniform", seed=3), dict(space="z", init="normal"),
                                dict(schedule="fast", steps=6), dict(amp=True)])
def test_same_latents_bit_for_bit_as_before_the_refactor(random_vgg, kw, tmp_path):
    """embed() after the EmbedSettings refactor == the frozen pre-refactor copy, bit for bit,
    and records the same settings (latent files keep their metadata; the fast schedule's ramp
    fractions were added to its record later, once the ramp-down became a setting)."""
    G = make_generator(16, seed=2)
    loss = EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1])
    with torch.no_grad():
        x = G.synthesis(G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))))
    kw = {"steps": 5, **kw}
    old = _legacy().embed(G, x, loss_fn=loss, progress=False, **kw)
    new = embed(G, x, loss_fn=loss, progress=False, checkpoint=tmp_path / "ck.pt", **kw)
    for f in ("w_plus", "latent", "images", "loss", "dist_to_w_avg", "psnr", "loss_curve", "stopped_at"):
        assert torch.equal(getattr(old, f), getattr(new, f)), f
    added = {"rampup": 0.05, "rampdown": 0.25} if kw.get("schedule") == "fast" else {}
    assert {**old.settings, **added} == new.settings


def test_settings_object_and_keyword_overrides_agree(random_vgg):
    from i2s.embed import FAST_LR, FAST_STEPS, EmbedSettings

    assert EmbedSettings() == EmbedSettings.make()  # the paper's protocol
    s = EmbedSettings()
    assert (s.space, s.init, s.steps, s.lr, s.betas, s.eps, s.noise_mode) == ("w+", "mean", 5000, 0.01, (0.9, 0.999), 1e-8, "const")
    f = EmbedSettings.make(schedule="fast")
    assert (f.steps, f.lr) == (FAST_STEPS, FAST_LR)
    assert EmbedSettings.make(schedule="fast", steps=None, lr=None) == f
    assert EmbedSettings.make(amp=True).precision == "bf16" and EmbedSettings.make(amp=None).precision == "auto"
    for bad in (dict(space="q"), dict(steps=-5), dict(lr=0), dict(init="zeros"), dict(precision="fp8")):
        with pytest.raises(ValueError):
            EmbedSettings.make(**bad)
    G = make_generator(16, seed=2)
    loss = EmbeddingLoss(vgg=random_vgg[0], vgg_label=random_vgg[1])
    with torch.no_grad():
        x = G.synthesis(G.mapping(torch.randn(1, G.z_dim)))
    a = embed(G, x, EmbedSettings(steps=3, init="uniform", seed=1), loss_fn=loss, progress=False)
    b = embed(G, x, loss_fn=loss, progress=False, steps=3, init="uniform", seed=1)
    assert torch.equal(a.w_plus, b.w_plus) and a.settings == b.settings
    assert a.settings == EmbedSettings(steps=3, init="uniform", seed=1).identity(G, loss)


def test_result_repr_is_short(G, loss_fn):
    with torch.no_grad():
        x = G.synthesis(G.mapping(torch.randn(2, G.z_dim)))
    r = repr(embed(G, x, steps=2, loss_fn=loss_fn, progress=False))
    assert r.startswith("EmbedResult(2 images, w_plus (2, 8, 64), 2 steps in w+, loss [") and len(r) < 200
    assert "tensor(" not in r


def test_default_batch_size_holds_a_cpu_batch_to_its_memory_budget():
    """At 1024 px one image of one step takes ~1.3 GB on a CPU, where running out of memory kills
    the process instead of raising: cached_embed's default batch there is 2, elsewhere 8."""
    from types import SimpleNamespace

    from i2s.runner import default_batch_size

    def G(res, dev="cpu"):
        return SimpleNamespace(resolution=res, device=torch.device(dev))

    assert default_batch_size(make_generator(32)) == 8
    assert [default_batch_size(G(r)) for r in (64, 256, 512, 1024)] == [8, 8, 8, 2]
    assert default_batch_size(G(1024, "meta")) == 8  # a GPU halves the batch on its out-of-memory error
