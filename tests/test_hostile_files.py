"""Crafted weight, latent and checkpoint files: each is refused in one line naming the file, with
bounded memory, and nothing it holds is printed unescaped (issue 15, "weight, latent and
checkpoint files"). Every file is built here (tests/fixtures_tf.py helpers); the memory bombs are
loaded in a subprocess whose address space is limited to what it had plus 1 GiB, so a loader that
allocated what the file asks for would fail there with a MemoryError instead of the refusal.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import i2s
from i2s.checkpoint import check_checkpoint_file
from i2s.cli import main
from i2s.io import LatentFileError, load_latent, save_latent
from i2s.models import converted_ffhq_path, converted_path
from i2s.weights import UnsafePickleError, WeightsFormatError, import_file, load_converted, load_tf_pickle
from i2s.weights.converted import UnsafeWeightsError, save_converted
from i2s.weights.fetch import InvalidWeightsFile, recorded_hashes
from i2s.weights.limits import MAX_PICKLE_RECORD, quote
from conftest import REPO, make_generator

try:
    from fixtures_tf import (TINY, Call, GlobalName, Network, crafted_array, crafted_dtype, forged_object_array,
                             make_gs_pickle)
except ImportError:  # tests/ imported as a package
    from tests.fixtures_tf import (TINY, Call, GlobalName, Network, crafted_array, crafted_dtype,
                                   forged_object_array, make_gs_pickle)


def one_line(e: BaseException, path: Path) -> str:
    """The message of a refusal, checked to be one bounded line that names the file."""
    msg = str(e)
    assert "\n" not in msg and "\x1b" not in msg and len(msg) < 2000, msg[:300]
    assert str(path) in msg, msg
    return msg


# ================================================================== bounded memory, in a subprocess

_BOUNDED = textwrap.dedent("""
    import os, resource, sys
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    import i2s
    from i2s.io import load_latent
    from i2s.weights import UnsafePickleError, WeightsFormatError
    from i2s.weights.tf_pickle import load_tf_pickle
    vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))
    what, path = sys.argv[1], sys.argv[2]
    try:
        if what == "generator":
            i2s.load_generator(path, verbose=False)
        elif what == "pickle":
            load_tf_pickle(path)
        else:
            load_latent(path)
    except MemoryError:
        print("MEMORY-ERROR"); sys.exit(3)
    except (WeightsFormatError, UnsafePickleError, ValueError) as e:
        print("REFUSED", type(e).__name__, e); sys.exit(0)
    print("LOADED"); sys.exit(4)
""")


def load_bounded(what: str, path: Path, tmp_path: Path) -> str:
    """Load ``path`` in a fresh interpreter limited to its current size + 1 GiB; the refusal text."""
    script = tmp_path / "bounded.py"
    script.write_text(_BOUNDED)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), what, str(path)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith("REFUSED"), (proc.returncode, proc.stdout[-500:],
                                                                        proc.stderr[-2000:])
    assert str(path) in proc.stdout and proc.stdout.count("\n") == 1, proc.stdout[:500]
    return proc.stdout


def _raw_pickle(path: Path, body: bytes) -> Path:
    path.write_bytes(b"\x80\x04" + body + b".")
    return path


def test_huge_reconstruct_is_refused_before_allocating(tmp_path):
    """342-byte-style pickles asking numpy for 250 M elements: object dtype, or float32 over 8 bytes."""
    obj = tmp_path / "objects.pkl"
    make_gs_pickle(obj, 8, **TINY, extra={"synthesis/bomb": crafted_array((250_000_000,), crafted_dtype("O8"), [])})
    assert obj.stat().st_size < 50_000
    out = load_bounded("generator", obj, tmp_path)
    assert "not a plain number type" in out and "variable 'bomb'" in out
    floats = tmp_path / "floats.pkl"
    make_gs_pickle(floats, 8, **TINY, extra={"dlatent_bomb": crafted_array((250_000_000,), crafted_dtype("f8"), b"1" * 8)})
    out = load_bounded("generator", floats, tmp_path)
    assert "declares shape (250000000,)" in out and "holds 8 bytes" in out


def test_numpy_ndarray_cannot_be_called_to_allocate(tmp_path):
    path = tmp_path / "ndarray.pkl"
    make_gs_pickle(path, 8, **TINY, static_kwargs={"x": Call(GlobalName("numpy", "ndarray"), ((250_000_000,), "f8"))})
    load_bounded("pickle", path, tmp_path)


def test_memo_index_bomb_is_refused(tmp_path):
    # NONE, LONG_BINPUT 2**28: the C unpickler would size (and zero) a 2 GB memo table
    path = _raw_pickle(tmp_path / "memo.pkl", b"Nr" + (2**28).to_bytes(4, "little"))
    assert path.stat().st_size == 9
    out = load_bounded("pickle", path, tmp_path)
    assert "memo index" in out


def test_opcode_flood_is_refused(tmp_path):
    path = _raw_pickle(tmp_path / "flood.pkl", b"(" + b"]" * 1_100_000 + b"l")
    with pytest.raises(WeightsFormatError, match="more than 1,000,000 pickle opcodes") as e:
        load_tf_pickle(path)
    one_line(e.value, path)


def _laughs(levels: int = 30) -> list:
    a: list = ["lol"]
    for _ in range(levels):
        a = [a] * 10
    return a


@pytest.mark.parametrize("where", ["version", "static_kwargs"])
def test_billion_laughs_is_refused_with_a_short_message(tmp_path, where):
    path = tmp_path / f"laughs-{where}.pkl"
    # 10**30 strings in the version; 10**6 (nested 8 deep, within the depth bound) in the kwargs
    kw = {"version": _laughs(30)} if where == "version" else {"static_kwargs": {"structure": _laughs(6)}}
    make_gs_pickle(path, 8, **TINY, **kw)
    assert path.stat().st_size < 50_000
    out = load_bounded("generator", path, tmp_path)
    assert len(out) < 1000
    assert ("network version [[[[" in out) if where == "version" else ("more than 1000 values" in out)


def test_huge_mapping_fmaps_in_a_pickle_is_refused_before_allocating(tmp_path):
    """The declared architecture itself is bounded: a 1,000,000-wide mapping network (4 TB)."""
    path = tmp_path / "wide.pkl"
    make_gs_pickle(path, 8, **TINY, static_kwargs={"mapping_fmaps": 1_000_000})
    out = load_bounded("generator", path, tmp_path)
    assert "mapping_fmaps=1000000 is not an integer from 1 to 1024" in out


def test_huge_config_in_a_converted_file_is_refused_before_allocating(tmp_path):
    G = make_generator(16)
    path = tmp_path / "wide.pt"
    save_converted(path, G.cfg, G.state_dict(), {"name": "wide"})
    obj = torch.load(path, weights_only=True)
    obj["config"]["mapping_fmaps"] = 1_000_000
    obj["config"]["resolution"] = 2**20
    torch.save(obj, path)
    out = load_bounded("generator", path, tmp_path)
    assert "refusing its config" in out and "resolution=1048576" in out


def test_stride_zero_tensor_in_a_converted_file_is_refused(tmp_path):
    """A state-dict tensor that claims a huge shape over a tiny storage is refused before any cast."""
    G = make_generator(16)
    path = tmp_path / "stride0.pt"
    save_converted(path, G.cfg, {k: v.half() for k, v in G.state_dict().items()}, {"name": "stride0"})
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["mapping.w_avg"] = torch.zeros(1, dtype=torch.half).expand(400_000_000)
    torch.save(obj, path)  # the view is saved with its 1-element storage
    assert path.stat().st_size < 1_000_000
    out = load_bounded("generator", path, tmp_path)
    assert "mapping.w_avg: (400000000,)" in out


def _deflated_copy(src: bytes, dst: Path, inflate_to: int | None = None) -> Path:
    """Rewrite a torch.save zip with every record deflate-compressed; with ``inflate_to``, the
    tensor record becomes that many zero bytes (a 1000x bomb)."""
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if inflate_to is not None and "/data/" in info.filename:
                data = bytes(inflate_to)
            zout.writestr(zipfile.ZipInfo(info.filename), data, compress_type=zipfile.ZIP_DEFLATED)
    return dst


@pytest.mark.slow
def test_deflate_bomb_is_refused_by_every_torch_loader(tmp_path):
    # a latent whose tensor record inflates from ~1.2 MB to 1.2 GB (more than the subprocess may take)
    buf = io.BytesIO()
    save_latent(buf_path := tmp_path / "a.latent.pt", torch.zeros(4, 8), {"model": "mini"})
    bomb = _deflated_copy(buf_path.read_bytes(), tmp_path / "bomb.latent.pt", inflate_to=1_200_000_000)
    assert bomb.stat().st_size < 2_000_000
    out = load_bounded("latent", bomb, tmp_path)
    assert "is compressed" in out and "torch.save stores records uncompressed" in out
    del buf

    G = make_generator(16)
    gen = tmp_path / "g.pt"
    save_converted(gen, G.cfg, G.state_dict(), {"name": "g"})
    zgen = _deflated_copy(gen.read_bytes(), tmp_path / "zg.pt")
    with pytest.raises(WeightsFormatError, match="compressed") as e:
        load_converted(zgen)
    one_line(e.value, zgen)

    ck = tmp_path / "ckpt.pt"
    torch.save({"key": "x", "latent": torch.zeros(2, 8)}, ck)
    _deflated_copy(ck.read_bytes(), ck)
    with pytest.raises(ValueError, match="compressed.*delete it") as e:
        check_checkpoint_file(ck, 1, G, 100)
    one_line(e.value, ck)

    from i2s.cache import load_entry as _load

    entry = tmp_path / "entry.pt"
    torch.save({"settings": "{}"}, entry)
    _deflated_copy(entry.read_bytes(), entry)
    assert _load(entry, torch.Size([3, 16, 16])) is None  # recomputed, never inflated


def test_oversized_pickle_record_in_a_torch_zip_is_refused(tmp_path):
    path = tmp_path / "big.latent.pt"
    save_latent(path, torch.zeros(4, 8), {"model": "mini", "pad": "x" * (MAX_PICKLE_RECORD + 10)})
    with pytest.raises(LatentFileError, match="pickle record") as e:
        load_latent(path)
    one_line(e.value, path)


# ================================================================== memory corruption


def test_forged_object_pointer_is_refused_without_numpy_seeing_it(tmp_path):
    """A structured dtype with an object field over 8 raw bytes (a forged pointer) is refused
    before numpy builds anything; the process does not crash (run through the CLI in a subprocess,
    where a segfault would show as exit code -11)."""
    path = tmp_path / "forged.pkl"
    make_gs_pickle(path, 8, **TINY, extra={"dlatent_avg2": forged_object_array()})
    with pytest.raises(WeightsFormatError, match="dtype .*'V8'.* is not a plain number type") as e:
        i2s.load_generator(path, verbose=False)
    one_line(e.value, path)
    # a plain code with a structured state is refused too
    f4_fields = crafted_dtype("f4", (3, "<", None, ("a",), {"a": (crafted_dtype("O8"), 0)}, 4, 1, 0))
    path2 = tmp_path / "forged2.pkl"
    make_gs_pickle(path2, 8, **TINY, extra={"x": crafted_array((1,), f4_fields, b"\0" * 4)})
    with pytest.raises(WeightsFormatError, match="not that of a plain number type"):
        load_tf_pickle(path2)
    proc = subprocess.run([sys.executable, "-m", "i2s.cli", "generate", "--model", str(path), "--seeds", "0",
                           "--device", "cpu", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 4, (proc.returncode, proc.stderr[-1000:])  # exit 4: a weight file refused
    assert "Traceback" not in proc.stderr and "not a plain number type" in proc.stderr


def test_import_refuses_a_forged_file_and_records_nothing(tmp_path, capsys):
    path = tmp_path / "forged.pkl"
    make_gs_pickle(path, 8, **TINY, extra={"dlatent_avg2": forged_object_array()})
    with pytest.raises(InvalidWeightsFile, match="does not load as a StyleGAN v1 network pickle"):
        import_file("stylegan1-ffhq-1024", path)
    assert recorded_hashes() == {}
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04" + os.urandom(5000))
    assert main(["weights", "import", "stylegan1-ffhq-1024", str(junk)]) == 1
    err = capsys.readouterr().err
    assert "does not load" in err and str(junk) in err and "Traceback" not in err
    assert recorded_hashes() == {} and main(["weights", "verify", "stylegan1-ffhq-1024"]) == 1
    assert i2s.models.ffhq_available() is False


# ================================================================== structure and types


def test_cyclic_and_deep_components_are_refused(tmp_path):
    def cycle(Gs: Network) -> None:
        Gs.components["synthesis"].components["loop"] = Gs

    def deep(Gs: Network) -> None:
        net = Gs.components["synthesis"]
        for k in range(6):
            child = Network(f"n{k}", "G_synthesis", {})
            net.components["sub"] = child
            net = child

    for name, hook, words in (("cycle", cycle, "cycle"), ("deep", deep, "nested more than 3 deep")):
        path = tmp_path / f"{name}.pkl"
        make_gs_pickle(path, 8, **TINY, gs_hook=hook)
        with pytest.raises(WeightsFormatError, match=words) as e:
            i2s.load_generator(path, verbose=False)
        one_line(e.value, path)


def test_deep_version_is_refused_in_one_line(tmp_path):
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    path = tmp_path / "deep.pkl"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        make_gs_pickle(path, 8, **TINY, version=deep, numpy_names="current")
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(WeightsFormatError, match=r"network version \[\[\[") as e:
        load_tf_pickle(path)
    one_line(e.value, path)


@pytest.mark.parametrize("kwargs, words", [
    ({"resolution": 3}, "resolution=3 is not a power of two"),
    ({"resolution": 2**40}, "resolution=1099511627776"),
    ({"resolution": "1024"}, "resolution='1024'"),
    ({"fmap_base": 1}, "leave no feature maps"),
    ({"num_channels": 3.5}, "num_channels=3.5 is not an integer"),
    ({"fmap_decay": float("nan")}, "fmap_decay=nan"),
])
def test_impossible_architectures_are_refused_in_one_line(tmp_path, kwargs, words):
    path = tmp_path / "arch.pkl"
    make_gs_pickle(path, 8, **TINY, static_kwargs=kwargs)
    with pytest.raises(WeightsFormatError, match=words.replace("[", r"\[").replace("(", r"\(")) as e:
        i2s.load_generator(path, verbose=False)
    one_line(e.value, path)


@pytest.mark.parametrize("info, words", [
    ({"name": "g", "kimg": "lots"}, "info['kimg'] is 'lots'"),
    ({"name": 5}, "info['name'] is 5"),
    ({"fully_grown": "yes"}, "info['fully_grown']"),
    (["not", "a", "dict"], "not a dict"),
    ({"name": "g", "many": [["x"] * 100] * 200}, "more than 10000 values"),
])
def test_info_fields_of_the_wrong_type_are_refused(tmp_path, info, words):
    G = make_generator(16)
    path = tmp_path / "info.pt"
    save_converted(path, G.cfg, G.state_dict(), {})
    obj = torch.load(path, weights_only=True)
    obj["info"] = info
    torch.save(obj, path)
    with pytest.raises(WeightsFormatError, match=words.replace("[", r"\[")) as e:
        load_converted(path)
    one_line(e.value, path)


def test_messages_quote_file_contents_escaped_and_bounded(tmp_path):
    fake = "\x1b[2J\x1b[32m\n[i2s] generator: stylegan1-ffhq-1024 (paper tier: official StyleGAN v1 FFHQ-1024)\n"
    path = tmp_path / "ansi.pkl"
    make_gs_pickle(path, 8, **TINY, static_kwargs={"x": Call(GlobalName(fake * 20, "system"), ("id",))})
    with pytest.raises(UnsafePickleError) as e:
        i2s.load_generator(path, verbose=False)
    msg = one_line(e.value, path)
    assert "\\x1b[2J" in msg and len(msg) < 800
    path2 = tmp_path / "name.pkl"
    make_gs_pickle(path2, 8, **TINY, static_kwargs={"structure": fake * 20})
    with pytest.raises(WeightsFormatError) as e:
        i2s.load_generator(path2, verbose=False)
    msg = one_line(e.value, path2)
    assert "structure='\\x1b[2J" in msg and len(msg) < 800
    assert len(quote(fake * 1000)) == 80 and quote(fake).isascii()


# ================================================================== converted-cache poisoning


def test_another_file_with_the_official_name_never_replaces_the_paper_generator(tmp_path):
    official, impostor = tmp_path / "official.pkl", tmp_path / "stylegan1-ffhq-1024.pkl"
    make_gs_pickle(official, 8, **TINY, seed=1)
    make_gs_pickle(impostor, 8, **TINY, seed=2)
    import_file("stylegan1-ffhq-1024", official)
    paper = i2s.load_generator("ffhq", verbose=False)
    conv = converted_ffhq_path()
    assert conv is not None and conv.is_file() and conv.name.startswith("stylegan1-ffhq-1024-")
    other = i2s.load_generator(impostor, verbose=False)  # converted under its own hash
    assert not torch.equal(other.w_avg, paper.w_avg)
    assert converted_path("stylegan1-ffhq-1024", other.info["source_sha256"]).is_file()
    for name in ("ffhq", "auto"):
        assert torch.equal(i2s.load_generator(name, verbose=False).w_avg, paper.w_avg), name
    # a file planted under the keyed name that is not that pickle's conversion is ignored
    G = make_generator(8)
    save_converted(conv, G.cfg, G.state_dict(), {"name": "stylegan1-ffhq-1024", "tier": "paper",
                                                 "source_sha256": "0" * 64})
    assert torch.equal(i2s.load_generator("ffhq", verbose=False).w_avg, paper.w_avg)


# ================================================================== latents naming a model


def test_a_latent_file_never_makes_morph_load_the_path_it_names(tmp_path, capsys):
    G = make_generator(16)
    gen = tmp_path / "gen.pt"
    save_converted(gen, G.cfg, G.state_dict(), {"name": "tiny", "tier": "random"})
    pkl = tmp_path / "victim.pkl"
    make_gs_pickle(pkl, 8, **TINY)
    w = G.mapping(torch.zeros(1, G.z_dim))[0]
    for name in ("a", "b"):
        save_latent(tmp_path / f"{name}.latent.pt", w, {"model": str(pkl), "noise_mode": "const"})
    args = ["morph", str(tmp_path / "a.latent.pt"), str(tmp_path / "b.latent.pt"), "--frames", "2",
            "--device", "cpu", "--out", str(tmp_path / "m")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "not one of the kit's names" in err and "--model" in err
    assert not list((Path(os.environ["I2S_HOME"]) / "converted").glob("victim*"))  # it was not loaded
    assert main(args + ["--model", str(gen)]) == 0
    assert f"loading the generator from the file {gen}" in capsys.readouterr().out


def test_malformed_latents_are_one_line_refusals(tmp_path):
    cases = {
        "metadata.latent.pt": {"format": "i2s-latent", "w_plus": torch.zeros(4, 8), "metadata": "[1, 2"},
        "shape.latent.pt": {"format": "i2s-latent", "w_plus": torch.zeros(100, 1000), "metadata": "{}"},
        "type.latent.pt": {"format": "i2s-latent", "w_plus": "nope", "metadata": "{}"},
        "list.latent.pt": {"format": "i2s-latent", "w_plus": torch.zeros(4, 8), "metadata": json.dumps([1])},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(LatentFileError) as e:
            load_latent(tmp_path / name)
        one_line(e.value, tmp_path / name)
    legacy = tmp_path / "legacy.latent.pt"
    torch.save(cases["list.latent.pt"], legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(LatentFileError, match="not a torch.save zip"):
        load_latent(legacy)


def test_legacy_torch_file_as_a_generator_is_refused_unread(tmp_path):
    G = make_generator(16)
    path = tmp_path / "legacy.pt"
    torch.save({"format": "i2s-stylegan1", "format_version": 1, "config": G.cfg.to_dict(),
                "state_dict": G.state_dict(), "info": {}}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(WeightsFormatError, match="pre-1.6 file format") as e:
        load_converted(path)
    assert not isinstance(e.value, UnsafeWeightsError)
    one_line(e.value, path)


def test_official_layout_still_loads_bit_exactly(tmp_path):
    """The stand-ins rebuild what numpy would have built: values, 0-d lod, legacy and current names."""
    for names in ("legacy", "current"):
        path = tmp_path / f"{names}.pkl"
        flat = make_gs_pickle(path, 8, **TINY, numpy_names=names)
        G = i2s.load_generator(path, verbose=False)
        assert torch.equal(G.w_avg, torch.from_numpy(flat["dlatent_avg"]))
        _, _, Gs = load_tf_pickle(path)
        assert all(not a.flags.writeable for _, a in Gs.variables)  # views of the file's bytes
    assert pickle.loads(pickle.dumps(np.float32(0))) == 0  # numpy itself is untouched
    assert zlib  # (imported for the bomb helpers)
