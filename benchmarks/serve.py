"""The service under load, as a ratio to the model's own speed measured in the same run.

    .venv/bin/python -m benchmarks.serve [--model digits-dcgan] [--concurrency 1,2,4,8,16,32,64]
        [--counts 1,16,64] [--formats png,grid,npy] [--seconds 2] [--config NAME:ENV=V,ENV=V ...]

It starts a real ``bentoml serve`` of this repository on 127.0.0.1 for each server configuration
(default: one, the environment as it is; all at once, their cells interleaved), measures the raw limit in
this process (ONNX Runtime with 1 or all-cores threads, whichever is faster, best of batch 64/128/256,
median per call) while the servers idle, drives every (format, count, concurrency) cell with the
closed-loop client of benchmarks/loadgen.py, measures the limit again next to every cell, and prints:
images/s, requests/s, p50/p99 latency, the server's CPU per image (its whole process tree, psutil), the
client's own CPU share, images/s ÷ raw limit ("× raw"), and the model's own CPU per image ÷ the server's
("CPU × raw": how much of the server's CPU goes into the model; unlike wall-clock ratios it stays stable
when other processes share the cores). The client runs on the same cores as the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
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
from gancore.generator import GeneratorModel
from tests.support.loadgen import run_load


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


class RawProbe:
    """The model's own speed in this process, measured again next to every cell.

    One thread, and every core as the service runs a call (rows split into single-threaded runs at once);
    the limit is whichever is faster right now (on busy shared cores one thread can win), median per call.
    """

    def __init__(self, path: Path):
        threads = sorted({1, os.cpu_count() or 1})
        self.models = [GeneratorModel(path, ["CPUExecutionProvider"], t) for t in threads]

    def peak(self, batches: tuple[int, ...] = (128,), seconds: float = 0.25) -> float:
        """Images/s at the best of ``batches``."""
        return max(raw_limit(m, batches, seconds)[0] for m in self.models)

    def cpu_per_image(self, batch: int = 128, seconds: float = 1.0) -> float:
        """CPU seconds per image of the 1-thread session at ``batch`` (process CPU time, which other
        processes on the cores barely disturb, unlike wall time)."""
        m = self.models[0]
        z, label = model_inputs(m, batch)
        m.run(z, label)
        cpu0, calls, deadline = time.process_time(), 0, time.perf_counter() + seconds
        while calls < 3 or time.perf_counter() < deadline:
            m.run(z, label)
            calls += 1
        return (time.process_time() - cpu0) / (calls * batch)

    def batch1_latency(self) -> float:
        """Seconds per batch-1 run (median)."""
        best = float("inf")
        for m in self.models:
            z, label = model_inputs(m, 1)
            best = min(best, median(time_calls(lambda m=m, z=z, label=label: m.run(z, label), 0.4)))
        return best


def run_cell(server: ServeProcess, model: str, fmt: str, count: int, conc: int, seconds: float) -> list:
    """One (format, count, concurrency) cell against one server: a table row (ratio filled in later)."""
    cpu = [0.0]

    def body(i: int) -> dict:
        return {"model": model, "count": count, "seed": i, "format": fmt}

    def mark() -> None:
        cpu[0] = server.cpu_seconds()

    res = asyncio.run(run_load(server.host, server.port, body, conc, seconds, on_start=mark))
    server_cpu = server.cpu_seconds() - cpu[0]
    images = res.ok * count
    return [
        fmt, count, conc, images / res.seconds, res.ok / res.seconds,
        percentile(res.latencies, 50) * 1e3, percentile(res.latencies, 99) * 1e3,
        server_cpu / max(images, 1) * 1e3, 100 * res.client_cpu / res.seconds,
        sum(res.errors.values()), 0.0, 0.0,
    ]  # fmt: skip


def run_all(args, configs: list[tuple[str, dict[str, str]]], path: Path, log_dir: Path) -> list[dict]:
    """Every server up at once (idle ones cost nothing), cells interleaved across them, raw limit between
    format blocks: every configuration and the limit see the same machine load."""
    servers = [ServeProcess(path.parent, env, log_dir / f"serve-{name}.log") for name, env in configs]
    try:
        for server in servers:
            server.wait_ready()
        probe = RawProbe(path)
        full = probe.peak((64, 128, 256), 0.5)
        lat1 = probe.batch1_latency()
        raw_cpu = probe.cpu_per_image()
        rows: list[list[list]] = [[] for _ in configs]
        for fmt in args.formats:
            for count in args.counts:
                for conc in args.concurrency:
                    raw = probe.peak()  # the limit right now, next to this cell
                    for i, server in enumerate(servers):
                        row = run_cell(server, path.stem, fmt, count, conc, args.seconds)
                        row[-2] = row[3] / raw
                        rows[i].append(row)
        lat1 = (lat1 + probe.batch1_latency()) / 2
        raw_cpu = (raw_cpu + probe.cpu_per_image()) / 2
    finally:
        for server in servers:
            server.stop()
    print(
        f"\nraw limit at start {full:,.0f} img/s (best of batch 64/128/256); each cell's ratio is to the "
        f"limit measured next to it (batch 128); raw batch-1 latency {lat1 * 1e3:.2f} ms; raw CPU per image "
        f"{raw_cpu * 1e3:.3f} ms (1 thread, batch 128; 'CPU × raw' = that ÷ the server's CPU per image)"
    )
    results = []
    for (name, env), config_rows in zip(configs, rows, strict=True):
        cells = {}
        for row in config_rows:
            row[-1] = raw_cpu * 1e3 / row[7] if row[7] > 0 else float("nan")
            cells[(row[0], row[1], row[2])] = {"ratio": row[-2], "cpu_ratio": row[-1], "p50": row[5] / 1e3}
        print_table(
            ["format", "count", "conc", "img/s", "req/s", "p50 ms", "p99 ms", "srv CPU ms/img",
             "client CPU %", "errors", "× raw", "CPU × raw"],
            config_rows,
            title=f"config {name}: {env or '(defaults)'}",
        )  # fmt: skip
        results.append({"name": name, "lat1": lat1, "cells": cells})
    return results


def print_targets(results: list[dict], formats: list[str]) -> None:
    rows = []
    for r in results:
        cells = r["cells"]
        for fmt in formats:
            big = [(k, v) for k, v in cells.items() if k[0] == fmt and k[1] >= 16 and k[2] >= 4]
            if big:
                (_, cnt, conc), best = max(big, key=lambda kv: kv[1]["ratio"])
                ratio = best["ratio"]
                got = f"{ratio:.2f} (count {cnt}, conc {conc}; CPU × raw {best['cpu_ratio']:.2f})"
                rows.append([r["name"], fmt, "count ≥ 16 under load ≥ 0.8 × raw", got, _yes(ratio >= 0.8)])
            one = cells.get((fmt, 1, 8))
            if one:
                ratio = one["ratio"]
                target = "count 1, conc 8 ≥ 0.3 × raw"
                got = f"{ratio:.2f} (CPU × raw {one['cpu_ratio']:.2f})"
                rows.append([r["name"], fmt, target, got, _yes(ratio >= 0.3)])
            lone = cells.get((fmt, 1, 1))
            if lone:
                over = (lone["p50"] - r["lat1"]) * 1e3
                got = f"p50 {lone['p50'] * 1e3:.2f} ms = raw + {over:.2f} ms"
                target = "conc 1, count 1: p50 ≤ batch-1 latency + 2 ms"
                rows.append([r["name"], fmt, target, got, _yes(over <= 2)])
    if rows:
        print_table(["config", "format", "target", "measured", "met"], rows, title="targets")


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=default_models_dir())
    ap.add_argument("--model", default="", help="model name (default: the first of the folder)")
    ap.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    ap.add_argument("--counts", default="1,16,64")
    ap.add_argument("--formats", default="png,grid,npy")
    ap.add_argument("--seconds", type=float, default=2.0, help="counted seconds per cell (after 0.5 s)")
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
    results = run_all(args, configs, work / "models" / path.name, work)
    print_targets(results, args.formats)


if __name__ == "__main__":
    main()
