"""Serving at 64, 128 and 256 px: the CPU per image outside the model, and memory under concurrent load.

    .venv/bin/python -m benchmarks.sizes [--seconds 2] [--load-seconds 20] [--clients 1 8 32]

Part 1, in this process: the work a request does per image besides the model run — the ``.npy`` body, one
PNG (the JSON format's base64 PNGs), and the grid PNG — on 16 real pictures (the emoji data set, RGBA,
resized to each size by the trainer's own loader) at each size; median CPU µs per image (the calling
thread's: the grid's parallel deflate pieces are not split here).

Part 2, against a real ``bentoml serve`` of a 256×256×4 generator (``benchmarks.sprites`` at width 8):
``--clients`` concurrent keep-alive clients each send ``POST /generate`` npy requests of the largest count
the per-request budget allows (16) for ``--load-seconds``; the server's peak RSS (its whole process tree,
sampled every 0.1 s) with the images/s. The budget (``GANSERVE_MAX_REQUEST_BYTES``) bounds each model run,
and the queue bound (four runs) bounds what waits, so the peak should stay flat as clients are added.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from benchmarks.common import ServeProcess, machine_line, median, print_table
from gancore.imaging import encode_png, tile
from service.encoders import npy_bytes
from tests.support.sprites import make_model

SIZES = (64, 128, 256)


def per_image_cpu(seconds: float) -> list[list[object]]:
    from training.data import load_dataset

    rows = []
    for side in SIZES:
        images = np.ascontiguousarray(load_dataset("emoji", side, 4).images[:16])
        kinds = {
            "npy": lambda im=images: npy_bytes(im),
            "png (one per image)": lambda im=images: [encode_png(x) for x in im],
            "grid png": lambda im=images: encode_png(tile(im)),
        }
        row: list[object] = [f"{side}×{side}×4"]
        for fn in kinds.values():
            times = []
            deadline = time.perf_counter() + seconds
            while len(times) < 3 or time.perf_counter() < deadline:
                start = time.process_time()
                fn()
                times.append((time.process_time() - start) / len(images))
            row.append(median(times) * 1e6)
        rows.append(row)
    return rows


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def load(models: Path, clients: list[int], seconds: float) -> list[list[object]]:
    server = ServeProcess(models).wait_ready()
    rows = []
    try:
        root = psutil.Process(server.proc.pid)
        body = {"model": "sprites-256", "count": 16, "format": "npy"}
        with httpx.Client(base_url=server.url, timeout=120) as warm:
            assert warm.post("/generate", json=body).status_code == 200
        idle = tree_rss(root)
        for n in clients:
            done, statuses, stop = [0], {}, threading.Event()

            def client(done=done, statuses=statuses, stop=stop) -> None:
                with httpx.Client(base_url=server.url, timeout=120) as c:
                    while not stop.is_set():
                        r = c.post("/generate", json=body)
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if r.status_code == 200:
                            done[0] += 16

            threads = [threading.Thread(target=client) for _ in range(n)]
            peak, start = idle, time.perf_counter()
            for t in threads:
                t.start()
            while time.perf_counter() - start < seconds:
                peak = max(peak, tree_rss(root))
                time.sleep(0.1)
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            rows.append([n, idle / 2**20, peak / 2**20, done[0] / elapsed, dict(sorted(statuses.items()))])
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per kind and size (part 1)")
    parser.add_argument("--load-seconds", type=float, default=20.0, help="load per client count (part 2)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--no-load", action="store_true", help="part 1 only")
    args = parser.parse_args()
    print(f"\n{machine_line()}")
    print_table(
        ["image", "npy µs/image", "png µs/image", "grid png µs/image"],
        per_image_cpu(args.seconds),
        title="CPU per image outside the model (16 emoji pictures, RGBA, at each size)",
    )
    if args.no_load:
        return
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        make_model(models / "sprites-256.onnx", g_width=8, steps=2, images=16, batch=8, size=256)
        rows = load(models, args.clients, args.load_seconds)
    print_table(
        ["clients", "idle RSS MiB", "peak RSS MiB", "images/s", "answers"],
        rows,
        title="256×256×4, POST /generate npy of 16 images (the budget's largest count), server process tree",
    )


if __name__ == "__main__":
    main()
