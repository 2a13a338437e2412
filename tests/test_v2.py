"""The Open Inference Protocol routes against a real server, with the real tritonclient and kserve clients."""

from __future__ import annotations

import asyncio
import io
import json
import re

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from kserve.inference_client import InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest

from gancore.contract import latent
from tests.conftest import KEY

INFER = "/v2/models/{}/infer"


def generate_npy(server, model: str, seed: int, index: int, label=None, headers=None) -> np.ndarray:
    """Image ``index`` of ``seed`` from POST /generate (the reference every V2 row must equal)."""
    body = {"model": model, "seed": seed, "start": index, "count": 1, "format": "npy"}
    if label is not None:
        body["label"] = label
    r = httpx.post(server.url + "/generate", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))[0]


def generate_labels(server, model: str, seed: int, index: int) -> int:
    body = {"model": model, "seed": seed, "start": index, "count": 1}
    return httpx.post(server.url + "/generate", json=body, timeout=60).json()["labels"][0]


def triton_infer(server, model: str, inputs: dict[str, np.ndarray], binary: bool, outputs=("image",), **kw):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    tensors = []
    for name, array in inputs.items():
        datatype = "FP32" if array.dtype == np.float32 else "INT64"
        t = triton.InferInput(name, list(array.shape), datatype)
        t.set_data_from_numpy(array, binary_data=binary)
        tensors.append(t)
    wanted = [triton.InferRequestedOutput(n, binary_data=binary) for n in outputs]
    return client.infer(model, tensors, outputs=wanted, **kw)


def v2(server, model: str, inputs: list[dict], headers=None, **extra) -> httpx.Response:
    body = {"inputs": inputs, **extra}
    return httpx.post(server.url + INFER.format(model), json=body, headers=headers, timeout=60)


def seeds_input(seeds, name="seed", datatype="INT64") -> dict:
    return {"name": name, "shape": [len(seeds)], "datatype": datatype, "data": list(seeds)}


# Unrelated rows in one call: seeds, indices and labels that /generate could only serve one request each.
SEEDS = np.array([7, 123456789, 7, 2**63 - 1, 0], dtype=np.int64)
INDICES = np.array([0, 5, 3, 2**62, 9], dtype=np.int64)
LABELS = np.array([3, 0, 9, 3, 1], dtype=np.int64)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_rows_equal_generate(server, binary):
    result = triton_infer(
        server,
        "tiny-cgan",
        {"seed": SEEDS, "index": INDICES, "label": LABELS},
        binary,
        outputs=("image", "label"),
    )
    images = result.as_numpy("image")
    assert images.dtype == np.uint8 and images.shape == (len(SEEDS), 16, 16, 1)
    assert result.as_numpy("label").tolist() == LABELS.tolist()
    for i, (seed, index, label) in enumerate(zip(SEEDS, INDICES, LABELS, strict=True)):
        assert np.array_equal(images[i], generate_npy(server, "tiny-cgan", int(seed), int(index), int(label)))


def test_tritonclient_default_outputs_are_binary_and_complete(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    t = triton.InferInput("seed", [2], "INT64")
    t.set_data_from_numpy(np.array([4, 4], dtype=np.int64))  # binary by default, no outputs listed
    result = client.infer("tiny-cgan", [t])
    assert result.as_numpy("image").shape == (2, 16, 16, 1)
    # index omitted: image 0 of each seed; label omitted: drawn from the seed as /generate draws it
    drawn = generate_labels(server, "tiny-cgan", 4, 0)
    assert result.as_numpy("label").tolist() == [drawn, drawn]
    assert np.array_equal(result.as_numpy("image")[1], generate_npy(server, "tiny-cgan", 4, 0))


def test_unconditional_rows_and_drawn_labels_equal_generate(server):
    result = triton_infer(server, "tiny-dcgan", {"seed": SEEDS, "index": INDICES}, True)
    images = result.as_numpy("image")
    for i in range(len(SEEDS)):
        assert np.array_equal(images[i], generate_npy(server, "tiny-dcgan", int(SEEDS[i]), int(INDICES[i])))
    conditional = triton_infer(
        server, "tiny-cgan", {"seed": SEEDS, "index": INDICES}, True, ("image", "label")
    )
    for i in (1, 3):
        drawn = generate_labels(server, "tiny-cgan", int(SEEDS[i]), int(INDICES[i]))
        assert conditional.as_numpy("label")[i] == drawn
        assert np.array_equal(
            conditional.as_numpy("image")[i],
            generate_npy(server, "tiny-cgan", int(SEEDS[i]), int(INDICES[i])),
        )


def test_soft_labels_and_own_latents(server):
    soft = np.zeros((2, 10), dtype=np.float32)
    soft[0, 2] = 1.0
    soft[1, [4, 6]] = 0.5
    result = triton_infer(
        server,
        "tiny-cgan",
        {"seed": SEEDS[:2], "index": INDICES[:2], "label": soft},
        True,
        ("image", "label"),
    )
    for i in range(2):
        reference = generate_npy(server, "tiny-cgan", int(SEEDS[i]), int(INDICES[i]), soft[i].tolist())
        assert np.array_equal(result.as_numpy("image")[i], reference)
    assert result.as_numpy("label").tolist() == [2, 4]
    # A caller's own z: the latents of (seed, index) give the same images as the seeds do.
    z = np.concatenate(
        [latent(int(s), np.array([i], dtype=np.uint64), 100) for s, i in zip(SEEDS, INDICES, strict=True)]
    )
    by_z = triton_infer(server, "tiny-cgan", {"z": z, "label": LABELS}, True).as_numpy("image")
    by_seed = triton_infer(server, "tiny-cgan", {"seed": SEEDS, "index": INDICES, "label": LABELS}, True)
    assert np.array_equal(by_z, by_seed.as_numpy("image"))


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_client_gets_the_same_pixels(server, binary):
    async def infer():
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        inputs = []
        for name, array in (("seed", SEEDS), ("index", INDICES), ("label", LABELS)):
            t = InferInput(name, list(array.shape), "INT64")
            t.set_data_from_numpy(array, binary_data=binary)
            inputs.append(t)
        request = InferRequest(model_name="tiny-cgan", infer_inputs=inputs, request_id="kserve-1")
        try:
            return await client.infer(server.url, request, model_name="tiny-cgan")
        finally:
            await client._client.aclose()

    response = asyncio.run(infer())
    assert response.id == "kserve-1"
    images = {o.name: o.as_numpy() for o in response.outputs}["image"]
    reference = triton_infer(server, "tiny-cgan", {"seed": SEEDS, "index": INDICES, "label": LABELS}, True)
    assert np.array_equal(images, reference.as_numpy("image"))


def test_metadata_health_and_versions(server):
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "ganserve" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("tiny-cgan")
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["inputs"]] == [
        ("seed", "INT64", [-1]),
        ("index", "INT64", [-1]),
        ("label", "INT64", [-1]),
    ]
    assert [(t["name"], t["datatype"], t["shape"]) for t in model["outputs"]] == [
        ("image", "UINT8", [-1, 16, 16, 1]),
        ("label", "INT64", [-1]),
    ]
    assert [t["name"] for t in client.get_model_metadata("tiny-dcgan")["inputs"]] == ["seed", "index"]
    version = model["versions"][0]
    sha = next(
        m["sha256"] for m in httpx.post(server.url + "/models").json()["models"] if m["name"] == "tiny-cgan"
    )
    assert re.fullmatch(r"[0-9a-f]{12}", version) and sha.startswith(version)
    assert client.is_model_ready("tiny-cgan") and client.is_model_ready("tiny-cgan", version)
    for v in (version, sha):
        r = v2(server, f"tiny-cgan/versions/{v}", [seeds_input([1])])
        assert r.status_code == 200 and r.json()["model_version"] == version
    assert not client.is_model_ready("tiny-cgan", "000000000000")
    assert not client.is_model_ready("no-such-model")
    r = httpx.get(server.url + "/v2/models/tiny-cgan/versions/000000000000", timeout=10)
    assert r.status_code == 404 and "version" in r.json()["error"] and version in r.json()["error"]
    r = httpx.get(server.url + "/v2/models/nope", timeout=10)
    assert r.status_code == 404 and "tiny-cgan" in r.json()["error"]  # names what is available


def test_json_request_and_response_by_hand(server):
    r = v2(
        server,
        "tiny-cgan",
        [seeds_input([3, 3]), {"name": "label", "shape": [2, 1], "datatype": "INT32", "data": [[1], [2]]}],
        id="abc",
        outputs=[{"name": "label"}],
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"] == "abc" and body["model_name"] == "tiny-cgan"
    assert body["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 2]}]
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["x-request-id"])


def _binary_body(inputs: list[tuple[str, np.ndarray, str]], declared=None, extra: bytes = b"") -> tuple:
    doc = {"inputs": [], "parameters": {"binary_data_output": True}}
    blobs = []
    for name, array, datatype in inputs:
        size = array.nbytes if declared is None else declared
        doc["inputs"].append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        )
        blobs.append(array.tobytes())
    head = json.dumps(doc).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    return b"".join([head, *blobs, extra]), headers


def test_binary_response_layout(server):
    body, headers = _binary_body([("seed", np.array([8, 9], dtype="<i8"), "INT64")])
    r = httpx.post(server.url + INFER.format("tiny-dcgan"), content=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    out = head["outputs"][0]
    assert out["shape"] == [2, 16, 16, 1] and out["parameters"]["binary_data_size"] == 2 * 16 * 16
    images = np.frombuffer(r.content[n:], dtype=np.uint8).reshape(out["shape"])
    assert np.array_equal(images[1], generate_npy(server, "tiny-dcgan", 9, 0))


BAD = [
    ([seeds_input([-1])], "seed", "0 … 9223372036854775807"),
    ([{"name": "seed", "shape": [1], "datatype": "UINT64", "data": [2**63]}], "seed", "9223372036854775807"),
    ([seeds_input(range(65))], "seed", "1 … 64"),
    (
        [seeds_input([1]), {"name": "index", "shape": [1], "datatype": "INT64", "data": [-3]}],
        "index",
        "4611686018427387904",
    ),
    ([seeds_input([1, 2]), seeds_input([0], name="index")], "index", "2 rows"),
    (
        [seeds_input([1]), {"name": "label", "shape": [1], "datatype": "INT64", "data": [10]}],
        "label",
        "0 … 9",
    ),
    (
        [seeds_input([1]), {"name": "label", "shape": [1, 10], "datatype": "FP32", "data": [0.5] * 10}],
        "label",
        "sum to 1",
    ),
    (
        [seeds_input([1]), {"name": "label", "shape": [1, 3], "datatype": "FP32", "data": [1, 0, 0]}],
        "label",
        "[N, 10]",
    ),
    ([seeds_input([1.5], datatype="FP32")], "seed", "integer"),
    ([{"name": "seed", "shape": [1], "datatype": "INT64", "data": [1.5]}], "seed", "integers"),
    ([{"name": "seed", "shape": [2], "datatype": "INT64", "data": [1]}], "seed", "shape [2] needs 2"),
    ([{"name": "seed", "shape": [1], "datatype": "STRING", "data": [1]}], "seed", "datatype"),
    ([{"name": "z", "shape": [1, 7], "datatype": "FP32", "data": [0] * 7}], "z", "[N, 100]"),
    ([{"name": "z", "shape": [1, 100], "datatype": "FP32", "data": [0] * 100}], "label", "required with z"),
    (
        [{"name": "z", "shape": [1, 100], "datatype": "FP32", "data": [0] * 100}, seeds_input([1])],
        "seed",
        "not both",
    ),
    ([{"name": "noise", "shape": [1], "datatype": "INT64", "data": [1]}], "noise", "seed, index and label"),
    ([{"name": "index", "shape": [1], "datatype": "INT64", "data": [1]}], "seed", "required"),
]


@pytest.mark.parametrize("inputs, field, limit", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_inputs_are_400_naming_the_input_and_the_limit(server, inputs, field, limit):
    r = v2(server, "tiny-cgan", inputs)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert message.startswith(field) and limit in message, message


def test_bad_bodies_and_routes(server):
    url = server.url + INFER.format("tiny-dcgan")
    r = v2(
        server,
        "tiny-dcgan",
        [seeds_input([1]), {"name": "label", "shape": [1], "datatype": "INT64", "data": [0]}],
    )
    assert r.status_code == 400 and "unconditional" in r.json()["error"]
    r = v2(server, "tiny-dcgan", [seeds_input([1])], outputs=[{"name": "mask"}])
    assert r.status_code == 400 and r.json()["error"].startswith("mask") and "image" in r.json()["error"]
    r = httpx.post(url, content=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    seed = np.array([1], dtype="<i8")
    body, headers = _binary_body([("seed", seed, "INT64")], declared=4)
    r = httpx.post(url, content=body, headers=headers, timeout=10)
    assert r.status_code == 400 and "binary_data_size must be 1 elements × 8 bytes" in r.json()["error"]
    body, headers = _binary_body([("seed", seed, "INT64")], extra=b"xx")
    r = httpx.post(url, content=body, headers=headers, timeout=10)
    assert r.status_code == 400 and "2 bytes" in r.json()["error"]
    body, headers = _binary_body([("seed", seed, "INT64")])
    r = httpx.post(
        url, content=body, headers={**headers, "Inference-Header-Content-Length": "99999"}, timeout=10
    )
    assert r.status_code == 400 and r.json()["error"].startswith("Inference-Header-Content-Length")
    r = httpx.get(url, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = httpx.post(server.url + "/v2/models/tiny-dcgan", json={}, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = httpx.get(server.url + "/v2/models/tiny-dcgan/explain", timeout=10)
    assert r.status_code == 404 and "path" in r.json()["error"]
    r = httpx.post(url, content=b"seed=1", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415
    # The server keeps serving after all of that.
    assert v2(server, "tiny-dcgan", [seeds_input([1])]).status_code == 200


def test_key_limits_and_metrics_hold(keyed_server):
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(keyed_server.url + "/v2/health/live", timeout=10).status_code == 200  # probes stay open
    assert httpx.get(keyed_server.url + "/v2/health/ready", timeout=10).status_code == 200
    for path in ("/v2", "/v2/models/tiny-dcgan", "/v2/models/tiny-dcgan/ready"):
        assert httpx.get(keyed_server.url + path, timeout=10).status_code == 401, path
    assert v2(keyed_server, "tiny-dcgan", [seeds_input([1])]).status_code == 401
    r = v2(keyed_server, "tiny-dcgan", [seeds_input(range(9))], headers=auth)
    assert r.status_code == 400 and "1 … 8" in r.json()["error"]  # this server's GANSERVE_MAX_COUNT
    r = httpx.post(
        keyed_server.url + INFER.format("tiny-dcgan"),
        content=b"{" + b" " * 70000 + b"}",
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 413 and "GANSERVE_MAX_BODY_BYTES" in r.json()["error"]
    before = _images_generated(keyed_server, "tiny-dcgan")
    r = v2(keyed_server, "tiny-dcgan", [seeds_input(range(8))], headers=auth)
    assert r.status_code == 200
    assert _images_generated(keyed_server, "tiny-dcgan") == before + 8
    metrics = httpx.get(keyed_server.url + "/metrics", timeout=10).text
    assert re.search(
        r'ganserve_lean_request_seconds_count\{[^}]*endpoint="/v2/models/\{name\}/infer"', metrics
    )


def _images_generated(server, model: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    found = re.search(rf'ganserve_images_generated_total\{{[^}}]*model="{model}"[^}}]*\}} ([0-9.e+]+)', text)
    return float(found.group(1)) if found else 0.0
