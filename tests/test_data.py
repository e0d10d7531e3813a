"""Tests of i2s.data (the evaluation set of §3.1) and the ``i2s align`` command."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from i2s import data as D
from i2s.cli import main


def test_eval_set_counts_and_names():
    items = D.eval_images()
    assert len(items) == 25
    for cls in D.CLASSES:
        mine = [i for i in items if i.cls == cls]
        assert len(mine) == 5, f"{cls}: {len(mine)} images"
        names = [i.name for i in mine]
        assert names == sorted(names) and len(set(names)) == 5
        assert all(n.startswith(cls + "/") and "." not in n for n in names)
        assert all(i.path.is_file() and i.path.parent.name == cls for i in mine)
    # classes in the paper's order, stable across calls
    assert [i.cls for i in items[::5]] == list(D.CLASSES)
    assert D.eval_images() == items
    assert "faces/astronaut_eileen_collins" in [i.name for i in items]
    assert D.eval_images("cars") == [i for i in items if i.cls == "cars"]
    with pytest.raises(ValueError, match="unknown class"):
        D.eval_images(("horses",))

    style = D.style_images()
    assert len(style) == 3 and all(s.cls == "style" for s in style)
    assert [s.name for s in style] == sorted(s.name for s in style)

    pairs = D.expression_pairs()
    assert len(pairs) == 5
    assert [p[0] for p in pairs] == sorted(p[0] for p in pairs)
    assert pairs[0][0] == "london002"
    for pid, neutral, smiling in pairs:
        assert neutral.name == f"expressions/{pid}_neutral" and smiling.name == f"expressions/{pid}_smiling"


def test_load_target_face_aligned_and_car_cropped():
    face = D.find_image("faces/astronaut_eileen_collins")
    x = D.load_target(face, 64, zoom=0.7)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1
    # align=None aligns a face; explicit align=False gives the centre crop instead
    crop = D.load_target(face, 64, align=False)
    assert crop.shape == (1, 3, 64, 64) and (crop - x).abs().mean() > 0.05
    # a set name and a path give the same as the EvalImage
    assert torch.equal(D.load_target("faces/astronaut_eileen_collins", 64, zoom=0.7), x)
    assert torch.equal(D.load_target(face.path, 64, zoom=0.7), x)

    car = D.eval_images(("cars",))[0]
    y = D.load_target(car, 48, zoom=0.7)  # zoom is ignored for centre crops
    assert y.shape == (1, 3, 48, 48) and y.min() >= -1 and y.max() <= 1
    src = Image.open(car.path).convert("RGB")
    want = np.asarray(src.resize((48, 48), Image.Resampling.LANCZOS), np.float32) / 127.5 - 1  # square source
    assert np.abs(y[0].permute(1, 2, 0).numpy() - want).max() < 1e-5


def test_class_batch_skips_bad_files(tmp_path, monkeypatch):
    root = tmp_path / "eval"
    shutil.copytree(D.eval_dir() / "faces", root / "faces")
    (root / "faces" / "broken_download.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(D.eval_images(("cars",))[0].path, root / "faces" / "not_a_face.jpg")
    monkeypatch.setenv(D.EVAL_DIR_ENV, str(root))
    assert D.eval_dir() == root

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names, batch = D.load_class_batch("faces", 32, zoom=0.7)
    messages = [str(w.message) for w in caught]
    assert len(names) == 5 and batch.shape == (5, 3, 32, 32)
    assert "faces/broken_download" not in names and "faces/not_a_face" not in names
    assert names == sorted(names)
    assert any("broken_download" in m for m in messages), messages
    assert any("not_a_face" in m and "no face" in m for m in messages), messages
    assert batch.min() >= -1 and batch.max() <= 1


def test_cli_align(tmp_path, capsys):
    faces = D.eval_images(("faces",))[:2]
    car = D.eval_images(("cars",))[0].path
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff truncated")
    # two faces side by side -> <stem>_01.png, <stem>_02.png (left to right)
    pair = Image.new("RGB", (512, 256))
    pair.paste(Image.open(faces[0].path).convert("RGB").resize((256, 256)), (0, 0))
    pair.paste(Image.open(faces[1].path).convert("RGB").resize((256, 256)), (256, 0))
    pair.save(tmp_path / "two_people.jpg", quality=95)

    out = tmp_path / "aligned"
    argv = ["align", str(faces[0].path), str(car), str(broken), str(faces[1].path), str(tmp_path / "two_people.jpg"),
            "--out", str(out), "--size", "64", "--zoom", "0.7"]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 3
    assert f"{car}: no face found" in err and "Fix:" in err
    assert "broken.jpg" in err and err.count("Fix:") == 2
    written = sorted(p.name for p in out.iterdir())
    want_names = [f"{faces[0].path.stem}.png", f"{faces[1].path.stem}.png", "two_people_01.png", "two_people_02.png"]
    assert written == sorted(want_names)
    for name in written:
        img = Image.open(out / name)
        assert img.size == (64, 64) and img.mode == "RGB"
    # the CLI output is the aligned face load_target gives
    got = np.asarray(Image.open(out / f"{faces[0].path.stem}.png"), np.float32) / 127.5 - 1
    want = D.load_target(faces[0], 64, zoom=0.7)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - want).max() < 1e-5

    rc = main(["align", str(faces[0].path), "--out", str(tmp_path / "ok"), "--size", "32"])
    assert rc == 0 and (tmp_path / "ok" / f"{faces[0].path.stem}.png").is_file()


def test_holdout_faces_and_the_benchmark_set(tmp_path, monkeypatch):
    from conftest import make_generator

    monkeypatch.setenv("I2S_HOME", str(tmp_path))
    G = make_generator(64, seed=1)
    G.info["align_zoom"] = 0.7
    with pytest.raises(FileNotFoundError, match="prepare_mini_data.py"):
        D.holdout_faces(2)
    with pytest.warns(UserWarning, match="no held-out faces"):
        names, x = D.benchmark_set(G, holdout=2, per_class=1)
    assert names == [D.eval_images((c,))[0].name for c in D.CLASSES] and x.shape == (5, 3, 64, 64)

    n = len(D.HOLDOUT_LIST.read_text().split())
    arr = np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    (tmp_path / "train-data").mkdir()
    np.save(tmp_path / "train-data" / "holdout64.npy", arr[:-1])  # one short: a stale array
    with pytest.raises(ValueError, match="holdout64.npy.*prepare_mini_data.py"):
        D.holdout_faces(2)
    np.save(tmp_path / "train-data" / "holdout64.npy", arr)
    h = D.holdout_faces(3)
    assert h.shape == (3, 3, 64, 64) and torch.equal(h[1], torch.from_numpy(arr[1]).permute(2, 0, 1).float() / 127.5 - 1)
    names, x = D.benchmark_set(G, holdout=2, per_class=1)
    assert names[:2] == ["holdout/000", "holdout/001"] and x.shape == (7, 3, 64, 64)
    assert torch.equal(x[:2], h[:2])
