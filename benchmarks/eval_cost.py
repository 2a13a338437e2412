"""What ``--eval-every`` costs: one snapshot's CPU against the CPU of the training steps between two.

    .venv/bin/python -m benchmarks.eval_cost configs/emoji-dcgan.json [configs/fashion-cgan.json ...]
        [--steps 30] [--every 2000] [--samples 1000]

For each config: builds its trainer (one thread, as the shipped models train), times ``--steps`` training
steps (CPU seconds of this process), then two snapshots as ``--eval-every`` takes them (samples of G and of
its EMA, ``evaluate``'s figures): the first also loads or trains the evaluator and fits the real data's
reference (once per run; the evaluator is cached on disk across runs), the second is what every later one
costs. Prints per config the CPU per step, both snapshots, and the steady share of a run's CPU at
``--every`` steps.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import machine_line, print_table
from training.config import TrainConfig, preset
from training.flags import apply, read_config_file
from training.trainer import Trainer
from training.watch import Snapshots


def measure(config: Path, steps: int, samples: int) -> tuple[float, float, float]:
    """(CPU s per training step, first snapshot's CPU s, a later snapshot's CPU s)."""
    changes = read_config_file(config)
    cfg = apply(preset(changes.get((None, "recipe"), "dcgan")), changes)
    cfg = replace(cfg, eval_samples=samples, tensorboard=False, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        trainer.train_step()  # warm-up (allocations)
        start = time.process_time()
        for _ in range(steps):
            trainer.train_step()
        per_step = (time.process_time() - start) / steps
        snapshots = Snapshots(trainer)
        costs = []
        for _ in range(2):
            start = time.process_time()
            snapshots.measure()
            costs.append(time.process_time() - start)
    return per_step, costs[0], costs[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("configs", type=Path, nargs="+")
    parser.add_argument("--steps", type=int, default=30, help="training steps timed")
    parser.add_argument("--every", type=int, default=TrainConfig().eval_every, help="--eval-every to price")
    parser.add_argument("--samples", type=int, default=TrainConfig().eval_samples, help="--eval-samples")
    args = parser.parse_args()
    rows = []
    for config in args.configs:
        per_step, first, steady = measure(config, args.steps, args.samples)
        share = steady / (args.every * per_step + steady)
        rows.append([config.stem, per_step, first, steady, 100 * share])
    print(f"\n{machine_line()}; one torch thread; {args.samples} samples of G and of its EMA per snapshot")
    print_table(
        ["config", "train CPU s/step", "first snapshot CPU s", "later snapshot CPU s",
         f"% of CPU at --eval-every {args.every}"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
