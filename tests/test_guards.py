"""Limits, access and request-time faults, against a real `bentoml serve` with every guard switched on."""

from __future__ import annotations

import pickle
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.onnx_graphs import failing_model, slow_model

KEY = "test-key-0123456789abcdef"
MAX_BODY = 1024
MAX_CONCURRENCY = 3
TIMEOUT_S = 1
AUTH = {"Authorization": f"Bearer {KEY}"}


class _Payload:
    """A pickle that would create a marker file if anything ever unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def guarded(exported, tmp_path_factory):
    """A server with an API key (read from a file), small body, concurrency and time limits, a slow model,
    a model that fails for batches over 16, and pickle files that must never be loaded."""
    base = tmp_path_factory.mktemp("guarded")
    models = base / "models"
    models.mkdir()
    shutil.copy(exported["dcgan"], models / "tiny-dcgan.onnx")
    slow_model(models / "slow.onnx")
    failing_model(models / "failing.onnx", max_batch=16)
    marker = base / "unpickled"
    for name in ("evil.pkl", "evil.pt", "evil.onnx.pkl", "evil.npy"):
        (models / name).write_bytes(pickle.dumps(_Payload(marker)))
    shutil.copy(exported["cgan"], base / "outside.onnx")  # next to the folder: must stay unreachable
    key_file = base / "api-key"
    key_file.write_text(KEY + "\n")
    env = {
        "GANSERVE_API_KEY_FILE": str(key_file),
        "GANSERVE_MAX_BODY_BYTES": str(MAX_BODY),
        "GANSERVE_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "GANSERVE_TIMEOUT": str(TIMEOUT_S),
        "GANSERVE_MAX_COUNT": "4096",
        "GANSERVE_THREADS": "1",
    }
    srv = Server(models, env=env).wait_ready()
    srv.marker = marker
    yield srv
    srv.stop()


def gen(server, body, headers=AUTH, **kw) -> httpx.Response:
    return httpx.post(server.url + "/generate", json=body, headers=headers, timeout=60, **kw)


def wait_for_ok(server, body, within: float = 60) -> httpx.Response:
    """Retry until the server answers 200 (it may still be busy with an abandoned run)."""
    deadline = time.monotonic() + within
    while True:
        r = gen(server, body)
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


# --- access -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/livez", "/healthz", "/readyz", "/metrics", "/docs.json"])
def test_health_metrics_and_docs_stay_open(guarded, path):
    assert httpx.get(guarded.url + path, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "headers, invalid",
    [
        ({}, False),
        ({"Authorization": "Bearer wrong-key"}, True),
        ({"Authorization": f"Bearer {KEY}x"}, True),
        ({"Authorization": f"Bearer {KEY[:-1]}"}, True),
        ({"Authorization": f"Basic {KEY}"}, True),
        ({"Authorization": KEY}, True),
    ],
)
@pytest.mark.parametrize("path", ["/generate", "/models", "/walk", "/no-such-endpoint"])
def test_protected_endpoints_need_the_key(guarded, path, headers, invalid):
    r = httpx.post(guarded.url + path, json={"model": "tiny-dcgan"}, headers=headers, timeout=10)
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == ("invalid API key" if invalid else "missing API key")
    assert "Authorization: Bearer" in body["detail"] and body["request_id"] == r.headers["x-request-id"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_key_lets_requests_in(guarded):
    r = gen(guarded, {"model": "tiny-dcgan", "count": 2, "seed": 1})
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 2
    lower = {"authorization": f"bearer {KEY}"}  # the scheme is case-insensitive
    assert httpx.post(guarded.url + "/models", json={}, headers=lower, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "name", ["../outside", "../models/tiny-dcgan", "/etc/passwd", "tiny-dcgan.onnx", "./tiny-dcgan",
             "evil", "evil.pkl", "..", "tiny-dcgan/../tiny-dcgan", "%2e%2e%2foutside", "tiny-dcgan\x00"],
)  # fmt: skip
def test_model_names_never_reach_the_filesystem(guarded, name):
    r = gen(guarded, {"model": name})
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "model"


def test_only_onnx_files_are_loaded(guarded):
    gen(guarded, {"model": "evil"})
    names = {m["name"] for m in httpx.post(guarded.url + "/models", json={}, headers=AUTH).json()["models"]}
    assert names == {"tiny-dcgan", "slow", "failing"}
    assert not guarded.marker.exists(), "a pickle in the models folder was unpickled"


# --- limits -------------------------------------------------------------------------------------------


def test_count_over_the_limit_is_400(guarded):
    r = gen(guarded, {"model": "tiny-dcgan", "count": 4097})
    assert r.status_code == 400 and "count" in r.text and "4096" in r.text


def test_body_over_the_limit_is_413(guarded):
    big = {"model": "tiny-dcgan", "label": [0.0] * 400}  # well over 1024 bytes
    r = gen(guarded, big)
    assert r.status_code == 413, r.text
    assert r.json()["limit"] == MAX_BODY and "GANSERVE_MAX_BODY_BYTES" in r.json()["error"]
    assert "Content-Length" in r.json()["error"]


def test_streamed_body_over_the_limit_is_413(guarded):
    def chunks():  # no Content-Length: sent chunked, so only counting the bytes can catch it
        yield b'{"model": "tiny-dcgan", "label": ['
        for _ in range(300):
            yield b"0.0, "
        yield b"1.0]}"

    r = httpx.post(
        guarded.url + "/generate",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413, r.text
    assert "more than 1024 bytes" in r.json()["error"]


def test_body_at_the_limit_passes(guarded):
    head = b'{"model": "tiny-dcgan", "seed": 1'
    body = head + b" " * (MAX_BODY - len(head) - 1) + b"}"
    assert len(body) == MAX_BODY
    r = httpx.post(
        guarded.url + "/generate", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_non_json_bodies_are_415(guarded, content_type):
    r = httpx.post(
        guarded.url + "/generate",
        content=b'{"model": "tiny-dcgan"}',
        headers={**AUTH, "Content-Type": content_type},
        timeout=10,
    )
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["error"] and content_type in r.json()["error"]


def test_concurrency_over_the_limit_is_429_and_health_stays_open(guarded):
    results: list[int] = []

    def hold():  # the slow model takes 1.5–8 ms per image here: each holds its slot ≥ 0.5 s or times out
        results.append(gen(guarded, {"model": "slow", "count": 320, "seed": 0}).status_code)

    holders = [threading.Thread(target=hold) for _ in range(MAX_CONCURRENCY)]
    for t in holders:
        t.start()
    time.sleep(0.3)
    r = gen(guarded, {"model": "tiny-dcgan"})
    health = httpx.get(guarded.url + "/readyz", timeout=5).status_code
    for t in holders:
        t.join()
    assert r.status_code == 429, r.text
    assert r.json()["limit"] == MAX_CONCURRENCY and "GANSERVE_MAX_CONCURRENCY" in r.json()["error"]
    assert r.headers["retry-after"] == "1"
    assert health == 200
    assert len(results) == MAX_CONCURRENCY and set(results) <= {200, 504}
    assert wait_for_ok(guarded, {"model": "tiny-dcgan"}).status_code == 200


def test_timeout_is_504_and_the_worker_stays_healthy(guarded):
    start = time.monotonic()
    # 1.5–8 s of model time against a 1 s limit.
    r = gen(guarded, {"model": "slow", "count": 1024, "seed": 0, "format": "npy"})
    took = time.monotonic() - start
    assert r.status_code == 504, r.text
    assert f"{float(TIMEOUT_S)} seconds" in r.json()["error"]
    assert took < TIMEOUT_S + 1.5
    # The event loop is free while the abandoned run finishes in the model thread.
    t0 = time.monotonic()
    assert httpx.get(guarded.url + "/livez", timeout=5).status_code == 200
    assert time.monotonic() - t0 < 1
    r = wait_for_ok(guarded, {"model": "tiny-dcgan", "count": 3, "seed": 5})
    assert r.status_code == 200, r.text
    assert len(r.json()["images"]) == 3


# --- faults at request time ---------------------------------------------------------------------------


def test_model_failure_is_500_with_a_request_id_and_serving_goes_on(guarded):
    r = gen(guarded, {"model": "failing", "count": 17, "seed": 0})
    assert r.status_code == 500, r.text
    request_id = r.json()["request_id"]
    assert len(request_id) == 16 and r.headers["x-request-id"] == request_id
    assert "server log" in r.json()["error"]
    deadline = time.monotonic() + 10
    while request_id not in guarded.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    log_lines = [line for line in guarded.log().splitlines() if request_id in line]
    assert any("failing" in line and "failed" in line for line in log_lines), guarded.log()[-3000:]
    assert "Gather" in guarded.log()  # the traceback with ONNX Runtime's error follows it
    # The same model, within its working range, and another model still serve.
    assert gen(guarded, {"model": "failing", "count": 16, "seed": 0}).status_code == 200
    assert gen(guarded, {"model": "tiny-dcgan", "count": 2, "seed": 0}).status_code == 200


def test_open_inference_protocol_model_failure_is_500_and_the_body_limit_holds(guarded):
    url = guarded.url + "/v2/models/{}/infer"
    seeds = {"name": "seed", "shape": [17], "datatype": "INT64", "data": list(range(17))}
    r = httpx.post(url.format("failing"), json={"inputs": [seeds]}, headers=AUTH, timeout=60)
    assert r.status_code == 500, r.text
    request_id = r.headers["x-request-id"]
    assert "server log" in r.json()["error"] and len(request_id) == 16
    many = {"name": "seed", "shape": [1024], "datatype": "INT64", "data": [0] * 1024}
    body = {"inputs": [many]}  # ≈ 4 kB of JSON: over this server's 1 kB body limit
    r = httpx.post(url.format("slow"), json=body, headers=AUTH, timeout=60)
    assert r.status_code == 413 and "GANSERVE_MAX_BODY_BYTES" in r.json()["error"]
    r = httpx.post(url.format("tiny-dcgan"), json={"inputs": [seeds]}, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
