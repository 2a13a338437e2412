"""300 concurrent clients against a real server: no failed request, memory flat after warm-up."""

from __future__ import annotations

import asyncio

from benchmarks.load import run_load, tree_rss

CLIENTS = 300


def test_300_concurrent_clients_no_failures_and_flat_memory(server):
    warm = asyncio.run(run_load(server.url, CLIENTS, seconds=3, seed=0))
    rss_warm = tree_rss(server.proc.pid)
    run = asyncio.run(run_load(server.url, CLIENTS, seconds=6, seed=10**6))
    rss_after = tree_rss(server.proc.pid)
    print(
        f"\nload: {run.requests} requests from {CLIENTS} clients in {run.seconds:.0f} s, "
        f"p50 {run.percentile(50) * 1000:.0f} ms, p99 {run.percentile(99) * 1000:.0f} ms, "
        f"RSS {rss_warm / 2**20:.0f} → {rss_after / 2**20:.0f} MiB"
    )
    assert not warm.failures and not run.failures, (warm.examples, run.examples)
    assert run.requests >= CLIENTS  # every client got at least one answer
    assert abs(rss_after - rss_warm) <= 0.2 * rss_warm, (rss_warm, rss_after)
