"""Tests of i2s.train: the discriminator, the schedule, a few training steps, exact resume,
export and the EMA generator. Tiny random data, CPU, one thread; well under a minute."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2s.stylegan import StyleGAN, StyleGANConfig
from i2s.train import (CARRY_FORMAT, EXPORT_FORMAT, Discriminator, Schedule, Trainer, diff_augment, ema_update,
                       export_carry, export_generator, main, parse_args, parse_schedule)

MINI = StyleGANConfig(resolution=64, fmap_base=2048, fmap_max=128)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, size=(20, 64, 64, 3), dtype=np.uint8))
    return path


def _argv(data_path: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data_path), "--out", str(out), "--threads", "1", "--device", "cpu",
            "--batch", "8", "--schedule", "8:rest", "--no-progress", *extra]


def _params(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# --------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("down", ["stride", "pool"])
def test_discriminator_shapes_every_block_and_alpha(down):
    torch.manual_seed(0)
    D = Discriminator(MINI, down=down)
    assert D.max_block == 4
    for block in range(D.max_block + 1):
        res = 4 * 2**block
        x = torch.randn(4, 3, res, res)
        for alpha in (0.0, 0.3, 1.0):
            out = D(x, block, alpha)
            assert out.shape == (4, 1) and torch.isfinite(out).all()
        if block > 0:  # alpha 0 is exactly the lower-resolution D on the pooled image
            torch.testing.assert_close(D(x, block, 0.0), D(torch.nn.functional.avg_pool2d(x, 2), block - 1, 1.0))
    with pytest.raises(ValueError):
        D(torch.randn(4, 3, 16, 16), 1)
    # odd batch: the minibatch-stddev group shrinks to a divisor
    assert D(torch.randn(6, 3, 64, 64)).shape == (6, 1)


def test_discriminator_channels_mirror_generator():
    D = Discriminator(MINI)
    G = StyleGAN(MINI)
    for b in range(5):
        res = 4 * 2**b
        assert D.fromrgb[b].conv.weight.shape[0] == MINI.channels(res) == G.synthesis.torgb[b].conv.weight.shape[1]
    assert D.blocks[4].conv1_down.conv.weight.shape[:2] == (MINI.channels(32), MINI.channels(64))


# --------------------------------------------------------------------------- schedule and augmentation


def test_schedule_parsing():
    phases = parse_schedule("8:40k,16:60k,32:80k,64:rest")
    assert [(p.res, p.start, p.fade) for p in phases] == [(8, 0, 0), (16, 40_000, 30_000),
                                                         (32, 100_000, 40_000), (64, 180_000, 40_000)]
    assert phases[-1].end == math.inf
    s = Schedule(phases)
    assert s.at(0) == (1, 1.0, (0, 1))
    assert s.at(40_000) == (2, 0.0, (1, 0))
    assert s.at(55_000) == (2, 0.5, (1, 0))
    assert s.at(70_000) == (2, 1.0, (1, 1))
    assert s.at(10**9)[:2] == (4, 1.0)
    assert parse_schedule("8:1k,16:rest/500")[1].fade == 500
    for bad in ("8:1k,32:rest", "8:rest,16:1k", "12:1k", "8"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_diff_augment_shapes_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(5, 3, 16, 16, requires_grad=True)
    y = diff_augment(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (g,) = torch.autograd.grad(y.square().sum(), x)
    assert g.abs().sum() > 0
    # translation + cutout zero out pixels; colour alone never does
    assert (diff_augment(torch.ones(8, 3, 16, 16), "translation,cutout") == 0).any()
    assert not (diff_augment(torch.ones(8, 3, 16, 16), "translation") == 0).all()


# --------------------------------------------------------------------------- training


def test_training_steps_change_weights_finite_losses(data_path, tmp_path):
    trainer = Trainer(parse_args(_argv(data_path, tmp_path / "run")))
    G0, D0 = _params(trainer.G), _params(trainer.D)
    w_avg0 = trainer.G.mapping.w_avg.clone()
    losses = [trainer.training_step() for _ in range(3)]
    assert trainer.state.images_seen == 24 and trainer.state.iterations == 3
    for m in losses:
        for k in ("loss_G", "loss_D", "real_logit", "fake_logit"):
            assert math.isfinite(m[k]), (k, m)
    assert math.isfinite(losses[0]["r1"]) and math.isnan(losses[1]["r1"])  # lazy R1 on d-step 0
    G1, D1 = _params(trainer.G), _params(trainer.D)
    assert not torch.equal(G1["synthesis.layers.2.conv.weight"], G0["synthesis.layers.2.conv.weight"])
    assert not torch.equal(G1["mapping.layers.0.weight"], G0["mapping.layers.0.weight"])
    assert not torch.equal(D1["fromrgb.1.conv.weight"], D0["fromrgb.1.conv.weight"])
    assert not torch.equal(trainer.G.mapping.w_avg, w_avg0)
    # layers above 8x8 take no part yet
    assert torch.equal(G1["synthesis.layers.4.conv.weight"], G0["synthesis.layers.4.conv.weight"])


def test_ema_tracks_generator(data_path, tmp_path):
    tiny = StyleGANConfig(resolution=8, fmap_base=16, fmap_max=8, z_dim=8, w_dim=8, mapping_fmaps=8)
    G_ema, G = StyleGAN(tiny), StyleGAN(tiny)
    with torch.no_grad():
        for pe, p in zip(G_ema.parameters(), G.parameters()):
            pe.fill_(0.0)
            p.fill_(1.0)
        G.mapping.w_avg.fill_(3.0)
    ema_update(G_ema, G, 0.75)
    assert all(torch.allclose(pe, torch.full_like(pe, 0.25)) for pe in G_ema.parameters())
    for be, b in zip(G_ema.buffers(), G.buffers()):
        assert torch.equal(be, b)  # w_avg and the stored noise are copied

    trainer = Trainer(parse_args(_argv(data_path, tmp_path / "run", "--ema-kimg", "0.01", "--ema-rampup", "0")))
    before = _params(trainer.G_ema)
    assert all(torch.equal(before[k], v) for k, v in trainer.G.state_dict().items())
    trainer.training_step()
    G, ema = trainer.G.state_dict(), trainer.G_ema.state_dict()
    k = "synthesis.layers.2.conv.weight"
    assert not torch.equal(ema[k], G[k])
    assert (ema[k] - G[k]).norm() < (before[k] - G[k]).norm()  # moved toward G
    beta = 0.5 ** (8 / 10.0)
    torch.testing.assert_close(ema[k], torch.lerp(G[k], before[k], beta))
    assert torch.equal(ema["mapping.w_avg"], G["mapping.w_avg"])
    assert torch.equal(ema["synthesis.layers.3.epilogue.noise_const"], G["synthesis.layers.3.epilogue.noise_const"])


@pytest.mark.slow
def test_resume_is_exact(data_path, tmp_path):
    """k + m steps with a checkpoint/resume in between == k + m steps straight through; the
    run crosses a phase change (8 px -> fade-in of 16 px) and includes lazy R1 steps."""
    extra = ("--schedule", "8:24,16:rest/16", "--total-kimg", "0.048", "--ckpt-every", "1", "--sample-every", "1")
    straight = tmp_path / "straight"
    assert main(_argv(data_path, straight, *extra)) == 0
    split = tmp_path / "split"
    assert main(_argv(data_path, split, *extra[:2], "--total-kimg", "0.024", *extra[4:])) == 0
    assert main(["--out", str(split), "--resume", "--total-kimg", "0.048", "--threads", "1", "--no-progress"]) == 0

    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert (split / "checkpoint-prev.pt").exists()
    assert a["state"]["images_seen"] == b["state"]["images_seen"] == 48
    assert a["state"]["phase_index"] == 1
    for net in ("G", "D", "G_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    for opt in ("opt_G", "opt_D"):
        for i, s in a[opt]["state"].items():
            for k, v in s.items():
                assert torch.equal(v, b[opt]["state"][i][k]), (opt, i, k)
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    log = (split / "log.jsonl").read_text().splitlines()
    assert len(log) >= 2
    assert list(split.glob("samples-*.png"))


def test_resume_takes_lr_and_betas_from_the_arguments_not_from_adams_saved_state(data_path, tmp_path):
    """--lr given on resume continues the run at that lr (Adam's saved param groups would
    otherwise bring back the old one); without it the checkpoint's lr and betas stay."""
    run = tmp_path / "run"
    assert main(_argv(data_path, run, "--total-kimg", "0.008", "--ckpt-every", "1", "--sample-every", "1",
                      "--lr", "0.002", "--beta2", "0.9")) == 0

    def resume(kimg: str, *extra: str) -> dict:
        assert main(["--out", str(run), "--resume", "--total-kimg", kimg, "--threads", "1", "--no-progress",
                     *extra]) == 0
        return torch.load(run / "checkpoint.pt", weights_only=True)

    kept = resume("0.016")
    changed = resume("0.024", "--lr", "0.0005")
    for opt in ("opt_G", "opt_D"):
        assert kept[opt]["param_groups"][0]["lr"] == 0.002 and kept[opt]["param_groups"][0]["betas"] == (0.0, 0.9)
        assert changed[opt]["param_groups"][0]["lr"] == 0.0005
        assert changed[opt]["param_groups"][0]["betas"] == (0.0, 0.9)
    assert changed["args"]["lr"] == 0.0005 and changed["state"]["images_seen"] == 24


@pytest.mark.slow
def test_export_loads_with_weights_only(data_path, tmp_path):
    trainer = Trainer(parse_args(_argv(data_path, tmp_path / "run")))
    trainer.training_step()
    path = export_generator(trainer.G_ema, tmp_path / "g.pt", {"name": "test", "tier": "embedded"})
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == EXPORT_FORMAT and obj["format_version"] == 1
    assert obj["state_dict"]["mapping.w_avg"].dtype == torch.float16
    assert "synthesis.layers.9.epilogue.noise_const" in obj["state_dict"]
    G = StyleGAN(StyleGANConfig.from_dict(obj["config"]))
    G.load_state_dict({k: v.float() for k, v in obj["state_dict"].items()})
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim))
    assert img.shape == (2, 3, 64, 64) and torch.isfinite(img).all()
    torch.testing.assert_close(G.mapping.w_avg, trainer.G_ema.mapping.w_avg, atol=1e-3, rtol=1e-3)

    # the CLI path: export the EMA generator of a checkpoint
    trainer.save_checkpoint()
    assert main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "cli.pt")]) == 0
    obj = torch.load(tmp_path / "cli.pt", weights_only=True)
    assert obj["info"]["name"] == "mini-faces64" and obj["info"]["tier"] == "embedded"
    assert obj["info"]["images_seen"] == 8 and obj["info"]["trained_resolution"] == 8
    # w̄ of the export is the mean of its own mapping (not the training G's tracked average)
    z = torch.randn(20_000, trainer.G_ema.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        own = trainer.G_ema.mapping.w(z).mean(0)
    spread = (trainer.G_ema.mapping.w(z[:1000]) - own).norm(dim=-1).mean()
    assert (obj["state_dict"]["mapping.w_avg"].float() - own).norm() < 0.05 * spread
    assert "mean of the exported mapping" in obj["info"]["w_avg"]
    # --w-std: W stored at another spread, the same images
    assert main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "narrow.pt"), "--w-std", "0.2",
                 "--no-fp16"]) == 0
    assert main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "wide.pt"), "--no-fp16"]) == 0
    nets = []
    for name in ("narrow.pt", "wide.pt"):
        obj = torch.load(tmp_path / name, weights_only=True)
        G = StyleGAN(StyleGANConfig.from_dict(obj["config"]))
        G.load_state_dict(obj["state_dict"])
        nets.append(G.eval())
    assert nets[0].w_std() == pytest.approx(0.2, rel=1e-4) and nets[1].w_std() != pytest.approx(0.2, rel=0.05)
    assert "per-dimension std 0.2000" in torch.load(tmp_path / "narrow.pt", weights_only=True)["info"]["w_std"]
    assert torch.load(tmp_path / "narrow.pt", weights_only=True)["info"]["name"] == "mini-faces64"
    # --name: the name the export carries; a bad one, or one without --export, is refused in a line
    assert main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "named.pt"), "--name", "mini-faces64-v3"]) == 0
    assert torch.load(tmp_path / "named.pt", weights_only=True)["info"]["name"] == "mini-faces64-v3"
    for bad in (["--name", "../x"], ["--name", "Mini V3"], ["--name", ""]):
        with pytest.raises(SystemExit, match="--name"):
            main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "x.pt"), *bad])
    with pytest.raises(SystemExit, match="together with --export"):
        main(_argv(data_path, tmp_path / "run2", "--name", "mini-faces64-v3"))
    with torch.no_grad():
        torch.testing.assert_close(nets[0](z[:3], truncation_psi=0.7), nets[1](z[:3], truncation_psi=0.7),
                                   atol=1e-4, rtol=1e-4)
    for bad in (["--w-std", "0"], ["--w-std", "-1"]):
        with pytest.raises(SystemExit, match="positive spread"):
            main(["--out", str(tmp_path / "run"), "--export", str(tmp_path / "x.pt"), *bad])
    with pytest.raises(SystemExit, match="with --export"):
        main(_argv(data_path, tmp_path / "run2", "--w-std", "0.3"))
    try:
        from i2s.weights.converted import load_converted
    except ImportError:
        return
    G2 = load_converted(tmp_path / "cli.pt")
    with torch.no_grad():
        assert G2(torch.randn(1, G2.z_dim)).shape == (1, 3, 64, 64)


def test_transfer_keeps_matching_tensors_and_the_schedule_position(data_path, tmp_path):
    """--transfer: a run with a smaller --fmap-base (channels differ only above 16 px) starts
    from another run's checkpoint: the low-resolution tensors are copied, the 32/64-px ones are
    fresh, and images seen / data position carry over."""
    old_dir = tmp_path / "old"
    assert main(_argv(data_path, old_dir, "--fmap-base", "1024", "--total-kimg", "0.016")) == 0
    old = torch.load(old_dir / "checkpoint.pt", weights_only=True)
    new_dir = tmp_path / "new"
    assert main(_argv(data_path, new_dir, "--fmap-base", "512", "--transfer", str(old_dir / "checkpoint.pt"),
                      "--total-kimg", "0.024")) == 0
    new = torch.load(new_dir / "checkpoint.pt", weights_only=True)
    assert new["config"]["fmap_base"] == 512 and new["state"]["images_seen"] == 24

    trainer = Trainer(parse_args(_argv(data_path, tmp_path / "t", "--fmap-base", "512")))
    fresh = _params(trainer.G)
    copied, left = trainer.transfer_from(old)
    assert copied > 0 and left > 0
    assert trainer.state.images_seen == 16 and trainer.stream.pos == old["state"]["data_pos"]
    G = trainer.G.state_dict()
    same = [k for k, v in old["G"].items() if G[k].shape == v.shape]
    differ = [k for k, v in old["G"].items() if G[k].shape != v.shape]
    assert "mapping.w_avg" in same and differ  # 64-px layers have half the channels
    for k in same:
        assert torch.equal(G[k], old["G"][k]), k
    for k in differ:
        assert torch.equal(G[k], fresh[k]), k


# --------------------------------------------------------------------------- projected discriminator (mini v2)


def test_projected_discriminator_trains_heads_only():
    from i2s.projected import ProjectedDiscriminator

    D = ProjectedDiscriminator(input_size=128)
    n_heads = sum(p.numel() for h in D.heads for p in h.parameters())
    assert sum(p.numel() for p in D.parameters()) == n_heads  # the feature net and projections are frozen
    sd = D.state_dict()
    assert "proj.ccm0" in sd and "proj.csm0" in sd and not any(k.startswith("feature_net") for k in sd)
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    out = D(x)
    assert [tuple(o.shape) for o in out] == [(2, 1, 4, 4)] * 4
    sum(o.mean() for o in out).backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.feature_net.parameters())
    # the random projections are fixed by the seed (a checkpoint restores them; a new D is reproducible)
    assert torch.equal(ProjectedDiscriminator(128, proj_seed=0).proj.ccm1, D.proj.ccm1)
    assert not torch.equal(ProjectedDiscriminator(128, proj_seed=1).proj.ccm1, D.proj.ccm1)
    with pytest.raises(ValueError):
        ProjectedDiscriminator(input_size=100)


def test_projected_heads_with_minibatch_stddev_see_the_group_and_keep_the_old_keys(data_path, tmp_path):
    """--proj-mbstd G: a head's logits depend on the other samples of its group (a generator
    drawing one face gets caught); without it they do not, and its state dict's keys are the
    ones earlier checkpoints have. A run with it resumes exactly."""
    from i2s.projected import ProjectedDiscriminator

    plain = ProjectedDiscriminator(input_size=64, width=0.25).eval()  # eval: spectral norm's power
    mb = ProjectedDiscriminator(input_size=64, width=0.25, feature_net=plain.feature_net, mbstd_group=4).eval()
    # iteration would otherwise change the weights between the two calls
    assert list(mb.state_dict()) == list(plain.state_dict())  # same keys; the logit conv takes one more map
    assert mb.heads[0].net[-1].weight.shape[1] == plain.heads[0].net[-1].weight.shape[1] + 1
    x = torch.randn(8, 3, 64, 64)
    y = x.clone()
    y[4] += 1.0  # groups are strided (sample i in group i mod 2): samples 0, 2 and 6 share its group
    with torch.no_grad():
        for D, moves in ((plain, False), (mb, True)):
            a, b = D(x), D(y)
            others = [i for i in range(8) if i != 4]
            changed = any(not torch.allclose(p[others], q[others]) for p, q in zip(a, b))
            assert changed == moves, D
    with pytest.raises(ValueError, match="--proj-mbstd"):
        Trainer(parse_args(_projected_argv(data_path, tmp_path / "bad", "--proj-mbstd", "-1")))
    a, b = _straight_and_split(data_path, tmp_path, "--proj-mbstd", "2")
    assert a["args"]["proj_mbstd"] == 2
    for net in ("G", "D", "G_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)


def test_projected_d_at_one_more_than_a_multiple_of_32_pads_every_edge_alike():
    """EfficientNet's stride-2 layers use TensorFlow's "same" padding: a total of
    max((ceil(i / s) - 1) s + k - i, 0) pixels, the odd one at the bottom and right. At 96 px every
    stride-2 layer pads an odd total (bottom and right edges only); at 97 every one pads an even
    total, split evenly, so no edge of the image is seen differently. D runs at 97 px."""
    import math

    from i2s.projected import ProjectedDiscriminator

    D = ProjectedDiscriminator(input_size=97)
    pads: list[int] = []

    def record(module, inputs):
        i, k, s_ = inputs[0].shape[-1], module.kernel_size[0], module.stride[0]
        pads.append(max((math.ceil(i / s_) - 1) * s_ + k - i, 0))

    hooks = [m.register_forward_pre_hook(record) for m in D.feature_net.modules()
             if isinstance(m, torch.nn.Conv2d) and m.stride[0] == 2]
    assert len(hooks) == 5  # the stem and four stages: 1/2 to 1/32
    x = torch.randn(2, 3, 64, 64)
    out = D(x)
    assert all(o.shape[:2] == (2, 1) for o in out)
    assert len(pads) == 5 and all(p % 2 == 0 for p in pads)
    pads.clear()
    ProjectedDiscriminator(input_size=96, feature_net=D.feature_net)(x)
    assert len(pads) == 5 and all(p % 2 == 1 for p in pads)
    for h in hooks:
        h.remove()


def test_hinge_losses():
    from i2s.projected import hinge_d_loss, hinge_g_loss

    real = [torch.tensor([2.0, 0.5]), torch.tensor([-1.0])]
    fake = [torch.tensor([-3.0, 0.0]), torch.tensor([1.0])]
    # scale 0: relu(1-r) = [0, .5] -> .25; relu(1+f) = [0, 1] -> .5 ; scale 1: 2 + 2 = 4
    assert hinge_d_loss(real, fake).item() == pytest.approx((0.75 + 4.0) / 2)
    assert hinge_g_loss(fake).item() == pytest.approx(-(-1.5 + 1.0) / 2)


def _projected_argv(data_path: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data_path), "--out", str(out), "--threads", "1", "--device", "cpu", "--batch", "4",
            "--schedule", "64:rest", "--d-arch", "projected", "--proj-res", "64", "--fmap-base", "256",
            "--fmap-max", "32", "--no-progress", *extra]


def _straight_and_split(data_path: Path, tmp_path: Path, *extra: str) -> tuple[dict, dict]:
    """A projected run of 12 images straight, and one stopped at 4 and resumed: both final checkpoints."""
    more = ("--ckpt-every", "1", "--sample-every", "1", *extra)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_projected_argv(data_path, straight, "--total-kimg", "0.012", *more)) == 0
    assert main(_projected_argv(data_path, split, "--total-kimg", "0.004", *more)) == 0
    assert main(["--out", str(split), "--resume", "--total-kimg", "0.012", "--threads", "1", "--no-progress"]) == 0
    return (torch.load(straight / "checkpoint.pt", weights_only=True),
            torch.load(split / "checkpoint.pt", weights_only=True))


@pytest.mark.slow
def test_projected_training_step_and_exact_resume(data_path, tmp_path):
    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "run", "--precision", "bf16")))
    assert trainer.precision == "bf16"
    G0, D0 = _params(trainer.G), _params(trainer.D)
    feat0 = {k: v.clone() for k, v in trainer.D.feature_net.state_dict().items()}
    m = trainer.training_step()
    assert all(math.isfinite(m[k]) for k in ("loss_G", "loss_D", "real_logit", "fake_logit"))
    assert math.isnan(m["r1"])
    G1, D1 = _params(trainer.G), _params(trainer.D)
    assert not torch.equal(G1["synthesis.layers.9.conv.weight"], G0["synthesis.layers.9.conv.weight"])
    assert not torch.equal(D1["heads.0.net.0.parametrizations.weight.original"],
                           D0["heads.0.net.0.parametrizations.weight.original"])
    assert torch.equal(D1["proj.ccm0"], D0["proj.ccm0"])
    assert all(torch.equal(v, feat0[k]) for k, v in trainer.D.feature_net.state_dict().items())

    a, b = _straight_and_split(data_path, tmp_path)
    assert a["args"]["d_arch"] == b["args"]["d_arch"] == "projected"
    for net in ("G", "D", "G_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)


@pytest.mark.slow
def test_pixel_d_beside_the_projected_d_trains_resumes_exactly_and_carries(data_path, tmp_path):
    """--d-pixel: a pixel-space StyleGAN D trains beside the projected one (its own loss, R1 on
    its steps), G's loss gains its weighted term, the run resumes exactly with both Ds, a resume
    without it is refused in one line, and the carried state takes it along."""
    pixel = ("--d-pixel", "0.5", "--d-pixel-fmap", "128", "--r1-interval", "1")
    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "run", *pixel)))
    P0 = _params(trainer.D_pixel)
    m = trainer.training_step()
    assert all(math.isfinite(m[k]) for k in ("loss_D_pixel", "r1_pixel", "loss_G_pixel"))
    P1 = _params(trainer.D_pixel)  # the full-resolution path trained (the lower fromrgb layers are unused)
    assert all(not torch.equal(P1[k], P0[k]) for k in ("fromrgb.4.conv.weight", "blocks.4.conv0.conv.weight",
                                                       "epilogue.dense1.weight"))
    alone = Trainer(parse_args(_projected_argv(data_path, tmp_path / "alone")))
    assert alone.D_pixel is None and "loss_D_pixel" not in alone.training_step()

    a, b = _straight_and_split(data_path, tmp_path, *pixel)
    straight = tmp_path / "straight"
    for net in ("G", "D", "G_ema", "D_pixel"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)

    without = {k: v for k, v in a.items() if k not in ("D_pixel", "opt_D_pixel")}
    with pytest.raises(ValueError, match="no pixel D"):
        Trainer(parse_args(_projected_argv(data_path, tmp_path / "x", *pixel))).load_checkpoint(without)
    carry = tmp_path / "carry.pt"
    assert main(["--out", str(straight), "--export-carry", str(carry)]) == 0
    nxt = Trainer(parse_args(_projected_argv(data_path, tmp_path / "next", *pixel)))
    copied, left = nxt.transfer_from(torch.load(carry, weights_only=True))
    assert left == 0
    k = next(iter(a["D_pixel"]))
    torch.testing.assert_close(nxt.D_pixel.state_dict()[k], a["D_pixel"][k], atol=2e-3, rtol=1e-3)


def test_carried_state_is_small_and_transfers_D_too(data_path, tmp_path):
    """--export-carry writes G/G_ema and D's heads in float16, without optimiser moments;
    --transfer from it restores all three networks (D too, unlike an exported generator) and the
    schedule position, so a run goes on on another machine without restarting its discriminator."""
    run = tmp_path / "run"
    assert main(_projected_argv(data_path, run, "--total-kimg", "0.008", "--ckpt-every", "1")) == 0
    carry = tmp_path / "carry.pt"
    assert main(["--out", str(run), "--export-carry", str(carry)]) == 0
    full = torch.load(run / "checkpoint.pt", weights_only=True)
    obj = torch.load(carry, weights_only=True)
    assert obj["format"] == CARRY_FORMAT and "opt_G" not in obj and "opt_D" not in obj
    assert obj["G"]["synthesis.layers.9.conv.weight"].dtype == torch.float16
    assert carry.stat().st_size < 0.6 * (run / "checkpoint.pt").stat().st_size
    for k, v in full["D"].items():  # heads in float16, the fixed projections exact
        if k.startswith("proj."):
            assert torch.equal(obj["D"][k], v), k
        else:
            torch.testing.assert_close(obj["D"][k].float(), v.float(), atol=2e-3, rtol=1e-3)

    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "next")))
    D_fresh = _params(trainer.D)
    copied, left = trainer.transfer_from(obj)
    assert left == 0 and trainer.state.images_seen == full["state"]["images_seen"]
    heads = "heads.0.net.0.parametrizations.weight.original"
    torch.testing.assert_close(trainer.D.state_dict()[heads], full["D"][heads], atol=2e-3, rtol=1e-3)
    assert torch.equal(trainer.D.state_dict()["proj.ccm0"], full["D"]["proj.ccm0"])
    assert not torch.equal(D_fresh[heads], full["D"][heads])
    torch.testing.assert_close(trainer.G_ema.state_dict()["synthesis.layers.9.conv.weight"],
                               full["G_ema"]["synthesis.layers.9.conv.weight"], atol=2e-3, rtol=1e-3)
    # and the CLI goes on from it
    assert main(_projected_argv(data_path, tmp_path / "cli", "--transfer", str(carry), "--total-kimg", "0.012")) == 0
    assert torch.load(tmp_path / "cli" / "checkpoint.pt", weights_only=True)["state"]["images_seen"] == 12
    # a training checkpoint that is not one is refused by name
    torch.save({"format": "something-else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an i2s training checkpoint"):
        export_carry(tmp_path / "bad.pt", tmp_path / "x.pt")


def test_an_exported_generator_and_its_d_file_carry_a_run_with_D_kept(data_path, tmp_path):
    """--export-d writes D's trained tensors (float16, no fixed projections, their sha256 kept);
    --transfer GEN --transfer-d D starts a run on G_ema from the export and D from the file, its
    projections drawn again. A D built otherwise (another --seed) is refused in one line, as is a
    file that is not a D file, and --transfer-d without --transfer."""
    run = tmp_path / "run"
    assert main(_projected_argv(data_path, run, "--total-kimg", "0.008", "--ckpt-every", "1")) == 0
    gen, dfile = tmp_path / "gen.pt", tmp_path / "gen-d.pt"
    assert main(["--out", str(run), "--export", str(gen)]) == 0
    assert main(["--out", str(run), "--export-d", str(dfile)]) == 0
    full = torch.load(run / "checkpoint.pt", weights_only=True)
    obj = torch.load(dfile, weights_only=True)
    assert obj["format"] == "i2s-train-d" and not any(k.startswith("proj.") for k in obj["D"])
    assert "G" not in obj and "G_ema" not in obj and obj["state"]["images_seen"] == 8
    heads = "heads.0.net.0.parametrizations.weight.original"
    assert obj["D"][heads].dtype == torch.float16

    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "next")))
    D_fresh = _params(trainer.D)
    trainer.transfer_from(torch.load(gen, weights_only=True))
    assert torch.equal(_params(trainer.D)[heads], D_fresh[heads])  # an exported generator alone: D afresh
    assert trainer.transfer_discriminator(torch.load(dfile, weights_only=True)) == len(obj["D"])
    torch.testing.assert_close(trainer.D.state_dict()[heads], full["D"][heads], atol=2e-3, rtol=1e-3)
    assert torch.equal(trainer.D.state_dict()["proj.ccm0"], full["D"]["proj.ccm0"])  # drawn again, the same
    # the CLI goes on from both
    assert main(_projected_argv(data_path, tmp_path / "cli", "--transfer", str(gen), "--transfer-d", str(dfile),
                                "--total-kimg", "0.012")) == 0
    assert torch.load(tmp_path / "cli" / "checkpoint.pt", weights_only=True)["state"]["images_seen"] == 12

    with pytest.raises(SystemExit, match="other fixed projections"):
        main(_projected_argv(data_path, tmp_path / "seed1", "--seed", "1", "--transfer", str(gen), "--transfer-d", str(dfile)))
    with pytest.raises(SystemExit, match="not a discriminator file"):
        main(_projected_argv(data_path, tmp_path / "g2", "--transfer", str(gen), "--transfer-d", str(gen)))
    with pytest.raises(SystemExit, match="needs --transfer"):
        main(_projected_argv(data_path, tmp_path / "g3", "--transfer-d", str(dfile)))
    dfile.write_bytes(b"PK\x03\x04 torn zip")
    with pytest.raises(SystemExit) as e:
        main(_projected_argv(data_path, tmp_path / "g4", "--transfer", str(gen), "--transfer-d", str(dfile)))
    assert str(dfile) in str(e.value) and "\n" not in str(e.value)


def test_d_warmup_trains_D_alone_before_G_moves(data_path, tmp_path):
    """--d-warmup-kimg K after --transfer: the first K kimg are D steps on the transferred G's
    fakes, G, G_ema and the image count untouched (and kept in a checkpoint taken meanwhile);
    then training goes on as before. Refused without --transfer or with a count that is not positive."""
    run = tmp_path / "run"
    assert main(_projected_argv(data_path, run, "--total-kimg", "0.008", "--ckpt-every", "1")) == 0
    gen = tmp_path / "gen.pt"
    assert main(["--out", str(run), "--export", str(gen)]) == 0

    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "next")))
    trainer.transfer_from(torch.load(gen, weights_only=True))
    trainer.state.d_warmup_left = 8
    G0, Gema0, D0 = _params(trainer.G), _params(trainer.G_ema), _params(trainer.D)
    trainer.training_step()
    assert trainer.state.d_warmup_left == 4 and trainer.checkpoint_dict()["state"]["d_warmup_left"] == 4
    trainer.training_step()
    assert trainer.state.d_warmup_left == 0 and trainer.state.images_seen == 8 and trainer.state.d_steps == 2
    assert all(torch.equal(G0[k], v) for k, v in _params(trainer.G).items())
    assert all(torch.equal(Gema0[k], v) for k, v in _params(trainer.G_ema).items())
    assert any(not torch.equal(D0[k], v) for k, v in _params(trainer.D).items())
    trainer.training_step()  # warm-up over: G moves and the images count
    assert trainer.state.images_seen == 12 and any(not torch.equal(G0[k], v) for k, v in _params(trainer.G).items())

    assert main(_projected_argv(data_path, tmp_path / "cli", "--transfer", str(gen), "--d-warmup-kimg", "0.008",
                                "--total-kimg", "0.012")) == 0
    st = torch.load(tmp_path / "cli" / "checkpoint.pt", weights_only=True)["state"]
    assert (st["images_seen"], st["d_steps"], st["d_warmup_left"]) == (12, 3, 0)
    for extra in (("--d-warmup-kimg", "4"), ("--transfer", str(gen), "--d-warmup-kimg", "-1")):
        with pytest.raises(SystemExit, match="--d-warmup-kimg"):
            main(_projected_argv(data_path, tmp_path / "bad", *extra))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 torn zip", b"\x80\x02 a pickle"])
def test_run_files_that_are_not_ours_are_one_line_refusals(data_path, tmp_path, content, capsys):
    """--transfer, --resume, --export and --export-carry read through load_run_file: a damaged or
    foreign file ends the command with one line naming it (no traceback, nothing executed)."""
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    for argv in (_argv(data_path, tmp_path / "r1", "--transfer", str(bad)),
                 ["--out", str(tmp_path / "r2"), "--resume", str(bad), "--data", str(data_path)],
                 ["--out", str(tmp_path / "r3"), "--resume", str(bad), "--export", str(tmp_path / "g.pt")],
                 ["--out", str(tmp_path / "r4"), "--resume", str(bad), "--export-carry", str(tmp_path / "c.pt")]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        msg = str(e.value)
        assert str(bad) in msg and "\n" not in msg, argv
    torch.save([1, 2, 3], bad)  # a torch file, but not a dict with a format
    with pytest.raises(SystemExit, match="no format field"):
        main(_argv(data_path, tmp_path / "r5", "--transfer", str(bad)))
    assert not (tmp_path / "g.pt").exists() and not (tmp_path / "c.pt").exists()


def test_minutes_limit_stops_with_checkpoint_and_samples(data_path, tmp_path, monkeypatch):
    grids = []
    real = Trainer.sample_grid
    monkeypatch.setattr(Trainer, "sample_grid", lambda self, path: (grids.append(self.state.images_seen), real(self, path)))
    out = tmp_path / "run"
    assert main(_argv(data_path, out, "--total-kimg", "10", "--minutes", "0.0001", "--sample-every", "50")) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert 0 < ckpt["state"]["images_seen"] < 10_000
    # the first grid, and one at the stop although the next is due only at 50 kimg
    assert grids == [0, ckpt["state"]["images_seen"]]


def test_precision_falls_back_without_native_bf16(monkeypatch):
    from i2s import precision

    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": False)
    assert precision.resolve("auto", "cpu") == "float32"
    assert precision.resolve("bf16", "cpu") == "bf16"  # asked for explicitly: emulated, but it runs
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)
    assert precision.resolve("auto", "cpu") == "bf16"
    assert precision.resolve("float32", "cpu") == "float32"
    assert precision.describe("float32", "cpu").endswith("float32")
    with pytest.raises(ValueError):
        precision.resolve("fp8")


def test_random_flips_cover_all_four_views_and_pass_gradients():
    from i2s.train.trainer import random_flips

    torch.manual_seed(0)
    x = torch.arange(4.0).view(1, 1, 2, 2).expand(64, 1, 2, 2).clone().requires_grad_(True)
    y = random_flips(x)
    views = {tuple(v.flatten().tolist()) for v in y.detach()}
    assert views == {(0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)}
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_upside_down_flips_are_rarer_than_upright_views():
    """--d-flip at 1/2 upside down leaks (a v3 arm drew every face upside down): the default keeps
    upright views the more likely, and 0 never flips vertically."""
    from i2s.train.trainer import VERTICAL_FLIP_P, random_flips

    torch.manual_seed(0)
    x = torch.arange(4.0).view(1, 1, 2, 2).expand(4000, 1, 2, 2)
    upside_down = (random_flips(x)[:, 0, 0, :] >= 2).all(dim=1).float().mean().item()  # top row holds 2, 3
    assert VERTICAL_FLIP_P < 0.5 and abs(upside_down - VERTICAL_FLIP_P) < 0.03
    assert not (random_flips(x, 0.0)[:, 0, 0, :] >= 2).any()


@pytest.mark.parametrize("flag, value, says", [("--d-flip-v", "0.5", "below 0.5"), ("--d-flip-v", "-1", "below 0.5"),
                                                ("--range-penalty", "nan", "0 or more"), ("--d-pixel", "-2", "0 or more"),
                                                ("--locality", "-0.1", "0 or more")])
def test_bad_weights_and_flip_probability_are_one_line(data_path, tmp_path, flag, value, says):
    with pytest.raises(SystemExit) as e:
        main(_projected_argv(data_path, tmp_path / "run", flag, value))
    assert says in str(e.value) and str(e.value).startswith("[i2s.train] --") and "\n" not in str(e.value)


def test_range_penalty_counts_only_what_leaves_the_image_range(data_path, tmp_path):
    """mean relu(|x| - 1)^2: nothing inside [-1, 1], the squared excess outside; with
    --range-penalty a training step logs it and its gradient pulls a stray pixel back."""
    from i2s.train.trainer import range_penalty

    assert range_penalty(torch.tensor([0.5, -1.0, 3.0, -4.0])) == pytest.approx((0 + 0 + 4 + 9) / 4)
    x = torch.tensor([0.9, 2.0, -3.0], requires_grad=True)
    range_penalty(x).backward()
    assert x.grad[0] == 0 and x.grad[1] > 0 and x.grad[2] < 0  # descent moves 2 down and -3 up
    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "run", "--range-penalty", "10")))
    m = trainer.training_step()
    assert math.isfinite(m["range"]) and m["range"] >= 0
    assert "range" not in Trainer(parse_args(_projected_argv(data_path, tmp_path / "off"))).training_step()


def test_packed_archive_round_trip(tmp_path):
    from i2s.train.data import open_dataset, pack_dataset

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0  # smooth, face-photo-like content (JPEG's case)
    smooth = np.stack([np.stack([(yy * a + xx * b) * 200 + 20 for a, b in rng.uniform(0, 1, (3, 2))], -1)
                       for _ in range(5)]).astype(np.uint8)
    path = pack_dataset(smooth, tmp_path / "faces.zip")
    back = open_dataset(path)
    assert back.shape == (5, 64, 64, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - smooth).mean() < 3  # JPEG q90, 4:2:0 chroma
    import zipfile
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("a.png", b"not an image")
    with pytest.raises(Exception):
        open_dataset(tmp_path / "bad.zip")


# --------------------------------------------------------------------------- mini v3's recipe (issue 31)

V3_FLAGS = ("--one-g-pass", "--d-width", "0.5", "--d-precision", "float32", "--locality", "1",
            "--locality-interval", "2")


def test_v3_recipe_resumes_exactly(data_path, tmp_path):
    """The v3 flags (one G pass, narrow heads, float32 D, the lazy locality penalty) keep the exact resume."""
    extra = ("--total-kimg", "0.016", "--ckpt-every", "1", "--sample-every", "1", "--precision", "bf16", *V3_FLAGS)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(_projected_argv(data_path, straight, *extra)) == 0
    assert main(_projected_argv(data_path, split, *extra[:1], "0.008", *extra[2:])) == 0
    assert main(["--out", str(split), "--resume", "--total-kimg", "0.016", "--threads", "1", "--no-progress"]) == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["args"]["locality"] == b["args"]["locality"] == 1.0 and a["args"]["one_g_pass"]
    for net in ("G", "D", "G_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    logged = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert any("locality" in r and math.isfinite(r["locality"]) for r in logged)


def test_one_g_pass_renders_once_per_iteration(data_path, tmp_path):
    calls = []
    for flags, want in (((), 2), (("--one-g-pass",), 1)):
        trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / f"r{want}", *flags)))
        hook = trainer.G.synthesis.register_forward_hook(lambda *a: calls.append(1))
        calls.clear()
        trainer.training_step()
        hook.remove()
        assert len(calls) == want


def test_float32_discriminator_beside_a_bf16_generator(data_path, tmp_path):
    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "r", "--precision", "bf16",
                                                 "--d-precision", "float32", "--d-width", "0.5")))
    assert (trainer.precision, trainer.d_precision) == ("bf16", "float32")
    w = trainer.D.heads[0].net[0].parametrizations.weight.original
    assert w.dtype == torch.float32 and w.is_contiguous(memory_format=torch.channels_last)
    assert trainer.D.heads[0].net[0].out_channels == 64  # half of width 1's 128
    m = trainer.training_step()
    assert all(math.isfinite(m[k]) for k in ("loss_G", "loss_D"))


def test_layout_ignores_colour_and_sees_where_things_are():
    from i2s.train.trainer import layout

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 1, 8, 8, generator=g) * 2 - 1).repeat_interleave(8, 2).repeat_interleave(8, 3)
    x = x.expand(-1, 3, -1, -1)  # grey blocks: a layout at 8 px
    tinted = x + torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1)  # a colour cast moves every channel
    assert torch.allclose(layout(tinted, 8), layout(x, 8), atol=1e-5)
    moved = torch.roll(x, 16, dims=3)
    assert (layout(moved, 8) - layout(x, 8)).square().mean() > 0.5


def test_locality_penalty_is_lowered_by_its_own_gradient(data_path, tmp_path):
    """A few Adam steps on the penalty alone lower it: it is a differentiable function of G that G can meet."""
    trainer = Trainer(parse_args(_projected_argv(data_path, tmp_path / "r", "--locality", "1")))
    opt = torch.optim.Adam(trainer.G.synthesis.parameters(), lr=0.01)
    torch.manual_seed(0)
    with torch.no_grad():
        before = [float(trainer.locality_loss(8)) for _ in range(3)]
    for _ in range(30):
        opt.zero_grad()
        trainer.locality_loss(8).backward()
        opt.step()
    torch.manual_seed(0)
    with torch.no_grad():
        after = [float(trainer.locality_loss(8)) for _ in range(3)]
    assert np.mean(after) < 0.5 * np.mean(before)


def test_an_unknown_diffaug_operation_is_one_line_before_training(data_path, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(_projected_argv(data_path, tmp_path / "r", "--diffaug-policy", "color,colour"))
    assert "colour" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_export_average_from_is_the_mean_of_the_kept_snapshots(data_path, tmp_path):
    """--export F --average-from K: F's weights are the uniform mean of the run's snapshots from K
    kimg on (w̄ estimated again for the averaged mapping, as every export does), the info says
    which; fewer than two snapshots, --average-from without --export and a foreign file among the
    snapshots are one-line refusals."""
    out = tmp_path / "run"
    assert main(_argv(data_path, out, "--total-kimg", "0.048", "--ckpt-every", "0.008", "--keep-every", "0.016",
                      "--sample-every", "1")) == 0
    avg = tmp_path / "avg.pt"
    assert main(["--out", str(out), "--export", str(avg), "--average-from", "0.03", "--no-fp16"]) == 0
    snaps = [torch.load(out / "snapshots" / n, weights_only=True)["state_dict"] for n in ("0.032k.pt", "0.048k.pt")]
    got = torch.load(avg, weights_only=True)
    assert "2 snapshots" in got["info"]["averaged"] and "0.032k to 0.048k" in got["info"]["averaged"]
    compared = 0
    for k, v in got["state_dict"].items():
        if k != "mapping.w_avg" and v.is_floating_point():
            torch.testing.assert_close(v, (snaps[0][k].float() + snaps[1][k].float()) / 2)
            compared += 1
    assert compared > 10 and any(not torch.equal(snaps[0][k], snaps[1][k]) for k in snaps[0] if k != "mapping.w_avg")
    with pytest.raises(SystemExit, match="1 kept snapshot"):
        main(["--out", str(out), "--export", str(avg), "--average-from", "0.04"])
    with pytest.raises(SystemExit, match="goes with --export"):
        main(["--out", str(out), "--export-d", str(tmp_path / "d.pt"), "--average-from", "0"])
    (out / "snapshots" / "0.056k.pt").write_bytes(b"\x80\x02 a pickle")
    with pytest.raises(SystemExit) as e:
        main(["--out", str(out), "--export", str(avg), "--average-from", "0.03"])
    assert "0.056k.pt" in str(e.value) and "\n" not in str(e.value)


def test_keep_every_exports_g_ema_snapshots_that_load(data_path, tmp_path):
    """--keep-every: a G_ema export at the first checkpoint past each multiple, loadable by name."""
    from i2s.models import load_generator

    out = tmp_path / "run"
    assert main(_argv(data_path, out, "--total-kimg", "0.048", "--ckpt-every", "0.008", "--keep-every", "0.016",
                      "--sample-every", "1")) == 0
    snaps = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snaps == ["0.016k.pt", "0.032k.pt", "0.048k.pt"]
    seen = sorted(int(torch.load(out / "snapshots" / n, weights_only=False)["info"]["images_seen"]) for n in snaps)
    assert seen == [16, 32, 48]
    G = load_generator(out / "snapshots" / snaps[0])
    assert G.resolution == 64
