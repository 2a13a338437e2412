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
    g.add_argument("--g-upsample", choices=("transposed", "nearest", "bilinear"), default=None)
    g.add_argument("--g-conditioning", choices=("input", "batchnorm"), default=None)
    g.add_argument("--minibatch-std", action=argparse.BooleanOptionalAction, default=None)
    g.add_argument("--pack", type=int, default=None, help="PacGAN: samples the critic judges together")
    g.add_argument(
        "--aux-classifier",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="AC-GAN classifier head on the critic (conditional models)",
    )
    o = p.add_argument_group("objective")
    o.add_argument("--objective", dest="kind", choices=("bce", "wasserstein"), default=None)
    o.add_argument("--gp-weight", type=float, default=None)
    o.add_argument("--clip", type=float, default=None)
    o.add_argument("--n-critic", type=int, default=None)
    o.add_argument("--critic-boost", action=argparse.BooleanOptionalAction, default=None)
    o.add_argument(
        "--joint-batch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score real and fake images in one critic call (shared BatchNorm statistics)",
    )
    o.add_argument("--aux-weight", type=float, default=None, help="weight of the classifier's loss")
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
        report = export(args.run_dir, args.out, truncation=args.truncation)
    except ExportError as exc:
        print(f"error: export failed: {exc}", file=sys.stderr)
        return 1
    worst = max(report.max_abs_diff.values())
    print(f"exported {report.path} (ONNX Runtime vs PyTorch: max |diff| {worst:.2e} at batch sizes "
          f"{', '.join(map(str, report.max_abs_diff))})")  # fmt: skip
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from service.registry import ModelLoadError
    from training.data import DatasetError
    from training.evaluate import AutoencoderSettings, EvaluatorSettings, evaluate_model, format_table

    torch.set_num_threads(args.threads)
    if args.samples < 100:
        print(f"error: --samples must be at least 100, got {args.samples}", file=sys.stderr)
        return 2
    if args.autoencoder_steps is not None and args.autoencoder_steps < 1:
        print(f"error: --autoencoder-steps must be at least 1, got {args.autoencoder_steps}", file=sys.stderr)
        return 2
    settings = EvaluatorSettings(epochs=args.evaluator_epochs)
    ae_settings = AutoencoderSettings()
    if args.autoencoder_steps is not None:
        ae_settings = AutoencoderSettings(steps=args.autoencoder_steps)
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

        paths = write_card(model, quality)
        print("card: " + ", ".join(str(p) for p in paths.values()))
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
    v = sub.add_parser("evaluate", help="measure an exported generator's quality against its data set")
    v.add_argument("model", type=Path, help="an exported generator, e.g. models/NAME.onnx")
    v.add_argument("--dataset", default=None, help="data set to compare with (default: the model's own)")
    v.add_argument("--data-dir", default=None, help="cache folder for mnist / fashion-mnist IDX files")
    v.add_argument("--samples", type=int, default=5000, help="images drawn from the model")
    v.add_argument("--seed", type=int, default=0, help="sampling seed (the service's noise contract)")
    v.add_argument(
        "--cache-dir", type=Path, default=None, help="evaluator cache (default ~/.cache/ganserve/evaluators)"
    )
    v.add_argument("--evaluator-epochs", type=int, default=20, help="training epochs of the evaluator CNN")
    v.add_argument(
        "--autoencoder-steps",
        type=int,
        default=None,
        help="training steps of the autoencoder, the label-free feature space of data sets without classes "
        "(default 1500)",
    )
    v.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    v.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    v.add_argument(
        "--card", action="store_true", help="write the model card NAME.json/.md/.png beside the model"
    )
    args = parser.parse_args(argv)
    return {"train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
