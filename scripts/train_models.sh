#!/usr/bin/env bash
# Retrain, export and evaluate the shipped generators and write their model cards: scripts/train_models.py
# does the work (configs/NAME.json holds each model's training settings and, under "export", its export
# options). Arguments pass through, e.g.  scripts/train_models.sh --resume emoji-cgan
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PY:-.venv/bin/python}" scripts/train_models.py "$@"
