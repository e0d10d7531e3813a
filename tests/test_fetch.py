"""Tests of i2s.weights (registry, fetcher, CLI) against a loopback HTTP server.

Nothing here touches the network beyond 127.0.0.1; all files are synthetic.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from i2s.weights import REGISTRY, Checkpoint, WeightsUnavailable, cached_path, fetch, get
from i2s.weights import import_file, verify
from i2s.weights.cli import add_weights_parser
from i2s.weights.fetch import HashMismatch, InvalidWeightsFile, WeightsWarning, weights_dir
from i2s.weights.registry import UnknownCheckpoint

# `i2s.weights.fetch` the attribute is the function (re-exported by the package), so
# `import i2s.weights.fetch as m` would give the function; get the module itself.
wfetch = importlib.import_module("i2s.weights.fetch")

try:
    from fixtures_tf import make_gs_pickle
    from loopback_http import LoopbackServer
except ImportError:  # tests/ imported as a package
    from tests.fixtures_tf import make_gs_pickle
    from tests.loopback_http import LoopbackServer


def _tiny_pickle(seed: int) -> bytes:
    """A small StyleGAN v1 network pickle in NVIDIA's format that the converter accepts."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "gs.pkl"
        make_gs_pickle(path, 8, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2,
                       mapping_fmaps=16, seed=seed)
        return path.read_bytes()


# Downloads and imports of a StyleGAN pickle are validated by loading them, so the payloads are real
# (tiny) network pickles; NOT_A_NETWORK starts like a pickle but does not load.
PAYLOAD = _tiny_pickle(0)
OTHER_PAYLOAD = _tiny_pickle(1)
NOT_A_NETWORK = b"\x80\x04" + random.Random(0).randbytes(300_000)
HTML = (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
        b"<body>Google Drive can't scan this file for viruses. <form action='/confirm'>"
        b"<input type='hidden' name='confirm' value='t'></form></body></html>")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- loopback server


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Isolated cache, no offline flag, short socket timeouts."""
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_OFFLINE", raising=False)
    monkeypatch.setattr(wfetch, "TIMEOUT", 5.0)
    return tmp_path / "home"


@pytest.fixture
def register(monkeypatch):
    """Add a synthetic checkpoint 'test-pkl' (test.pkl) to the registry."""

    def _register(**overrides) -> Checkpoint:
        fields = dict(
            name="test-pkl", filename="test.pkl", urls=("http://127.0.0.1:9/unused",),
            size=None, sha256=None, sha256_confirmed=False, md5_seen=(),
            kind="stylegan1-tf-pickle", license="test", description="synthetic test file",
        )
        fields.update(overrides)
        ckpt = Checkpoint(**fields)
        monkeypatch.setitem(REGISTRY, ckpt.name, ckpt)
        return ckpt

    return _register


def recorded(home: Path) -> dict:
    return json.loads((home / "hashes.json").read_text())


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing.pkl"


# --------------------------------------------------------------------------- registry


def test_registry_entries():
    ffhq = get("stylegan1-ffhq-1024")
    assert ffhq.filename == "karras2019stylegan-ffhq-1024x1024.pkl"
    assert any("1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ" in u for u in ffhq.urls)
    assert ffhq.sha256 is None and ffhq.size is None and len(ffhq.md5_seen) == 2
    vgg = get("vgg16-imagenet")
    assert vgg.sha256.startswith(vgg.sha256_prefix) and vgg.sha256_prefix == "397923af"
    assert not vgg.sha256_confirmed
    with pytest.raises(KeyError, match="vgg16-imagenet") as err:
        get("nope")
    assert isinstance(err.value, UnknownCheckpoint)


# --------------------------------------------------------------------------- downloads


def test_full_download_lands_atomically_and_records_hash(server, register, home, monkeypatch):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        if str(dst).endswith("test.pkl"):
            replaced.append((Path(src).name, Path(dst).exists(), Path(src).read_bytes() == PAYLOAD))
        real_replace(src, dst)

    monkeypatch.setattr(wfetch.os, "replace", spy)
    path = fetch("test-pkl", urls=[url], progress=False)

    assert path == weights_dir() / "test.pkl"
    assert path.read_bytes() == PAYLOAD
    assert replaced == [("test.pkl.part", False, True)]
    assert not (weights_dir() / "test.pkl.part").exists()
    rec = recorded(home)["test-pkl"]
    assert rec["sha256"] == sha256(PAYLOAD) and rec["size"] == len(PAYLOAD)
    assert [r["range"] for r in server.state["requests"]] == [None]
    # Cached now: a second fetch does not touch the server.
    assert fetch("test-pkl", urls=[url], progress=False) == path
    assert len(server.state["requests"]) == 1


def test_interrupted_download_resumes_with_range(server, register):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    server.state["truncate"]["/test.pkl"] = 1
    part = weights_dir() / "test.pkl.part"

    with pytest.raises(WeightsUnavailable, match="partial"):
        fetch("test-pkl", urls=[url], progress=False)
    assert not (weights_dir() / "test.pkl").exists()
    n = part.stat().st_size
    assert 0 < n < len(PAYLOAD)

    path = fetch("test-pkl", urls=[url], progress=True)
    assert server.state["requests"][-1]["range"] == f"bytes={n}-"
    assert path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server, register):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    server.state["ignore_range"].add("/test.pkl")
    part = weights_dir() / "test.pkl.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x80garbage" * 100)

    path = fetch("test-pkl", urls=[url], progress=False)
    assert server.state["requests"][0]["range"] == f"bytes={800}-"
    assert path.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_used(server, register):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    part = weights_dir() / "test.pkl.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    path = fetch("test-pkl", urls=[url], progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.state["requests"][0]["range"] == f"bytes={len(PAYLOAD)}-"


def test_confirmed_hash_mismatch_is_refused_and_removed(server, register, home):
    register(sha256=sha256(PAYLOAD), sha256_confirmed=True)
    corrupt = bytearray(PAYLOAD)
    corrupt[1000] ^= 0xFF
    url = server.serve("/test.pkl", bytes(corrupt))

    with pytest.raises(WeightsUnavailable, match="sha256") as err:
        fetch("test-pkl", urls=[url], progress=False)
    assert "test.pkl" in str(err.value)
    assert not (weights_dir() / "test.pkl").exists()
    assert not (weights_dir() / "test.pkl.part").exists()
    assert not (home / "hashes.json").exists()


def test_confirmed_hash_match_is_not_recorded(server, register, home):
    register(sha256=sha256(PAYLOAD), sha256_confirmed=True)
    url = server.serve("/test.pkl", PAYLOAD)
    fetch("test-pkl", urls=[url], progress=False)
    assert not (home / "hashes.json").exists()
    assert verify("test-pkl")[0][1] == "ok"


def test_wrong_size_is_refused(server, register):
    register(size=len(PAYLOAD) + 1)
    url = server.serve("/test.pkl", PAYLOAD)
    with pytest.raises(WeightsUnavailable, match="expected"):
        fetch("test-pkl", urls=[url], progress=False)
    assert not (weights_dir() / "test.pkl").exists()


def test_sha256_prefix_is_enforced_and_full_unconfirmed_hash_only_warns(server, register):
    real = sha256(PAYLOAD)
    url = server.serve("/test.pkl", PAYLOAD)

    register(sha256=real[:8] + "0" * 56, sha256_prefix=real[:8])
    with pytest.warns(WeightsWarning, match="unconfirmed"):
        path = fetch("test-pkl", urls=[url], progress=False)
    assert path.read_bytes() == PAYLOAD
    path.unlink()

    wrong = "0" * 8 if not real.startswith("0" * 8) else "1" * 8
    register(sha256=None, sha256_prefix=wrong)
    with pytest.raises(WeightsUnavailable, match="prefix"):
        fetch("test-pkl", urls=[url], progress=False)
    assert not path.exists()


def test_recorded_hash_change_fails_verify(server, register):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    path = fetch("test-pkl", urls=[url], progress=False)
    assert [(n, s) for n, s, _ in verify()] == [("test-pkl", "ok")]

    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    [(name, status, detail)] = verify("test-pkl")
    assert (name, status) == ("test-pkl", "mismatch")
    assert str(path) in detail and "--force" in detail

    # Re-fetching with --force restores the recorded file.
    fetch("test-pkl", urls=[url], force=True, progress=False)
    assert verify("test-pkl")[0][1] == "ok"


def test_changed_upstream_file_is_refused_unless_forced(server, register, home):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    path = fetch("test-pkl", urls=[url], progress=False)
    path.unlink()
    other = OTHER_PAYLOAD
    server.serve("/test.pkl", other)
    with pytest.raises(WeightsUnavailable, match="recorded"):
        fetch("test-pkl", urls=[url], progress=False)
    assert not path.exists()
    with pytest.warns(WeightsWarning, match="recording the new value"):
        fetch("test-pkl", urls=[url], force=True, progress=False)
    assert recorded(home)["test-pkl"]["sha256"] == sha256(other)


@pytest.mark.parametrize("ctype", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_page_is_refused(server, register, ctype):
    register()
    url = server.serve("/uc", HTML, ctype)
    with pytest.raises(WeightsUnavailable) as err:
        fetch("test-pkl", urls=[url], progress=False)
    msg = str(err.value)
    assert "HTML" in msg and "Google Drive" in msg and "gdown" in msg
    assert "i2s weights import test-pkl" in msg
    assert not (weights_dir() / "test.pkl").exists()
    assert not (weights_dir() / "test.pkl.part").exists()


def test_drive_confirmation_page_is_followed_to_the_file(server, register, home):
    """Google Drive answers a large file with its virus-scan page; the fetcher submits the page's
    "download anyway" form (confirm=t and the page's uuid) and installs the file."""
    register()
    url = server.drive("FILEID-1", PAYLOAD, "test.pkl")
    path = fetch("test-pkl", urls=[url], progress=False)
    assert path.read_bytes() == PAYLOAD
    first, second = [r["path"] for r in server.state["requests"]]
    assert first.startswith("/uc?id=FILEID-1") and second.startswith("/download?")
    assert "confirm=t" in second and "uuid=" in second
    assert recorded(home)["test-pkl"]["sha256"] == sha256(PAYLOAD)


def test_drive_download_resumes_after_the_confirmation_page(server, register):
    register()
    url = server.drive("FILEID-2", PAYLOAD, "test.pkl")
    (weights_dir()).mkdir(parents=True, exist_ok=True)
    (weights_dir() / "test.pkl.part").write_bytes(PAYLOAD[:5000])
    assert fetch("test-pkl", urls=[url], progress=False).read_bytes() == PAYLOAD
    assert server.state["requests"][-1]["range"] == "bytes=5000-"


def test_drive_quota_page_is_named_and_nothing_installed(server, register):
    register()
    url = server.drive("FILEID-3", PAYLOAD, "test.pkl", quota=True)
    with pytest.raises(WeightsUnavailable) as err:
        fetch("test-pkl", urls=[url], progress=False)
    msg = str(err.value)
    assert "quota page" in msg and "i2s weights import test-pkl" in msg
    assert len(server.state["requests"]) == 1  # nothing to follow on a quota page
    assert not (weights_dir() / "test.pkl").exists()


def test_drive_form_sending_the_download_elsewhere_is_not_followed(server, register):
    register()
    page = HTML.replace(b"<form action='/confirm'>", b'<form id="download-form" action="http://203.0.113.9/x">')
    url = server.serve("/uc?id=X", page, "text/html")
    with pytest.raises(WeightsUnavailable, match="HTML page"):
        fetch("test-pkl", urls=[url], progress=False)
    assert len(server.state["requests"]) == 1


def test_url_override_by_environment_variable(server, register, monkeypatch):
    """$I2S_WEIGHTS_URL_<NAME> replaces the registry's URLs (a mirror, the rehearsal's server)."""
    register()  # its registry URL is a closed port
    monkeypatch.setenv("I2S_WEIGHTS_URL_TEST_PKL", f"{server.url('/missing.pkl')} {server.serve('/test.pkl', PAYLOAD)}")
    assert wfetch.url_override("test-pkl") == (server.url("/missing.pkl"), server.url("/test.pkl"))
    assert fetch("test-pkl", progress=False).read_bytes() == PAYLOAD
    assert [r["path"] for r in server.state["requests"]] == ["/missing.pkl", "/test.pkl"]
    monkeypatch.setenv("I2S_WEIGHTS_URL_TEST_PKL", "file:///etc/passwd")
    with pytest.raises(wfetch.WeightsError, match=r"\$I2S_WEIGHTS_URL_TEST_PKL .*not an http\(s\) URL"):
        fetch("test-pkl", force=True, progress=False)
    monkeypatch.setenv("I2S_WEIGHTS_URL_TEST_PKL", "  ")
    assert wfetch.url_override("test-pkl") is None


def test_each_url_is_tried_and_every_failure_reported(server, register):
    register()
    dead, missing = closed_port_url(), server.url("/missing.pkl")
    good = server.serve("/test.pkl", PAYLOAD)
    assert fetch("test-pkl", urls=[dead, missing, good], progress=False).read_bytes() == PAYLOAD

    (weights_dir() / "test.pkl").unlink()
    with pytest.raises(WeightsUnavailable) as err:
        fetch("test-pkl", urls=[dead, missing], progress=False)
    msg = str(err.value)
    assert dead in msg and missing in msg and "404" in msg
    assert str(weights_dir() / "test.pkl") in msg


def test_offline_fails_fast_with_instructions(server, register, monkeypatch):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    monkeypatch.setenv("I2S_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as err:
        fetch("test-pkl", urls=[url], progress=False)
    msg = str(err.value)
    assert "test.pkl" in msg and url in msg
    assert str(weights_dir() / "test.pkl") in msg
    assert "i2s weights import test-pkl" in msg
    assert server.state["requests"] == []
    assert isinstance(err.value, RuntimeError)


def test_offline_message_for_real_registry_entry(monkeypatch):
    monkeypatch.setenv("I2S_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as err:
        fetch("stylegan1-ffhq-1024")
    msg = str(err.value)
    assert "karras2019stylegan-ffhq-1024x1024.pkl" in msg
    assert str(weights_dir() / "karras2019stylegan-ffhq-1024x1024.pkl") in msg
    assert "gdown" in msg and "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ" in msg


def test_import_file(register, home, tmp_path):
    register()
    src = tmp_path / "downloaded.pkl"
    src.write_bytes(PAYLOAD)
    path = import_file("test-pkl", src)
    assert path == weights_dir() / "test.pkl" and path.read_bytes() == PAYLOAD
    rec = recorded(home)["test-pkl"]
    assert rec["sha256"] == sha256(PAYLOAD) and rec["source"].startswith("import:")
    assert cached_path("test-pkl") == path
    assert verify("test-pkl")[0][1] == "ok"
    assert sorted(p.name for p in weights_dir().iterdir() if not p.name.endswith(".lock")) == [
        "test.pkl"
    ]


def test_import_refuses_html_and_confirmed_mismatch(register, tmp_path):
    register()
    html = tmp_path / "page.pkl"
    html.write_bytes(HTML)
    with pytest.raises(InvalidWeightsFile, match="HTML"):
        import_file("test-pkl", html)
    assert cached_path("test-pkl") is None

    register(sha256=sha256(b"something else"), sha256_confirmed=True)
    src = tmp_path / "downloaded.pkl"
    src.write_bytes(PAYLOAD)
    with pytest.raises(HashMismatch):
        import_file("test-pkl", src)
    assert cached_path("test-pkl") is None


def test_cached_html_file_is_reported_not_returned(register):
    register()
    weights_dir().mkdir(parents=True)
    (weights_dir() / "test.pkl").write_bytes(HTML)
    with pytest.raises(InvalidWeightsFile, match="--force"):
        fetch("test-pkl", progress=False)
    assert verify("test-pkl")[0][1] == "invalid"


def test_torch_hub_cache_is_used_for_torchvision_files(register, tmp_path):
    # The autouse fixture points TORCH_HOME at tmp_path/"torch"; torch.hub uses $TORCH_HOME/hub.
    register(name="test-vgg", filename="vgg-0000.pth", kind="torchvision-state-dict")
    assert cached_path("test-vgg") is None
    hub_file = tmp_path / "torch" / "hub" / "checkpoints" / "vgg-0000.pth"
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(b"PK\x03\x04" + PAYLOAD)
    assert cached_path("test-vgg") == hub_file
    assert fetch("test-vgg", progress=False) == hub_file  # no network needed
    register(name="test-pkl2", filename="vgg-0000.pth")  # pickles are not looked up there
    assert cached_path("test-pkl2") is None


# --------------------------------------------------------------------------- CLI


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="i2s")
    add_weights_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_cli_list_prints_known_names(server, register, capsys):
    register()
    args = _cli("weights", "list")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in ("stylegan1-ffhq-1024", "vgg16-imagenet", "test-pkl"):
        assert name in out
    assert "karras2019stylegan-ffhq-1024x1024.pkl" in out
    assert re.search(r"test-pkl\s+test\.pkl\s+unknown\s+unknown\s+no", out)

    fetch("test-pkl", urls=[server.serve("/test.pkl", PAYLOAD)], progress=False)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"test-pkl\s+test\.pkl\s+[\d,]+ \(local\)\s+recorded\s+yes", out)


def test_cli_import_verify_and_errors(register, tmp_path, capsys):
    register()
    src = tmp_path / "downloaded.pkl"
    src.write_bytes(PAYLOAD)
    args = _cli("weights", "import", "test-pkl", str(src))
    assert args.func(args) == 0
    args = _cli("weights", "verify")
    assert args.func(args) == 0
    assert "test-pkl: OK" in capsys.readouterr().out

    (weights_dir() / "test.pkl").write_bytes(b"\x80" + PAYLOAD[1:-1])
    assert args.func(args) == 1
    assert "MISMATCH" in capsys.readouterr().out

    args = _cli("weights", "fetch", "no-such-weights")
    assert args.func(args) == 2
    assert "known:" in capsys.readouterr().err


# --------------------------------------------------------------------------- hostile servers and files


def _nothing_installed_or_pinned(home: Path) -> None:
    assert not (weights_dir() / "test.pkl").exists() and not (weights_dir() / "test.pkl.part").exists()
    assert "test-pkl" not in (recorded(home) if (home / "hashes.json").exists() else {})


@pytest.mark.parametrize("mode", ["no-length-cut", "short-length"])
def test_truncated_answer_is_neither_installed_nor_pinned(server, register, home, mode):
    """A server that closes early without Content-Length, or announces fewer bytes than it sends:
    the truncated file does not load, so it is dropped and the good mirror's file is pinned."""
    register()
    bad = server.misbehave("/bad.pkl", mode, PAYLOAD)
    with pytest.raises(WeightsUnavailable, match="does not load as a StyleGAN v1 network pickle") as err:
        fetch("test-pkl", urls=[bad], progress=False)
    assert "truncated" in str(err.value)
    _nothing_installed_or_pinned(home)
    good = server.serve("/test.pkl", PAYLOAD)
    assert fetch("test-pkl", urls=[bad, good], progress=False).read_bytes() == PAYLOAD
    assert recorded(home)["test-pkl"]["sha256"] == sha256(PAYLOAD)


def test_a_file_that_does_not_load_is_never_pinned(server, register, home, tmp_path):
    register()
    url = server.serve("/test.pkl", NOT_A_NETWORK)
    with pytest.raises(WeightsUnavailable, match="does not load"):
        fetch("test-pkl", urls=[url], progress=False)
    _nothing_installed_or_pinned(home)
    src = tmp_path / "downloaded.pkl"
    src.write_bytes(NOT_A_NETWORK)
    with pytest.raises(InvalidWeightsFile, match="not installed and its sha256 not recorded"):
        import_file("test-pkl", src)
    _nothing_installed_or_pinned(home)


def test_endless_stream_is_cut_off_at_the_size_cap(server, register, home):
    register(max_size=200_000)
    url = server.misbehave("/endless.pkl", "endless", PAYLOAD)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="more than 200,000 bytes"):
        fetch("test-pkl", urls=[url], progress=False)
    assert time.monotonic() - t0 < 10
    _nothing_installed_or_pinned(home)
    register()  # no registry maximum: the fetch parameter caps it
    with pytest.raises(WeightsUnavailable, match="more than 100,000 bytes"):
        fetch("test-pkl", urls=[url], progress=False, max_bytes=100_000)


def test_announced_size_beyond_the_cap_or_the_known_size_is_refused_unread(server, register):
    url = server.serve("/test.pkl", PAYLOAD)
    register(max_size=len(PAYLOAD) - 1)
    with pytest.raises(WeightsUnavailable, match="announces"):
        fetch("test-pkl", urls=[url], progress=False)
    register(size=len(PAYLOAD) - 7)
    with pytest.raises(WeightsUnavailable, match="announces .* expected"):
        fetch("test-pkl", urls=[url], progress=False)
    assert REGISTRY["stylegan1-ffhq-1024"].max_size and REGISTRY["vgg16-imagenet"].max_size


def test_drip_feed_fails_on_the_minimum_rate(server, register):
    register()
    url = server.misbehave("/drip.pkl", "drip", PAYLOAD)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable, match=r"sends only \d+ bytes/s") as err:
        fetch("test-pkl", urls=[url], progress=False, min_rate=10_000, rate_window=0.5)
    assert time.monotonic() - t0 < 5
    assert "partial file kept" in str(err.value)


def test_overall_deadline_ends_a_slow_download(server, register):
    register()
    url = server.misbehave("/slow.pkl", "slow", PAYLOAD)  # ~100 KB/s: fast enough, but too long
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="deadline"):
        fetch("test-pkl", urls=[url], progress=False, min_rate=1, rate_window=10, deadline=0.2)
    assert time.monotonic() - t0 < 5


def test_concurrent_fetches_download_once(server, register):
    register()
    url = server.serve("/test.pkl", PAYLOAD)
    server.state["delay"] = 0.5  # the first download holds the lock while the second waits
    results: list = []

    def run() -> None:
        results.append(fetch("test-pkl", urls=[url], progress=False))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == PAYLOAD
    assert len(server.state["requests"]) == 1
