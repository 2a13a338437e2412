"""The HTTP service, against a real `bentoml serve` on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, Server


def post(server, body, path="/generate", **kw) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=60, **kw)


def npy(server, **body) -> np.ndarray:
    r = post(server, {**body, "format": "npy"})
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def test_png_format(server):
    r = post(server, {"model": "tiny-cgan", "count": 3, "seed": 11, "label": 4})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["model"] == "tiny-cgan" and body["seed"] == 11 and body["indices"] == [0, 1, 2]
    assert body["labels"] == [4, 4, 4] and body["label_names"] == ["4"] * 3
    pixels = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in body["images"]]
    assert [p.shape for p in pixels] == [(16, 16)] * 3
    assert np.array_equal(
        np.stack(pixels)[..., None], npy(server, model="tiny-cgan", count=3, seed=11, label=4)
    )


def test_grid_format(server):
    r = post(server, {"model": "tiny-dcgan", "count": 6, "seed": 2, "format": "grid"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-seed"] == "2"
    grid = Image.open(io.BytesIO(r.content))
    assert grid.size == (3 * 18 + 2, 2 * 18 + 2)  # 3 columns × 2 rows of 16 px with 2 px padding


def test_npy_format(server):
    images = npy(server, model="tiny-dcgan", count=5, seed=3)
    assert images.shape == (5, 16, 16, 1) and images.dtype == np.uint8


def test_same_request_same_bytes(server):
    body = {"model": "tiny-cgan", "count": 8, "seed": 99}
    a, b = post(server, body), post(server, body)
    assert a.content == b.content and a.json()["labels"] == b.json()["labels"]


def test_prefix_and_start(server):
    full = npy(server, model="tiny-dcgan", count=16, seed=7)
    assert np.array_equal(npy(server, model="tiny-dcgan", count=4, seed=7), full[:4])
    assert np.array_equal(npy(server, model="tiny-dcgan", count=3, seed=7, start=5), full[5:8])
    assert not np.array_equal(npy(server, model="tiny-dcgan", count=4, seed=8), full[:4])


def test_drawn_seed_is_returned_and_reproduces(server):
    r = post(server, {"model": "tiny-dcgan", "count": 2})
    seed = r.json()["seed"]
    assert 0 <= seed < 2**63
    assert (
        post(server, {"model": "tiny-dcgan", "count": 2, "seed": seed}).json()["images"] == r.json()["images"]
    )


def test_label_forms_agree(server):
    by_index = npy(server, model="tiny-cgan", count=2, seed=5, label=3)
    assert np.array_equal(by_index, npy(server, model="tiny-cgan", count=2, seed=5, label="3"))
    one_hot = [0.0] * 10
    one_hot[3] = 1.0
    assert np.array_equal(by_index, npy(server, model="tiny-cgan", count=2, seed=5, label=one_hot))


def test_omitted_label_is_drawn_per_image_from_the_seed(server):
    body = post(server, {"model": "tiny-cgan", "count": 32, "seed": 1}).json()
    assert len(set(body["labels"])) > 3
    assert post(server, {"model": "tiny-cgan", "count": 4, "seed": 1}).json()["labels"] == body["labels"][:4]
    # Each image equals the same index requested with its drawn label given explicitly.
    drawn = npy(server, model="tiny-cgan", count=32, seed=1)
    i = 9
    explicit = npy(server, model="tiny-cgan", count=1, seed=1, start=i, label=body["labels"][i])
    assert np.array_equal(drawn[i], explicit[0])


def metric_sum(server, name: str, model: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    pattern = rf'^{name}\{{[^}}]*model="{model}"[^}}]*\}} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.M))


def test_concurrent_requests_are_merged_and_unchanged(server):
    seeds = list(range(100, 148))
    sequential = {s: npy(server, model="tiny-dcgan", count=1 + s % 8, seed=s) for s in seeds}
    runs_before = metric_sum(server, "ganserve_batch_rows_count", "tiny-dcgan")
    requests_before = metric_sum(server, "ganserve_batch_requests_sum", "tiny-dcgan")
    images_before = metric_sum(server, "ganserve_images_generated_total", "tiny-dcgan")
    with ThreadPoolExecutor(24) as pool:
        answers = pool.map(lambda s: npy(server, model="tiny-dcgan", count=1 + s % 8, seed=s), seeds)
        results = dict(zip(seeds, answers, strict=True))
    for s in seeds:
        assert np.array_equal(results[s], sequential[s]), s
    merged = metric_sum(server, "ganserve_batch_requests_sum", "tiny-dcgan") - requests_before
    assert merged == len(seeds), httpx.get(server.url + "/metrics").text
    runs = metric_sum(server, "ganserve_batch_rows_count", "tiny-dcgan") - runs_before
    assert runs < len(seeds), f"{len(seeds)} concurrent requests took {runs} model runs: nothing was merged"
    images = metric_sum(server, "ganserve_images_generated_total", "tiny-dcgan") - images_before
    assert images == sum(1 + s % 8 for s in seeds)


def test_models_endpoint(server):
    r = post(server, {}, path="/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()["models"]}
    assert set(models) == {"tiny-dcgan", "tiny-cgan"}
    cgan = models["tiny-cgan"]
    assert cgan["conditional"] and cgan["num_classes"] == 10 and cgan["class_names"][0] == "0"
    assert cgan["latent_dim"] == 100 and cgan["image_shape"] == [1, 16, 16] and cgan["recipe"] == "cgan"
    assert cgan["provider"] == "CPUExecutionProvider" and cgan["truncation"] == 1.0
    assert not models["tiny-dcgan"]["conditional"]


@pytest.mark.parametrize(
    "body, status, field, words",
    [
        ({"model": "nope"}, 404, "model", "unknown model"),
        ({"model": "../models/tiny-dcgan"}, 404, "model", "unknown model"),
        ({"model": "tiny-dcgan", "count": 0}, 400, "count", "greater than or equal to 1"),
        ({"model": "tiny-dcgan", "count": 65}, 400, "count", "less than or equal to 64"),
        ({"model": "tiny-dcgan", "seed": -1}, 400, "seed", "greater than or equal to 0"),
        ({"model": "tiny-dcgan", "seed": 2**63}, 400, "seed", "less than or equal to 9223372036854775807"),
        ({"model": "tiny-dcgan", "label": 1}, 400, "label", "unconditional"),
        ({"model": "tiny-cgan", "label": 10}, 400, "label", "0 … 9"),
        ({"model": "tiny-cgan", "label": "ten"}, 400, "label", "unknown class name"),
        ({"model": "tiny-cgan", "label": [1, 0, 0]}, 400, "label", "exactly 10 numbers"),
        ({"model": "tiny-cgan", "label": [0.5] * 10}, 400, "label", "sum to 1"),
        ({"model": "tiny-cgan", "label": True}, 400, "label", ""),
        ({"model": "tiny-dcgan", "format": "gif"}, 400, "format", "png"),
        ({"model": "tiny-dcgan", "colour": 1}, 400, "colour", "Extra inputs"),
    ],
)
def test_bad_input_is_a_clear_4xx(server, body, status, field, words):
    r = post(server, body)
    assert r.status_code == status, r.text
    assert field in r.text and words in r.text


def test_malformed_json_is_400(server):
    r = httpx.post(
        server.url + "/generate", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


def test_service_never_imports_torch(models_dir):
    code = "import sys, service.service; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    env = {"GANSERVE_MODELS_DIR": str(models_dir), "PATH": ""}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_bad_model_file_stops_start_up(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x01garbage")
    srv = Server(tmp_path)
    code = srv.proc.wait(90)
    log = srv.log()
    srv.stop()
    assert code != 0 and "broken.onnx" in log and "not a loadable ONNX model" in log


@pytest.mark.parametrize("fmt, label", [("npz", None), ("png", "7")])
def test_offline_generation_equals_http_generate(server, models_dir, tmp_path, fmt, label):
    """Image i written by `python -m service generate` has the pixels of image i of POST /generate."""
    from tests.conftest import run_cli

    out = tmp_path / "out"
    args = ["service", "generate", "--models-dir", str(models_dir), "--model", "tiny-cgan", "--count", "40",
            "--seed", "21", "--start", "3", "--out", str(out), "--format", fmt, "--no-progress"]  # fmt: skip
    run_cli(*args, *([] if label is None else ["--label", label]))
    body = {"model": "tiny-cgan", "count": 40, "seed": 21, "start": 3}
    want = npy(server, **body, **({} if label is None else {"label": int(label)}))
    if fmt == "npz":
        shards = sorted(out.rglob("*.npz"))
        got = np.concatenate([np.load(p)["images"] for p in shards])
    else:
        files = sorted(out.rglob("*.png"), key=lambda p: int(p.stem))
        got = np.stack([np.asarray(Image.open(p)).reshape(16, 16, 1) for p in files])
    assert got.shape == want.shape and np.array_equal(got, want)
