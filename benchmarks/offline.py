"""Offline generation speed vs the raw ONNX Runtime session, on the same model and batch size.

    python benchmarks/offline.py --models-dir models --count 20000 --batch-size 256

For each model: *raw* is ``session.run`` on precomputed inputs, the best of one thread and all cores (rows
split into single-threaded runs, as every model call runs; no noise, no uint8, no files); each format
(``--formats``, default npz, webdataset, parquet, png) is a whole ``python -m service generate`` job run
in-process (run_job with the CLI's defaults) into a fresh folder, timed from the first unit to the final
manifest (png includes starting its worker processes).

Three figures per run: images/s of wall time, CPU time per image (user + system over all threads, plus the
png worker processes' time on units, as run_job reports it), and bytes per image on disk. On a shared
machine other load slows the wall clock far more than it changes what an image costs, so ratios are shown
both ways: ``/raw img/s`` (offline images/s ÷ raw images/s) and ``/raw CPU`` (raw CPU per image ÷ offline
CPU per image); each figure is the best of ``--repeat`` interleaved rounds. *encode* is the CPU per image of
PNG encoding alone (``encode_png(reproducible=True)``, libdeflate, on one model image): the floor the PNG
formats' extra cost can approach.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from gancore.contract import image_indices, inputs_for  # noqa: E402
from gancore.generator import GeneratorModel  # noqa: E402
from gancore.imaging import encode_png  # noqa: E402
from service.offline import FORMATS, available_cores, default_options, make_job, run_job  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process, all threads."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def raw_rate(path: Path, count: int, batch_size: int, threads: int) -> tuple[float, float]:
    """(images/s, CPU s per image) of the bare session on one precomputed batch, count / batch_size calls."""
    model = GeneratorModel(path, threads=threads)
    info = model.info
    z, labels, _ = inputs_for(0, image_indices(0, batch_size), info.latent_dim, info.num_classes, None)
    model.run(z, labels)  # warm-up
    calls = max(1, count // batch_size)
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(calls):
        model.run(z, labels)
    n = calls * batch_size
    return n / (time.perf_counter() - start), (cpu_seconds() - cpu) / n


def job_rate(path: Path, fmt: str, count: int, batch_size: int, tmp: Path) -> tuple[float, float, float]:
    """(images/s, CPU s per image, bytes per image) of one whole offline job with the CLI's defaults."""
    opts = default_options(fmt, batch_size, progress=False)
    model = GeneratorModel(path, threads=opts.threads)
    job = make_job(model, seed=1, count=count, fmt=fmt)
    out = Path(tempfile.mkdtemp(prefix=f"offline-{fmt}-", dir=tmp))
    try:
        summary = run_job(model, job, out, 0, opts)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n = summary["generated"]
    return n / summary["seconds"], summary["cpu_seconds"] / n, size / n


def encode_cost(path: Path, seconds: float = 1.0) -> float:
    """CPU s per PNG encoding of one model image."""
    image = GeneratorModel(path, threads=1).generate(0, image_indices(0, 1), None)[0][0]
    n, start = 0, cpu_seconds()
    while cpu_seconds() - start < seconds:
        encode_png(image, reproducible=True)  # what every offline format writes
        n += 1
    return (cpu_seconds() - start) / n


def make_sprites(folder: Path, per_class: int = 64, seed: int = 0) -> None:
    """The benchmark's training folder: ``circle/`` and ``square/``, ``per_class`` RGBA 64×64 PNGs each, one
    random-coloured disc or square on a transparent background (train a 64×64×4 generator on it)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    for cls in ("circle", "square"):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
            draw = ImageDraw.Draw(image)
            colour = (*(int(v) for v in rng.integers(0, 255, 3)), 255)
            x, y = (int(v) for v in rng.integers(16, 48, 2))
            r = int(rng.integers(8, 16))
            (draw.ellipse if cls == "circle" else draw.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
            image.save(folder / cls / f"{i:03d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", action="append", help="model name (repeatable; default: every .onnx)")
    parser.add_argument("--formats", default="npz,webdataset,parquet,png", help="comma-separated formats")
    parser.add_argument("--count", type=int, default=20000, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the jobs write (default: system temp)"
    )
    parser.add_argument(
        "--make-sprites",
        type=Path,
        default=None,
        help="write the synthetic RGBA training folder here and exit",
    )
    args = parser.parse_args()
    if args.make_sprites:
        make_sprites(args.make_sprites)
        return 0
    ort.set_default_logger_severity(4)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        print(f"error: --formats: unknown {unknown} (known: {', '.join(FORMATS)})", file=sys.stderr)
        return 2
    paths = sorted(args.models_dir.glob("*.onnx"))
    if args.model:
        paths = [p for p in paths if p.stem in args.model]
    if not paths:
        print(f"error: no models to measure in {args.models_dir}", file=sys.stderr)
        return 2
    cores = available_cores()
    print(
        f"{cores} cores, batch {args.batch_size}, {args.count} images, best of {args.repeat} rounds, "
        f"writing to {args.tmp_dir or tempfile.gettempdir()}"
    )
    header = (
        "model", "shape", "writer", "img/s", "µs CPU/img", "bytes/img", "/raw img/s", "/raw CPU",
        "encode µs CPU",
    )  # fmt: skip
    rows = [header]
    for path in paths:
        names = ["raw", *formats]
        rate = dict.fromkeys(names, 0.0)
        cost = dict.fromkeys(names, float("inf"))
        size = dict.fromkeys(names, 0.0)
        for _ in range(args.repeat):
            for t in sorted({1, cores}):
                r, c = raw_rate(path, args.count, args.batch_size, t)
                rate["raw"], cost["raw"] = max(rate["raw"], r), min(cost["raw"], c)
            for fmt in formats:
                r, c, b = job_rate(path, fmt, args.count, args.batch_size, args.tmp_dir)
                rate[fmt], cost[fmt], size[fmt] = max(rate[fmt], r), min(cost[fmt], c), b
        shape = "×".join(str(d) for d in GeneratorModel(path, threads=1).info.image_shape)
        encode = f"{encode_cost(path) * 1e6:.0f}"
        for name in names:
            rows.append(
                (
                    path.stem,
                    shape,
                    name,
                    f"{rate[name]:.0f}",
                    f"{cost[name] * 1e6:.0f}",
                    f"{size[name]:.0f}" if name != "raw" else "",
                    f"{rate[name] / rate['raw']:.2f}",
                    f"{cost['raw'] / cost[name]:.2f}",
                    encode,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return 0


if __name__ == "__main__":
    sys.exit(main())
