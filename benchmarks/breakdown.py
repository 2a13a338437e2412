"""Where a request's time goes: noise, model, post-processing, encoding, framework, HTTP.

    .venv/bin/python -m benchmarks.breakdown [--model digits-dcgan] [--counts 1,16,64]
        [--formats png,grid,npy] [--seconds 2]

One request at a time (no batching, no queueing), medians over repeated runs, every stage interleaved per
round so all see the same machine load:

- noise, model, post-processing (float → uint8 NHWC), encoding (npy / PNGs + base64 + JSON / grid PNG):
  the service's own functions called directly in this process;
- framework: the whole ASGI app of the service (BentoML's middleware, routing, validation, our handler and
  batcher) driven in this process without sockets, minus the four stages above;
- HTTP: a real ``bentoml serve`` answering over 127.0.0.1 (uvicorn, sockets, the client), minus the
  in-process app.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    ServeProcess,
    default_models_dir,
    machine_line,
    median,
    model_paths,
    print_table,
    service_threads,
)
from benchmarks.loadgen import _read_response, _request
from service.imaging import encode_png, tile, to_uint8
from service.registry import GeneratorModel
from service.sampling import image_indices, inputs_for


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

    async def call(self, method: str, path: str, body: bytes = b"") -> int:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects
            return {"type": "http.disconnect"}

        status = [0]

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
        }  # fmt: skip
        await self.app(scope, receive, send)
        return status[0]


class HttpClient:
    """One keep-alive connection to the real server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes) -> int:
        self.writer.write(_request(self.host, self.port, path, body))
        status, _ = await _read_response(self.reader)
        return status


def encoder(fmt: str, info, seed: int, start: int, count: int):
    """The response body the service builds for ``fmt`` from uint8 images."""

    def npy(images: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.save(buf, images, allow_pickle=False)
        return buf.getvalue()

    def grid(images: np.ndarray) -> bytes:
        return encode_png(tile(images))

    def png(images: np.ndarray) -> bytes:
        body = {
            "model": info.name, "seed": seed, "indices": list(range(start, start + count)), "labels": None,
            "label_names": None, "image_shape": info.image_shape,
            "images": [base64.b64encode(encode_png(img)).decode("ascii") for img in images],
        }  # fmt: skip
        return json.dumps(body).encode()

    return {"npy": npy, "grid": grid, "png": png}[fmt]


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
            encode = encoder(fmt, info, 1, 0, count)
            indices = image_indices(0, count)
            body = json.dumps({"model": path.stem, "count": count, "seed": 1, "format": fmt}).encode()
            names = ("noise", "model", "post", "encode", "app", "http")
            stages: dict[str, list[float]] = {k: [] for k in names}
            deadline = time.perf_counter() + args.seconds
            rounds = 0
            while rounds < 5 or time.perf_counter() < deadline:
                rounds += 1
                t0 = time.perf_counter()
                z, label, _ = inputs_for(1, indices, info.latent_dim, info.num_classes, None)
                t1 = time.perf_counter()
                out = model.run(z, label)
                t2 = time.perf_counter()
                images = to_uint8(out)
                t3 = time.perf_counter()
                encode(images)
                t4 = time.perf_counter()
                if await app.call("POST", "/generate", body) != 200:
                    raise SystemExit(f"in-process /generate failed for {fmt}, count {count}")
                t5 = time.perf_counter()
                if await client.post("/generate", body) != 200:
                    raise SystemExit(f"HTTP /generate failed for {fmt}, count {count}")
                t6 = time.perf_counter()
                marks = (t0, t1, t2, t3, t4, t5, t6)
                for key, a, b in zip(names, marks, marks[1:], strict=True):
                    stages[key].append(b - a)
            m = {k: median(v) * 1e3 for k, v in stages.items()}
            own = m["noise"] + m["model"] + m["post"] + m["encode"]
            framework, http = m["app"] - own, m["http"] - m["app"]
            rows.append(
                [fmt, count, m["noise"], m["model"], m["post"], m["encode"], framework, http, m["http"],
                 f"{100 * m['model'] / m['http']:.0f}%"]
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=default_models_dir())
    ap.add_argument("--model", default="", help="model name (default: the first of the folder)")
    ap.add_argument("--counts", default="1,16,64")
    ap.add_argument("--formats", default="png,grid,npy")
    ap.add_argument("--seconds", type=float, default=2.0, help="timing window per cell")
    args = ap.parse_args(argv)
    args.counts = [int(c) for c in args.counts.split(",")]
    args.formats = [f for f in args.formats.split(",") if f]
    path = model_paths(args.models_dir, [args.model] if args.model else None)[0]
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
         "total ms", "model share"],
        rows,
        title=f"one request at a time, {path.stem}; {machine_line()}; medians",
    )  # fmt: skip


if __name__ == "__main__":
    main()
