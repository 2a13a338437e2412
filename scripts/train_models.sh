#!/usr/bin/env bash
# Retrain, export and evaluate the shipped generators, and write their model cards (models/NAME.{onnx,md,json,png}).
#
#   scripts/train_models.sh                     # all four, one after the other
#   scripts/train_models.sh digits-cgan         # just the named ones
#   PY=/path/to/python RUNS=/tmp/runs scripts/train_models.sh
#
# Each model is trained with one torch thread (its CPU-seconds are recorded in the ONNX metadata and the card).
# The flags after the recipe are the settings that differ from the recipe's paper preset; the cards list them.
# EXPORT holds export options (truncation ψ: the file samples G(ψ·z); chosen with benchmarks/truncation.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/models}
COMMON=(--dataset digits --image-size 32 --g-width 64 --batch-size 64 --seed 0 --threads 1 --no-progress
        --sample-every 100 --checkpoint-every 100)

declare -A FLAGS=(
  [digits-cgan]="--recipe cgan --d-width 32 --d-norm spectral --ema-decay 0.995 --steps 1800"
  [digits-dcgan]="--recipe dcgan --d-width 32 --d-norm spectral --ema-decay 0.995 --minibatch-std --steps 2000"
  [digits-wgan]="--recipe wgan --d-width 32 --n-critic 3 --lr-g 2e-4 --lr-d 2e-4 --minibatch-std --pack 2 --steps 1100"
  [digits-wgan-gp]="--recipe wgan-gp --d-width 32 --n-critic 2 --lr-g 2e-4 --lr-d 2e-4 --beta1 0.5 --ema-decay 0.995 --steps 1300"
)
declare -A EXPORT=(
  [digits-cgan]="--truncation 0.75"
)
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(digits-cgan digits-dcgan digits-wgan digits-wgan-gp)

for name in "${NAMES[@]}"; do
  [ -n "${FLAGS[$name]:-}" ] || { echo "unknown model $name; known: ${!FLAGS[*]}" >&2; exit 2; }
  rm -rf "$RUNS/$name"
  # shellcheck disable=SC2086  # the flags are meant to split into words
  "$PY" -m training train "${COMMON[@]}" ${FLAGS[$name]} --out "$RUNS/$name"
  # shellcheck disable=SC2086
  "$PY" -m training export "$RUNS/$name" --out "models/$name.onnx" ${EXPORT[$name]:-}
  "$PY" -m training evaluate "models/$name.onnx" --card --json "$RUNS/$name/quality.json"
done
"$PY" scripts/results_table.py models/*.json
