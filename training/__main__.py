"""Command line: ``python -m training {train,export,evaluate}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.config import RECIPES, TrainConfig, override, preset


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", choices=RECIPES, default="dcgan", help="preset to start from")
    p.add_argument("--dataset", default=None, help="digits (default), mnist, fashion-mnist or folder:PATH")
    p.add_argument("--data-dir", default=None, help="cache folder for mnist / fashion-mnist IDX files")
    p.add_argument("--image-size", type=int, default=None, choices=(16, 32, 64))
    p.add_argument("--channels", type=int, default=None, choices=(1, 3, 4))
    p.add_argument("--steps", type=int, default=None, help="generator steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("model")
    g.add_argument("--latent-dim", type=int, default=None)
    g.add_argument("--conditional", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--g-width", type=int, default=None)
    g.add_argument("--d-width", type=int, default=None)
    g.add_argument("--g-norm", choices=("batch", "none"), default=None)
    g.add_argument("--d-norm", choices=("batch", "layer", "spectral", "none"), default=None)
    g.add_argument("--d-conditioning", choices=("concat", "projection"), default=None)
    g.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction, default=None)
    o = p.add_argument_group("objective")
    o.add_argument("--objective", dest="kind", choices=("bce", "wasserstein"), default=None)
    o.add_argument("--gp-weight", type=float, default=None)
    o.add_argument("--clip", type=float, default=None)
    o.add_argument("--n-critic", type=int, default=None)
    o.add_argument("--critic-boost", action=argparse.BooleanOptionalAction, default=None)
    t = p.add_argument_group("optimizer")
    t.add_argument("--optimizer", dest="name", choices=("adam", "rmsprop"), default=None)
    t.add_argument("--lr-g", type=float, default=None)
    t.add_argument("--lr-d", type=float, default=None)
    t.add_argument("--beta1", type=float, default=None)
    t.add_argument("--beta2", type=float, default=None)
    t.add_argument("--ema-decay", type=float, default=None)
    t.add_argument("--ema-start", type=int, default=None)
    s = p.add_argument_group("logging")
    s.add_argument("--sample-every", type=int, default=None)
    s.add_argument("--checkpoint-every", type=int, default=None)
    s.add_argument("--log-every", type=int, default=None)


NOT_CONFIG = {"recipe", "out", "resume", "no_progress", "command", "image_size", "channels"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = preset(args.recipe)
    changes = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}
    changes["image_size"], changes["channels"] = args.image_size, args.channels
    return override(cfg, **changes)


def cmd_train(args: argparse.Namespace) -> int:
    from training.data import DatasetError
    from training.trainer import CONFIG, Trainer

    if args.resume:
        if not (args.out / CONFIG).exists():
            print(f"error: --resume: {args.out} holds no run to resume", file=sys.stderr)
            return 2
        cfg = TrainConfig.load(args.out / CONFIG)
        if args.steps is not None:  # only the length of a resumed run may change
            cfg = override(cfg, steps=args.steps)
    else:
        cfg = config_from_args(args)
    try:
        trainer = Trainer(cfg, args.out)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.resume:
        trainer.load()
    state = trainer.run(progress=not args.no_progress)
    print(
        json.dumps(
            {
                "run": str(args.out),
                "steps": state.step,
                "wall_s": round(state.wall_seconds, 1),
                "cpu_s": round(state.cpu_seconds, 1),
            }
        )  # fmt: skip
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.export import ExportError, export

    try:
        report = export(args.run_dir, args.out)
    except ExportError as exc:
        print(f"error: export failed: {exc}", file=sys.stderr)
        return 1
    worst = max(report.max_abs_diff.values())
    print(f"exported {report.path} (ONNX Runtime vs PyTorch: max |diff| {worst:.2e} at batch sizes "
          f"{', '.join(map(str, report.max_abs_diff))})")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("train", help="train a generator"))
    e = sub.add_parser("export", help="export a run's generator to ONNX and verify it")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--out", type=Path, required=True, help="e.g. models/NAME.onnx")
    args = parser.parse_args(argv)
    return {"train": cmd_train, "export": cmd_export}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
