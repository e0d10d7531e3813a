"""``i2s embed-folder`` (issue 36): a folder of photos embedded on two local Ray workers with a tiny
generator and a few steps — the merged table, a rerun that recomputes nothing, a worker killed
mid-run whose photos are redone, a bad file named in the table — and the command's own local
session (started, and nothing left running). One Ray session is shared by the module's tests
(starting one costs 15-25 s on the project's 2 loaded cores)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2s import folder as F
from i2s.cli import main
from i2s.io import load_latent

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    """A local Ray session with 2 CPUs for the module (:func:`i2s.folder.local_ray`, as the command
    starts its own); the workers see an isolated i2s home."""
    import ray

    home = tmp_path_factory.mktemp("ray_i2s_home")
    env = {"I2S_HOME": str(home), "TORCH_HOME": str(home / "torch"), "I2S_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    with F.local_ray(2, runtime_env={"env_vars": env}):
        yield ray


def _photos(folder: Path, names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / name)


def _table(out: Path) -> dict[str, dict]:
    return {r["path"]: r for r in csv.DictReader(open(out / F.TABLE))}


def _args(gen: Path, out: Path, cache: Path, *more: str) -> list[str]:
    return ["--out", str(out), "--model", str(gen), "--perceptual", "random", "--cache-dir", str(cache),
            "--no-progress", *more]


# ----------------------------------------------------------------------------- without Ray


def test_find_images_recursive_hidden_out_and_unique_names(tmp_path):
    _photos(tmp_path, ["b.png", "a.png", "a.jpg", "sub/c.webp", "x-target.png", "x.png", ".hidden.png",
                       ".cache/d.png", "out/old.png"])
    (tmp_path / "notes.txt").write_text("not an image")
    photos = F.find_images(tmp_path, exclude=tmp_path / "out")
    assert [p.rel for p in photos] == ["a.jpg", "a.png", "b.png", "x-target.png", "x.png", "sub/c.webp"]
    names = [p.name for p in photos]
    assert names == ["a", "a-2", "b", "x-target", "x-2", "sub/c"]  # x.png's x-target.png would be the other's
    assert all(Path(p.path).is_file() for p in photos)


def test_batches_equal_and_at_least_one_per_worker():
    photos = [F.Photo(str(i), str(i), str(i)) for i in range(25)]
    assert [len(b) for b in F._batches(photos, 8, 1)] == [7, 6, 6, 6]
    assert [len(b) for b in F._batches(photos[:4], 8, 2)] == [2, 2]  # both workers get work
    assert [len(b) for b in F._batches(photos[:5], 2, 2)] == [2, 2, 1]
    assert [len(b) for b in F._batches(photos[:1], 8, 4)] == [1]
    assert sum(map(len, F._batches(photos, 3, 8))) == 25


def test_usage_errors_before_ray(tmp_path, tiny_generator_file, capsys):
    out = tmp_path / "out"
    assert main(["embed-folder", str(tmp_path / "missing"), *_args(tiny_generator_file, out, tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["embed-folder", str(tmp_path / "empty"), *_args(tiny_generator_file, out, tmp_path)]) == 1
    assert "no image files" in capsys.readouterr().err
    assert main(["embed-folder", str(tmp_path / "empty"), "--out", str(out), "--model", "nope/G.pt"]) == 2
    assert "--model nope/G.pt: no such file" in capsys.readouterr().err


def test_worker_alone_bad_file_metrics_and_cache(tiny_generator_file, tmp_path):
    """The worker's own work, without Ray: a bad file is its own row and the batch goes on; a
    second batch of the same photos comes from the cache; a generator that cannot load is said."""
    _photos(tmp_path, ["a.png", "b.png"])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG truncated")
    photos = F.find_images(tmp_path)
    job = F.FolderJob(model=str(tiny_generator_file), perceptual="random", steps=4, device="cpu",
                      cache_dir=str(tmp_path / "cache"))
    worker = F.FolderWorker(job, 3)
    info = worker.info()
    assert info["error"] is None and info["tier"] == "random" and info["pid"] == os.getpid() and info["steps"] == 4
    first = worker.embed(photos)
    assert [r["row"]["status"] for r in first] == ["embedded", "embedded", "failed"]
    assert "broken.png" in first[2]["row"]["error"] and "w_plus" not in first[2]
    row = first[0]["row"]
    assert row["worker"] == 3 and row["batch_images"] == 3 and float(row["loss"]) > 0 and row["tier"] == "random"
    assert first[0]["w_plus"].shape == (8, 64) and first[0]["png"].startswith(b"\x89PNG")
    again = worker.embed(photos[:2])
    assert [r["row"]["status"] for r in again] == ["cached", "cached"]
    assert all(torch.equal(a["w_plus"], b["w_plus"]) for a, b in zip(first, again))
    broken = F.FolderWorker(F.FolderJob(model=str(tmp_path / "broken.png"), cache_dir=str(tmp_path)), 0)
    assert "cannot load the generator" in broken.info()["error"] and "\n" not in broken.info()["error"]
    assert broken.embed(photos[:1])[0]["row"]["status"] == "failed"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_processes_of_a_failed_start_are_stopped(tmp_path):
    """What a local start that timed out leaves (processes naming the session's folder) is stopped:
    SIGTERM, then SIGKILL for one that ignores it; a process not naming the folder is left alone."""
    session = tempfile.mkdtemp(prefix="i2s-ray-test-")
    try:
        ready = "print('ready', flush=True); time.sleep(60)"
        ours = [subprocess.Popen([sys.executable, "-c", code + ready, session], stdout=subprocess.PIPE, text=True)
                for code in ("import time; ", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); ")]
        other = subprocess.Popen([sys.executable, "-c", "import time; " + ready, str(tmp_path)], stdout=subprocess.PIPE,
                                 text=True)
        assert [p.stdout.readline().strip() for p in (*ours, other)] == ["ready"] * 3  # handlers set
        F._stop_processes_of(session, wait_s=2)
        assert [p.wait(timeout=5) for p in ours] == [-signal.SIGTERM, -signal.SIGKILL]
        assert other.poll() is None
        other.kill()
        other.wait()
    finally:
        shutil.rmtree(session, ignore_errors=True)


# ----------------------------------------------------------------------------- on the shared session
# (each run starts its workers: a process importing torch and loading the generator, 10-30 s here)


@pytest.mark.slow
def test_two_workers_table_rerun_and_bad_file(ray_session, tiny_generator_file, tmp_path, monkeypatch, capsys):
    photos, out, cache = tmp_path / "photos", tmp_path / "out", tmp_path / "cache"
    _photos(photos, ["a.png", "b.jpg", "sub/c.png", "sub/d.png"])
    (photos / "broken.jpg").write_bytes(b"not an image")
    rc = main(["embed-folder", str(photos), *_args(tiny_generator_file, out, cache, "--workers", "2", "--steps", "6",
                                                     "--batch", "2")])
    err = capsys.readouterr().err
    assert rc == 3 and "failed broken.jpg" in err  # done, one photo skipped (named)
    rows = _table(out)
    assert sorted(rows) == ["a.png", "b.jpg", "broken.jpg", "sub/c.png", "sub/d.png"]
    bad = rows.pop("broken.jpg")
    assert bad["status"] == "failed" and "broken.jpg" in bad["error"] and "not an image" in bad["error"]
    assert {r["status"] for r in rows.values()} == {"embedded"}
    assert {r["worker"] for r in rows.values() if r["status"] == "embedded"} == {"0", "1"}  # both workers worked
    assert len({r["worker_pid"] for r in rows.values()}) == 2 and all(int(r["worker_pid"]) != os.getpid()
                                                                       for r in rows.values())
    for path, r in rows.items():
        assert r["tier"] == "random" and r["model"] == "tiny-cli" and r["perceptual_net"] == "vgg16-random"
        assert r["device"].startswith("cpu") and r["steps"] == "6" and r["error"] == ""
        loss, mse, perceptual = float(r["loss"]), float(r["mse_255"]), float(r["perceptual"])
        assert loss > 0 and mse > 0 and perceptual > 0 and abs(mse + perceptual - loss) < 1e-3 * loss  # Eq. 1's parts
        w, meta = load_latent(out / r["latent"])
        assert w.shape == (8, 64) and meta["steps"] == 6 and meta["source"] == path and meta["tier"] == "random weights"
        assert (out / f"{r['image']}.png").is_file() and (out / f"{r['image']}-target.png").is_file()
    assert rows["sub/c.png"]["latent"] == "sub/c.latent.pt"

    # the results went through the kit's one cache: `i2s embed` of the same photo, same settings, finds it
    monkeypatch.setenv("I2S_CACHE_DIR", str(cache))
    assert main(["embed", str(photos / "b.jpg"), "--model", str(tiny_generator_file), "--vgg", "random", "--steps", "6",
                 "--device", "cpu", "--out", str(tmp_path / "single")]) == 0
    assert "1 of 1 embeddings reused" in capsys.readouterr().out
    assert torch.equal(load_latent(tmp_path / "single" / "b.latent.pt")[0], load_latent(out / "b.latent.pt")[0])

    # a rerun recomputes nothing: every photo from the cache, no entry written again
    entries = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
    assert len(entries) == 4
    latents = {p: load_latent(out / r["latent"])[0] for p, r in rows.items()}
    rc = main(["embed-folder", str(photos), *_args(tiny_generator_file, out, cache, "--workers", "2", "--steps", "6",
                                                     "--batch", "2")])
    assert rc == 3 and "0 embedded, 4 from the cache, 1 failed" in capsys.readouterr().out
    again = _table(out)
    assert {p: r["status"] for p, r in again.items()} == {**{p: "cached" for p in rows}, "broken.jpg": "failed"}
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.pt")} == entries
    assert all(torch.equal(load_latent(out / again[p]["latent"])[0], w) for p, w in latents.items())
    assert all(again[p]["loss"] == rows[p]["loss"] for p in rows)
    assert not (out / F.CHECKPOINTS).exists()


@pytest.mark.slow
def test_generator_that_cannot_load_is_one_line(ray_session, tmp_path, capsys):
    _photos(tmp_path / "photos", ["a.png"])
    bad = tmp_path / "G.pt"
    bad.write_bytes(b"not a generator")
    rc = main(["embed-folder", str(tmp_path / "photos"), *_args(bad, tmp_path / "out", tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 4 and "cannot load the generator" in err and "G.pt" in err and "Traceback" not in err


@pytest.mark.slow
def test_killed_worker_batch_is_redone(ray_session, tiny_generator_file, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    _photos(photos, ["p0.png", "p1.png", "p2.png", "p3.png"], seed=1)
    job = F.FolderJob(model=str(tiny_generator_file), perceptual="random", steps=60, device="cpu",
                      cache_dir=str(tmp_path / "cache"), checkpoint_dir=str(out / F.CHECKPOINTS), checkpoint_every=20)
    killed: list[int] = []
    landed: list[list[dict]] = []

    def kill_first(rows: list[dict]) -> None:
        """After the first batch: that worker has just been given the third; kill it."""
        landed.append(rows)
        if not killed:
            killed.append(int(rows[0]["worker_pid"]))
            os.kill(killed[0], signal.SIGKILL)

    run = F.embed_folder(photos, out, job, workers=2, batch=1, progress=False, say=lambda s: None, on_rows=kill_first)
    assert (run.embedded, run.failed, run.photos) == (4, 0, 4)
    table = _table(out)
    assert {r["status"] for r in table.values()} == {"embedded"}
    after = {int(r["worker_pid"]) for rows in landed[1:] for r in rows}
    original = {w["pid"] for w in run.workers}
    assert killed[0] in original and killed[0] not in after
    assert after - original  # the restarted worker (a new process) did the killed worker's batch
    assert all(load_latent(out / r["latent"])[0].isfinite().all() for r in table.values())
    assert not (out / F.CHECKPOINTS).exists()


# ----------------------------------------------------------------------------- the command's own session


@pytest.mark.slow
def test_command_starts_and_stops_its_own_local_ray(tiny_generator_file, tmp_path):
    """`i2s embed-folder` without --address in a fresh process: a local session is started, used,
    stopped; its temporary folder is gone and no process of it is left."""
    _photos(tmp_path / "photos", ["a.png", "b.png"])
    tmp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # TMPDIR of the run: short, and ours to inspect
    try:
        env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        p = subprocess.run([sys.executable, "-m", "i2s.cli", "embed-folder", str(tmp_path / "photos"),
                            *_args(tiny_generator_file, tmp_path / "out", tmp_path / "cache", "--steps", "4")],
                           env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
        assert p.returncode == 0, p.stderr[-2000:]
        assert "starting a local Ray session (1 CPU)" in p.stdout and "2 embedded" in p.stdout
        assert {r["status"] for r in _table(tmp_path / "out").values()} == {"embedded"}
        assert [x for x in tmp.iterdir() if x.name.startswith("i2s-ray-")] == []  # the session's folder removed
        left = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(tmp) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    left.append(proc.name)
            except OSError:
                pass
        assert left == []  # no process of the session is left running
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_local_session_gives_the_signal_handlers_back(monkeypatch):
    """ray.init installs its own SIGINT/SIGTERM handlers in the driver and ray.shutdown leaves them;
    after a local session the process has its own back, so a later SIGTERM reaches i2s.signals'
    deferral and not Ray's handler (which ended the whole test run when test_encoder followed)."""
    import signal as _signal

    import ray

    def fake_init(**kwargs):  # what Ray's driver does to the handlers
        for s in (_signal.SIGINT, _signal.SIGTERM):
            _signal.signal(s, lambda *a: None)

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    before = {s: _signal.getsignal(s) for s in (_signal.SIGINT, _signal.SIGTERM)}
    with F.local_ray(cpus=1):
        assert _signal.getsignal(_signal.SIGTERM) is not before[_signal.SIGTERM]
    assert {s: _signal.getsignal(s) for s in before} == before
