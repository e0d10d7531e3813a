"""scripts/gpu_check.sh, the paper tier's device check (issue 34), dry-run on the CPU at tiny sizes so
that it cannot rot before a GPU is lent: every part runs and writes what the lead reads."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # ~40 s on an idle 2-core CPU (three Python processes, a VGG-16 each)
def test_device_script_dry_run_on_the_cpu(tmp_path):
    data = tmp_path / "faces64.npy"
    np.save(data, np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8))
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "DATA": str(data), "TRAIN_MINUTES": "1", "PY": sys.executable,
           "OMP_NUM_THREADS": "1"}
    p = subprocess.run(["bash", "scripts/gpu_check.sh", "--device", "cpu", "--tiny"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = (out / "summary.txt").read_text()
    assert all(f"{part}: exit 0" in summary for part in ("bench", "protocol", "train")), summary
    rows = list(csv.DictReader(open(out / "bench.csv")))
    ok = {(r["precision"], r["batch"]) for r in rows if r["status"] == "ok"}
    assert {("float32", "1"), ("bf16", "1")} <= ok
    assert all(float(r["image_steps_per_s"]) > 0 for r in rows if r["status"] == "ok")
    assert "target (64 px, the paper's 5000 steps, batched: <= 40 s per image)" in (out / "bench.md").read_text()
    proto = json.loads((out / "protocol.json").read_text())
    assert proto["steps"] == 3 and proto["finite"] and proto["loss_fell"] and len(proto["images"]) == 2
    assert (out / "protocol.png").stat().st_size > 0
    assert (out / "log.jsonl").read_text().strip()
    from i2s.models import load_generator  # the trained generator comes back and loads

    G = load_generator(out / "mini-v3-gpu.pt", verbose=False)
    assert G.info["trained_resolution"] == 8 and G.info["images_seen"] >= 20  # the tiny recipe: 8-px phase
    assert len(list(out.iterdir())) <= 8  # what a lent GPU machine sends back


def test_device_check_without_a_gpu_says_so_in_one_line(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "scripts/gpu_check.py", "bench", "--device", "cuda", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    if p.returncode == 0:
        pytest.skip("a GPU is present: the dry run is the other test")
    assert p.returncode == 2 and "torch sees no GPU" in p.stderr and "Traceback" not in p.stderr


def test_the_v3_recipe_both_scripts_source_parses_as_the_later_phase():
    """scripts/mini_v3_recipe.sh (train_mini_v3.sh and gpu_check.sh train with it) holds options
    i2s.train accepts, and they are the later phase: no locality term, the lower lr, the range
    penalty; the snapshot it goes on from is a committed one."""
    from i2s.train.cli import parse_args

    p = subprocess.run(["bash", "-c", 'source scripts/mini_v3_recipe.sh && printf "%s\\0" "${MINI_V3_RECIPE[@]}" '
                        '&& printf "CARRY=%s\\0" "$MINI_V3_CARRY" && printf "D=%s\\0" "$MINI_V3_CARRY_D" '
                        '&& printf "WARMUP=%s\\0" "$MINI_V3_D_WARMUP" && printf "%s" "$MINI_V3_W_STD"'], cwd=REPO,
                       capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "LR"})
    assert p.returncode == 0, p.stderr
    *recipe, carry, carry_d, warmup, w_std = p.stdout.split("\0")
    args = parse_args(recipe)
    assert (args.d_arch, args.locality, args.range_penalty, args.d_flip_v) == ("projected", 0.0, 10.0, 0.2)
    assert args.lr < 0.002  # below the first phase's
    carry = carry.removeprefix("CARRY=")
    assert carry.startswith("data/models/interim/mini-v3-") and (REPO / carry).is_file()
    # D goes with it when its --export-d file lies beside it
    carry_d = carry_d.removeprefix("D=")
    assert carry_d == (carry.removesuffix(".pt") + "-d.pt" if (REPO / carry.replace(".pt", "-d.pt")).is_file() else "")
    # without it, a fresh D trains alone first (--d-warmup-kimg)
    warmup = warmup.removeprefix("WARMUP=")
    assert (warmup == "") if carry_d else (parse_args(["--d-warmup-kimg", warmup]).d_warmup_kimg > 0)
    # v3 is exported with W at v1 mini's spread (StyleGAN.rescale_w)
    from i2s.models import load_generator

    assert float(w_std) == pytest.approx(load_generator("mini-v1", verbose=False).w_std(), abs=5e-4)
