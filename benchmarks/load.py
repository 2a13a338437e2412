"""Many concurrent clients against a real ``bentoml serve``: failures, latency percentiles, memory drift.

    .venv/bin/python -m benchmarks.load --models models [--clients 300] [--warmup 10] [--seconds 60]
    .venv/bin/python -m benchmarks.load --url http://127.0.0.1:3000 --pid PID [--api-key KEY]

Each client sends ``POST /generate`` requests one after another (random model, count 1–4, png/grid/npy)
over its own connection, first for ``--warmup`` seconds, then for ``--seconds``. A failed request is any
answer but 200 or any transport error. Resident memory (RSS) of the server's process tree is read after
the warm-up and after the run. tests/test_load.py runs a bounded version.

The service makes no calls to other services, so BentoML 1.4's inter-service client (which recycles its
connections under load and then fails calls in flight) is not on any request's path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: python benchmarks/load.py
    sys.path.insert(0, str(ROOT))

from benchmarks.common import ServeProcess  # noqa: E402


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (the BentoML parent and its workers)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker may be exiting
            total += proc.memory_info().rss
    return total


@dataclass
class LoadResult:
    """What a load phase saw."""

    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    failures: dict[str, int] = field(default_factory=dict)  # "503", "ReadTimeout", … → count
    examples: list[str] = field(default_factory=list)  # the first few failures in full, for diagnosis

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.failures.values())

    def percentile(self, q: float) -> float:
        """Latency percentile in seconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


_BUCKET = re.compile(
    r'^bentoml_service_request_duration_seconds_bucket\{(?=[^}]*endpoint="/generate")'
    r'(?=[^}]*http_response_code="200")[^}]*le="([^"]+)"[^}]*\} ([0-9.e+]+)$',
    re.M,
)


def generate_buckets(metrics_text: str) -> dict[float, float]:
    """Cumulative counts of BentoML's server-side duration histogram for 200s of /generate, by bound."""
    counts: dict[float, float] = {}
    for bound, count in _BUCKET.findall(metrics_text):
        counts[float(bound)] = counts.get(float(bound), 0.0) + float(count)
    return counts


def server_quantile(before: str, after: str, q: float) -> float:
    """Upper bound (a histogram bucket edge, seconds) of the server-side q-quantile between two scrapes.

    Client-side latency includes the client's own queueing on a busy machine; this is what the server saw.
    """
    a, b = generate_buckets(after), generate_buckets(before)
    delta = {bound: a[bound] - b.get(bound, 0.0) for bound in sorted(a)}
    total = delta.get(float("inf"), 0.0)
    for bound, count in delta.items():
        if total and count >= q * total:
            return bound
    return float("nan")


def request_body(rng: random.Random, models: list[str]) -> dict:
    return {
        "model": rng.choice(models),
        "count": rng.randint(1, 4),
        "seed": rng.randrange(2**63),
        "format": rng.choice(["png", "png", "grid", "npy"]),
    }


async def _client(
    http: httpx.AsyncClient, url: str, models: list[str], seed: int, until: float, result: LoadResult
) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            r = await http.post(url + "/generate", json=request_body(rng, models))
            if r.status_code == 200:
                result.latencies.append(time.monotonic() - start)
                continue
            reason, detail = str(r.status_code), f"{r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            cause = exc.__cause__ or exc.__context__
            reason, detail = type(exc).__name__, f"{exc!r} ({cause!r}) after {time.monotonic() - start:.2f} s"
        result.failures[reason] = result.failures.get(reason, 0) + 1
        if len(result.examples) < 5:
            result.examples.append(detail)


async def run_load(
    url: str, clients: int, seconds: float, api_key: str | None = None, seed: int = 0
) -> LoadResult:
    """``clients`` concurrent clients, each with its own connection, sending requests for ``seconds``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    result = LoadResult(clients, seconds)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as http:
        r = await http.post(url + "/models", json={})
        r.raise_for_status()
        models = [m["name"] for m in r.json()["models"]]
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(http, url, models, seed + i, until, result) for i in range(clients)))
    return result


def report(phase: str, res: LoadResult, rss: int) -> str:
    p50, p99 = res.percentile(50) * 1000, res.percentile(99) * 1000
    worst = max(res.latencies, default=float("nan")) * 1000
    return (
        f"| {phase} | {res.clients} | {res.seconds:.0f} | {res.requests} | {sum(res.failures.values())} "
        f"| {res.requests / res.seconds:.0f} | {p50:.0f} | {p99:.0f} | {worst:.0f} | {rss / 2**20:.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server (default: start one on --models)")
    parser.add_argument("--pid", type=int, help="main process of the server at --url (for memory)")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="models folder to serve")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    server = None
    if args.url is None:
        env = {"GANSERVE_API_KEY": args.api_key} if args.api_key else {}
        server = ServeProcess(args.models, env).wait_ready()
        url, pid = server.url, server.proc.pid
    else:
        url, pid = args.url, args.pid
    try:
        warm = asyncio.run(run_load(url, args.clients, args.warmup, args.api_key, seed=0))
        rss_warm = tree_rss(pid) if pid else 0
        before = httpx.get(url + "/metrics", timeout=30).text
        run = asyncio.run(run_load(url, args.clients, args.seconds, args.api_key, seed=10**6))
        after = httpx.get(url + "/metrics", timeout=30).text
        rss_after = tree_rss(pid) if pid else 0
    finally:
        if server:
            server.stop()
    print("| phase | clients | s | requests | failed | req/s | p50 ms | p99 ms | max ms | server RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(report("warm-up", warm, rss_warm))
    print(report("measured", run, rss_after))
    drift = (rss_after - rss_warm) / rss_warm * 100 if rss_warm else float("nan")
    print(f"\nfailures: {run.failures or 'none'}; RSS after the run vs after warm-up: {drift:+.1f} %")
    p50, p99 = server_quantile(before, after, 0.5), server_quantile(before, after, 0.99)
    print(f"server-side (BentoML's histogram, bucket upper bounds): p50 ≤ {p50:g} s, p99 ≤ {p99:g} s")
    return 0 if not run.failures and not warm.failures and abs(drift) <= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
