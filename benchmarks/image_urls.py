"""One image by ``GET /images/...`` (200, and 304 on a matching If-None-Match) against ``POST /generate``.

    .venv/bin/python -m benchmarks.image_urls [--models-dir models] [--model digits-cgan] [--rounds 5]
        [--requests 50]

Starts a real ``bentoml serve``; one keep-alive client sends the kinds of request in interleaved rounds
(``--requests`` of each kind per round, a fresh image index for every 200), and prints per kind the median and
p90 latency, and the server's CPU per request (its whole process tree, psutil), with ratios to the GET 200.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks.common import ServeProcess, default_models_dir, machine_line, median, percentile, print_table


def kinds(client: httpx.Client, model: str, label: str) -> dict[str, Callable[[int], httpx.Response]]:
    query = f"?label={label}" if label else ""
    body = {"model": model, "count": 1, "seed": 7, **({"label": int(label)} if label else {})}
    tag = client.get(f"/images/{model}/7/0.png{query}").headers["etag"]
    return {
        "POST /generate (JSON, base64 PNG)": lambda i: client.post("/generate", json={**body, "start": i}),
        "POST /generate format=grid (PNG)": lambda i: client.post(
            "/generate", json={**body, "start": i, "format": "grid"}
        ),
        "GET /images 200": lambda i: client.get(f"/images/{model}/7/{i}.png{query}"),
        "GET /images 304": lambda i: client.get(
            f"/images/{model}/7/0.png{query}", headers={"If-None-Match": tag}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=default_models_dir())
    parser.add_argument("--model", default="digits-cgan")
    parser.add_argument("--label", default="7", help="class index for conditional models ('' for none)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50, help="requests of each kind per round")
    args = parser.parse_args()

    server = ServeProcess(args.models_dir).wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            todo = kinds(client, args.model, args.label)
            latency: dict[str, list[float]] = {k: [] for k in todo}
            cpu: dict[str, float] = dict.fromkeys(todo, 0.0)
            index = itertools.count(1)
            for _ in range(args.rounds):
                for name, send in todo.items():
                    before = server.cpu_seconds()
                    for _ in range(args.requests):
                        t0 = time.perf_counter()
                        r = send(next(index))
                        latency[name].append(time.perf_counter() - t0)
                        assert r.status_code in (200, 304), (name, r.status_code, r.text[:200])
                    cpu[name] += server.cpu_seconds() - before
    finally:
        server.stop()
    n = args.rounds * args.requests
    base_lat, base_cpu = median(latency["GET /images 200"]), cpu["GET /images 200"] / n
    rows = [
        [
            name,
            median(lat) * 1e3,
            percentile(lat, 90) * 1e3,
            median(lat) / base_lat,
            cpu[name] / n * 1e3,
            cpu[name] / n / base_cpu,
        ]
        for name, lat in latency.items()
    ]
    print(f"\n{machine_line()}; model {args.model}; {n} requests per kind, {args.rounds} interleaved rounds")
    print_table(
        ["request (one image)", "p50 ms", "p90 ms", "p50 ÷ GET 200", "server CPU ms/req", "CPU ÷ GET 200"],
        rows,
    )


if __name__ == "__main__":
    main()
