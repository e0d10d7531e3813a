#!/usr/bin/env bash
# mini v3 (issue 31): train in --minutes chunks on one core, resuming from the run folder each time,
# until --total-kimg. Start it at the beginning of every session (it picks up where the last stopped):
#
#   nohup scripts/train_mini_v3.sh > ~/.cache/i2s/train-runs/mini-v3.out 2>&1 &
#
# The recipe is data/models/mini-faces64.md's "v3 in progress"; the photos come from
# scripts/prepare_mini_data.py. RUN, DATA, MINUTES, LR and D_WARMUP (kimg of D-only steps after the
# transfer, --d-warmup-kimg) may be set in the environment.
# On a new machine (no run folder) it goes on from the newest committed snapshot,
# data/models/interim/mini-v3-<k>k.pt (G and G_ema from it, images seen kept, Adam afresh), with D
# from mini-v3-<k>k-d.pt beside it when that is there (else D afresh, trained alone for 20 kimg first).
# At the end of a session that moved the run, commit both from one checkpoint (the generator as
# the mean of the kept snapshots since lr 0.0002, which scores below any single one):
#   python -m i2s.train --out "$RUN" --export data/models/interim/mini-v3-<k>k.pt --average-from 1132 \
#     --name mini-v3-interim-<k>k
#   python -m i2s.train --out "$RUN" --export-d data/models/interim/mini-v3-<k>k-d.pt
# The snapshots were made in phases: to 100k images with --locality 0.3 at lr 0.002 (the coarse
# rows learn to carry the layout), then with --locality 0 at lr 0.0005 (the structure stays, FD
# falls) and from 1120k at lr 0.0002; a run started here is in the last phase. A resumed run keeps
# the lr it was started with unless LR is given. The file to ship is exported with W at v1's spread:
#   source scripts/mini_v3_recipe.sh && python -m i2s.train --out "$RUN" --export F --average-from 1132 \
#     --w-std "$MINI_V3_W_STD" --name mini-faces64-v3
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-$HOME/.cache/i2s/train-runs/mini-v3}
DATA=${DATA:-$HOME/.cache/i2s/train-data/faces64.npy}
MINUTES=${MINUTES:-60}
PY=${PY:-.venv/bin/python}
source scripts/mini_v3_recipe.sh
TOTAL_KIMG=2000  # as in the recipe
WARMUP=${D_WARMUP-$MINI_V3_D_WARMUP}  # D_WARMUP= (empty) for none
while true; do
  if [ -f "$RUN/checkpoint.pt" ] || [ -f "$RUN/checkpoint-prev.pt" ]; then
    "$PY" -m i2s.train --out "$RUN" --resume --data "$DATA" --threads 1 --no-progress --minutes "$MINUTES" --compile \
      ${LR:+--lr "$LR"}
  else
    "$PY" -m i2s.train --data "$DATA" --out "$RUN" --threads 1 --no-progress --minutes "$MINUTES" --compile \
      ${MINI_V3_CARRY:+--transfer "$MINI_V3_CARRY"} ${MINI_V3_CARRY_D:+--transfer-d "$MINI_V3_CARRY_D"} \
      ${MINI_V3_CARRY:+${WARMUP:+--d-warmup-kimg "$WARMUP"}} \
      "${MINI_V3_RECIPE[@]}" --ckpt-every 4 --sample-every 10 --keep-every 10
  fi
  seen=$("$PY" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['images_seen'])" "$RUN/log.jsonl")
  [ "$seen" -ge $((TOTAL_KIMG * 1000)) ] && break
done
