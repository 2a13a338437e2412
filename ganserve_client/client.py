"""``Client``: the service's ``/generate``, ``/walk`` and ``/models`` as numpy arrays and Python values."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import numpy as np
from PIL import Image

from ganserve_client.errors import ServerError

Label = int | str | Sequence[float] | np.ndarray | None


@dataclass(frozen=True)
class Batch:
    """Images ``indices`` of ``seed`` from ``model``: ``images[i]`` is image ``indices[i]``."""

    model: str
    seed: int
    images: np.ndarray  # uint8 [N, H, W, C]
    indices: np.ndarray  # int64 [N]
    labels: np.ndarray | None  # int64 [N]: each image's class; None for unconditional models
    label_names: list[str] | None
    request_ids: list[str]  # one per HTTP request the batch took


@dataclass(frozen=True)
class Walk:
    """A latent walk's frames: ``images[k]`` is the frame at fraction ``t[k]`` from seed_a to seed_b."""

    model: str
    seed_a: int
    seed_b: int
    index: int
    t: np.ndarray  # float64 [steps]
    images: np.ndarray  # uint8 [steps, H, W, C]
    labels: np.ndarray | None  # int64 [steps]: each frame's strongest class
    label_names: list[str] | None
    request_id: str | None


class Client:
    """A ganserve server at ``url``; ``api_key`` is sent as ``Authorization: Bearer <key>``.

    Every method raises ``ServerError`` (status, the server's message, request id, field) on a non-2xx answer,
    and httpx's exceptions when the server cannot be reached. Thread-safe; close it (or use ``with``) to
    release its connections.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:3000",
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._max_count: int | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        response = self._http.post(path, json=body)
        if not response.is_success:
            raise ServerError.from_response(response)
        return response

    def models(self) -> list[dict[str, Any]]:
        """Every served model's description (name, latent_dim, num_classes, class_names,
        image_shape [C, H, W], provider, sha256, quality, ...), as ``POST /models`` gives it."""
        body = self._post("/models", {}).json()
        self._max_count = int(body["max_count"])
        return body["models"]

    def max_count(self) -> int:
        """The most images the server returns per request (``GANSERVE_MAX_COUNT``)."""
        if self._max_count is None:
            self.models()
        assert self._max_count is not None
        return self._max_count

    def generate(
        self, model: str, count: int = 1, seed: int | None = None, label: Label = None, start: int = 0
    ) -> Batch:
        """Images ``start`` … ``start+count-1`` of ``seed`` (drawn by the server when None, then returned).

        ``label``: a class index, a class name, or a one-hot (or soft) list of num_classes numbers, for
        conditional models; None draws each image's label from the seed. A count above the server's
        per-request limit is fetched in several requests; the images are the same as in one (each image
        depends on (model, seed, index, label) alone).
        """
        count, start = int(count), int(start)
        chunk = count if count <= 1 else min(count, self.max_count())
        parts: list[dict[str, Any]] = []
        request_ids: list[str] = []
        done = 0
        while done < count or not parts:
            n = min(chunk, count - done) if count > 0 else count
            body = {"model": model, "count": n, "start": start + done, "format": "png"}
            if seed is not None:
                body["seed"] = int(seed)
            if label is not None:
                body["label"] = _label_json(label)
            response = self._post("/generate", body)
            answer = response.json()
            seed = answer["seed"]  # the drawn seed, so the next chunks continue the same sequence
            parts.append(answer)
            request_ids.append(response.headers.get("x-request-id", ""))
            done += n
        first = parts[0]
        labels = [p["labels"] for p in parts]
        names = [p["label_names"] for p in parts]
        return Batch(
            model=first["model"],
            seed=int(first["seed"]),
            images=np.concatenate([_decode(p["images"], p["image_shape"]) for p in parts]),
            indices=np.asarray([i for p in parts for i in p["indices"]], dtype=np.int64),
            labels=None if labels[0] is None else np.asarray(sum(labels, []), dtype=np.int64),
            label_names=None if names[0] is None else sum(names, []),
            request_ids=request_ids,
        )

    def walk(
        self,
        model: str,
        seed_a: int,
        seed_b: int,
        steps: int = 8,
        index: int = 0,
        label_a: Label = None,
        label_b: Label = None,
    ) -> Walk:
        """``steps`` frames from image ``index`` of (seed_a, label_a) to that of (seed_b, label_b); the
        first and last frames are those images exactly."""
        body: dict[str, Any] = {
            "model": model,
            "seed_a": int(seed_a),
            "seed_b": int(seed_b),
            "steps": int(steps),
            "index": int(index),
            "format": "png",
        }
        for name, value in (("label_a", label_a), ("label_b", label_b)):
            if value is not None:
                body[name] = _label_json(value)
        response = self._post("/walk", body)
        answer = response.json()
        return Walk(
            model=answer["model"],
            seed_a=int(answer["seed_a"]),
            seed_b=int(answer["seed_b"]),
            index=int(answer["index"]),
            t=np.asarray(answer["t"], dtype=np.float64),
            images=_decode(answer["images"], answer["image_shape"]),
            labels=None if answer["labels"] is None else np.asarray(answer["labels"], dtype=np.int64),
            label_names=answer["label_names"],
            request_id=response.headers.get("x-request-id"),
        )

    def image_url(self, model: str, seed: int, index: int, label: Label = None) -> str:
        """The cacheable URL of one image (``GET /images/{model}/{seed}/{index}.png``), for ``<img src>``."""
        url = f"{self.url}/images/{quote(model, safe='')}/{int(seed)}/{int(index)}.png"
        if label is None:
            return url
        value = _label_json(label)
        text = ",".join(repr(float(x)) for x in value) if isinstance(value, list) else str(value)
        return f"{url}?{urlencode({'label': text})}"

    def image(self, model: str, seed: int, index: int, label: Label = None) -> np.ndarray:
        """One image, uint8 [H, W, C], fetched from its cacheable URL."""
        response = self._http.get(self.image_url(model, seed, index, label))
        if not response.is_success:
            raise ServerError.from_response(response)
        return _to_hwc(Image.open(io.BytesIO(response.content)))


def _label_json(label: Label) -> int | str | list[float]:
    """A label as the API's JSON takes it (numpy scalars and arrays included)."""
    if isinstance(label, str):
        return label
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return int(label)
    if isinstance(label, (np.ndarray, list, tuple)):
        return [float(x) for x in np.asarray(label, dtype=np.float64).ravel()]
    raise TypeError(f"label: a class index, a class name or a list of numbers, not {type(label).__name__}")


def _to_hwc(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _decode(images: list[str], shape: list[int]) -> np.ndarray:
    """Base64 PNGs → uint8 [N, H, W, C] (``shape`` is the answer's [H, W, C])."""
    out = np.empty((len(images), *shape), dtype=np.uint8)
    for i, data in enumerate(images):
        pixels = _to_hwc(Image.open(io.BytesIO(base64.b64decode(data))))
        if pixels.shape != out.shape[1:] or pixels.dtype != np.uint8:
            raise ValueError(
                f"image {i}: decoded {pixels.dtype} {list(pixels.shape)}, expected uint8 {shape}"
            )
        out[i] = pixels
    return out
