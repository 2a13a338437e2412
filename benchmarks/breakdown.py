"""Where a request's time goes: noise, model, post-processing, encoding, framework, HTTP.

    .venv/bin/python -m benchmarks.breakdown [--model digits-dcgan] [--counts 1,16,64]
        [--formats png,grid,npy] [--seconds 2]

One request at a time (no batching, no queueing), medians over repeated rounds. The service sends its
own stage timings in a ``Server-Timing`` header (service/timing.py), so every difference below is taken
within one request and the model's run-to-run noise on shared cores cancels:

- noise, model, encoding (npy / PNGs + base64 + JSON / grid PNG): the handler's own stages, as the real
  server reports them; post-processing (float → uint8 NHWC, part of the model stage in the header) is
  timed here in-process and shown apart;
- per image: noise and encoding divided by the count — the CPU path that has to keep up with a GPU
  (the targets: npy ≤ 10 µs, png ≤ 100 µs, grid no slower than png, at count 64 on 64×64×4);
- framework: the whole ASGI app of the service (BentoML's middleware, routing, validation, our handler's
  glue) driven in this process without sockets, minus its own stages;
- HTTP: the real ``bentoml serve`` over 127.0.0.1 (uvicorn, sockets, this client), minus its stages and
  the framework.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    ServeProcess,
    default_models_dir,
    machine_line,
    median,
    model_paths,
    print_table,
    service_threads,
)
from gancore.contract import image_indices, inputs_for, to_uint8
from gancore.generator import GeneratorModel
from service.timing import parse_header
from tests.support.loadgen import read_response, request_bytes


class InProcessApp:
    """The service's ASGI app, started (lifespan) and called in this process without a network."""

    def __init__(self, models_dir: Path):
        os.environ["GANSERVE_MODELS_DIR"] = str(models_dir)
        from service.service import GanService

        self.app = GanService.to_asgi()
        self._lifespan_in: asyncio.Queue = asyncio.Queue()

    async def start(self) -> None:
        out: asyncio.Queue = asyncio.Queue()
        await self._lifespan_in.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._lifespan_in.get, out.put))
        msg = await out.get()
        if msg["type"] != "lifespan.startup.complete":
            raise SystemExit(f"the service did not start in-process: {msg}")

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, float]]:
        """(status, the response's Server-Timing stages in ms)."""
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects
            return {"type": "http.disconnect"}

        status, timing = [0], {}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"server-timing":
                        timing.update(parse_header(value.decode()))

        headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
        }  # fmt: skip
        await self.app(scope, receive, send)
        return status[0], timing


class HttpClient:
    """One keep-alive connection to the real server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, float]]:
        """(status, the response's Server-Timing stages in ms)."""
        self.writer.write(request_bytes(self.host, self.port, path, body))
        status, headers, _ = await read_response(self.reader)
        return status, parse_header(headers.get(b"server-timing", b"").decode())


async def measure(args, path: Path, models_dir: Path, server: ServeProcess) -> list[list]:
    model = GeneratorModel(path, ["CPUExecutionProvider"], service_threads())
    info = model.info
    app = InProcessApp(models_dir)
    await app.start()
    client = HttpClient(server.host, server.port)
    await client.connect()
    rows = []
    for fmt in args.formats:
        for count in args.counts:
            z, label, _ = inputs_for(1, image_indices(0, count), info.latent_dim, info.num_classes, None)
            out = model.run(z, label)
            body = json.dumps({"model": path.stem, "count": count, "seed": 1, "format": fmt}).encode()
            samples: dict[str, list[float]] = {}

            def add(key: str, ms: float, samples=samples) -> None:
                samples.setdefault(key, []).append(ms)

            deadline = time.perf_counter() + args.seconds
            rounds = 0
            while rounds < 5 or time.perf_counter() < deadline:
                rounds += 1
                t0 = time.perf_counter()
                to_uint8(out)
                t1 = time.perf_counter()
                status, app_stages = await app.call("POST", "/generate", body)
                t2 = time.perf_counter()
                if status != 200:
                    raise SystemExit(f"in-process /generate answered {status} for {fmt}, count {count}")
                status, http_stages = await client.post("/generate", body)
                t3 = time.perf_counter()
                if status != 200 or "handler" not in http_stages:
                    raise SystemExit(f"HTTP /generate answered {status} for {fmt}, count {count}")
                # Each difference is taken within one request, so the model's run-to-run noise cancels.
                post = (t1 - t0) * 1e3
                framework = (t2 - t1) * 1e3 - _stages(app_stages)
                add("noise", http_stages["noise"])
                add("model", http_stages["model"] - post)
                add("post", post)
                add("encode", http_stages["encode"])
                add("framework", framework)
                add("http", (t3 - t2) * 1e3 - _stages(http_stages) - framework)
                add("total", (t3 - t2) * 1e3)
            m = {k: median(v) for k, v in samples.items()}
            share = f"{100 * (m['model'] + m['post']) / m['total']:.0f}%"
            per_image = 1e3 / count  # ms per request → µs per image
            rows.append(
                [fmt, count, m["noise"], m["model"], m["post"], m["encode"], m["framework"], m["http"],
                 m["total"], share, m["noise"] * per_image, m["encode"] * per_image,
                 (m["noise"] + m["encode"]) * per_image]
            )  # fmt: skip
    return rows


def encoder_rows(path: Path, count: int, rounds: int) -> list[list]:
    """Per image µs of each way to encode ``count`` images of this model, alternated round by round.

    "before" is the encoding this service used before ISA-L (zlib level 1 on one core; ``np.save`` of the
    NHWC view), rebuilt here so both are timed on the same images in the same process, interleaved.
    """
    import io
    import zlib

    import numpy as np

    from gancore.imaging import encode_png, encode_pngs_sync, tile
    from service.encoders import npy_bytes

    model = GeneratorModel(path, ["CPUExecutionProvider"], service_threads())
    info = model.info
    z, label, _ = inputs_for(1, image_indices(0, count), info.latent_dim, info.num_classes, None)
    out = model.run(z, label)
    images = to_uint8(out)  # contiguous NHWC, as the service has it now
    # What the old to_uint8 returned: uint8 in NCHW memory seen as NHWC (a transposed view).
    view = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)

    def old_to_uint8() -> np.ndarray:  # the old conversion, then the NHWC copy the old PNG rows made
        u8 = np.rint(np.clip((out + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(u8)

    def zlib_png(image: np.ndarray) -> bytes:  # the old encoder: same PNG layout, zlib on one core
        h, w, c = image.shape
        rows = np.zeros((h, w * c + 1), dtype=np.uint8)
        rows[:, 1:] = image.reshape(h, w * c)
        return zlib.compress(rows.tobytes(), 1)

    def old_npy() -> bytes:
        buf = io.BytesIO()
        np.save(buf, view, allow_pickle=False)
        return buf.getvalue()

    ways = {
        ("npy", "before: np.save of the NHWC view"): old_npy,
        ("npy", "after: header + contiguous buffer"): lambda: npy_bytes(images),
        ("png", "before: zlib 1, one core"): lambda: [zlib_png(i) for i in images],
        ("png", "ISA-L 1, one core"): lambda: [encode_png(i) for i in images],
        ("png", "after: ISA-L 1, all cores"): lambda: encode_pngs_sync(images),
        # What offline files and image URLs use: bytes that are a function of the image
        ("png", "reproducible: libdeflate 1, one core"): lambda: [
            encode_png(i, reproducible=True) for i in images
        ],
        ("grid", "before: zlib 1, one core"): lambda: zlib_png(tile(images)),
        ("grid", "after: ISA-L 1, split over all cores"): lambda: encode_png(
            tile(images), parts=os.cpu_count() or 1
        ),
        # Not "outside the model" (the Server-Timing model stage holds it), but the same CPU path:
        ("uint8", "before: convert, then copy to NHWC"): old_to_uint8,
        ("uint8", "after: one NHWC pass"): lambda: to_uint8(out),
    }
    times: dict[tuple[str, str], list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for key, work in ways.items():
            t0 = time.perf_counter()
            work()
            times[key].append((time.perf_counter() - t0) / count * 1e6)
    return [[fmt, way, median(times[(fmt, way)])] for fmt, way in ways]


def _stages(stages: dict[str, float]) -> float:
    """Milliseconds the handler spent in its own stages (noise, model, encode)."""
    return stages["noise"] + stages["model"] + stages["encode"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=default_models_dir())
    ap.add_argument("--model", default="", help="model name (default: the first of the folder)")
    ap.add_argument("--counts", default="1,16,64")
    ap.add_argument("--formats", default="png,grid,npy")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing window per cell")
    ap.add_argument(
        "--encoders",
        type=int,
        default=0,
        metavar="COUNT",
        help="only compare the old and new encoders on COUNT images, in process, interleaved",
    )
    ap.add_argument("--rounds", type=int, default=30, help="alternations for --encoders")
    args = ap.parse_args(argv)
    args.counts = [int(c) for c in args.counts.split(",")]
    args.formats = [f for f in args.formats.split(",") if f]
    path = model_paths(args.models_dir, [args.model] if args.model else None)[0]
    if args.encoders:
        print_table(
            ["format", "encoding", "µs per image"],
            encoder_rows(path, args.encoders, args.rounds),
            title=f"encoding {args.encoders} images of {path.stem}, {args.rounds} interleaved rounds; "
            f"{machine_line()}; medians",
        )
        return
    work = Path(tempfile.mkdtemp(prefix="ganserve-breakdown-"))
    models_dir = work / "models"
    models_dir.mkdir()
    (models_dir / path.name).symlink_to(path.resolve())
    # The server and the in-process app get the same settings (this process's environment).
    server = ServeProcess(models_dir, {}, work / "serve.log").wait_ready()
    try:
        rows = asyncio.run(measure(args, models_dir / path.name, models_dir, server))
    finally:
        server.stop()
    print_table(
        ["format", "count", "noise ms", "model ms", "post ms", "encode ms", "framework ms", "HTTP ms",
         "total ms", "model share", "noise µs/img", "encode µs/img", "outside model µs/img"],
        rows,
        title=f"one request at a time, {path.stem}; {machine_line()}; medians",
    )  # fmt: skip


if __name__ == "__main__":
    main()
