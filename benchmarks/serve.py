"""The service under load, as a ratio to the model's own speed measured in the same run.

    .venv/bin/python -m benchmarks.serve [--model digits-dcgan] [--concurrency 1,2,4,8,16,32,64]
        [--counts 1,16,64] [--formats png,grid,npy] [--seconds 2] [--config NAME:ENV=V,ENV=V ...]

For each server configuration (default: one, the environment as it is) it starts a real ``bentoml serve``
of this repository on 127.0.0.1, measures the raw limit in this process (ONNX Runtime, all cores, best of
batch 64/128/256, median per call) while the server idles, drives every (format, count, concurrency) cell
with the closed-loop client of benchmarks/loadgen.py, measures the raw limit again, and prints:
images/s, requests/s, p50/p99 latency, the server's CPU per image (its whole process tree, psutil), the
client's own CPU share, and images/s ÷ raw limit. The client runs on the same cores as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from benchmarks.common import (
    ServeProcess,
    default_models_dir,
    machine_line,
    median,
    model_inputs,
    model_paths,
    percentile,
    print_table,
    raw_limit,
    time_calls,
)
from benchmarks.loadgen import run_load
from service.registry import GeneratorModel


def parse_config(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:ENV=V,ENV=V`` → (NAME, {ENV: V})."""
    name, _, rest = text.partition(":")
    env = {}
    for pair in filter(None, rest.split(",")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise SystemExit(f"--config {text!r}: expected NAME:ENV=VALUE,ENV=VALUE")
        env[key.strip()] = value.strip()
    return name, env


def measure_raw(path: Path) -> tuple[float, float]:
    """(peak images/s over batch 64…256, batch-1 median latency in s), all cores, as the service runs."""
    model = GeneratorModel(path, ["CPUExecutionProvider"], os.cpu_count() or 1)
    peak, _ = raw_limit(model)
    z, label = model_inputs(model, 1)
    return peak, median(time_calls(lambda: model.run(z, label), 0.4))


def run_config(args, name: str, env: dict[str, str], path: Path, log_dir: Path) -> dict:
    server = ServeProcess(path.parent, env, log_dir / f"serve-{name}.log").wait_ready()
    try:
        raw_before = measure_raw(path)
        rows, cells = [], {}
        for fmt in args.formats:
            for count in args.counts:
                for conc in args.concurrency:
                    cpu = [0.0]

                    def body(i: int, count=count, fmt=fmt) -> dict:
                        return {"model": path.stem, "count": count, "seed": i, "format": fmt}

                    def mark(cpu=cpu) -> None:
                        cpu[0] = server.cpu_seconds()

                    res = asyncio.run(
                        run_load(server.host, server.port, body, conc, args.seconds, on_start=mark)
                    )
                    server_cpu = server.cpu_seconds() - cpu[0]
                    images = res.ok * count
                    cells[(fmt, count, conc)] = {
                        "img_s": images / res.seconds,
                        "p50": percentile(res.latencies, 50),
                        "p99": percentile(res.latencies, 99),
                    }
                    rows.append(
                        [
                            fmt, count, conc, images / res.seconds, res.ok / res.seconds,
                            percentile(res.latencies, 50) * 1e3, percentile(res.latencies, 99) * 1e3,
                            server_cpu / max(images, 1) * 1e3, 100 * res.client_cpu / res.seconds,
                            sum(res.errors.values()), 0.0,
                        ]
                    )  # fmt: skip
        raw_after = measure_raw(path)
    finally:
        server.stop()
    peak = (raw_before[0] + raw_after[0]) / 2
    lat1 = (raw_before[1] + raw_after[1]) / 2
    for row in rows:
        row[-1] = row[3] / peak
    print_table(
        ["format", "count", "conc", "img/s", "req/s", "p50 ms", "p99 ms", "srv CPU ms/img", "client CPU %",
         "errors", "× raw"],
        rows,
        title=f"config {name} {env or '(defaults)'}: raw limit {peak:,.0f} img/s (before {raw_before[0]:,.0f}, "
        f"after {raw_after[0]:,.0f}); raw batch-1 latency {lat1 * 1e3:.2f} ms",
    )  # fmt: skip
    return {"name": name, "peak": peak, "lat1": lat1, "cells": cells}


def print_targets(results: list[dict], formats: list[str]) -> None:
    rows = []
    for r in results:
        cells, peak = r["cells"], r["peak"]
        for fmt in formats:
            big = [(k, v) for k, v in cells.items() if k[0] == fmt and k[1] >= 16 and k[2] >= 4]
            if big:
                (_, cnt, conc), best = max(big, key=lambda kv: kv[1]["img_s"])
                ratio = best["img_s"] / peak
                rows.append([r["name"], fmt, "count ≥ 16 under load ≥ 0.8 × raw",
                             f"{ratio:.2f} (count {cnt}, conc {conc})", "yes" if ratio >= 0.8 else "no"])  # fmt: skip
            one = cells.get((fmt, 1, 8))
            if one:
                ratio = one["img_s"] / peak
                rows.append([r["name"], fmt, "count 1, conc 8 ≥ 0.3 × raw", f"{ratio:.2f}",
                             "yes" if ratio >= 0.3 else "no"])  # fmt: skip
            lone = cells.get((fmt, 1, 1))
            if lone:
                over = (lone["p50"] - r["lat1"]) * 1e3
                rows.append([r["name"], fmt, "conc 1, count 1: p50 ≤ batch-1 latency + 2 ms",
                             f"p50 {lone['p50'] * 1e3:.2f} ms = raw + {over:.2f} ms", "yes" if over <= 2 else "no"])  # fmt: skip
    if rows:
        print_table(["config", "format", "target", "measured", "met"], rows, title="targets")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=default_models_dir())
    ap.add_argument("--model", default="", help="model name (default: the first of the folder)")
    ap.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    ap.add_argument("--counts", default="1,16,64")
    ap.add_argument("--formats", default="png,grid,npy")
    ap.add_argument("--seconds", type=float, default=2.0, help="counted window per cell (after 0.5 s warm-up)")
    ap.add_argument("--config", action="append", default=[], help="NAME:ENV=V,ENV=V (repeatable)")
    args = ap.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.counts = [int(c) for c in args.counts.split(",")]
    args.formats = [f for f in args.formats.split(",") if f]
    path = model_paths(args.models_dir, [args.model] if args.model else None)[0]
    # Serve only the measured model, so the server's start-up and memory are about it alone.
    work = Path(tempfile.mkdtemp(prefix="ganserve-bench-"))
    (work / "models").mkdir()
    (work / "models" / path.name).symlink_to(path.resolve())
    configs = [parse_config(c) for c in args.config] or [("current", {})]
    print(f"service under load: {path.stem}; {machine_line()}; logs in {work}")
    results = [run_config(args, name, env, work / "models" / path.name, work) for name, env in configs]
    print_targets(results, args.formats)


if __name__ == "__main__":
    main()
