"""Peak memory of training on a large image folder: the uint8 set is held once, memory-mapped.

    python -m benchmarks.data_memory --images 100000 --folder /tmp/ganserve-100k

Makes a folder of ``--images`` non-square RGB pictures (kept for reruns), then runs, each in a fresh
process whose peak RSS the kernel reports on exit (``wait4``):

1. ``python -m training train`` at 64×64×3 on the folder with an empty decoded cache (decode + steps),
2. the same command again (the cache is memory-mapped: start-up time to the first step),
3. one full epoch of batches through the loader (every page of the cache touched, converted to float),

and, for scale, the sizes the set would take as uint8 and as a float32 copy. Exit status 1 when a training
run's peak RSS reaches ``--limit-gb`` (2 GB, the issue's bound).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GB = 1024**3


def make_folder(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` PNGs of random sizes and aspects (40–96 px a side): a coloured box on a plain ground.

    Skips the work when the folder already holds ``count`` images (a previous run's).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if sum(1 for _ in folder.glob("*.png")) == count:
        return folder
    rng = np.random.default_rng(seed)
    for i in range(count):
        w, h = rng.integers(40, 97, 2)
        img = np.empty((h, w, 3), np.uint8)
        img[:] = rng.integers(0, 256, 3, dtype=np.uint8)
        x0, y0 = rng.integers(0, w // 2), rng.integers(0, h // 2)
        img[y0 : y0 + h // 2, x0 : x0 + w // 2] = rng.integers(0, 256, 3, dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i:06d}.png", compress_level=1)
    return folder


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(peak RSS in bytes, wall seconds, CPU seconds) of a :func:`measured` command line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    *_, cpu, peak = err.strip().splitlines()
    return (
        float(peak.removeprefix("peak_rss_bytes=")),
        time.perf_counter() - t0,
        float(cpu.removeprefix("cpu_s=")),
    )


def measured(args: list[str]) -> list[str]:
    """A command line that runs ``python -m ARGS`` and prints the child's peak RSS as its last stderr line."""
    return [sys.executable, "-m", "benchmarks.data_memory", "--measure", "--", *args]


def _measure_child(argv: list[str]) -> int:
    """Run ``python -m ARGV`` as a child, wait4 it, print its own peak RSS (not its siblings')."""
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    print(f"cpu_s={usage.ru_utime + usage.ru_stime:.1f}", file=sys.stderr)
    print(f"peak_rss_bytes={usage.ru_maxrss * 1024}", file=sys.stderr)  # Linux reports KiB
    return os.waitstatus_to_exitcode(status)


def full_epoch(folder: str, size: int, batch: int) -> None:
    """Every batch of one epoch through the loader (the whole cache paged in), converted to float."""
    import torch

    from training.data import load_dataset
    from training.data.loader import BatchLoader
    from training.trainer import BatchSampler

    ds = load_dataset(f"folder:{folder}", size, 3)
    sampler = BatchSampler(len(ds.images), batch, 0)
    loader = BatchLoader(ds.images, sampler.indices)
    total = torch.zeros(())
    for cursor in range(len(ds.images) // batch):
        x, _ = loader.get(cursor)
        total += x.mean()
    print(json.dumps({"batches": len(ds.images) // batch, "mean": float(total)}))


def main() -> int:
    if "--measure" in sys.argv:
        return _measure_child(sys.argv[sys.argv.index("--") + 1 :])
    if "--full-epoch" in sys.argv:
        folder, size, batch = sys.argv[sys.argv.index("--full-epoch") + 1 :][:3]
        full_epoch(folder, int(size), int(batch))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "ganserve-data-memory")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit-gb", type=float, default=2.0)
    p.add_argument("--skip-epoch", action="store_true", help="leave out the full-epoch row")
    a = p.parse_args()

    t0 = time.perf_counter()
    folder = make_folder(a.folder / "images", a.images)
    made = time.perf_counter() - t0
    cache = a.folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "GANSERVE_DATA_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    train = ["training", "train", "--dataset", f"folder:{folder}", "--image-size", str(a.size),
             "--channels", "3", "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--g-width", "32",
             "--d-width", "32", "--no-progress", "--sample-every", "100000", "--checkpoint-every", "100000",
             "--threads", "2"]  # fmt: skip
    rows = []
    for label in ("train, empty cache (decode + steps)", "train again (cache memory-mapped)"):
        out = a.folder / "run"
        shutil.rmtree(out, ignore_errors=True)
        rows.append((label, *run_measured(measured([*train, "--out", str(out)]), env)))
    if not a.skip_epoch:
        epoch = ["benchmarks.data_memory", "--full-epoch", str(folder), str(a.size), str(a.batch_size)]
        rows.append(("one full epoch through the loader", *run_measured(measured(epoch), env)))
    u8 = a.images * a.size * a.size * 3
    print(
        f"\n{a.images} images ({made:.0f} s to make or find), {a.size}×{a.size}×3: uint8 {u8 / GB:.2f} GiB, "
        f"a float32 copy {4 * u8 / GB:.2f} GiB; {a.steps} steps at batch {a.batch_size}, widths 32"
    )
    print(f"{'process':<40} {'peak RSS GiB':>12} {'wall s':>8} {'CPU s':>8}")
    for label, peak, wall, cpu in rows:
        print(f"{label:<40} {peak / GB:>12.2f} {wall:>8.1f} {cpu:>8.1f}")
    worst = max(peak for label, peak, *_ in rows if label.startswith("train"))
    ok = worst < a.limit_gb * GB
    print(f"training peak {worst / GB:.2f} GiB {'<' if ok else '>='} limit {a.limit_gb} GiB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
