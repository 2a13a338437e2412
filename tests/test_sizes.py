"""128 and 256 px end to end: training (each architecture, conditional or not, 1/3/4 channels), export with
parity checks, serving under the per-request byte budget, the V2 route, image URLs and offline generation."""

from __future__ import annotations

import base64
import io
import shutil
import tarfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Server, run_cli
from tests.test_golden import sha
from tests.test_offline import gen

BUDGET = 256 * 64 * 64 * 4  # GANSERVE_MAX_REQUEST_BYTES' default


@pytest.mark.slow
@pytest.mark.parametrize(
    "size, args",
    [
        (128, ["--recipe", "cgan", "--dataset", "digits", "--channels", "1"]),
        (256, ["--recipe", "dcgan", "--dataset", "digits", "--channels", "3", "--g-upsample", "nearest"]),
        (128, ["--recipe", "r3gan", "--dataset", "digits", "--channels", "3", "--conditional"]),
        (256, ["--recipe", "wgan-gp", "--dataset", "digits", "--channels", "4"]),
    ],
    ids=["cgan-128x1", "dcgan-256x3", "r3gan-cond-128x3", "wgan-gp-256x4"],
)
def test_trains_and_exports_at_large_sizes(tmp_path, size, args):
    run = tmp_path / "run"
    small = ["--g-width", "8", "--d-width", "8", "--batch-size", "4", "--steps", "1", "--no-progress"]
    run_cli("training", "train", *args, "--image-size", str(size), *small, "--out", str(run))
    out = run_cli("training", "export", str(run), "--out", str(tmp_path / "m.onnx")).stdout
    assert "ONNX Runtime vs PyTorch: max |diff|" in out  # the export's parity check ran and passed
    images = gen(tmp_path, "--model", "m", "--count", "2", "--seed", "1", "--format", "npz", "--out",
                 str(tmp_path / "o"))  # fmt: skip
    assert images.returncode == 0
    (shard,) = (tmp_path / "o").rglob("*.npz")
    with np.load(shard) as npz:
        key = next(k for k in npz.files if npz[k].ndim == 4)
        assert npz[key].shape[1:3] == (size, size)


# Two small generators, committed so that their images can be pinned: 40 DCGAN steps on synthetic sprites,
# 128×128×4 and 256×256×4, g_width 8 (`python -m tests.support.sprites tests/fixtures/sprites-128.onnx
# --g-width 8 --steps 40 --images 32 --size 128`, and the same at 256).
FIXTURES = Path(__file__).parent / "fixtures"
# sha256 of the uint8 [4, S, S, 4] bytes of images 0–3 of seed 0 on ONNX Runtime's CPU provider
GOLDEN_LARGE = {
    "sprites-128": "7aaec298d31187dde442a8fb328181889dcc734321dc7cfaa753cc16f559a673",
    "sprites-256": "49d9290f0358d10e00ddf58d584078df3c03bb920d29568e21f35d52bb23c219",
}


@pytest.fixture(scope="module")
def large_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("large") / "models"
    folder.mkdir()
    for name in GOLDEN_LARGE:
        shutil.copy(FIXTURES / f"{name}.onnx", folder / f"{name}.onnx")
    return folder


@pytest.fixture(scope="module")
def large_server(large_models) -> Server:
    srv = Server(large_models).wait_ready()
    yield srv
    srv.stop()


def test_every_format_serves_large_images_within_the_budget(large_server):
    url = large_server.url
    listed = {m["name"]: m for m in httpx.post(url + "/models", timeout=30).json()["models"]}
    assert listed["sprites-256"]["max_count"] == BUDGET // (256 * 256 * 4) == 16
    assert listed["sprites-128"]["max_count"] == 64
    body = {"model": "sprites-256", "seed": 3, "count": 16}
    r = httpx.post(url + "/generate", json={**body, "format": "npy"}, timeout=120)
    assert r.status_code == 200, r.text
    images = np.load(io.BytesIO(r.content))
    assert images.shape == (16, 256, 256, 4) and images.dtype == np.uint8
    pngs = httpx.post(url + "/generate", json={**body, "count": 2}, timeout=120).json()["images"]
    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(pngs[0]))))
    assert np.array_equal(first, images[0])
    grid = httpx.post(url + "/generate", json={**body, "count": 4, "format": "grid"}, timeout=120)
    assert grid.status_code == 200 and Image.open(io.BytesIO(grid.content)).size == (2 * 258 + 2, 2 * 258 + 2)
    page = httpx.get(url + "/images/sprites-256/3/5.png", timeout=60)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(page.content))), images[5])


def test_a_count_over_the_budget_is_400_naming_the_budget_and_what_fits(large_server):
    url = large_server.url
    r = httpx.post(url + "/generate", json={"model": "sprites-256", "count": 17}, timeout=60)
    assert r.status_code == 400
    err = r.json()
    assert err["field"] == "count" and err["limit"] == 16
    assert "GANSERVE_MAX_REQUEST_BYTES" in err["error"] and "at most 16 fit" in err["error"]
    assert "256×256×4" in err["error"]
    r = httpx.post(
        url + "/walk", json={"model": "sprites-256", "seed_a": 1, "seed_b": 2, "steps": 20}, timeout=60
    )
    assert r.status_code == 400 and r.json()["field"] == "steps" and r.json()["limit"] == 16
    seeds = {"name": "seed", "shape": [17], "datatype": "INT64", "data": list(range(17))}
    r = httpx.post(url + "/v2/models/sprites-256/infer", json={"inputs": [seeds]}, timeout=60)
    assert r.status_code == 400 and "1 … 16 rows" in r.json()["error"]
    # the smaller model of the same server still takes more
    r = httpx.post(
        url + "/generate", json={"model": "sprites-128", "count": 64, "format": "npy"}, timeout=120
    )
    assert r.status_code == 200


def test_client_splits_by_the_models_own_limit(large_server):
    from ganserve_client import Client

    with Client(large_server.url) as c:
        batch = c.generate("sprites-256", count=20, seed=9)
        assert batch.images.shape == (20, 256, 256, 4) and len(batch.request_ids) == 2
        assert np.array_equal(
            batch.images[17], c.generate("sprites-256", count=1, seed=9, start=17).images[0]
        )


@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "png"])
def test_offline_generation_at_256(large_models, tmp_path, fmt):
    out = tmp_path / "out"
    gen(
        large_models,
        "--model",
        "sprites-256",
        "--count",
        "3",
        "--seed",
        "2",
        "--format",
        fmt,
        "--out",
        str(out),
    )
    files = [p for p in out.rglob("*") if p.is_file()]
    if fmt == "webdataset":
        (tar,) = [p for p in files if p.suffix == ".tar"]
        with tarfile.open(tar) as t:
            png = next(m for m in t.getmembers() if m.name.endswith(".png"))
            assert Image.open(t.extractfile(png)).size == (256, 256)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        (p,) = [p for p in files if p.suffix == ".parquet"]
        row = pq.read_table(p).to_pylist()[0]
        assert Image.open(io.BytesIO(row["image"]["bytes"])).size == (256, 256)
    else:
        pngs = [p for p in files if p.suffix == ".png"]
        assert len(pngs) == 3 and Image.open(pngs[0]).mode == "RGBA"


@pytest.mark.parametrize("name", sorted(GOLDEN_LARGE))
def test_large_images_are_pinned_by_goldens_on_every_path(large_models, large_server, tmp_path, name):
    """The same four images, bit for bit, from the loader, /generate, V2 and the offline job."""
    from gancore.generator import GeneratorModel

    want = GOLDEN_LARGE[name]
    model = GeneratorModel(large_models / f"{name}.onnx", ["CPUExecutionProvider"], 1)
    idx = np.arange(4, dtype=np.uint64)
    assert sha(model.generate(0, idx, None)[0]) == want
    # one image at a time: the batch does not change an image
    assert sha(np.concatenate([model.generate(0, idx[i : i + 1], None)[0] for i in range(4)])) == want
    r = httpx.post(
        large_server.url + "/generate",
        json={"model": name, "seed": 0, "count": 4, "format": "npy"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert sha(np.load(io.BytesIO(r.content))) == want
    rows = {"name": "seed", "shape": [4], "datatype": "INT64", "data": [0, 0, 0, 0]}
    index = {"name": "index", "shape": [4], "datatype": "INT64", "data": [0, 1, 2, 3]}
    v2 = httpx.post(f"{large_server.url}/v2/models/{name}/infer", json={"inputs": [rows, index]}, timeout=120)
    assert v2.status_code == 200, v2.text
    (out,) = v2.json()["outputs"]
    assert sha(np.asarray(out["data"], dtype=np.uint8).reshape(out["shape"])) == want
    gen(large_models, "--model", name, "--count", "4", "--seed", "0", "--format", "npz",
        "--out", str(tmp_path / "o"))  # fmt: skip
    (shard,) = (tmp_path / "o").rglob("*.npz")
    with np.load(shard) as npz:
        key = next(k for k in npz.files if npz[k].ndim == 4)
        assert sha(npz[key]) == want
