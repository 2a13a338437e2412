"""SIGTERM: requests in flight finish with their answers before `bentoml serve` exits."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from tests.conftest import Server
from tests.onnx_graphs import slow_model


@pytest.mark.parametrize("target", ["main process", "process group"])
def test_sigterm_lets_requests_in_flight_finish(tmp_path, target):
    models = tmp_path / "models"
    models.mkdir()
    slow_model(models / "slow.onnx")
    srv = Server(models, env={"GANSERVE_THREADS": "1", "GANSERVE_MAX_COUNT": "1024"}).wait_ready()
    results: dict[int, object] = {}

    def request(i: int) -> None:
        # ≈ 1 s of model time each (the slow model takes ≈ 8 ms per image); they queue behind each other.
        try:
            r = httpx.post(
                srv.url + "/generate",
                json={"model": "slow", "count": 128, "seed": i, "format": "npy"},
                timeout=120,
            )
            results[i] = r
        except httpx.HTTPError as exc:
            results[i] = exc

    threads = [threading.Thread(target=request, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)  # all four sent; the first is running, the others are queued
        # `docker stop` and Kubernetes signal the main process; a terminal's Ctrl-C reaches the whole group.
        if target == "main process":
            os.kill(srv.proc.pid, signal.SIGTERM)
        else:
            os.killpg(srv.proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        for t in threads:
            t.join(120)
        code = srv.proc.wait(60)
    finally:
        log = srv.log()
        srv.stop()
    assert time.monotonic() - signalled > 0.3, (
        "the requests were over before the signal: the test tests nothing"
    )
    for i in range(4):
        r = results[i]
        assert isinstance(r, httpx.Response) and r.status_code == 200, (i, r, log[-3000:])
        assert r.headers["content-type"] == "application/octet-stream"
        images = np.load(io.BytesIO(r.content), allow_pickle=False)
        assert images.shape == (128, 4, 4, 1)
    assert code == 0, log[-3000:]
    with pytest.raises(httpx.HTTPError):  # and it is really gone
        httpx.get(srv.url + "/livez", timeout=2)
