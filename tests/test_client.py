"""ganserve_client against a real `bentoml serve`: arrays, seeds, indices, labels, walks, errors, the key."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
from PIL import Image

from ganserve_client import Client, ServerError
from tests.conftest import KEY, ROOT


def npy(server, **body) -> np.ndarray:
    r = httpx.post(server.url + "/generate", json={**body, "format": "npy"}, timeout=60)
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content), allow_pickle=False)


@pytest.fixture
def client(server):
    with Client(server.url) as c:
        yield c


def test_generate_returns_the_servers_uint8_array_with_seed_indices_and_labels(client, server):
    batch = client.generate("tiny-cgan", count=5, seed=42, label=7, start=3)
    assert batch.images.dtype == np.uint8 and batch.images.shape == (5, 16, 16, 1)
    assert np.array_equal(batch.images, npy(server, model="tiny-cgan", count=5, seed=42, label=7, start=3))
    assert batch.model == "tiny-cgan" and batch.seed == 42
    assert batch.indices.tolist() == [3, 4, 5, 6, 7] and batch.labels.tolist() == [7] * 5
    assert batch.label_names == ["7"] * 5 and re.fullmatch(r"[0-9a-f]{16}", batch.request_ids[0])


def test_labels_as_names_lists_numpy_values_and_drawn(client, server):
    one_hot = np.eye(10, dtype=np.float32)[2]
    by_list = client.generate("tiny-cgan", count=3, seed=np.int64(9), label=one_hot)
    by_name = client.generate("tiny-cgan", count=3, seed=9, label="2")
    by_index = client.generate("tiny-cgan", count=3, seed=9, label=np.int32(2))
    assert np.array_equal(by_list.images, by_name.images) and np.array_equal(by_name.images, by_index.images)
    drawn = client.generate("tiny-cgan", count=8, seed=9)
    answer = httpx.post(server.url + "/generate", json={"model": "tiny-cgan", "count": 8, "seed": 9}).json()
    assert drawn.labels.tolist() == answer["labels"] and drawn.label_names == answer["label_names"]
    plain = client.generate("tiny-dcgan", count=2, seed=1)
    assert plain.labels is None and plain.label_names is None


def test_a_drawn_seed_is_returned_and_reproduces_the_images(client):
    batch = client.generate("tiny-dcgan", count=2)
    assert 0 <= batch.seed < 2**63
    assert np.array_equal(client.generate("tiny-dcgan", count=2, seed=batch.seed).images, batch.images)


def test_counts_over_the_servers_limit_are_fetched_in_chunks(keyed_server, server):
    with Client(keyed_server.url, api_key=KEY) as c:
        assert c.max_count() == 8
        batch = c.generate("tiny-cgan", count=20, seed=5, start=1000)
        assert len(batch.request_ids) == 3  # 8 + 8 + 4
        assert batch.indices.tolist() == list(range(1000, 1020))
        assert np.array_equal(batch.images, npy(server, model="tiny-cgan", count=20, seed=5, start=1000))
        drawn = c.generate("tiny-dcgan", count=10)  # the first chunk's drawn seed serves the second
        assert np.array_equal(drawn.images, npy(server, model="tiny-dcgan", count=10, seed=drawn.seed))


def test_walk(client, server):
    walk = client.walk("tiny-cgan", seed_a=21, seed_b=22, steps=4, index=2, label_a=1, label_b="8")
    assert walk.images.shape == (4, 16, 16, 1) and walk.t.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert walk.labels[0] == 1 and walk.labels[-1] == 8 and walk.index == 2
    assert np.array_equal(walk.images[0], npy(server, model="tiny-cgan", seed=21, start=2, label=1)[0])
    assert np.array_equal(walk.images[-1], npy(server, model="tiny-cgan", seed=22, start=2, label=8)[0])
    body = {
        "model": "tiny-cgan",
        "seed_a": 21,
        "seed_b": 22,
        "steps": 4,
        "index": 2,
        "label_a": 1,
        "label_b": 8,
    }
    frames = httpx.post(server.url + "/walk", json=body, timeout=60).json()["images"]
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(f)))) for f in frames])
    assert np.array_equal(walk.images[..., 0], decoded)


def test_models(client):
    models = {m["name"]: m for m in client.models()}
    assert set(models) == {"tiny-cgan", "tiny-dcgan"}
    assert models["tiny-cgan"]["num_classes"] == 10 and models["tiny-dcgan"]["image_shape"] == [1, 16, 16]
    assert client.max_count() == 64


def test_image_url_and_image_match_generate(client, server):
    url = client.image_url("tiny-cgan", 3, 4, label=[0.0] * 5 + [1.0] + [0.0] * 4)
    assert url.startswith(server.url + "/images/tiny-cgan/3/4.png?label=")
    assert httpx.get(url, timeout=30).status_code == 200
    image = client.image("tiny-cgan", 3, 4, label=5)
    assert np.array_equal(image, npy(server, model="tiny-cgan", seed=3, start=4, label=5)[0])


@pytest.mark.parametrize(
    "call, status, field, says",
    [
        (lambda c: c.generate("no-such-model"), 404, "model", "unknown model 'no-such-model'"),
        (lambda c: c.generate("tiny-dcgan", label=3), 400, "label", "unconditional"),
        (lambda c: c.generate("tiny-cgan", label=12), 400, "label", "0 … 9"),
        (lambda c: c.walk("tiny-cgan", 1, 2, label_b="cat"), 400, "label_b", "unknown class name"),
        (lambda c: c.image("tiny-dcgan", 1, 2**62 + 1), 400, "index", "4611686018427387904"),
    ],
)
def test_server_errors_raise_with_the_servers_message_and_request_id(client, call, status, field, says):
    with pytest.raises(ServerError) as exc:
        call(client)
    err = exc.value
    assert err.status == status and err.field == field and says in err.message, err
    assert re.fullmatch(r"[0-9a-f]{16}", err.request_id) and err.request_id in str(err)


def test_validation_errors_carry_the_message(client):
    with pytest.raises(ServerError) as exc:
        client.walk("tiny-cgan", 1, 2, steps=1)  # pydantic's refusal, in BentoML's own error body
    err = exc.value
    assert err.status == 400 and err.field == "steps" and "greater than or equal to 2" in err.message, err
    with pytest.raises(ServerError) as exc:
        client.generate("tiny-dcgan", count=0, seed=-1)
    assert exc.value.field == "count" and "seed: Input should be greater" in exc.value.message, exc.value


def test_the_api_key(keyed_server):
    with Client(keyed_server.url) as anonymous, pytest.raises(ServerError) as exc:
        anonymous.models()
    assert exc.value.status == 401 and exc.value.message == "missing API key" and exc.value.request_id
    with Client(keyed_server.url, api_key="wrong") as wrong, pytest.raises(ServerError) as exc:
        wrong.generate("tiny-dcgan")
    assert exc.value.status == 401 and exc.value.message == "invalid API key"
    with Client(keyed_server.url, api_key=KEY) as c:
        assert c.generate("tiny-dcgan", count=2, seed=1).images.shape == (2, 16, 16, 1)
        assert c.image("tiny-dcgan", 1, 0).shape == (16, 16, 1)


def test_error_bodies_of_every_shape():
    def err(status, **kw):
        return ServerError.from_response(httpx.Response(status, **kw))

    bento = err(400, json=[{"error": "bad thing"}], headers={"X-Request-ID": "abc"})
    assert bento.message == "bad thing" and bento.request_id == "abc"
    timeout = err(504, json={"error": "Not able to process the request in 60.0 seconds"})
    assert timeout.status == 504 and timeout.request_id is None and "60.0 seconds" in str(timeout)
    proxy = err(502, text="<html>Bad Gateway</html>")
    assert proxy.message == "<html>Bad Gateway</html>"
    assert err(503, content=b"").message == "Service Unavailable"
    limited = err(429, json={"error": "too many", "limit": 8, "request_id": "r1"})
    assert limited.limit == 8 and limited.request_id == "r1"


def test_importing_the_client_needs_none_of_the_servers_packages():
    code = (
        "import sys, ganserve_client; heavy = {'bentoml', 'onnxruntime', 'torch', 'service', 'training'}; "
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_infer_rows_equal_generate_and_chunk_past_the_limit(keyed_server):
    seeds, indices, labels = [5, 900, 5, 2**40] * 5, list(range(20)), [1, 2, 3, 4] * 5
    with Client(keyed_server.url, api_key=KEY) as c:  # this server takes at most 8 rows per request
        rows = c.infer("tiny-cgan", seeds=seeds, indices=indices, labels=labels)
        assert rows.images.shape == (20, 16, 16, 1) and len(rows.request_ids) == 3
        assert rows.labels.tolist() == labels and re.fullmatch(r"[0-9a-f]{12}", rows.model_version)
        for i in (0, 7, 8, 19):
            one = c.generate("tiny-cgan", count=1, seed=seeds[i], start=indices[i], label=labels[i])
            assert np.array_equal(rows.images[i], one.images[0]), i
        soft = np.zeros((2, 10), dtype=np.float32)
        soft[:, 3] = 1.0
        assert c.infer("tiny-cgan", seeds=seeds[:2], indices=indices[:2], labels=soft).labels.tolist() == [
            3,
            3,
        ]
        with pytest.raises(ServerError) as err:
            c.infer("tiny-dcgan", seeds=[1], labels=[0])
        assert err.value.status == 400 and "unconditional" in err.value.message


def test_the_client_installs_alone_in_a_fresh_environment(server, tmp_path):
    """``pip install ./ganserve_client`` in a new virtual environment pulls only httpx, numpy and Pillow
    (and theirs), and the installed package talks to a real server."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q"]
    source = tmp_path / "src" / "ganserve_client"  # a copy: pip builds in the folder it is given
    shutil.copytree(ROOT / "ganserve_client", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([*pip, "install", str(source)], check=True, timeout=600)
    listed = subprocess.run([*pip, "list", "--format=freeze"], capture_output=True, text=True, check=True)
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    allowed = {"ganserve-client", "httpx", "numpy", "pillow", "anyio", "certifi", "httpcore", "h11", "idna",
               "sniffio", "typing-extensions", "exceptiongroup", "pip", "setuptools", "wheel"}  # fmt: skip
    assert installed <= allowed, installed - allowed
    code = (
        "import sys, ganserve_client as g; c = g.Client(sys.argv[1]); "
        "print(g.__file__); print(c.infer('tiny-dcgan', seeds=[3]).images.tobytes().hex())"
    )
    out = subprocess.run(
        [str(py), "-c", code, server.url], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    where, pixels = out.stdout.split()
    assert str(venv) in where  # the installed copy, not the repository's
    assert bytes.fromhex(pixels) == npy(server, model="tiny-dcgan", count=1, seed=3).tobytes()
