"""The BentoML service: ``POST /generate`` and ``POST /models`` over ONNX Runtime generators.

Start it from the repository root with ``bentoml serve`` (bentofile.yaml names this class).
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import bentoml
import numpy as np
from starlette.responses import JSONResponse, Response

from gancore import __version__
from gancore.contract import (
    CONTRACT_VERSION,
    LabelError,
    image_indices,
    inputs_for,
    resolve_label,
    to_uint8,
)
from gancore.generator import GeneratorModel, ModelInfo, ModelLoadError, check_models, load_models
from gancore.imaging import encode_grid, set_encode_threads
from gancore.providers import CUDA, choose_providers
from service import guards, image_urls
from service.accel import buckets, padded_run
from service.batching import Batcher, BatchStats, QueueFull
from service.encoders import images_json, npy_bytes
from service.lean import LeanRoutes
from service.metrics import (
    BATCH_REQUESTS,
    BATCH_ROWS,
    IMAGES_GENERATED,
    MODEL_RUN,
    QUEUE_REFUSED,
    QUEUE_WAIT,
    QUEUED_ROWS,
    observe_lean,
)
from service.openapi import OpenApiMiddleware
from service.schemas import ModelsRequest, error, generate_request
from service.settings import Settings
from service.timing import StageTimer
from service.ui_app import ui_app
from service.v2.routes import V2Routes
from service.walk import WalkRequest, walk_inputs

log = logging.getLogger("ganserve.service")
try:
    SETTINGS = Settings.from_env()  # read at import: the request schema carries the configured limits
except ValueError as exc:  # pydantic's ValidationError too; the message names the variable
    raise SystemExit(f"ganserve: bad settings: {exc}") from None
try:
    # `bentoml serve` imports this module before it starts workers: a bad models folder stops it here,
    # with the file and the problem, instead of workers failing and restarting in a loop.
    MODEL_NAMES = [info.name for info in check_models(SETTINGS.models_dir)]
except ModelLoadError as exc:
    raise SystemExit(f"ganserve: cannot start: {exc}") from None

# The hot routes skip BentoML's request layer when the request is valid (service/lean.py).
LEAN = LeanRoutes(server_header="BentoML Service/ganserve", on_answer=observe_lean)


GenerateRequest = generate_request(SETTINGS.max_count)


@bentoml.asgi_app(ui_app(), path="/ui")
@bentoml.service(
    name="ganserve",
    workers=SETTINGS.workers,
    resources=SETTINGS.gpu_resources(),
    # max_concurrency is enforced by service.guards (a 429 that names the limit), not by BentoML.
    traffic={"timeout": SETTINGS.timeout_s},
    # Per-request work nobody reads by default: an access-log line and a tracing span cost about a fifth of
    # BentoML's CPU per request (docs/design/lean-path.md); GANSERVE_ACCESS_LOG/_TRACING=1 restore them.
    logging={"access": {"enabled": SETTINGS.access_log}},
    tracing={} if SETTINGS.tracing else {"excluded_urls": ["/generate", image_urls.MOUNT]},
)
class GanService:
    """Serves every generator of the models folder with batched, reproducible sampling."""

    def __init__(self) -> None:
        self.settings = SETTINGS
        _enable_logging()
        set_encode_threads(SETTINGS.encode_threads)
        # One model thread: runs of different models would only fight over the same cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort")
        choice = choose_providers(SETTINGS.providers, ort_providers())
        log.info(choice.log_line())
        self.models: dict[str, GeneratorModel] = load_models(
            SETTINGS.models_dir, choice.providers, SETTINGS.threads or None
        )
        self.batchers: dict[str, Batcher] = {}
        for name, model in self.models.items():
            rows = SETTINGS.batch_rows(image_bytes(model.info))  # bounded by GANSERVE_MAX_REQUEST_BYTES
            # On a GPU every bucket is warmed up now, so no request pays for a first-shape algorithm search.
            model.warm_up(buckets(rows) if model.provider == CUDA else (1, min(16, rows)))
            self.batchers[name] = Batcher(
                self._runner(model, rows),
                self._executor,
                rows,
                on_run=self._observer(name),
                max_queue_rows=SETTINGS.queue_rows(image_bytes(model.info)),
                on_queue=QUEUED_ROWS.labels(model=name).set,
            )
            QUEUED_ROWS.labels(model=name).set(0)
            log.info("model %s ready on %s", name, model.provider)
        if SETTINGS.lean and not (SETTINGS.access_log or SETTINGS.tracing):
            LEAN.register("POST", "/generate", GenerateRequest, self.answer_generate)
            LEAN.register("POST", "/walk", WalkRequest, self.answer_walk)
        self._ready = True

    def __is_ready__(self) -> bool:
        return getattr(self, "_ready", False)

    @staticmethod
    def _runner(model: GeneratorModel, rows: int):
        raw = model.run
        if model.provider == CUDA:  # fixed batch shapes on the GPU (service/accel.py)
            raw = padded_run(raw, buckets(rows))

        def run(z: np.ndarray, label: np.ndarray | None) -> np.ndarray:
            return to_uint8(raw(z, label))  # contiguous NHWC: npy and PNG rows use its buffer as it is

        return run

    @staticmethod
    def _observer(name: str):
        images, rows, requests = (
            m.labels(model=name) for m in (IMAGES_GENERATED, BATCH_ROWS, BATCH_REQUESTS)
        )
        wait, run = QUEUE_WAIT.labels(model=name), MODEL_RUN.labels(model=name)

        def observe(stats: BatchStats) -> None:
            images.inc(stats.rows)
            rows.observe(stats.rows)
            requests.observe(stats.requests)
            run.observe(stats.run_seconds)
            for seconds in stats.queue_waits:
                wait.observe(seconds)

        return observe

    @bentoml.api(route="/generate", input_spec=GenerateRequest)
    async def generate(self, **params: Any) -> Annotated[bytes, bentoml.validators.ContentType("image/png")]:
        """Generate ``count`` images of ``model`` from ``seed``.

        Image i depends on (model, seed, i, label) alone, whatever else shares its batch.
        """
        return await self.answer_generate(GenerateRequest.model_construct(**params))

    async def answer_generate(self, req: GenerateRequest) -> Response:
        """The answer to a validated ``POST /generate`` (BentoML's route and the lean path both call this)."""
        timer = StageTimer()
        request_id = guards.new_request_id()
        model = self.models.get(req.model)
        if model is None:
            return self._unknown_model(req.model, request_id)
        info = model.info
        too_many = self._over_budget(info, req.count, "count", request_id)
        if too_many is not None:
            return too_many
        try:
            label = resolve_label(req.label, info.num_classes, info.class_names)
        except LabelError as exc:
            return error(400, str(exc), "label", request_id)
        seed = secrets.randbits(63) if req.seed is None else req.seed
        indices = image_indices(req.start, req.count)
        z, rows, classes = inputs_for(seed, indices, info.latent_dim, info.num_classes, label)
        timer.mark("noise")
        images = await self.run_model(req.model, z, rows, request_id)
        if isinstance(images, Response):
            return images
        timer.mark("model")  # queue wait + the (merged) model run + conversion to uint8
        headers = {"X-Request-ID": request_id, "X-Seed": str(seed), "X-Model": req.model}
        if req.format == "npy":
            npy = Response(npy_bytes(images), media_type="application/octet-stream", headers=headers)
            return _timed(npy, timer)
        if req.format == "grid":
            png = await encode_grid(images)
            return _timed(Response(png, media_type="image/png", headers=headers), timer)
        body = {
            "model": req.model,
            "seed": seed,
            "indices": list(range(req.start, req.start + req.count)),
            **await images_json(images, classes, info),
        }
        return _timed(JSONResponse(body, headers=headers), timer)

    @bentoml.api(route="/walk", input_spec=WalkRequest)
    async def walk(self, **params: Any) -> Annotated[bytes, bentoml.validators.ContentType("image/png")]:
        """A latent walk: ``steps`` frames from image ``index`` of seed_a/label_a to seed_b/label_b.

        z is interpolated spherically, labels linearly; the first and last frames equal the seeds' own images.
        """
        return await self.answer_walk(WalkRequest.model_construct(**params))

    async def answer_walk(self, req: WalkRequest) -> Response:
        """The answer to a validated ``POST /walk`` (BentoML's route and the lean path both call this)."""
        request_id = guards.new_request_id()
        model = self.models.get(req.model)
        if model is None:
            return self._unknown_model(req.model, request_id)
        info = model.info
        too_many = self._over_budget(info, req.steps, "steps", request_id)
        if too_many is not None:
            return too_many
        labels = {}
        for name in ("label_a", "label_b"):
            try:
                labels[name] = resolve_label(getattr(req, name), info.num_classes, info.class_names)
            except LabelError as exc:
                return error(400, f"{name}{str(exc).removeprefix('label')}", name, request_id)
        inputs = walk_inputs(
            req.seed_a, req.seed_b, req.steps, info.latent_dim, info.num_classes, **labels, index=req.index
        )
        images = await self.run_model(req.model, inputs.z, inputs.label, request_id)
        if isinstance(images, Response):
            return images
        headers = {"X-Request-ID": request_id, "X-Model": req.model}
        if req.format == "grid":
            png = await encode_grid(images, columns=len(images))
            return Response(png, media_type="image/png", headers=headers)
        body = {
            "model": req.model,
            "seed_a": req.seed_a,
            "seed_b": req.seed_b,
            "index": req.index,
            "t": inputs.t.tolist(),
            **await images_json(images, inputs.classes, info),
        }
        return JSONResponse(body, headers=headers)

    def _over_budget(self, info: ModelInfo, count: int, field: str, request_id: str) -> JSONResponse | None:
        """A 400 naming the limit and the largest count that fits, when ``count`` images of this model pass
        the per-request byte budget (None when they fit)."""
        fits = SETTINGS.max_images(image_bytes(info))
        if count <= fits:
            return None
        c, h, w = info.image_shape
        message = (
            f"{field}: {count} images of {h}×{w}×{c} pass this server's budget of "
            f"{SETTINGS.max_request_bytes} image bytes per request (GANSERVE_MAX_REQUEST_BYTES); at most "
            f"{fits} fit"
        )
        body = {"error": message, "field": field, "limit": fits, "request_id": request_id}
        return JSONResponse(body, status_code=400, headers={"X-Request-ID": request_id})

    def _unknown_model(self, name: str, request_id: str) -> JSONResponse:
        known = ", ".join(sorted(self.models))
        return error(404, f"model: unknown model {name!r}; available: {known}", "model", request_id)

    async def run_model(
        self, name: str, z: np.ndarray, label: np.ndarray | None, request_id: str
    ) -> np.ndarray | JSONResponse:
        """The uint8 images for these inputs (merged with other requests), or a 500 naming the request."""
        try:
            return await self.batchers[name].submit(z, label)
        except QueueFull as exc:
            QUEUE_REFUSED.labels(model=name).inc()
            body = {
                "error": f"model {name} is saturated: {exc.queued} rows are waiting and this request "
                f"adds {exc.rows}; the limit is {exc.limit} rows per model (GANSERVE_MAX_QUEUE_ROWS); "
                "retry shortly",
                "limit": exc.limit,
                "request_id": request_id,
            }
            return JSONResponse(body, 503, headers={"X-Request-ID": request_id, "Retry-After": "1"})
        except Exception:
            log.exception("request %s: model %s failed", request_id, name)
            return error(500, "model run failed; see the server log for this request id", None, request_id)

    @bentoml.api(route="/models", input_spec=ModelsRequest)
    async def list_models(self) -> dict[str, Any]:
        """Every served model with its metadata, the provider really in use and its quality figures."""
        return {
            "models": [
                {**m.info.public(), "max_count": SETTINGS.max_images(image_bytes(m.info))}
                for m in self.models.values()
            ],
            "max_count": self.settings.max_count,
            "contract_version": CONTRACT_VERSION,  # what seed → image means (docs/design/noise-contract.md)
        }


# Outermost first: the API key, the body size and concurrency guards, then the corrected OpenAPI document.
guards.install(
    GanService,
    api_key=SETTINGS.api_key,
    max_body_bytes=SETTINGS.max_body_bytes,
    max_concurrency=SETTINGS.max_concurrency,
    workers=SETTINGS.workers,
)
GanService.add_asgi_middleware(
    OpenApiMiddleware, spec=lambda: GanService.openapi_spec.asdict(), model_names=MODEL_NAMES
)
GanService.add_asgi_middleware(image_urls.ImageRoutes, service=bentoml.get_current_service)
GanService.add_asgi_middleware(
    V2Routes,
    service=bentoml.get_current_service,
    max_rows=lambda info: SETTINGS.max_images(image_bytes(info)),
    server_version=__version__,
    on_answer=observe_lean,
)
GanService.add_asgi_middleware(LEAN.middleware)  # innermost: under every guard and the timeout


def _enable_logging() -> None:
    """Let this project's INFO lines through in a worker.

    BentoML's server logging config (``logging.config.dictConfig``) disables every logger that existed
    before it ran — ours are created at import — and leaves the root at WARNING.
    """
    logging.getLogger("ganserve").setLevel(logging.INFO)
    for name, logger in logging.root.manager.loggerDict.items():
        if name.split(".")[0] == "ganserve" and isinstance(logger, logging.Logger):
            logger.disabled = False


def image_bytes(info: ModelInfo) -> int:
    """Bytes of one uint8 image of the model (C × H × W): what the request budget counts."""
    c, h, w = info.image_shape
    return c * h * w


def ort_providers() -> list[str]:
    import onnxruntime

    return onnxruntime.get_available_providers()


def _timed(response: Response, timer: StageTimer) -> Response:
    """Close the encoding stage and send the stage timings in a Server-Timing header."""
    timer.mark("encode")
    response.headers["Server-Timing"] = timer.header()
    return response
