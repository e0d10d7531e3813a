"""scripts/mini_report.py --against: a candidate's PSNR against another run's, image by image."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import torch

from conftest import REPO

_spec = importlib.util.spec_from_file_location("mini_report", REPO / "scripts" / "mini_report.py")
mr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mr)


def _rows(psnr: dict[tuple[str, str], float]) -> list[dict]:
    return [{"group": g, "image": i, "psnr_db": f"{v:.3f}", "ssim": "0.9", "loss": "1", "dist_to_w_avg": "1"}
            for (g, i), v in psnr.items()]


def test_against_pairs_images_by_name(tmp_path):
    other = {("holdout faces", f"holdout/{k:03d}"): 28.0 + 0.1 * k for k in range(6)}
    other[("cats", "cats/0")] = 25.0
    path = mr.write_csv(tmp_path / "per_image.csv", _rows(other))
    # this run: every hold-out face 0.5 dB better except the last (1 dB worse), one extra face
    # the other run never embedded (left out), and cats not run at all (no group)
    mine = {k: v + 0.5 for k, v in other.items() if k[0] == "holdout faces"}
    mine[("holdout faces", "holdout/005")] -= 1.5
    mine[("holdout faces", "holdout/099")] = 10.0
    res = mr.against(_rows(mine), mr.read_per_image(path))
    assert set(res) == {"holdout faces"}
    c = res["holdout faces"]
    assert c["n_images"] == 6 and c["wins"] == 5
    assert c["effect"] == pytest.approx((5 * 0.5 - 1.0) / 6, abs=1e-3)
    assert c["low"] < c["effect"] < c["high"]


def test_against_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "per_image.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="per_image.csv: not a report's per_image.csv"):
        mr.read_per_image(bad)
    bad.write_text("group,image,psnr_db,ssim,loss,dist_to_w_avg\n")
    with pytest.raises(SystemExit, match="per_image.csv: a per_image.csv without a single image"):
        mr.read_per_image(bad)
    with pytest.raises(SystemExit, match="missing.csv"):
        mr.read_per_image(tmp_path / "missing.csv")


def test_holdout_progress_carries_an_unfinished_report(tmp_path, monkeypatch):
    """The held-out faces' rows go to OUT/holdout-progress.csv batch by batch; a run started again
    (on a machine without the embedding cache) takes the batches whose rows match the generator's
    weights, the steps, the perceptual network and the pixels, and embeds only the others. A
    generator with other weights, or other steps, embeds everything again; a damaged file is set
    aside in one line."""
    from conftest import make_generator

    calls = []

    def fake_embed_group(G, images, loss_fn, steps, batch, label):
        calls.append(len(images))
        m = images.mean(dim=(1, 2, 3))
        return {"psnr": 20 + m, "ssim": 0.5 + 0 * m, "loss": 1e5 + m, "dist": 3 + m, "recon": images}

    monkeypatch.setattr(mr, "embed_group", fake_embed_group)
    G = make_generator(16)
    net = type("Loss", (), {"perceptual_net": "vgg16-random"})()
    images = torch.rand(10, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    names = [f"holdout/{k:03d}" for k in range(10)]
    progress = tmp_path / mr.PROGRESS

    class Stop(Exception):
        pass

    def stop_after(n):  # an interrupted run: the n-th batch never finishes
        def f(*a):
            if len(calls) == n:
                raise Stop
            return fake_embed_group(*a)
        return f

    monkeypatch.setattr(mr, "embed_group", stop_after(2))
    with pytest.raises(Stop):
        mr.embed_holdout(G, images, names, net, 100, 4, progress)
    assert len(list(csv.DictReader(open(progress)))) == 8  # two batches of 4 written before the stop
    monkeypatch.setattr(mr, "embed_group", fake_embed_group)
    calls.clear()
    rows = mr.embed_holdout(G, images, names, net, 100, 4, progress)
    assert calls == [2] and [r["image"] for r in rows] == names  # only the last batch embedded
    full = [{k: r[k] for k in ("psnr_db", "ssim")} for r in rows]
    calls.clear()
    assert [{k: r[k] for k in ("psnr_db", "ssim")} for r in mr.embed_holdout(G, images, names, net, 100, 4, progress)] == full
    assert calls == []
    calls.clear()
    mr.embed_holdout(G, images, names, net, 200, 4, progress)  # other steps: all again, the old rows kept
    assert calls == [4, 4, 2] and len(list(csv.DictReader(open(progress)))) == 20
    calls.clear()
    mr.embed_holdout(make_generator(16, seed=1), images, names, net, 100, 4, progress)
    assert calls == [4, 4, 2]
    progress.write_text("group,image,psnr_db\nholdout faces,holdout/000,not a number\n")
    calls.clear()
    mr.embed_holdout(G, images, names, net, 100, 4, progress)
    assert calls == [4, 4, 2]
