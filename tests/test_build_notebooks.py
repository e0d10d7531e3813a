"""scripts/build_notebooks.py is deterministic and notebooks/ is what it writes: regenerating
reproduces every committed notebook byte for byte (stable cell ids, outputs stripped), and the
cells call only names that i2s.experiments has. Nothing here executes a notebook."""

from __future__ import annotations

import ast
import inspect
import json
import sys

import nbformat
import pytest

from conftest import REPO

import i2s.experiments as ex

sys.path.insert(0, str(REPO / "scripts"))
try:
    import build_notebooks
finally:
    sys.path.pop(0)

COMMITTED = sorted((REPO / "notebooks").glob("0*.ipynb"))


def test_every_notebook_comes_from_the_script():
    assert [p.stem for p in COMMITTED] == list(build_notebooks.NOTEBOOKS)
    assert list(build_notebooks.NOTEBOOKS) == list(ex.NOTEBOOK_RESULTS)


def test_regenerating_reproduces_the_committed_notebooks_byte_for_byte(tmp_path):
    first = build_notebooks.build(tmp_path / "a")
    second = build_notebooks.build(tmp_path / "b")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), f"{a.name}: two builds differ"
        committed = REPO / "notebooks" / a.name
        assert a.read_bytes() == committed.read_bytes(), \
            f"{committed} is not what scripts/build_notebooks.py writes: run it and commit the result"
    assert build_notebooks.main(["--check"]) == 0


def test_check_flags_a_stale_notebook(tmp_path, capsys):
    build_notebooks.build(tmp_path)
    path = tmp_path / "03_defects.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][0]["id"] = "random1"
    path.write_text(json.dumps(nb))
    assert build_notebooks.stale(tmp_path) == [path]
    assert build_notebooks.main(["--check", "--out", str(tmp_path)]) == 1
    assert "03_defects" in capsys.readouterr().err


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_cells_have_stable_ids_and_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert ids == [build_notebooks.cell_id(path.stem, k) for k in range(len(nb.cells))]
    assert len(set(ids)) == len(ids)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert nb.cells[0].metadata["tags"] == ["parameters"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_cells_parse_and_call_existing_experiments(path):
    nb = nbformat.read(path, as_version=4)
    used = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)  # a syntax error in a cell string fails here, not in CI's notebook run
        used |= {n.attr for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "ex"}
    missing = sorted(name for name in used if not hasattr(ex, name))
    assert not missing, f"{path.name} calls i2s.experiments names that do not exist: {missing}"
    # The results the notebook's calls return (by their annotations) are the registry's for it,
    # so the expected outputs (i2s.report.EXPECTED) are the notebook's.
    returned = set()
    for name in used:
        if callable(obj := getattr(ex, name)) and not isinstance(obj, type):
            ann = inspect.signature(obj).return_annotation
            for part in str(ann).split("|"):
                cls = getattr(ex, part.strip(), None)
                if isinstance(cls, type) and issubclass(cls, ex.Result):
                    returned.add(cls)
    assert returned == set(ex.NOTEBOOK_RESULTS[path.stem])
