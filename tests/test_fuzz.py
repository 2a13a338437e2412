"""Schemathesis against the running service's own OpenAPI document: no 5xx, every response as documented."""

from __future__ import annotations

import httpx

from benchmarks.fuzz import CHECKS, run_fuzz


def test_openapi_describes_what_generate_answers(server):
    spec = httpx.get(server.url + "/docs.json", timeout=10).json()
    op = spec["paths"]["/generate"]["post"]
    assert set(op["responses"]["200"]["content"]) == {
        "application/json",
        "image/png",
        "application/octet-stream",
    }
    assert {"400", "401", "404", "413", "415", "429", "500", "504"} <= set(op["responses"])
    body = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["model"]["enum"] == ["tiny-cgan", "tiny-dcgan"]
    assert body["count"]["maximum"] == 64
    assert [s["type"] for s in body["label"]["anyOf"]] == ["integer", "string", "array"]


def test_fuzzing_finds_no_server_error_and_no_undocumented_response(server):
    report, output = run_fuzz(server.url, max_examples=500, seed=20261123, timeout=480)
    cases = report["test_cases"]
    assert report["exit_code"] == 0 and cases["unique_failures"] == 0 and cases["errored"] == 0, output[
        -6000:
    ]
    assert cases["generated"] >= 1000, output[-2000:]
    # /generate, /walk, /models, /images, the health endpoints, /metrics and the V2 routes
    assert report["operations"]["tested"] >= 17
    assert set(CHECKS) >= {"not_a_server_error", "response_schema_conformance"}
