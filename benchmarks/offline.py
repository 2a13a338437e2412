"""Offline generation speed vs the raw ONNX Runtime session, on the same model and batch size.

    python benchmarks/offline.py --models-dir models --count 20000 --batch-size 256

For each model: *raw* is ``session.run`` on precomputed inputs, the best of an ORT session with one
intra-op thread and one with all cores (no noise, no uint8, no files); *npz* and *png* are whole
``python -m service generate`` jobs run in-process (run_job with the CLI's defaults) into a fresh folder,
timed from the first unit to the final manifest (png includes starting its worker processes). Each figure
is the best of ``--repeat`` interleaved rounds, because on a shared machine other load only slows a run.
*png encode* is Pillow's PNG encoding (service.imaging.encode_png) of one model image on one core: the
ceiling png can reach is about that × cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from service.imaging import encode_png  # noqa: E402
from service.offline import available_cores, default_options, make_job, run_job  # noqa: E402
from service.registry import GeneratorModel  # noqa: E402
from service.sampling import image_indices, inputs_for  # noqa: E402


def raw_rate(path: Path, count: int, batch_size: int, threads: int) -> float:
    """Images/s of the bare session on one precomputed batch, called count / batch_size times."""
    model = GeneratorModel(path, intra_threads=threads)
    info = model.info
    z, labels, _ = inputs_for(0, image_indices(0, batch_size), info.latent_dim, info.num_classes, None)
    model.run(z, labels)  # warm-up
    calls = max(1, count // batch_size)
    start = time.perf_counter()
    for _ in range(calls):
        model.run(z, labels)
    return calls * batch_size / (time.perf_counter() - start)


def job_rate(path: Path, fmt: str, count: int, batch_size: int, tmp: Path) -> float:
    """Images/s of one whole offline job with the CLI's defaults, written under ``tmp``."""
    opts = default_options(fmt, batch_size, progress=False)
    model = GeneratorModel(path, intra_threads=opts.threads)
    job = make_job(model, seed=1, count=count, fmt=fmt)
    out = Path(tempfile.mkdtemp(prefix=f"offline-{fmt}-", dir=tmp))
    try:
        summary = run_job(model, job, out, 0, opts)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return summary["generated"] / summary["seconds"]


def encode_rate(path: Path, seconds: float = 1.0) -> float:
    """PNG encodings per second of one model image, on one core."""
    image = GeneratorModel(path, intra_threads=1).generate(0, image_indices(0, 1), None)[0][0]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        encode_png(image)
        n += 1
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--model", action="append", help="model name (repeatable; default: every .onnx)")
    parser.add_argument("--count", type=int, default=20000, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the jobs write (default: system temp)"
    )
    args = parser.parse_args()
    ort.set_default_logger_severity(4)
    paths = sorted(args.models_dir.glob("*.onnx"))
    if args.model:
        paths = [p for p in paths if p.stem in args.model]
    if not paths:
        print(f"error: no models to measure in {args.models_dir}", file=sys.stderr)
        return 2
    cores = available_cores()
    print(f"{cores} cores, batch {args.batch_size}, {args.count} images, best of {args.repeat}; images/s")
    header = ("model", "shape", "raw", "npz", "npz/raw", "png", "png/raw", "png encode ×1 core")
    rows = [header]
    for path in paths:
        best = {"raw": 0.0, "npz": 0.0, "png": 0.0}
        for _ in range(args.repeat):
            raw = max(raw_rate(path, args.count, args.batch_size, t) for t in sorted({1, cores}))
            best["raw"] = max(best["raw"], raw)
            for fmt in ("npz", "png"):
                best[fmt] = max(best[fmt], job_rate(path, fmt, args.count, args.batch_size, args.tmp_dir))
        shape = "×".join(str(d) for d in GeneratorModel(path, intra_threads=1).info.image_shape)
        rows.append(
            (
                path.stem,
                shape,
                f"{best['raw']:.0f}",
                f"{best['npz']:.0f}",
                f"{best['npz'] / best['raw']:.2f}",
                f"{best['png']:.0f}",
                f"{best['png'] / best['raw']:.2f}",
                f"{encode_rate(path):.0f}",
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
