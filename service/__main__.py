"""Command line: ``python -m service generate`` (offline batch generation, no HTTP)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name: the stem of an .onnx file in --models-dir")
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder of .onnx generators (default: $GANSERVE_MODELS_DIR or models/)",
    )
    p.add_argument("--count", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--label", default=None, help="class index, class name or a JSON one-hot list")
    p.add_argument("--start", type=int, default=0, help="index of the first image (default 0)")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun the same command to resume)")
    p.add_argument(
        "--format",
        choices=("npz", "webdataset", "parquet", "png"),
        default="npz",
        help="npz shards, WebDataset tar shards, Parquet files (Hugging Face image columns), or png folders",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="images per unit: npz, webdataset, parquet file (4096) or png folder (1000)",
    )
    p.add_argument(
        "--shard-index",
        type=int,
        default=None,
        help="this machine's part, 0 … shard-count − 1 (default: $JOB_COMPLETION_INDEX or 0)",
    )
    p.add_argument("--shard-count", type=int, default=1, help="machines sharing the job (default 1)")
    r = p.add_argument_group("speed (does not change the files written)")
    r.add_argument("--batch-size", type=int, default=256, help="images per model call")
    r.add_argument(
        "--workers", type=int, default=None, help="processes (default: one per core for png, else 1)"
    )
    r.add_argument(
        "--streams",
        type=int,
        default=None,
        help="concurrent model calls per process (default: fill the cores)",
    )
    r.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per model call: its rows split over single-threaded runs (default 1)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_generate(args: argparse.Namespace) -> int:
    from gancore.generator import GeneratorModel, ModelLoadError
    from gancore.imaging import set_encode_threads
    from service.offline import (
        DiskFullError,
        OfflineError,
        default_options,
        find_model,
        make_job,
        parse_label,
        run_job,
        shard_from_env,
    )
    from service.settings import Settings

    try:
        settings = Settings.from_env()  # GANSERVE_MODELS_DIR, GANSERVE_ENCODE_THREADS, GANSERVE_PROVIDERS
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    set_encode_threads(settings.encode_threads)
    models_dir = args.models_dir or settings.models_dir
    try:
        options = default_options(
            args.format, args.batch_size, args.workers, args.streams, args.threads, not args.no_progress
        )
        path = find_model(models_dir, args.model)
        model = GeneratorModel(path, settings.providers, threads=options.threads)
        shard_index = shard_from_env(args.shard_index)
        job = make_job(
            model,
            seed=args.seed,
            count=args.count,
            start=args.start,
            label=parse_label(args.label),
            fmt=args.format,
            shard_size=args.shard_size,
            shard_count=args.shard_count,
        )
        summary = run_job(model, job, args.out, shard_index, options)
    except (OfflineError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DiskFullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: rerun the same command to resume the job in {args.out}", file=sys.stderr)
        return 130
    rate = summary["generated"] / summary["seconds"] if summary["seconds"] > 0 else 0.0
    print(json.dumps({**summary, "images_per_s": round(rate, 1), "out": str(args.out)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser(
        "generate",
        help="write images of one model to a folder (npz, WebDataset, Parquet or png), resumable",
        description="Generate images offline: image i is pixel-identical to image i of POST /generate.",
    )
    _add_generate_args(gen)
    gen.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
