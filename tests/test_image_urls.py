"""GET /images/{model}/{seed}/{index}.png against a real `bentoml serve`: caching, pixels, errors, keys."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from service.image_urls import RequestError, etag, matches, parse_label, parse_path
from tests.conftest import KEY


def get(server, path, **kw) -> httpx.Response:
    return httpx.get(server.url + path, timeout=60, **kw)


def generated(server, **body) -> np.ndarray:
    r = httpx.post(server.url + "/generate", json={**body, "format": "npy"}, timeout=60)
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def pixels(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    a = np.asarray(Image.open(io.BytesIO(r.content)))
    return a[..., None] if a.ndim == 2 else a


def images_generated(server, model: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    m = re.search(rf'^ganserve_images_generated_total{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def test_200_then_304_with_a_strong_etag_and_immutable_caching(server):
    url = "/images/tiny-cgan/42/3.png?label=7"
    first = get(server, url)
    assert first.status_code == 200, first.text
    tag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{40}"', tag)  # strong: no W/ prefix
    cache = {d.strip() for d in first.headers["cache-control"].split(",")}
    assert {"public", "immutable"} <= cache and "max-age=31536000" in cache
    assert first.headers["x-model"] == "tiny-cgan" and first.headers["x-seed"] == "42"
    assert first.headers["x-index"] == "3" and first.headers["x-label"] == "7"

    before = images_generated(server, "tiny-cgan")
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = get(server, url, headers={"If-None-Match": header})
        assert again.status_code == 304, (header, again.text)
        assert again.content == b"" and again.headers["etag"] == tag
        assert again.headers["cache-control"] == first.headers["cache-control"]
    assert images_generated(server, "tiny-cgan") == before  # a 304 runs no model

    changed = get(server, url, headers={"If-None-Match": '"0123"'})
    assert changed.status_code == 200 and changed.content == first.content
    assert get(server, url).content == first.content  # same URL, same bytes
    assert images_generated(server, "tiny-cgan") == before + 2  # through the service's batcher


@pytest.mark.parametrize(
    "model, seed, index, label, query",
    [
        ("tiny-cgan", 42, 3, 7, "?label=7"),
        ("tiny-cgan", 5, 0, "2", "?label=%2B2"),  # "+2": a class index, signed
        ("tiny-cgan", 9, 17, [0.0] * 9 + [1.0], "?label=" + ",".join(["0"] * 9 + ["1"])),
        ("tiny-cgan", 9, 17, [0.5, 0.5] + [0.0] * 8, "?label=0.5,0.5," + ",".join(["0"] * 8)),
        ("tiny-cgan", 123, 2**62, None, ""),  # drawn label, the largest index
        ("tiny-dcgan", 2**63 - 1, 11, None, ""),
    ],
)
def test_pixels_equal_generate(server, model, seed, index, label, query):
    r = get(server, f"/images/{model}/{seed}/{index}.png{query}")
    body = {"model": model, "count": 1, "seed": seed, "start": index}
    if label is not None:
        body["label"] = int(label) if isinstance(label, str) else label
    assert np.array_equal(pixels(r), generated(server, **body)[0])
    if model == "tiny-cgan" and label is None:  # the drawn label is the one /generate reports
        labels = httpx.post(server.url + "/generate", json=body, timeout=60).json()["labels"]
        assert r.headers["x-label"] == str(labels[0])


def test_pixels_equal_generate_for_every_image_of_a_batch(server):
    want = generated(server, model="tiny-cgan", count=6, seed=77, start=100, label=3)
    got = [pixels(get(server, f"/images/tiny-cgan/77/{100 + i}.png?label=3")) for i in range(6)]
    assert np.array_equal(np.stack(got), want)


def test_etag_follows_the_image_not_the_spelling(server):
    def tag(path):
        r = get(server, path)
        assert r.status_code == 200, r.text
        return r.headers["etag"]

    base = tag("/images/tiny-cgan/1/2.png?label=4")
    one_hot = ",".join("1" if i == 4 else "0" for i in range(10))
    assert tag(f"/images/tiny-cgan/1/2.png?label={one_hot}") == base  # the same label, spelled otherwise
    others = {
        tag("/images/tiny-cgan/1/3.png?label=4"),
        tag("/images/tiny-cgan/2/2.png?label=4"),
        tag("/images/tiny-cgan/1/2.png?label=5"),
        tag("/images/tiny-cgan/1/2.png"),
        tag("/images/tiny-dcgan/1/2.png"),
    }
    assert len(others) == 5 and base not in others


def test_head_answers_the_headers_without_a_body(server):
    full = get(server, "/images/tiny-dcgan/8/1.png")
    head = httpx.head(server.url + "/images/tiny-dcgan/8/1.png", timeout=60)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == full.headers["etag"]
    assert int(head.headers["content-length"]) == len(full.content)


@pytest.mark.parametrize(
    "path, status, field, says",
    [
        ("/images/no-such-model/1/2.png", 404, "model", "available: tiny-cgan, tiny-dcgan"),
        ("/images/bad%20name/1/2.png", 400, "model", "model name"),
        ("/images/tiny-dcgan/x/2.png", 400, "seed", "0 … 9223372036854775807"),
        ("/images/tiny-dcgan/-1/2.png", 400, "seed", "decimal integer"),
        ("/images/tiny-dcgan/9223372036854775808/2.png", 400, "seed", "9223372036854775807"),
        ("/images/tiny-dcgan/1/2.5.png", 400, "index", "decimal integer"),
        ("/images/tiny-dcgan/1/4611686018427387905.png", 400, "index", "4611686018427387904"),
        ("/images/tiny-dcgan/1/99999999999999999999999999999.png", 400, "index", "decimal integer"),
        ("/images/tiny-dcgan/1/2.jpg", 400, "format", ".png"),
        ("/images/tiny-dcgan/1/2", 404, "format", ".png"),
        ("/images/tiny-dcgan/1", 404, "path", "/images/{model}/{seed}/{index}.png"),
        ("/images/tiny-dcgan/1/2/3.png", 404, "path", "/images/{model}/{seed}/{index}.png"),
        ("/images/tiny-dcgan/1/2.png?label=1", 400, "label", "unconditional"),
        ("/images/tiny-cgan/1/2.png?label=10", 400, "label", "0 … 9"),
        ("/images/tiny-cgan/1/2.png?label=cat", 400, "label", "unknown class name"),
        ("/images/tiny-cgan/1/2.png?label=", 400, "label", "empty"),
        ("/images/tiny-cgan/1/2.png?label=1,0", 400, "label", "exactly 10 numbers"),
        ("/images/tiny-cgan/1/2.png?label=a,b", 400, "label", "comma-separated"),
        ("/images/tiny-cgan/1/2.png?label=1&label=2", 400, "label", "more than once"),
        ("/images/tiny-cgan/1/2.png?count=4", 400, "count", "unknown query parameter"),
    ],
)
def test_bad_parts_answer_4xx_naming_the_part(server, path, status, field, says):
    r = get(server, path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field and says in body["error"], body
    assert body["request_id"] == r.headers["x-request-id"]
    assert "etag" not in r.headers and "cache-control" not in r.headers  # errors are never cached as images


def test_other_methods_are_405(server):
    r = httpx.post(server.url + "/images/tiny-dcgan/1/2.png", json={}, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD" and r.json()["field"] == "method"


def test_the_api_key_rules_apply(keyed_server):
    url = keyed_server.url + "/images/tiny-dcgan/1/2.png"
    r = httpx.get(url, timeout=30)
    assert r.status_code == 401 and r.json()["error"] == "missing API key"
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert ok.status_code == 200, ok.text
    # A validator without the key learns nothing: 401, not 304.
    stale = httpx.get(url, headers={"If-None-Match": ok.headers["etag"]}, timeout=30)
    assert stale.status_code == 401
    auth = {"Authorization": f"Bearer {KEY}", "If-None-Match": ok.headers["etag"]}
    assert httpx.get(url, headers=auth, timeout=30).status_code == 304


def test_the_openapi_document_describes_the_route(server):
    spec = httpx.get(server.url + "/docs.json", timeout=10).json()
    op = spec["paths"]["/images/{model}/{seed}/{index}.png"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["model"]["schema"]["enum"] == ["tiny-cgan", "tiny-dcgan"]
    assert params["seed"]["schema"]["maximum"] == 2**63 - 1 and params["label"]["in"] == "query"
    assert set(op["responses"]["200"]["content"]) == {"image/png"}
    assert {"ETag", "Cache-Control"} <= set(op["responses"]["304"]["headers"])
    assert {"400", "401", "404", "405", "429", "500", "504"} <= set(op["responses"])


# --- the parts, without a server ----------------------------------------------------------------------


def test_parse_path_and_label():
    assert parse_path("/m.v2_x/0/7.png") == ("m.v2_x", 0, 7)
    assert parse_label(b"") is None and parse_label(b"label=3") == 3 and parse_label(b"label=-1") == -1
    assert parse_label(b"label=seven") == "seven" and parse_label(b"label=%C3%A9t%C3%A9") == "été"
    assert parse_label(b"label=0.25,0.75") == [0.25, 0.75]
    with pytest.raises(RequestError) as exc:
        parse_label(b"label=%FF")
    assert exc.value.field == "query"


def test_if_none_match_uses_weak_comparison_of_listed_tags():
    tag = '"abc"'
    assert matches('"abc"', tag) and matches('W/"abc"', tag) and matches('"x", "abc"', tag)
    assert matches("*", tag)
    assert not matches(None, tag) and not matches('"abcd"', tag) and not matches("abc", tag)


def test_etag_depends_on_every_input():
    row = np.eye(3, dtype=np.float32)[1]
    base = etag("a" * 64, 1, 2, row)
    assert base == etag("a" * 64, 1, 2, row.copy())
    variants = [etag("b" * 64, 1, 2, row), etag("a" * 64, 2, 2, row), etag("a" * 64, 1, 3, row),
                etag("a" * 64, 1, 2, np.eye(3, dtype=np.float32)[2]), etag("a" * 64, 1, 2, None)]  # fmt: skip
    assert base not in variants and len(set(variants)) == len(variants)


def test_no_service_instance_is_503_not_a_crash():
    import asyncio

    from service.image_urls import ImageApp

    def stopped():
        raise RuntimeError("service isn't instantiated yet")  # what bentoml.get_current_service raises

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/images/m/1/2.png",
        "root_path": "",
        "query_string": b"",
    }
    asyncio.run(ImageApp(stopped)(scope, None, send))
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]


def test_the_guards_treat_image_urls_as_an_api_route():
    from service.guards import OPEN_PATHS, PAGE_PATHS, PAGE_PREFIXES, needs_key

    path = "/images/tiny-dcgan/1/2.png"
    assert needs_key("GET", path) and needs_key("HEAD", path)  # not an open page: the key is required
    # counted by the concurrency guard, which exempts only OPEN_PATHS
    assert path not in OPEN_PATHS and path not in PAGE_PATHS and not path.startswith(PAGE_PREFIXES)
