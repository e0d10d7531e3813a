"""The seven notebooks execute through papermill with the quick profile's cells (any cell error
fails) and write every expected figure and CSV, plus REPORT.md: what CI runs, two notebooks side by
side with a thread each, as ``make reproduce`` runs them on a CPU.

The test gives every embedding 50 optimiser steps (``TEST_STEPS``; the quick profile's own 140 made
this one test take 20 min on an AVX-512 CPU and most of an hour on an AVX2 one). It checks that the
cells run and write their outputs, not the numbers, which are ``make reproduce``'s.
``I2S_NOTEBOOK_STEPS=N make test`` runs them with N steps instead (2: a developer's edit-test loop
in a few minutes; ``profile``: the quick profile's own counts)."""

from __future__ import annotations

import os
import sys

import pytest

from conftest import REPO

TEST_STEPS = "50"  # Algorithm 1 steps per embedding in this test (the curves get twice as many)


@pytest.mark.slow
def test_all_notebooks_run_and_write_their_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    steps = os.environ.get("I2S_NOTEBOOK_STEPS", TEST_STEPS)
    steps = None if steps == "profile" else steps
    jobs = ["--jobs", "2"] if (os.cpu_count() or 1) >= 2 else []
    rc = run_notebooks.main(["--model", "mini", "--profile", "quick", *(["--steps", steps] if steps else []), *jobs,
                             "--figures", str(tmp_path / "figures"), "--results", str(tmp_path / "results"), "--check"])
    assert rc == 0
    report = (tmp_path / "results" / "mini" / "quick" / "REPORT.md").read_text()
    assert "The paper's claims" in report and "Table 1" in report and "Defects stay local" in report
    executed = sorted(p.name for p in (REPO / "runs" / "quick").glob("0*.ipynb"))
    assert len(executed) == 7
