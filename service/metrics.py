"""The service's own Prometheus metrics (BentoML's request series come on top), served at ``/metrics``.

Reading them: docs/operations.md ("Health and metrics"): time waiting for the model against time in it, and
the backlog.
"""

from __future__ import annotations

from typing import Any

import bentoml

IMAGES_GENERATED = bentoml.metrics.Counter(
    name="ganserve_images_generated",
    documentation="Images generated, per model",
    labelnames=["model"],
)
BATCH_ROWS = bentoml.metrics.Histogram(
    name="ganserve_batch_rows",
    documentation="Rows (images) per ONNX Runtime run, per model",
    labelnames=["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
BATCH_REQUESTS = bentoml.metrics.Histogram(
    name="ganserve_batch_requests",
    documentation="Requests merged into one ONNX Runtime run, per model",
    labelnames=["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
# Saturation (docs/operations.md): time waiting for the model vs time in it, and the backlog.
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUEUE_WAIT = bentoml.metrics.Histogram(
    name="ganserve_queue_wait_seconds",
    documentation="Seconds a request waited in its model's queue before its run started, per model",
    labelnames=["model"],
    buckets=(0.0001, 0.00025, *_SECONDS),
)
MODEL_RUN = bentoml.metrics.Histogram(
    name="ganserve_model_run_seconds",
    documentation="Seconds of one (merged) ONNX Runtime run including conversion to uint8, per model",
    labelnames=["model"],
    buckets=_SECONDS,
)
QUEUED_ROWS = bentoml.metrics.Gauge(
    name="ganserve_queued_rows",
    documentation="Rows (images) waiting for a model run, per model (limit: GANSERVE_MAX_QUEUE_ROWS)",
    labelnames=["model"],
    multiprocess_mode="livesum",  # summed over the live worker processes
)
QUEUE_REFUSED = bentoml.metrics.Counter(
    name="ganserve_queue_full_refusals",
    documentation="Requests answered 503 because their model's queue was full, per model",
    labelnames=["model"],
)
LEAN_REQUESTS = bentoml.metrics.Histogram(
    name="ganserve_lean_request_seconds",
    documentation="Requests answered on the lean path and the Open Inference Protocol routes (BentoML's "
    "request series count them too), seconds from the body's arrival to the last byte sent",
    labelnames=["endpoint", "http_response_code"],
    buckets=_SECONDS,
)


def observe_lean(path: str, status: int, seconds: float) -> None:
    child = _LEAN_CHILDREN.get((path, status))
    if child is None:  # labels() hashes and sorts its arguments on every call: look each pair up once
        child = _LEAN_CHILDREN[(path, status)] = LEAN_REQUESTS.labels(
            endpoint=path, http_response_code=str(status)
        )
    child.observe(seconds)


_LEAN_CHILDREN: dict[tuple[str, int], Any] = {}
