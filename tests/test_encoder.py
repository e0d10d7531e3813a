"""i2s.encoder: shapes, a training step, exact resume, export/refusal, and embed(init="encoder")."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_generator
from i2s.runner import embed
from i2s.encoder import Encoder, EncoderTrainer, load_encoder, main
from i2s.loss import EmbeddingLoss, LossSettings


@pytest.fixture(scope="module")
def G():
    return make_generator(32, seed=1)


def test_shapes_and_the_untrained_encoder_predicts_w_avg(G):
    enc = Encoder(G.num_layers, G.w_dim, G.w_avg, input_size=64)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    w = enc(x)
    assert w.shape == (3, G.num_layers, G.w_dim)
    assert torch.allclose(w, G.w_avg.expand_as(w))  # zero-initialised last layer: the paper's init


def test_training_steps_lower_the_loss_and_resume_exactly(G, tmp_path):
    t = EncoderTrainer(G, tmp_path / "a", batch=8, lr=1e-3, input_size=64, precision="float32")
    first = t.step()
    for _ in range(8):
        last = t.step()
    assert last["loss_w"] < first["loss_w"] and t.images_seen == 72

    a = EncoderTrainer(G, tmp_path / "s", batch=4, input_size=64, precision="float32")
    for _ in range(4):
        a.step()
    b = EncoderTrainer(G, tmp_path / "r", batch=4, input_size=64, precision="float32")
    b.step(); b.step()
    st = b.state()
    c = EncoderTrainer(G, tmp_path / "r", batch=4, input_size=64, precision="float32")
    c.load_state(st)
    c.step(); c.step()
    for k, v in a.enc.state_dict().items():
        assert torch.equal(v, c.enc.state_dict()[k]), k


def test_export_load_and_refusal_for_another_generator(G, tmp_path):
    t = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32")
    t.step()
    path = t.export(tmp_path / "enc.pt")
    enc = load_encoder(path, G)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(enc(x), t.enc.eval()(x), atol=0.05, rtol=0.05)  # fp16 export
    with pytest.raises(ValueError, match="not for the generator"):
        load_encoder(path, make_generator(32, seed=2))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02cposix\nsystem\nq\x00.")  # a pickle naming code, not a torch zip
    with pytest.raises(ValueError, match="not a readable encoder file"):
        load_encoder(junk, G)


def test_embed_from_the_encoder(G, tmp_path, random_vgg):
    t = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32")
    t.step()
    path = t.export(tmp_path / "enc.pt")
    mse = EmbeddingLoss(LossSettings(variant="mse"))
    with torch.no_grad():
        x = G.synthesis(G.mapping(torch.randn(2, G.z_dim)))
    res = embed(G, x, steps=3, init="encoder", encoder=path, loss_fn=mse, progress=False)
    enc = load_encoder(path, G)
    with torch.no_grad():
        start = enc(x)
    assert res.settings["init"] == "encoder" and len(res.settings["encoder_sha256"]) == 64
    assert not torch.equal(res.w_plus, start) and (res.w_plus - start).abs().max() < 0.1  # 3 small Adam steps from it
    with pytest.raises(FileNotFoundError, match="train-encoder"):
        embed(G, x, steps=1, init="encoder", encoder=tmp_path / "missing.pt", loss_fn=mse, progress=False)


def test_cli_trains_and_resumes(tmp_path, monkeypatch):
    import i2s.models as M

    Gt = make_generator(32, seed=1)
    monkeypatch.setattr(M, "load_generator", lambda name, device="cpu", verbose=True: Gt)
    out = tmp_path / "run"
    assert main(["--model", "tiny", "--out", str(out), "--images", "8", "--batch", "4", "--precision", "float32"]) == 0
    assert (out / "encoder.pt").is_file() and main(["--model", "tiny", "--out", str(out), "--images", "8"]) == 2
    assert main(["--model", "tiny", "--out", str(out), "--images", "16", "--batch", "4", "--resume",
                 "--precision", "float32"]) == 0
    assert torch.load(out / "encoder-checkpoint.pt", weights_only=True)["images_seen"] == 16


def test_sigterm_ends_the_step_saves_and_stops(G, tmp_path):
    import os
    import signal

    t = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32")
    step = t.step

    def step_then_term():
        out = step()
        if t.images_seen == 8:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` does to a background run
        return out

    t.step = step_then_term
    with pytest.raises(SystemExit) as e:
        t.train(400, ckpt_every=1000, progress=False)
    assert e.value.code == 143 and t.images_seen == 8  # the step in hand finished, no more
    assert torch.load(tmp_path / "encoder-checkpoint.pt", weights_only=True)["images_seen"] == 8
    assert (tmp_path / "encoder.pt").is_file()


def test_cached_embed_from_the_encoder_loads_it_once_and_reuses_the_cache(G, tmp_path, monkeypatch):
    import i2s.encoder as E
    from i2s.runner import cached_embed

    t = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32")
    t.step()
    path = t.export(tmp_path / "enc.pt")
    loads = []
    real = E.load_encoder
    monkeypatch.setattr(E, "load_encoder", lambda p, G: loads.append(p) or real(p, G))
    mse = EmbeddingLoss(LossSettings(variant="mse"))
    with torch.no_grad():
        x = G.synthesis(G.mapping(torch.randn(2, G.z_dim)))
    a = cached_embed(G, x, steps=2, init="encoder", encoder=path, loss_fn=mse, cache_dir=tmp_path / "c", progress=False)
    assert loads == [path]
    b = cached_embed(G, x, steps=2, init="encoder", encoder=path, loss_fn=mse, cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(a.w_plus, b.w_plus) and len(list((tmp_path / "c").glob("*.pt"))) == 2
    t.step()  # another encoder: another start, so other cache entries
    t.export(path)
    cached_embed(G, x, steps=2, init="encoder", encoder=path, loss_fn=mse, cache_dir=tmp_path / "c", progress=False)
    assert len(list((tmp_path / "c").glob("*.pt"))) == 4


def test_real_photos_share_the_batch_with_the_image_loss_only(G, tmp_path):
    import numpy as np

    real = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    t = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32", real=real, real_fraction=0.5)
    m = t.step()
    assert m["loss_real"] > 0 and m["loss_w"] > 0 and t.images_seen == 4
    x = t.real_batch(3)
    assert x.shape == (3, 3, 32, 32) and x.min() >= -1 and x.max() <= 1


def test_cli_refuses_a_bad_real_array(tmp_path, monkeypatch, capsys):
    import numpy as np

    import i2s.models as M

    Gt = make_generator(32, seed=1)
    monkeypatch.setattr(M, "load_generator", lambda name, device="cpu", verbose=True: Gt)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 64, 64, 3), np.uint8))  # 64 px photos for a 32 px generator
    assert main(["--model", "tiny", "--out", str(tmp_path / "r"), "--real", str(bad), "--images", "4"]) == 2
    assert "bad.npy" in capsys.readouterr().err
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not an array")
    assert main(["--model", "tiny", "--out", str(tmp_path / "r2"), "--real", str(junk), "--images", "4"]) == 2
    assert "junk.npy: not a readable .npy array" in capsys.readouterr().err


def test_the_large_resolution_path_on_a_narrow_generator(tmp_path):
    """FFHQ-1024's path at small cost: a generator above the encoder's input size (its images are
    shrunk to ``input_size``), more style layers, a step, an export and embed(init="encoder")."""
    G256 = make_generator(256, seed=4)
    t = EncoderTrainer(G256, tmp_path, batch=2, input_size=64, precision="float32")
    m = t.step()
    assert G256.num_layers == 14 and math.isfinite(m["loss_w"]) and math.isfinite(m["loss_image"])
    enc = load_encoder(t.export(tmp_path / "enc.pt"), G256)
    with torch.no_grad():
        x = G256.synthesis(G256.mapping(torch.randn(1, G256.z_dim))).clamp(-1, 1)
    assert enc(x).shape == (1, 14, G256.w_dim)
    mse = EmbeddingLoss(LossSettings(variant="mse"))
    res = embed(G256, x, steps=1, init="encoder", encoder=enc, loss_fn=mse, progress=False)
    assert res.images.shape == x.shape and res.settings["init"] == "encoder"


def test_the_shipped_encoder_belongs_to_the_shipped_mini():
    from i2s.encoder import default_encoder
    from i2s.models import MINI_PATH, REPO_ROOT, load_generator

    if not MINI_PATH.is_file():
        pytest.skip("mini is not shipped in this checkout")
    G = load_generator("mini", verbose=False)
    path = default_encoder(G)
    assert path == REPO_ROOT / "data" / "models" / "mini-faces64-encoder.pt" and path.stat().st_size <= 25_000_000
    enc = load_encoder(path, G)  # refused if it was trained for other weights
    x = torch.zeros(1, 3, 64, 64)
    assert enc(x).shape == (1, G.num_layers, G.w_dim)


def test_the_embedding_loss_term_trains_on_algorithm_1s_objective(G, tmp_path):
    """--lambda-loss: the loss Algorithm 1 minimises, between G(prediction) and the batch, joins
    the encoder's loss; its gradient reaches the encoder and a few steps lower it on a fixed batch."""
    import numpy as np

    mse = EmbeddingLoss(LossSettings(variant="mse"))
    real = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    t = EncoderTrainer(G, tmp_path, batch=4, lr=3e-4, input_size=64, precision="float32", real=real,
                       lambda_image=0.0, lambda_loss=1.0, loss_fn=mse)
    x = t.real_batch(4)
    with torch.no_grad():
        before = mse(G.synthesis(t.enc(x)), x).mean()
    for _ in range(6):
        m = t.step()
    with torch.no_grad():
        after = mse(G.synthesis(t.enc(x)), x).mean()
    assert m["loss_embed"] > 0 and after < before
    off = EncoderTrainer(G, tmp_path, batch=4, input_size=64, precision="float32")
    assert off.step()["loss_embed"] == 0 and off.loss_fn is None
    rec = torch.load(t.export(tmp_path / "enc.pt"), weights_only=True)
    assert rec["lambda_loss"] == 1.0 and rec["perceptual_net"] == "none"  # the mse variant has no network


def test_cli_starts_from_an_exported_encoder_and_refuses_bad_checkpoints(tmp_path, monkeypatch, capsys):
    import i2s.models as M

    Gt = make_generator(32, seed=1)
    monkeypatch.setattr(M, "load_generator", lambda name, device="cpu", verbose=True: Gt)
    t = EncoderTrainer(Gt, None, batch=4, lr=1e-3, input_size=128, precision="float32")
    for _ in range(3):
        t.step()
    shipped = t.export(tmp_path / "shipped.pt")
    out = tmp_path / "run"
    assert main(["--model", "tiny", "--out", str(out), "--images", "16", "--batch", "4", "--precision", "float32",
                 "--from", str(shipped)]) == 0
    assert "12 images seen" in capsys.readouterr().out
    ck = torch.load(out / "encoder-checkpoint.pt", weights_only=True)
    assert ck["images_seen"] == 16  # 12 carried + one batch of 4
    # --from of a file for other weights, and --from together with --resume: one line each
    other = EncoderTrainer(make_generator(32, seed=2), None, batch=4, input_size=128).export(tmp_path / "other.pt")
    assert main(["--model", "tiny", "--out", str(tmp_path / "r2"), "--images", "8", "--from", str(other)]) == 2
    assert "not for the generator" in capsys.readouterr().err
    assert main(["--model", "tiny", "--out", str(out), "--images", "8", "--from", str(shipped), "--resume"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    # a damaged checkpoint: one line naming it, no traceback
    (out / "encoder-checkpoint.pt").write_bytes(b"PK\x03\x04 torn")
    assert main(["--model", "tiny", "--out", str(out), "--images", "32", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "encoder-checkpoint.pt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
