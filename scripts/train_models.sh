#!/usr/bin/env bash
# Retrain, export and evaluate the shipped generators, and write their model cards (models/NAME.{onnx,md,json,png}).
#
#   scripts/train_models.sh                     # every configs/NAME.json, one after the other
#   scripts/train_models.sh digits-cgan         # just the named ones
#   PY=/path/to/python RUNS=/tmp/runs scripts/train_models.sh
#   RESUME=1 scripts/train_models.sh emoji-cgan   # continue an interrupted run from its last checkpoint
#
# Each model's training settings are configs/NAME.json (a TrainConfig subset: the settings that differ from
# the recipe's paper preset, the data and the run's shape); the cards list them. Each is trained on the CPU in
# fp32 with one torch thread (its CPU-seconds are recorded in the ONNX metadata and the card), as shipped.
# configs/NAME.notes.md (optional) goes into the card's Notes section.
# EXPORT holds export options (truncation ψ: the file samples G(ψ·z); chosen with benchmarks/truncation.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/models}

declare -A EXPORT=(
  [digits-cgan]="--truncation 0.75"
)
NAMES=("$@")
if [ ${#NAMES[@]} -eq 0 ]; then
  for path in configs/*.json; do NAMES+=("$(basename "$path" .json)"); done
fi

for name in "${NAMES[@]}"; do
  [ -f "configs/$name.json" ] || { echo "unknown model $name: no configs/$name.json" >&2; exit 2; }
  if [ "${RESUME:-0}" = 1 ] && [ -f "$RUNS/$name/checkpoint.pt" ]; then
    # The run keeps its recorded settings; the config's resumable ones (steps, keep_every, …: the fields
    # marked `resume` in training/config.py) apply to the rest of it.
    # shellcheck disable=SC2046
    "$PY" -m training train --no-progress --out "$RUNS/$name" --resume $("$PY" -c '
import json, sys
from training.flags import config_flags
c = json.load(open(sys.argv[1]))
top = [fl for fl in config_flags() if fl.resumable and fl.section is None and c.get(fl.name) is not None]
print(" ".join(f"{fl.flag} {c[fl.name]}" for fl in top))
' "configs/$name.json")
  else
    rm -rf "$RUNS/$name"
    "$PY" -m training train --config "configs/$name.json" --no-progress --out "$RUNS/$name"
  fi
  # shellcheck disable=SC2086
  "$PY" -m training export "$RUNS/$name" --out "models/$name.onnx" ${EXPORT[$name]:-}
  # A config with keep_every kept checkpoints along the way: measure them and put the curve in the card.
  CURVE=()
  if compgen -G "$RUNS/$name/checkpoints/step-*.pt" >/dev/null; then
    "$PY" -m training curve "$RUNS/$name" --json "$RUNS/$name/curve.jsonl"
    CURVE=(--curve "$RUNS/$name/curve.jsonl")
  fi
  # configs/NAME.notes.md, when there is one: what the figures leave out (a measured limit), in the card.
  NOTES=()
  [ -f "configs/$name.notes.md" ] && NOTES=(--notes "configs/$name.notes.md")
  "$PY" -m training evaluate "models/$name.onnx" --card --json "$RUNS/$name/quality.json" "${CURVE[@]}" "${NOTES[@]}"
done
"$PY" scripts/results_table.py models/*.json
