#!/usr/bin/env bash
# mini v3 (issue 31): train in --minutes chunks on one core, resuming from the run folder each time,
# until --total-kimg. Start it at the beginning of every session (it picks up where the last stopped):
#
#   nohup scripts/train_mini_v3.sh > ~/.cache/i2s/train-runs/mini-v3.out 2>&1 &
#
# The recipe is data/models/mini-faces64.md's "v3 in progress"; the photos come from
# scripts/prepare_mini_data.py. RUN, DATA and MINUTES may be set in the environment.
# On a new machine (no run folder) it goes on from the newest committed snapshot,
# data/models/interim/mini-v3-<k>k.pt (G and G_ema from it, images seen kept, D and Adam afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-$HOME/.cache/i2s/train-runs/mini-v3}
DATA=${DATA:-$HOME/.cache/i2s/train-data/faces64.npy}
MINUTES=${MINUTES:-60}
PY=${PY:-.venv/bin/python}
TOTAL_KIMG=2000
while true; do
  if [ -f "$RUN/checkpoint.pt" ] || [ -f "$RUN/checkpoint-prev.pt" ]; then
    "$PY" -m i2s.train --out "$RUN" --resume --data "$DATA" --threads 1 --no-progress --minutes "$MINUTES" --compile
  else
    CARRY=$(ls data/models/interim/mini-v3-*k.pt 2>/dev/null | sort -t- -k3 -n | tail -1 || true)
    "$PY" -m i2s.train --data "$DATA" --out "$RUN" --threads 1 --no-progress --minutes "$MINUTES" --compile \
      ${CARRY:+--transfer "$CARRY"} \
      --d-arch projected --proj-res 96 --d-width 0.5 --d-flip --schedule 64:rest --batch 16 \
      --fmap-base 1024 --fmap-max 128 --ema-kimg 5 --one-g-pass --d-precision float32 \
      --diffaug-policy translation,cutout --locality 0.3 --range-penalty 10 --d-flip-v 0.2 \
      --total-kimg "$TOTAL_KIMG" --ckpt-every 4 --sample-every 10 --keep-every 10 --seed 0
  fi
  seen=$("$PY" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['images_seen'])" "$RUN/log.jsonl")
  [ "$seen" -ge $((TOTAL_KIMG * 1000)) ] && break
done
