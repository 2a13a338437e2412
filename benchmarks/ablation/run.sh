#!/usr/bin/env bash
# Train the 1000-mode ablation's settings (benchmarks/ablation/*.json) one after the other, into RUNS/NAME.
#   benchmarks/ablation/run.sh 7-r3gan 5-relativistic-r1-r2      # named ones
#   CONFIGS=benchmarks/realdata RUNS=runs/realdata benchmarks/ablation/run.sh emoji-1-shipped   # real data
# Each config's steps are sized so that its kept checkpoints span the CPU budget; benchmarks/modes.py reads
# the figures at equal CPU time from them. Two queues on a 2-core machine: run this twice, in the background.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/ablation}
CONFIGS=${CONFIGS:-benchmarks/ablation}
for name in "$@"; do
  if [ -f "$RUNS/$name/checkpoint.pt" ]; then
    steps=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$CONFIGS/$name.json")
    "$PY" -m training train --no-progress --out "$RUNS/$name" --resume --steps "$steps"
  else
    "$PY" -m training train --config "$CONFIGS/$name.json" --no-progress --out "$RUNS/$name"
  fi
done
