#!/usr/bin/env bash
# Re-evaluate the shipped generators as they are (no retraining, no re-export) and rewrite their model cards
# (models/NAME.{json,md,png}), then print the README's results tables. Run it after anything that changes a
# card's inputs: the evaluation code, or the ONNX files' metadata (the card records the file's sha256).
#
#   scripts/evaluate_models.sh                  # every models/*.onnx
#   scripts/evaluate_models.sh digits-cgan      # just the named ones
#   PY=/path/to/python scripts/evaluate_models.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAMES=("$@")
if [ ${#NAMES[@]} -eq 0 ]; then
  for path in models/*.onnx; do NAMES+=("$(basename "$path" .onnx)"); done
fi
for name in "${NAMES[@]}"; do
  [ -f "models/$name.onnx" ] || { echo "no model models/$name.onnx" >&2; exit 2; }
  "$PY" -m training evaluate "models/$name.onnx" --card
done
"$PY" scripts/results_table.py models/*.json
