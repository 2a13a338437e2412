"""A bounded asynchronous HTTP/1.1 load generator: ``concurrency`` keep-alive connections, each sending
its next request as soon as the previous answer is read (closed loop).

It speaks just enough HTTP/1.1 over asyncio streams (Content-Length or chunked bodies) to cost the client
a few tens of microseconds per request: on a 2-core machine the client shares the cores with the server,
and a heavier client (httpx, locust) would measure itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """What one closed-loop run saw."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: dict[int, int] = field(default_factory=dict)  # status (0: connection error) → count
    bytes_in: int = 0
    client_cpu: float = 0.0  # this process's CPU seconds during the run

    @property
    def ok(self) -> int:
        return len(self.latencies)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status, _, body = await read_response(reader)
    return status, body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response: (status, lower-cased headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    if b"content-length" in headers:
        return status, headers, await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, headers, b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    raise RuntimeError(f"response without length: {head[:200]!r}")


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _client(
    host: str, port: int, path: str, make_body: Callable[[int], dict], stop_at: float, start_at: float,
    result: LoadResult, counter: list[int],
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            counter[0] += 1
            req = request_bytes(host, port, path, json.dumps(make_body(counter[0])).encode())
            t0 = time.perf_counter()
            writer.write(req)
            try:
                status, body = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors[0] = result.errors.get(0, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            t1 = time.perf_counter()
            if t1 < start_at:  # answered during the warm-up: not counted
                continue
            if status == 200:
                result.latencies.append(t1 - t0)
                result.bytes_in += len(body)
            else:
                result.errors[status] = result.errors.get(status, 0) + 1
    finally:
        writer.close()


async def run_load(
    host: str,
    port: int,
    make_body: Callable[[int], dict],
    concurrency: int,
    seconds: float,
    warmup: float = 0.5,
    path: str = "/generate",
    on_start: Callable[[], None] | None = None,
) -> LoadResult:
    """``concurrency`` closed-loop clients for ``warmup + seconds``; only the last ``seconds`` count.

    ``on_start`` is called when the counted window opens (to read the server's CPU counters).
    """
    result = LoadResult()
    t = time.perf_counter()
    start_at, stop_at = t + warmup, t + warmup + seconds
    counter = [0]
    tasks = [
        asyncio.create_task(_client(host, port, path, make_body, stop_at, start_at, result, counter))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    if on_start:
        on_start()
    cpu0, w0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - w0
    result.client_cpu = time.process_time() - cpu0
    return result
