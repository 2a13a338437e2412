"""The Open Inference Protocol's binary infer against ``POST /generate`` (npy), N images per request.

    .venv/bin/python -m benchmarks.v2 [--models-dir models] [--model emoji-dcgan] [--count 64] [--rounds 5]
        [--requests 20]

Starts a real ``bentoml serve``; one keep-alive client sends the kinds of request in interleaved rounds
(``--requests`` of each kind per round, a fresh seed for every request) and prints per kind the images per
second (median over rounds), p50 latency and the server's CPU per image (its process tree, psutil), with
ratios to ``/generate``. The V2 kinds: one seed with consecutive indices (the same images as /generate),
and a different seed per row (what /generate cannot do in one request).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import ServeProcess, default_models_dir, machine_line, median, print_table


def binary_infer(client: httpx.Client, model: str, seeds: np.ndarray, indices: np.ndarray) -> httpx.Response:
    """One V2 infer with binary inputs and outputs, as tritonclient sends it by default."""
    arrays = {"seed": seeds.astype("<i8"), "index": indices.astype("<i8")}
    doc = {
        "inputs": [
            {"name": n, "shape": [len(a)], "datatype": "INT64", "parameters": {"binary_data_size": a.nbytes}}
            for n, a in arrays.items()
        ],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "image", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(doc).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    body = b"".join([head, *(a.tobytes() for a in arrays.values())])
    return client.post(f"/v2/models/{model}/infer", content=body, headers=headers)


def kinds(client: httpx.Client, model: str, count: int) -> dict[str, Callable[[int], httpx.Response]]:
    rows = np.arange(count)
    return {
        "POST /generate npy": lambda s: client.post(
            "/generate", json={"model": model, "count": count, "seed": s, "format": "npy"}
        ),
        "V2 binary, one seed": lambda s: binary_infer(client, model, np.full(count, s), rows),
        "V2 binary, a seed per row": lambda s: binary_infer(client, model, s * 1000 + rows, np.zeros(count)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=default_models_dir())
    parser.add_argument("--model", default="emoji-dcgan")
    parser.add_argument("--count", type=int, default=64, help="images per request")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="requests of each kind per round")
    args = parser.parse_args()

    server = ServeProcess(args.models_dir).wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            todo = kinds(client, args.model, args.count)
            for send in todo.values():  # warm-up, and a check that every kind answers
                r = send(0)
                assert r.status_code == 200, r.text[:300]
            rates: dict[str, list[float]] = {k: [] for k in todo}
            latency: dict[str, list[float]] = {k: [] for k in todo}
            cpu: dict[str, float] = dict.fromkeys(todo, 0.0)
            seeds = itertools.count(1)
            for _ in range(args.rounds):
                for name, send in todo.items():
                    before, start = server.cpu_seconds(), time.perf_counter()
                    for _ in range(args.requests):
                        t0 = time.perf_counter()
                        r = send(next(seeds))
                        latency[name].append(time.perf_counter() - t0)
                        assert r.status_code == 200, (name, r.status_code, r.text[:200])
                    rates[name].append(args.requests * args.count / (time.perf_counter() - start))
                    cpu[name] += server.cpu_seconds() - before
    finally:
        server.stop()
    images = args.rounds * args.requests * args.count
    base = "POST /generate npy"
    rows = [
        [
            name,
            median(rate),
            median(rate) / median(rates[base]),
            median(latency[name]) * 1e3,
            cpu[name] / images * 1e6,
            cpu[name] / cpu[base],
        ]
        for name, rate in rates.items()
    ]
    print(
        f"\n{machine_line()}; model {args.model}; {args.count} images per request, {args.requests} requests "
        f"per kind in each of {args.rounds} interleaved rounds"
    )
    print_table(
        ["request", "images/s", "÷ /generate", "p50 ms", "server CPU µs/image", "CPU ÷ /generate"], rows
    )


if __name__ == "__main__":
    main()
