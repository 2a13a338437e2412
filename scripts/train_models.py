"""Retrain, export and evaluate the shipped generators, and write their model cards (models/NAME.*).

    .venv/bin/python scripts/train_models.py                      # every configs/NAME.json in turn
    .venv/bin/python scripts/train_models.py digits-cgan          # just the named ones
    .venv/bin/python scripts/train_models.py --resume emoji-cgan  # continue an interrupted run
    .venv/bin/python scripts/train_models.py --runs /data/runs digits-cgan

Each model's settings are ``configs/NAME.json``: a TrainConfig subset (the settings that differ from the
recipe's preset, the data and the run's shape) and, under ``"export"``, the export options (``truncation``:
the file samples G(ψ·z), chosen with ``benchmarks/truncation.py``). Each is trained on the CPU in fp32 with
one torch thread, as shipped. ``configs/NAME.notes.md`` (optional) goes into the card's Notes section; a run
that kept checkpoints (``keep_every``) gets its quality curve measured and put in the card. Every stage runs
the project's own command line, so a stage that fails stops with that command's message.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def split_config(path: Path) -> tuple[dict, dict]:
    """(top-level training settings, export options) of ``configs/NAME.json`` (``training.flags`` checks
    both when the file is read for training)."""
    data = json.loads(path.read_text())
    return data, data.pop("export", {}) or {}


def resume_flags(settings: dict) -> list[str]:
    """The config's top-level settings that may change on --resume (steps, keep_every, …), as flags."""
    sys.path.insert(0, str(ROOT))
    from training.flags import config_flags

    flags = []
    for fl in config_flags():
        if fl.resumable and fl.section is None and settings.get(fl.name) is not None:
            flags += [fl.flag, str(settings[fl.name])]
    return flags


def run(*args: str) -> None:
    print("+ python -m " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True)


def build(name: str, runs: Path, resume: bool) -> None:
    config = CONFIGS / f"{name}.json"
    if not config.exists():
        raise SystemExit(f"unknown model {name}: no {config}")
    settings, export = split_config(config)
    out = runs / name
    if resume and (out / "checkpoint.pt").exists():
        run("training", "train", "--no-progress", "--out", str(out), "--resume", *resume_flags(settings))
    else:
        shutil.rmtree(out, ignore_errors=True)
        run("training", "train", "--config", str(config), "--no-progress", "--out", str(out))
    model = ROOT / "models" / f"{name}.onnx"
    options = ["--truncation", str(export["truncation"])] if "truncation" in export else []
    run("training", "export", str(out), "--out", str(model), *options)
    card = ["--card", "--json", str(out / "quality.json")]
    if any((out / "checkpoints").glob("step-*.pt")):
        run("training", "curve", str(out), "--json", str(out / "curve.jsonl"))
        card += ["--curve", str(out / "curve.jsonl")]
    notes = CONFIGS / f"{name}.notes.md"
    if notes.exists():
        card += ["--notes", str(notes)]
    run("training", "evaluate", str(model), *card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="models to build (default: every configs/NAME.json)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "models", help="where the runs go")
    parser.add_argument("--resume", action="store_true", help="continue each run from its last checkpoint")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in CONFIGS.glob("*.json"))
    for name in names:
        build(name, args.runs, args.resume)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "results_table.py"),
            *map(str, sorted(ROOT.glob("models/*.json"))),
        ],
        check=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
