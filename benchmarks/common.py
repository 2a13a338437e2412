"""Shared pieces of the benchmarks: model discovery, the raw ONNX Runtime limit, a server, tables.

Timings on a shared machine are noisy, so every figure here is a median over repeated runs and every
comparison is made between things measured in the same run, interleaved.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gancore.contract import image_indices, inputs_for  # noqa: E402
from gancore.generator import GeneratorModel, model_threads  # noqa: E402
from tests.support.server import KEEP_ALIVE_S, ServeProcess, free_port  # noqa: E402, F401 (the shared launcher)


def model_paths(models_dir: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """The ``*.onnx`` files of ``models_dir`` (only ``names`` when given), sorted."""
    folder = Path(models_dir)
    paths = sorted(p for p in folder.glob("*.onnx") if not p.name.startswith("."))
    if names:
        paths = [p for p in paths if p.stem in names]
    if not paths:
        raise SystemExit(f"no .onnx models in {folder}" + (f" named {', '.join(names)}" if names else ""))
    return paths


def default_models_dir() -> Path:
    return Path(os.environ.get("GANSERVE_MODELS_DIR", ROOT / "models"))


def service_threads() -> int:
    """The threads the service gives one model call (GANSERVE_THREADS, 0 = all cores)."""
    from service.settings import Settings

    return model_threads(Settings.from_env().threads or None)


def model_inputs(model: GeneratorModel, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    info = model.info
    z, label, _ = inputs_for(seed, image_indices(0, batch), info.latent_dim, info.num_classes, None)
    return z, label


def time_calls(fn: Callable[[], object], seconds: float, min_calls: int = 5) -> list[float]:
    """Call ``fn`` repeatedly for about ``seconds`` (at least ``min_calls`` times); per-call seconds."""
    fn()  # warm-up (allocations, kernel choice)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], q: float) -> float:
    if not xs:
        return float("nan")
    return float(np.percentile(np.asarray(xs), q))


def raw_limit(
    model: GeneratorModel, batches: Sequence[int] = (64, 128, 256), seconds: float = 0.6
) -> tuple[float, int]:
    """The model's own peak throughput (images/s, median per-call) over ``batches``, and the best batch."""
    best, best_batch = 0.0, batches[0]
    for b in batches:
        z, label = model_inputs(model, b)
        rate = b / median(time_calls(lambda z=z, label=label: model.run(z, label), seconds))
        if rate > best:
            best, best_batch = rate, b
    return best, best_batch


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    """A Markdown table (pastes straight into the README)."""
    if title:
        print(f"\n{title}\n")
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    sys.stdout.flush()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def machine_line() -> str:
    """Date, CPU count and load: what a reader needs to judge the figures."""
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
