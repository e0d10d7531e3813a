"""scripts/mini_report.py --against: a candidate's PSNR against another run's, image by image."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("mini_report", REPO / "scripts" / "mini_report.py")
mr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mr)


def _rows(psnr: dict[tuple[str, str], float]) -> list[dict]:
    return [{"group": g, "image": i, "psnr_db": f"{v:.3f}", "ssim": "0.9", "loss": "1", "dist_to_w_avg": "1"}
            for (g, i), v in psnr.items()]


def test_against_pairs_images_by_name(tmp_path):
    other = {("holdout faces", f"holdout/{k:03d}"): 28.0 + 0.1 * k for k in range(6)}
    other[("cats", "cats/0")] = 25.0
    path = mr.write_csv(tmp_path / "per_image.csv", _rows(other))
    # this run: every hold-out face 0.5 dB better except the last (1 dB worse), one extra face
    # the other run never embedded (left out), and cats not run at all (no group)
    mine = {k: v + 0.5 for k, v in other.items() if k[0] == "holdout faces"}
    mine[("holdout faces", "holdout/005")] -= 1.5
    mine[("holdout faces", "holdout/099")] = 10.0
    res = mr.against(_rows(mine), mr.read_per_image(path))
    assert set(res) == {"holdout faces"}
    c = res["holdout faces"]
    assert c["n_images"] == 6 and c["wins"] == 5
    assert c["effect"] == pytest.approx((5 * 0.5 - 1.0) / 6, abs=1e-3)
    assert c["low"] < c["effect"] < c["high"]


def test_against_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "per_image.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit, match="per_image.csv: not a report's per_image.csv"):
        mr.read_per_image(bad)
    bad.write_text("group,image,psnr_db,ssim,loss,dist_to_w_avg\n")
    with pytest.raises(SystemExit, match="per_image.csv: a per_image.csv without a single image"):
        mr.read_per_image(bad)
    with pytest.raises(SystemExit, match="missing.csv"):
        mr.read_per_image(tmp_path / "missing.csv")
