"""``Client``: the service's ``/generate``, ``/walk`` and ``/models`` as numpy arrays and Python values."""

from __future__ import annotations

import base64
import io
import json
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


@dataclass(frozen=True)
class Rows:
    """Per-row images from the Open Inference Protocol route: ``images[i]`` is row i's image."""

    model: str
    model_version: str  # the model file's SHA-256, first 12 hex digits
    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray | None  # int64 [N]: each row's class; None for unconditional models
    request_ids: list[str]  # one per HTTP request the rows took


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
        self._model_max: dict[str, int] = {}

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
        image_shape [C, H, W], max_count, provider, sha256, quality, ...), as ``POST /models`` gives it."""
        body = self._post("/models", {}).json()
        self._max_count = int(body["max_count"])
        self._model_max = {m["name"]: int(m.get("max_count", body["max_count"])) for m in body["models"]}
        return body["models"]

    def max_count(self, model: str | None = None) -> int:
        """The most images the server returns per request (``GANSERVE_MAX_COUNT``), or for ``model``:
        also bounded by its image size (``GANSERVE_MAX_REQUEST_BYTES``)."""
        if self._max_count is None or (model is not None and model not in self._model_max):
            self.models()
        assert self._max_count is not None
        return self._model_max.get(model, self._max_count) if model is not None else self._max_count

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
        chunk = count if count <= 1 else min(count, self.max_count(model))
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

    def infer(
        self,
        model: str,
        seeds: Sequence[int] | np.ndarray | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
        labels: Sequence[int] | np.ndarray | None = None,
        z: np.ndarray | None = None,
    ) -> Rows:
        """Row i is image ``indices[i]`` of ``seeds[i]`` with ``labels[i]``: unrelated images in one call.

        Over the Open Inference Protocol route (``/v2/models/{model}/infer``, binary tensors both ways).
        ``indices`` default to 0; ``labels`` are class indices [N] or one-hot (or soft) rows [N, K], for
        conditional models (None: drawn from each row's seed as ``generate`` draws them); ``z`` float32
        [N, latent_dim] replaces seeds and indices. More rows than the server's per-request limit are
        sent in several requests; the images are the same as in one.
        """
        named: dict[str, np.ndarray] = {}
        if z is not None:
            named["z"] = np.ascontiguousarray(z, dtype="<f4")
        if seeds is not None:
            named["seed"] = np.ascontiguousarray(seeds, dtype="<i8").reshape(-1)
        if indices is not None:
            named["index"] = np.ascontiguousarray(indices, dtype="<i8").reshape(-1)
        if labels is not None:
            array = np.asarray(labels)
            kind = "<f4" if array.ndim == 2 else "<i8"
            named["label"] = np.ascontiguousarray(array, dtype=kind)
        if not named or ("seed" not in named and "z" not in named):
            raise ValueError("seeds (or z) must be given")
        rows = len(next(iter(named.values())))
        chunk = max(1, min(rows, self.max_count(model)))
        parts: list[tuple[dict[str, Any], dict[str, np.ndarray], str]] = []
        for start in range(0, max(rows, 1), chunk):
            part = {name: array[start : start + chunk] for name, array in named.items()}
            parts.append(self._infer(model, part))
        head = parts[0][0]
        label_parts = [p[1].get("label") for p in parts]
        return Rows(
            model=head["model_name"],
            model_version=head.get("model_version", ""),
            images=np.concatenate([p[1]["image"] for p in parts]),
            labels=None if label_parts[0] is None else np.concatenate(label_parts),
            request_ids=[p[2] for p in parts],
        )

    def _infer(
        self, model: str, inputs: dict[str, np.ndarray]
    ) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
        """One binary-extension infer request: (the response's JSON, its outputs by name, request id)."""
        datatype = {"<f4": "FP32", "<i8": "INT64"}
        doc = {
            "inputs": [
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": datatype[array.dtype.str],
                    "parameters": {"binary_data_size": array.nbytes},
                }
                for name, array in inputs.items()
            ],
            "parameters": {"binary_data_output": True},
        }
        head = json.dumps(doc).encode()
        body = b"".join([head, *(array.tobytes() for array in inputs.values())])
        headers = {
            "Inference-Header-Content-Length": str(len(head)),
            "Content-Type": "application/octet-stream",
        }
        response = self._http.post(f"/v2/models/{quote(model, safe='')}/infer", content=body, headers=headers)
        if not response.is_success:
            raise ServerError.from_response(response)
        content = response.content
        length = int(response.headers.get("inference-header-content-length", len(content)))
        answer = json.loads(content[:length])
        outputs, offset = {}, length
        for out in answer["outputs"]:
            dtype = {"UINT8": np.uint8, "INT64": "<i8"}[out["datatype"]]
            if "data" in out:
                outputs[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
                continue
            size = out["parameters"]["binary_data_size"]
            count = int(np.prod(out["shape"]))
            outputs[out["name"]] = np.frombuffer(content, dtype, count, offset).reshape(out["shape"])
            offset += size
        return answer, outputs, response.headers.get("x-request-id", "")

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
