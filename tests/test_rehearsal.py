"""The paper tier's rehearsal (scripts/rehearse.py, issue 34), its fast variant: the Drive-like
loopback server, both fetches (the quota page, the confirmation page, the VGG-16 prefix refusal),
conversion through ``auto``, notebook 06 at the paper profile at 1024 px with one step per
embedding, ``i2s edit``, and the checks that every output names the paper tier."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # minutes: 1024-px generator, 10 embeddings, an edit (docs/setup.md)
def test_rehearsal_fast_variant(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "scripts/rehearse.py", "--only", "06", "--per-class", "2", "--jobs", "1",
                        "--work", str(work), "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=1800)
    summary = (out / "REHEARSAL.md").read_text() if (out / "REHEARSAL.md").is_file() else ""
    assert p.returncode == 0, summary + p.stdout[-3000:] + p.stderr[-3000:]
    assert summary.startswith("# Rehearsal of the paper tier (passed)") and "**FAILED**" not in summary
    for check in ("the quota page is named", "the confirmation page was answered", "fails torchvision's confirmed",
                  "auto picks the paper tier at 1024 px", "its latents name the generator and the paper tier",
                  "every CSV row and JSON names model stylegan1-ffhq-1024, tier paper"):
        assert any(check in line for line in summary.splitlines() if line.startswith("- ok: ")), check
    report = (out / "REPORT.md").read_text()
    assert "rehearsal with random weights" in report and "paper tier" in report
    rows = list(csv.DictReader(open(out / "run_times.csv")))
    assert [r["notebook"] for r in rows] == ["06_pairwise_distances"] and rows[0]["steps"] == "1"
    assert (work / "figures" / "ffhq" / "paper-vgg16-imagenet" / "fig20_distances.png").is_file()
