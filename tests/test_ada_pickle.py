"""The StyleGAN2-ADA PyTorch pickle reader (i2s.weights.ada_pickle) against hostile files.

Every file is written by tests/fixtures_sg2.py in NVIDIA's layout (``torch_utils.persistence``
objects holding ``module_src``, tensors through ``torch.storage._load_from_bytes``). The reader
must never import ``torch_utils``/``dnnlib``, never run ``module_src``, refuse unknown classes by
name, never hand a storage's bytes to ``torch.load``, and bound what it allocates. The pixels of
well-formed files are checked against NVIDIA's in tests/test_stylegan2.py.
"""

from __future__ import annotations

import ast
import io
import pickle
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import i2s
from i2s.weights import WeightsFormatError, import_file
from i2s.weights import ada_pickle
from i2s.weights.ada_pickle import (KNOWN_MODULE_SOURCES, UnsafeAdaPickleError, convert_ada_pickle, load_ada_pickle,
                                    parse_storage, validate_ada_pickle)
from i2s.weights.fetch import InvalidWeightsFile, recorded_hashes

try:
    from fixtures_sg2 import PLACEHOLDER_SRC, Persistent, make_ada_pickle
    from fixtures_tf import Call, GlobalName
    from test_hostile_files import load_bounded, one_line
except ImportError:  # tests/ imported as a package
    from tests.fixtures_sg2 import PLACEHOLDER_SRC, Persistent, make_ada_pickle
    from tests.fixtures_tf import Call, GlobalName
    from tests.test_hostile_files import load_bounded, one_line

SPEC = "ada32"


def _node(data: dict, dotted: str) -> Persistent:
    """The persistent object at ``G_ema.<dotted>`` (``""``: G_ema itself)."""
    node = data["G_ema"]
    for part in filter(None, dotted.split(".")):
        node = node.state["_modules"][part]
    return node


def _hook(dotted: str, fn):
    return lambda data: fn(_node(data, dotted))


def _nothing_imported() -> None:
    assert not any(m == "torch_utils" or m.startswith(("torch_utils.", "dnnlib", "_imported_module_"))
                   for m in sys.modules)


# --------------------------------------------------------------------------- module_src


def test_module_src_is_never_run(tmp_path):
    """A file whose module_src would create a file (and import os) when executed: i2s reads the
    generator by structure, warns once that the source is not NVIDIA's, and the file never appears."""
    marker = tmp_path / "pwned"
    evil = f"import os\nopen({str(marker)!r}, 'w').close()\nos.system('touch {marker}')\n"
    path = tmp_path / "evil-src.pkl"
    make_ada_pickle(path, SPEC, module_src=evil, augment_src=evil)
    with pytest.warns(UserWarning, match="not NVIDIA's published") as rec:
        G = convert_ada_pickle(path)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert not marker.exists()
    _nothing_imported()
    assert G.info["module_src"] == ["unknown"] and len(G.info["module_src_sha256"][0]) == 64


def test_known_source_is_named_and_not_warned_about(tmp_path, monkeypatch, recwarn):
    import hashlib

    path = tmp_path / "known.pkl"
    make_ada_pickle(path, SPEC)
    digest = hashlib.sha256(PLACEHOLDER_SRC.encode()).hexdigest()
    monkeypatch.setitem(KNOWN_MODULE_SOURCES, digest, "the test's stand-in for networks.py")
    G = convert_ada_pickle(path, name="x", domain="cats")
    assert not [w for w in recwarn if "module_src" in str(w.message)]
    assert G.info["module_src"] == ["the test's stand-in for networks.py"] and G.info["domain"] == "cats"
    assert G.info["training_set"]["resolution"] == "32"


def test_published_source_hashes_are_listed():
    """The two texts persistence stores for NVlabs/stylegan2-ada-pytorch (networks.py, augment.py)."""
    assert {v.split(" (")[0] for v in KNOWN_MODULE_SOURCES.values()} == {
        "NVlabs/stylegan2-ada-pytorch training/networks.py", "NVlabs/stylegan2-ada-pytorch training/augment.py"}
    assert all(len(k) == 64 for k in KNOWN_MODULE_SOURCES)


# --------------------------------------------------------------------------- classes and globals


@pytest.mark.parametrize("dotted, name, words", [
    ("mapping", "EvilNet", "class 'EvilNet', which is not a class of NVIDIA's StyleGAN2-ADA networks"),
    ("synthesis.b4", "SynthesisInput", "StyleGAN3"),
])
def test_unknown_class_is_refused_by_name(tmp_path, dotted, name, words):
    path = tmp_path / f"{name}.pkl"
    make_ada_pickle(path, SPEC, hook=_hook(dotted, lambda n: setattr(n, "class_name", name)))
    with pytest.raises(WeightsFormatError, match=words) as e:
        i2s.load_generator(path, verbose=False)
    one_line(e.value, path)
    _nothing_imported()


def test_foreign_global_is_refused_before_import(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "system.pkl"

    def plant(data):
        data["augment_pipe"] = Call(GlobalName("os", "system"), (f"touch {marker}",))

    make_ada_pickle(path, SPEC, hook=plant)
    with pytest.raises(UnsafeAdaPickleError, match="'os.system'.*nothing was imported or executed") as e:
        load_ada_pickle(path)
    one_line(e.value, path)
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(e.value)).args == e.value.args  # picklable across processes


def _storage_bytes(values: np.ndarray, *, storage_global: tuple[str, str] = ("torch", "FloatStorage"),
                   numel: int | None = None, obj: bytes | None = None) -> bytes:
    """torch's legacy save of one storage, with parts replaced (what NVIDIA hands to torch.load)."""
    n = values.size if numel is None else numel
    pid = (b"\x80\x02(X\x07\x00\x00\x00storageq\x00c" + f"{storage_global[0]}\n{storage_global[1]}\n".encode()
           + b"q\x01X\x01\x00\x00\x001q\x02X\x03\x00\x00\x00cpuq\x03" + pickle.dumps(n, protocol=2)[2:-1]
           + b"Ntq\x04Q.")
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2), pickle.dumps(1001, protocol=2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True,
                           "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
             pid if obj is None else obj, pickle.dumps(["1"], protocol=2)]
    return b"".join(parts) + n.to_bytes(8, "little", signed=True) + values.astype("<f4").tobytes()


def test_storage_parser_reads_what_torch_writes():
    t = torch.arange(6, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated; pickle.dump(tensor) still uses it
        func, (b,) = t.storage().__reduce__()
    assert func.__module__ == "torch.storage" and func.__name__ == "_load_from_bytes"
    dtype, numel, offset = parse_storage(b)
    assert (dtype, numel) == (np.dtype("<f4"), 6)
    assert np.array_equal(np.frombuffer(b, "<f4", count=6, offset=offset), np.arange(6))
    assert parse_storage(_storage_bytes(np.arange(3, dtype=np.float32)))[1] == 3


def _plant_tensor(data: dict, storage: bytes, size=(32,), stride=(1,)) -> None:
    """Replace G_ema.mapping's w_avg buffer by a tensor over ``storage``."""
    st = Call(GlobalName("torch.storage", "_load_from_bytes"), (storage,))
    tensor = Call(GlobalName("torch._utils", "_rebuild_tensor_v2"), (st, 0, size, stride, False, OrderedDict()))
    _node(data, "mapping").state["_buffers"]["w_avg"] = tensor


def test_nested_torch_load_gadget_is_refused(tmp_path):
    """A storage whose bytes name os.system: NVIDIA's _load_from_bytes (an unrestricted torch.load)
    would run it; i2s parses the bytes with its own allow-list and refuses the name."""
    marker = tmp_path / "pwned"
    evil = b"\x80\x02cos\nsystem\nq\x00X" + len(f"touch {marker}").to_bytes(4, "little") + \
        f"touch {marker}".encode() + b"\x85R."
    path = tmp_path / "gadget.pkl"
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, _storage_bytes(np.zeros(32, np.float32), obj=evil)))
    with pytest.raises(UnsafeAdaPickleError, match="'os.system' inside a tensor's storage bytes") as e:
        i2s.load_generator(path, verbose=False)
    one_line(e.value, path)
    assert not marker.exists()
    # the storage class itself replaced by a foreign global
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(
        d, _storage_bytes(np.zeros(32, np.float32), storage_global=("builtins", "eval"))))
    with pytest.raises(UnsafeAdaPickleError, match="'builtins.eval' inside a tensor's storage bytes"):
        load_ada_pickle(path)
    # a storage in torch's zip format (what torch.load would also accept) is not the legacy layout
    buf = io.BytesIO()
    torch.save(torch.zeros(32), buf)
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, buf.getvalue()))
    with pytest.raises(WeightsFormatError, match="storage") as e:
        load_ada_pickle(path)
    one_line(e.value, path)


def test_storage_size_lies_are_refused(tmp_path):
    path = tmp_path / "lie.pkl"
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, _storage_bytes(np.zeros(4, np.float32), numel=2**40)))
    out = load_bounded("generator", path, tmp_path)
    assert "declares 1,099,511,627,776 x FloatStorage but holds 16 bytes" in out
    # a tensor that claims more than its storage holds, or another shape than the architecture's
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, _storage_bytes(np.zeros(4, np.float32))))
    with pytest.raises(WeightsFormatError, match="reaches past its storage of 4 values"):
        convert_ada_pickle(path)
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, _storage_bytes(np.zeros(4, np.float32)),
                                                              size=(100_000, 100_000), stride=(0, 0)))
    out = load_bounded("generator", path, tmp_path)
    assert "mapping.w_avg: (100000, 100000), expected (32,)" in out


def test_memo_bomb_in_a_storage_header_is_refused(tmp_path):
    bomb = b"\x80\x02Nr" + (2**28).to_bytes(4, "little") + b"."
    path = tmp_path / "memo.pkl"
    make_ada_pickle(path, SPEC, hook=lambda d: _plant_tensor(d, bomb))
    out = load_bounded("generator", path, tmp_path)
    assert "memo index" in out


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("dotted, key, value, words", [
    ("synthesis.b8", "architecture", "resnet", "architecture is 'resnet'; i2s implements NVIDIA's 'skip'"),
    ("", "c_dim", 10, "c_dim=10: a class-conditional network"),
    ("mapping.fc1", "weight_gain", np.float64(0.5), "fc1.weight_gain is not bias_gain"),
    ("synthesis.b16.conv0", "up", 1, "b16.conv0.up is 1, expected 2"),
    ("synthesis.b32.torgb", "conv_clamp", 256, "differ in conv_clamp"),
])
def test_structure_i2s_would_render_differently_is_refused(tmp_path, dotted, key, value, words):
    path = tmp_path / "odd.pkl"
    make_ada_pickle(path, SPEC, hook=_hook(dotted, lambda n: n.state.__setitem__(key, value)))
    with pytest.raises(WeightsFormatError, match=words) as e:
        convert_ada_pickle(path)
    one_line(e.value, path)


def test_meta_and_container_oddities_are_refused(tmp_path):
    path = tmp_path / "meta.pkl"
    make_ada_pickle(path, SPEC, hook=_hook("mapping", lambda n: setattr(n, "version", 5)))
    with pytest.raises(WeightsFormatError, match="version 5"):
        load_ada_pickle(path)
    make_ada_pickle(path, SPEC, hook=_hook("", lambda n: setattr(n, "meta_extra", {"hook": "x"})))
    with pytest.raises(WeightsFormatError, match="meta is"):
        load_ada_pickle(path)
    make_ada_pickle(path, SPEC, hook=lambda d: d.pop("G_ema"))
    with pytest.raises(WeightsFormatError, match="no 'G_ema' Generator"):
        load_ada_pickle(path)
    make_ada_pickle(path, SPEC, hook=lambda d: d.__setitem__("G_ema", d["D"]))
    with pytest.raises(WeightsFormatError, match="G_ema is 'Discriminator'"):
        load_ada_pickle(path)
    make_ada_pickle(path, SPEC, hook=_hook("mapping.fc0", lambda n: n.state["_forward_hooks"].__setitem__(1, None)))
    with pytest.raises(WeightsFormatError, match="_forward_hooks is not empty"):
        convert_ada_pickle(path)

    def missing(d):
        del _node(d, "synthesis.b8.conv1").state["_parameters"]["bias"]

    make_ada_pickle(path, SPEC, hook=missing)
    with pytest.raises(WeightsFormatError, match="1 missing: synthesis.b8.conv1.bias"):
        validate_ada_pickle(path)


def test_protocols_and_broken_files(tmp_path):
    path = tmp_path / "p4.pkl"
    make_ada_pickle(path, SPEC, protocol=4)
    with pytest.warns(UserWarning):
        assert convert_ada_pickle(path).resolution == 32
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsFormatError, match="truncated or corrupt") as e:
        i2s.load_generator(cut, verbose=False)
    one_line(e.value, cut)
    html = tmp_path / "ffhq.pkl"
    html.write_text("<html><head><title>Access Denied</title></head></html>")
    with pytest.raises(WeightsFormatError, match="HTML page"):
        load_ada_pickle(html)


def test_import_refuses_a_hostile_file_and_records_nothing(tmp_path):
    path = tmp_path / "hostile.pkl"
    make_ada_pickle(path, SPEC, hook=_hook("mapping", lambda n: setattr(n, "class_name", "EvilNet")))
    with pytest.raises(InvalidWeightsFile, match="does not load as a StyleGAN2-ADA network pickle.*EvilNet"):
        import_file("stylegan2-ffhq-1024", path)
    assert recorded_hashes() == {}


def test_reader_needs_no_nvidia_code():
    """Nothing of NVIDIA's is imported by the reader (its allow-list only names their globals)."""
    tree = ast.parse(Path(ada_pickle.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in ("torch_utils", "dnnlib", "legacy", "training")}
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert not calls & {"exec", "eval", "compile", "torch.load", "__import__", "importlib.import_module"}
    _nothing_imported()
