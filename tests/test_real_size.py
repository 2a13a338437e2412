"""Serving at real size: a 64×64×4 (RGBA) generator through every format, the bounded queue (503) and its
saturation metrics, the lean request path, and the provider choice at start-up — against real servers."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from gancore.providers import CPU, CUDA, choose_providers, gpu_visible
from service.batching import Batcher, QueueFull
from tests.support.server import ServeProcess

MODEL = "tiny-sprites"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sprites_dir(sprites_models_dir):
    return sprites_models_dir


@pytest.fixture(scope="module")
def rgba_server(sprites_dir):
    # Two encoder threads on any machine, so that PNG requests take the parallel encoding path.
    env = {"GANSERVE_MAX_COUNT": "64", "GANSERVE_ENCODE_THREADS": "2"}
    srv = ServeProcess(sprites_dir, env=env).wait_ready()
    yield srv
    srv.stop()


def post(srv, path, body, **kw):
    return httpx.post(srv.url + path, json=body, timeout=60, **kw)


def npy_images(srv, **body) -> np.ndarray:
    r = post(srv, "/generate", {"model": MODEL, "format": "npy", **body})
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


def test_rgba_every_format_keeps_alpha(rgba_server):
    arr = npy_images(rgba_server, seed=5, count=6)
    assert arr.shape == (6, 64, 64, 4) and arr.dtype == np.uint8
    r = post(rgba_server, "/generate", {"model": MODEL, "seed": 5, "count": 6})
    assert r.status_code == 200 and r.json()["image_shape"] == [64, 64, 4]
    for i, b64 in enumerate(r.json()["images"]):
        img = decode(base64.b64decode(b64))
        assert img.mode == "RGBA"
        assert np.array_equal(np.asarray(img), arr[i])  # alpha included, bit for bit
    grid = post(rgba_server, "/generate", {"model": MODEL, "seed": 5, "count": 6, "format": "grid"})
    img = decode(grid.content)
    assert grid.headers["content-type"] == "image/png" and img.mode == "RGBA"
    g = np.asarray(img)
    assert g.shape == (2 + 2 * 66, 2 + 3 * 66, 4)  # 3 columns × 2 rows of 64 + 2 padding
    for i in range(6):
        y, x = 2 + (i // 3) * 66, 2 + (i % 3) * 66
        assert np.array_equal(g[y : y + 64, x : x + 64], arr[i])
    assert g[0, 0, 3] == 0  # the padding is transparent, not black


def test_concurrent_png_requests_do_not_starve_the_encoder_threads(rgba_server):
    """More concurrent multi-image PNG requests than encoder threads all answer, with the right pixels.

    Each request's images are split over the encoder threads. When a request's split itself ran on an
    encoder thread and waited there for its slices, two concurrent requests took both threads and waited
    on slices queued behind them: every PNG request hung until the 504 timeout, and the threads for good.
    """
    expected = npy_images(rgba_server, seed=21, count=8)

    def one(_: int) -> httpx.Response:
        body = {"model": MODEL, "seed": 21, "count": 8}
        return httpx.post(rgba_server.url + "/generate", json=body, timeout=30)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))
    for r in answers:
        assert r.status_code == 200, r.text[:200]
        for i, b64 in enumerate(r.json()["images"]):
            assert np.array_equal(np.asarray(decode(base64.b64decode(b64))), expected[i])


def test_rgba_large_grid_is_one_valid_png(rgba_server):
    """64 images: the grid's deflate is split over threads; the PNG must still decode to the exact pixels."""
    arr = npy_images(rgba_server, seed=9, count=64)
    grid = np.asarray(decode(post(rgba_server, "/generate", {"model": MODEL, "seed": 9, "count": 64,
                                                             "format": "grid"}).content))  # fmt: skip
    for i in (0, 27, 63):
        y, x = 2 + (i // 8) * 66, 2 + (i % 8) * 66
        assert np.array_equal(grid[y : y + 64, x : x + 64], arr[i])


def test_rgba_walk_keeps_alpha(rgba_server):
    body = {"model": MODEL, "seed_a": 1, "seed_b": 2, "steps": 3}
    frames = [decode(base64.b64decode(b)) for b in post(rgba_server, "/walk", body).json()["images"]]
    assert [f.mode for f in frames] == ["RGBA"] * 3
    assert np.array_equal(np.asarray(frames[0]), npy_images(rgba_server, seed=1, count=1)[0])
    strip = decode(post(rgba_server, "/walk", {**body, "format": "grid"}).content)
    assert strip.mode == "RGBA" and strip.size == (2 + 3 * 66, 66 + 2)


def test_lean_path_answers_exactly_as_bentoml(rgba_server):
    """The same bodies, statuses and headers whichever path answers: the lean path only takes valid requests,
    and errors are BentoML's own. (The in-process comparison is in test_lean_and_bentoml_routes_agree.)"""
    r = post(rgba_server, "/generate", {"model": MODEL, "count": 0})
    assert r.status_code == 400 and r.json()["detail"][0]["loc"][-1] == "count"
    r = post(rgba_server, "/generate", {"model": "nope"})
    assert r.status_code == 404 and r.json()["field"] == "model" and "X-Request-ID" in r.headers
    r = httpx.post(rgba_server.url + "/generate", content=b"{not json", timeout=10,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400
    r = post(rgba_server, "/generate", {"model": MODEL, "seed": 3})
    assert r.headers["server"] == "BentoML Service/ganserve" and r.headers["x-seed"] == "3"
    assert "server-timing" in r.headers


def _counter(metrics: str, name: str, **labels: str) -> float | None:
    """Sum of ``name{...}`` over the label sets that hold ``labels`` in a Prometheus text page; None when no
    label set matches."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + "{") and all(w in line for w in want)
    ]
    return sum(values) if values else None


def test_lean_requests_are_counted_by_bentoml_and_by_the_lean_histogram(rgba_server):
    """BentoML's request series sit outside the lean path, so they count every request, lean or not; the
    lean histogram counts those the lean path answered (README "Health and metrics")."""

    def counts() -> tuple[float, float]:
        page = httpx.get(rgba_server.url + "/metrics", timeout=10).text
        code = {"endpoint": "/generate", "http_response_code": "200"}
        return (
            _counter(page, "bentoml_service_request_total", **code) or 0.0,
            _counter(page, "ganserve_lean_request_seconds_count", **code) or 0.0,
        )

    before = counts()
    for seed in range(3):
        body = {"model": MODEL, "seed": seed, "format": "npy"}
        assert post(rgba_server, "/generate", body).status_code == 200
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (3, 3)


def test_lean_and_bentoml_routes_agree(sprites_dir):
    """One request through the lean path and through BentoML's route (lean routes removed), in a fresh
    process (the service module reads its settings at import): same status, bytes and headers."""
    code = f"from tests.test_real_size import compare_paths; compare_paths({str(sprites_dir)!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "compared 4" in proc.stdout


def compare_paths(models_dir: str) -> None:
    """Run in its own process by the test above."""
    import os

    os.environ["GANSERVE_MODELS_DIR"] = models_dir
    from starlette.testclient import TestClient

    import service.service as svc

    with TestClient(svc.GanService.to_asgi()) as client:
        bodies = [
            ("/generate", {"model": MODEL, "seed": 4, "count": 3, "format": f})
            for f in ("png", "npy", "grid")
        ] + [("/walk", {"model": MODEL, "seed_a": 1, "seed_b": 9, "steps": 3})]
        lean = [client.post(p, json=b) for p, b in bodies]
        assert set(svc.LEAN.routes) == {("POST", "/generate"), ("POST", "/walk")}
        saved = dict(svc.LEAN.routes)
        svc.LEAN.routes.clear()
        try:
            full = [client.post(p, json=b) for p, b in bodies]
        finally:
            svc.LEAN.routes.update(saved)
    volatile = {"x-request-id", "server-timing", "x-bentoml-request-id"}
    for a, b in zip(lean, full, strict=True):
        assert a.status_code == b.status_code == 200
        assert a.content == b.content
        assert {k: v for k, v in a.headers.items() if k not in volatile} == {
            k: v for k, v in b.headers.items() if k not in volatile
        }
    print(f"compared {len(bodies)}")


# --- the bounded queue ------------------------------------------------------------------------------------


def test_batcher_refuses_past_the_queue_bound_and_reports_waits():
    """Unit level, deterministic: the model is held while requests queue behind it."""
    release, stats, queued = threading.Event(), [], []

    def run(z, label):
        release.wait(10)
        return z.copy()

    async def scenario():
        batcher = Batcher(run, ThreadPoolExecutor(1), max_rows=8, on_run=stats.append, max_queue_rows=6,
                          on_queue=queued.append)  # fmt: skip
        first = asyncio.ensure_future(batcher.submit(np.zeros((8, 2), np.float32), None))  # runs at once
        await asyncio.sleep(0.05)
        waiting = [
            asyncio.ensure_future(batcher.submit(np.full((3, 2), i, np.float32), None)) for i in (1, 2)
        ]
        await asyncio.sleep(0)
        assert batcher.queued_rows == 6
        with pytest.raises(QueueFull) as err:
            await batcher.submit(np.zeros((1, 2), np.float32), None)
        assert err.value.limit == 6 and err.value.queued == 6
        await asyncio.sleep(0.05)
        release.set()
        outs = await asyncio.gather(first, *waiting)
        assert [o.shape for o in outs] == [(8, 2), (3, 2), (3, 2)] and outs[2][0, 0] == 2
        assert batcher.queued_rows == 0
        # A lone request larger than the bound still runs when nothing waits.
        assert (await batcher.submit(np.zeros((7, 2), np.float32), None)).shape == (7, 2)

    asyncio.run(scenario())
    assert [(s.rows, s.requests) for s in stats] == [(8, 1), (6, 2), (7, 1)]
    assert min(stats[1].queue_waits) > 0.04  # they waited behind the held run
    assert stats[0].queue_waits[0] < 0.04 and all(s.run_seconds > 0 for s in stats)
    assert queued == [8, 0, 3, 6, 0, 7, 0]  # the gauge follows every change of the backlog


@pytest.fixture(scope="module")
def bounded_server(sprites_dir):
    # Runs of 32 rows of 64×64×4 on one thread take long enough for a burst of 40 to pile up on any CPU.
    env = {"GANSERVE_MAX_QUEUE_ROWS": "32", "GANSERVE_MAX_BATCH_ROWS": "32", "GANSERVE_THREADS": "1"}
    srv = ServeProcess(sprites_dir, env=env).wait_ready()
    yield srv
    srv.stop()


def test_full_queue_answers_503_and_metrics_show_saturation(bounded_server):
    async def burst():
        async with httpx.AsyncClient(base_url=bounded_server.url, timeout=60) as client:
            body = {"model": MODEL, "count": 32, "format": "npy"}
            return await asyncio.gather(*(client.post("/generate", json=body) for _ in range(40)))

    responses = asyncio.run(burst())
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503}, codes
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1" and refused.headers["x-request-id"]
    body = refused.json()
    assert body["limit"] == 32 and "GANSERVE_MAX_QUEUE_ROWS" in body["error"] and MODEL in body["error"]
    ok = sum(c == 200 for c in codes)
    metrics = httpx.get(bounded_server.url + "/metrics", timeout=10).text
    assert _sample(metrics, "ganserve_queue_wait_seconds_count", MODEL) == ok
    assert _sample(metrics, "ganserve_model_run_seconds_count", MODEL) >= 1
    assert _sample(metrics, "ganserve_queue_full_refusals_total", MODEL) == 40 - ok
    assert _sample(metrics, "ganserve_queued_rows", MODEL) == 0  # all answered: nothing waits
    # After the burst the server is healthy and answers again.
    assert (
        post(bounded_server, "/generate", {"model": MODEL, "count": 32, "format": "npy"}).status_code == 200
    )


def _sample(metrics: str, name: str, model: str) -> float:
    """The value of ``name{model=...}`` in a Prometheus text page (summed over label sets)."""
    value = _counter(metrics, name, model=model)
    assert value is not None, f"{name} for {model} missing from /metrics"
    return value


# --- provider choice -------------------------------------------------------------------------------------


def test_provider_choice(tmp_path):
    available = [CUDA, CPU]
    none = choose_providers(None, available, dev=tmp_path, env={})
    assert none.providers == [CPU] and "no NVIDIA GPU visible" in none.reason
    (tmp_path / "nvidia0").touch()
    assert choose_providers(None, available, dev=tmp_path, env={}).providers == [CUDA, CPU]
    hidden = choose_providers(None, available, dev=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert hidden.providers == [CPU] and "CUDA_VISIBLE_DEVICES" in hidden.reason
    assert choose_providers(None, [CPU], dev=tmp_path, env={}).providers == [CPU]
    forced = choose_providers([CUDA], [CPU], dev=tmp_path, env={})
    assert forced.providers == [CUDA] and "GANSERVE_PROVIDERS" in forced.log_line()


def test_cpu_start_logs_the_provider_and_no_cuda_error(rgba_server):
    if gpu_visible() is None:
        pytest.skip("this machine has a GPU")
    log = rgba_server.log()
    assert "ONNX Runtime providers: CPUExecutionProvider (no NVIDIA GPU visible" in log
    lowered = log.lower()
    for bad in ("libcuda", "libcudart", "libcublas", "cudnn", "cuda failure", "failed to load library"):
        assert bad not in lowered, f"{bad!r} in the server log:\n{log[-3000:]}"


def test_forced_provider_is_logged(sprites_dir, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(sprites_dir, folder)
    srv = ServeProcess(folder, env={"GANSERVE_PROVIDERS": "CPUExecutionProvider"}).wait_ready()
    try:
        deadline = time.monotonic() + 10
        while "forced by GANSERVE_PROVIDERS" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "ONNX Runtime providers: CPUExecutionProvider (forced by GANSERVE_PROVIDERS)" in srv.log()
    finally:
        srv.stop()


def test_lean_routes_answer_valid_requests_and_hand_everything_else_on():
    """The middleware alone: valid → the handler; invalid, other routes, non-JSON → the app below, with
    the body replayed intact; a custom parser (e.g. a GET with a query string) joins the same way."""
    from pydantic import BaseModel, ConfigDict
    from starlette.responses import PlainTextResponse

    from service.lean import LeanRoutes

    class Req(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int

    seen = []

    async def below(scope, receive, send):
        body = (await receive())["body"]
        seen.append((scope["method"], scope["path"], body))
        await PlainTextResponse("framework")(scope, receive, send)

    async def handler(req: Req):
        return PlainTextResponse(f"lean {req.n}")

    def from_query(scope, body):
        qs = scope["query_string"].decode()
        return Req(n=int(qs.removeprefix("n="))) if qs.startswith("n=") else None

    lean = LeanRoutes("test-server")
    lean.register("POST", "/x", Req, handler)
    lean.register("GET", "/q", Req, handler, parse=from_query)
    app = lean.middleware(below)

    def call(method, path, body=b"", query=b"", ctype=b"application/json"):
        out = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            out.append(message)

        scope = {"type": "http", "method": method, "path": path, "query_string": query,
                 "headers": [(b"content-type", ctype)]}  # fmt: skip
        asyncio.run(app(scope, receive, send))
        headers = dict(out[0]["headers"])
        return out[1]["body"].decode(), headers

    assert call("POST", "/x", b'{"n": 3}') == ("lean 3", call("POST", "/x", b'{"n": 3}')[1])
    assert call("POST", "/x", b'{"n": 3}')[1][b"server"] == b"test-server"
    for body in (b'{"n": "x"}', b"{bad", b'{"n": 1, "extra": 2}', b""):
        assert call("POST", "/x", body)[0] == "framework"
        assert seen[-1] == ("POST", "/x", body)  # replayed untouched
    assert call("POST", "/x", b'{"n": 3}', ctype=b"text/plain")[0] == "framework"
    assert call("POST", "/other", b'{"n": 3}')[0] == "framework"
    assert call("GET", "/q", query=b"n=7")[0] == "lean 7"
    assert call("GET", "/q", query=b"m=7")[0] == "framework"


def test_queue_bound_and_lean_settings():
    from service.settings import Settings

    assert Settings.from_env({}).queue_rows() == 4 * 256
    assert Settings.from_env({"GANSERVE_MAX_BATCH_ROWS": "64"}).queue_rows() == 256
    assert Settings.from_env({"GANSERVE_MAX_QUEUE_ROWS": "10"}).queue_rows() == 10
    with pytest.raises(ValueError, match="max_queue_rows"):
        Settings.from_env({"GANSERVE_MAX_QUEUE_ROWS": "0"})
    assert Settings.from_env({}).lean and not Settings.from_env({"GANSERVE_LEAN": "0"}).lean
