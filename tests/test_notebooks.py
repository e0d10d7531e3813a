"""The seven notebooks execute through papermill at the quick profile (any cell error fails) and
write every expected figure and CSV, plus REPORT.md: what CI runs (about half an hour on 2 cores;
two notebooks side by side with a thread each, as ``make reproduce`` runs them on a CPU).

``I2S_NOTEBOOK_STEPS=2 make test`` runs them with 2 optimiser steps per embedding instead: the
same cells and checks in a few minutes, for a developer's edit-test loop."""

from __future__ import annotations

import os
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_all_notebooks_run_and_write_their_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    steps = os.environ.get("I2S_NOTEBOOK_STEPS")
    jobs = ["--jobs", "2"] if (os.cpu_count() or 1) >= 2 else []
    rc = run_notebooks.main(["--model", "mini", "--profile", "quick", *(["--steps", steps] if steps else []), *jobs,
                             "--figures", str(tmp_path / "figures"), "--results", str(tmp_path / "results"), "--check"])
    assert rc == 0
    report = (tmp_path / "results" / "mini" / "quick" / "REPORT.md").read_text()
    assert "The paper's claims" in report and "Table 1" in report and "Defects stay local" in report
    executed = sorted(p.name for p in (REPO / "runs" / "quick").glob("0*.ipynb"))
    assert len(executed) == 7
