# mini v3's training recipe (issue 31), sourced by scripts/train_mini_v3.sh and scripts/gpu_check.sh
# so that both train the same thing. The third phase: the committed snapshot's coarse rows already
# carry the layout (--locality 0.3 at lr 0.002 to 100k images), so the locality term is off, and FD
# is near its target, so the lr is lower again: 0.0005 to 1120k images, 0.0002 from there (after a
# restart at 0.0005 FD rose by 0.019 over 32k images, at 0.0002 it held: data/models/mini-faces64.md,
# "Session of 2026-12-07 (sixth)"). LR may be set in the environment.
MINI_V3_RECIPE=(
  --d-arch projected --proj-res 96 --d-width 0.5 --d-flip --d-flip-v 0.2 --schedule 64:rest --batch 16
  --fmap-base 1024 --fmap-max 128 --ema-kimg 5 --one-g-pass --d-precision float32
  --diffaug-policy translation,cutout --range-penalty 10 --locality 0 --lr "${LR:-0.0002}"
  --total-kimg 2000 --seed 0
)
# The spread W is exported at (python -m i2s.train --out RUN --export F --w-std "$MINI_V3_W_STD"): v1 mini's
# (StyleGAN.w_std). v3 trains a wider W (0.526 at 932k images); stored at v1's spread, Algorithm 1's
# lr 0.01 moves w as far per step as on v1: +0.52 dB [0.36, 0.67] at 1000 steps on 16 held-out faces,
# the same images (data/models/mini-faces64.md, "Session of 2026-12-07 (fourth)").
MINI_V3_W_STD=0.378
# The newest committed snapshot, which a run on a new machine goes on from (--transfer): G and
# G_ema from it, the images seen kept, Adam afresh; D from its -d.pt file (--export-d) when there.
MINI_V3_CARRY=$(ls data/models/interim/mini-v3-*k.pt 2>/dev/null | sort -t- -k3 -n | tail -1 || true)
# Without a D file D starts fresh and trains alone for MINI_V3_D_WARMUP kimg first (--d-warmup-kimg).
MINI_V3_CARRY_D=""
MINI_V3_D_WARMUP=20
if [ -n "$MINI_V3_CARRY" ] && [ -f "${MINI_V3_CARRY%.pt}-d.pt" ]; then MINI_V3_CARRY_D="${MINI_V3_CARRY%.pt}-d.pt"; MINI_V3_D_WARMUP=""; fi
