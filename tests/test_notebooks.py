"""The seven notebooks execute through papermill (any cell error fails) and write every
expected figure and CSV, plus REPORT.md. Run with 2 optimiser steps per embedding: this checks
the notebooks, not the numbers (`make reproduce` runs the quick profile for real)."""

from __future__ import annotations

import sys

from conftest import REPO


def test_all_notebooks_run_and_write_their_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    rc = run_notebooks.main(["--model", "mini", "--profile", "quick", "--steps", "2", "--figures", str(tmp_path / "figures"),
                             "--results", str(tmp_path / "results"), "--check"])
    assert rc == 0
    report = (tmp_path / "results" / "mini" / "quick" / "REPORT.md").read_text()
    assert "The paper's claims" in report and "Table 1" in report and "Defects stay local" in report
    executed = sorted(p.name for p in (REPO / "runs" / "quick").glob("0*.ipynb"))
    assert len(executed) == 7
