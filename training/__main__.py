"""Command line: ``python -m training {train,export,evaluate,curve}``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.flags import add_config_flags, apply, config_flags, config_from_args, given_flags


def _add_train_args(p: argparse.ArgumentParser) -> None:
    """The train command's flags: one per configuration field (see training/flags.py), and the run's own."""
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON or TOML file of TrainConfig settings (any subset; the flags override it)",
    )
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-progress", action="store_true")
    add_config_flags(p)


def _resumed_config(args: argparse.Namespace, recorded: Path) -> TrainConfig:
    """The run's recorded configuration; only the settings marked ``resume`` may change on ``--resume``."""
    if args.config is not None:
        raise ValueError("--config cannot be combined with --resume (the run keeps its recorded settings)")
    given = given_flags(args)
    fixed = sorted(fl.flag for fl in given if not fl.resumable)
    if fixed:
        allowed = ", ".join(fl.flag for fl in config_flags() if fl.resumable)
        raise ValueError(f"{', '.join(fixed)} cannot change on --resume (only {allowed} can)")
    cfg = TrainConfig.load(recorded)
    return apply(cfg, {(fl.section, fl.name): v for fl, v in given.items()})


def cmd_train(args: argparse.Namespace) -> int:
    from training.data import DatasetError
    from training.trainer import CHECKPOINT, CONFIG, Trainer

    resume = args.resume
    try:
        if resume:
            if not (args.out / CONFIG).exists():
                raise ValueError(f"--resume: {args.out} holds no run to resume")
            cfg = _resumed_config(args, args.out / CONFIG)
        else:
            cfg = config_from_args(args)
        trainer = Trainer(cfg, args.out)
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if resume and (args.out / CHECKPOINT).exists():
        trainer.load()
    elif resume:  # killed before its first checkpoint: the recorded settings start again from step 0
        trainer.log("--resume: no checkpoint yet; training from step 0 with the recorded settings")
        trainer.discard_metrics_after(0)
    try:
        state = trainer.run(progress=not args.no_progress, resumed=resume and trainer.state.step > 0)
    finally:
        trainer.close()
    if trainer.is_main:
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
    from training.export import ExportError, checkpoint_file, export

    try:
        if args.checkpoint != "last":  # a folder that is no run at all gets export's own message
            checkpoint_file(args.run_dir, args.checkpoint)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        report = export(args.run_dir, args.out, truncation=args.truncation, checkpoint=args.checkpoint)
    except ExportError as exc:
        print(f"error: export failed: {exc}", file=sys.stderr)
        return 1
    worst = max(report.max_abs_diff.values())
    print(f"exported {report.path} (ONNX Runtime vs PyTorch: max |diff| {worst:.2e} at batch sizes "
          f"{', '.join(map(str, report.max_abs_diff))})")  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gancore.generator import ModelLoadError
    from training.data import DatasetError
    from training.evaluate import evaluate_model, format_table, read_curve

    measured = _measure_settings(args)
    if measured is None:
        return 2
    settings, ae_settings = measured
    try:
        curve = _card_input(args, "curve", read_curve)
        notes = _card_input(args, "notes", lambda path: path.read_text())
    except _CardInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        quality, model = evaluate_model(
            args.model, args.dataset, args.samples, args.seed, args.data_dir, args.cache_dir, settings,
            ae_settings,
        )  # fmt: skip
    except (ModelLoadError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(quality, model.info.name))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(quality.to_dict(), indent=2) + "\n")
    if args.card:
        from training.cards import write_card

        paths = write_card(model, quality, curve=curve, notes=notes)
        print("card: " + ", ".join(str(p) for p in paths.values()))
    return 0


class _CardInputError(Exception):
    """A card's input flag without --card, or a file it cannot read."""


def _card_input(args: argparse.Namespace, name: str, read: Callable[[Path], Any]) -> Any:
    """What ``--NAME FILE`` puts into the model card (``read(FILE)``), or None without the flag."""
    path = getattr(args, name)
    if path is None:
        return None
    if not args.card:
        raise _CardInputError(f"--{name} goes into the model card: add --card")
    try:
        return read(path)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise _CardInputError(f"--{name}: {exc}") from exc


def _add_measure_args(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``evaluate`` and ``curve``: how the figures are measured."""
    p.add_argument("--data-dir", default=None, help="folder of the data set's files (see train --data-dir)")
    p.add_argument("--samples", type=int, default=5000, help="images drawn from the model")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (the service's noise contract)")
    p.add_argument(
        "--cache-dir", type=Path, default=None, help="evaluator cache (default ~/.cache/ganserve/evaluators)"
    )
    p.add_argument(
        "--evaluator-epochs",
        type=int,
        default=None,
        help="training epochs of the evaluator CNNs (default: about 100,000 images per network, at most 20)",
    )
    p.add_argument(
        "--autoencoder-steps",
        type=int,
        default=None,
        help="training steps of the autoencoder, the label-free feature space of data sets without classes "
        "(default 1500)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")


def _measure_settings(args: argparse.Namespace) -> tuple[object, object] | None:
    """(evaluator settings, autoencoder settings) from the flags, with torch's thread count set; None after
    printing the error when a flag is out of range."""
    import torch

    from training.evaluate import AutoencoderSettings, EvaluatorSettings

    error = None
    if args.samples < 100:
        error = f"--samples must be at least 100, got {args.samples}"
    elif args.autoencoder_steps is not None and args.autoencoder_steps < 1:
        error = f"--autoencoder-steps must be at least 1, got {args.autoencoder_steps}"
    if error:
        print(f"error: {error}", file=sys.stderr)
        return None
    torch.set_num_threads(args.threads)
    ae = AutoencoderSettings()
    if args.autoencoder_steps is not None:
        ae = AutoencoderSettings(steps=args.autoencoder_steps)
    return EvaluatorSettings(epochs=args.evaluator_epochs), ae


def cmd_curve(args: argparse.Namespace) -> int:
    from training.data import DatasetError
    from training.evaluate import curve_lines, measure_curve, plot_curve

    settings = _measure_settings(args)
    if settings is None:
        return 2
    log = None
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        log = open(args.json, "w")  # noqa: SIM115 (closed below; rows are written as they are measured)

    def on_row(row: dict) -> None:
        fig = row["figures"]
        print(
            f"step {row['step']}: {row['cpu_s'] / 60:.2f} CPU-min, NDB/K {fig['ndb_k']:.3f}, recall "
            f"{fig['recall']:.3f}, coverage {fig['coverage']:.3f}",
            file=sys.stderr,
            flush=True,
        )
        if log is not None:
            log.write(json.dumps(row) + "\n")
            log.flush()

    try:
        rows = measure_curve(
            args.run, args.samples, args.seed, args.data_dir, args.cache_dir, *settings, threads=args.threads,
            on_row=on_row,
        )  # fmt: skip
    except (DatasetError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if log is not None:
            log.close()
    if args.json:  # again, in step order (rows were written as measured)
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print("\n".join(curve_lines(rows)))
    if args.plot:
        print(f"plot: {plot_curve(rows, args.plot, title=str(args.run))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("train", help="train a generator"))
    e = sub.add_parser("export", help="export a run's generator to ONNX and verify it")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--out", type=Path, required=True, help="e.g. models/NAME.onnx")
    e.add_argument(
        "--truncation",
        type=float,
        default=1.0,
        help="ψ in (0, 1]: the model samples G(ψ·z), more fidelity for less variety (default 1: none)",
    )
    e.add_argument(
        "--checkpoint",
        default="last",
        help="last (RUN/checkpoint.pt), best (RUN/best.pt, kept by train --eval-every) or a checkpoint file",
    )
    v = sub.add_parser("evaluate", help="measure an exported generator's quality against its data set")
    v.add_argument("model", type=Path, help="an exported generator, e.g. models/NAME.onnx")
    v.add_argument("--dataset", default=None, help="data set to compare with (default: the model's own)")
    _add_measure_args(v)
    v.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    v.add_argument(
        "--card", action="store_true", help="write the model card NAME.json/.md/.png beside the model"
    )
    v.add_argument(
        "--curve",
        type=Path,
        default=None,
        help="with --card: a curve of the model's run (`curve RUN --json FILE`) to put in the card, with its "
        "plot NAME-curve.png (default: the curve the card already holds for the same file)",
    )
    v.add_argument(
        "--notes",
        type=Path,
        default=None,
        help="with --card: a Markdown file of notes for the card's Notes section, e.g. a measured limit "
        "(default: the notes the card already holds for the same file)",
    )
    c = sub.add_parser(
        "curve",
        help="evaluate each checkpoint a run kept (train --keep-every N): quality against training time",
    )
    c.add_argument("run", type=Path, help="a run folder (train --out)")
    _add_measure_args(c)
    c.add_argument("--json", type=Path, default=None, help="write one JSON line per checkpoint to this file")
    c.add_argument("--plot", type=Path, default=None, help="plot the figures against CPU-minutes (PNG)")
    args = parser.parse_args(argv)
    commands = {"train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate, "curve": cmd_curve}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
