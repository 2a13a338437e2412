"""Service settings, read once from environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """Every knob of the service; each comes from the environment variable named in its description."""

    models_dir: Path = Field(Path("models"), description="GANSERVE_MODELS_DIR: folder of *.onnx generators")
    max_count: int = Field(256, ge=1, le=65536, description="GANSERVE_MAX_COUNT: most images per request")
    max_batch_rows: int = Field(256, ge=1, description="GANSERVE_MAX_BATCH_ROWS: most rows in one model run")
    max_queue_rows: int | None = Field(
        None,
        ge=1,
        description="GANSERVE_MAX_QUEUE_ROWS: rows waiting per model before requests get 503 "
        "(default: 4 × GANSERVE_MAX_BATCH_ROWS, a few model runs' worth)",
    )
    threads: int = Field(
        0, ge=0, description="GANSERVE_THREADS: ONNX Runtime intra-op threads (0: all cores)"
    )
    access_log: bool = Field(False, description="GANSERVE_ACCESS_LOG: log one line per request (1/0)")
    tracing: bool = Field(False, description="GANSERVE_TRACING: OpenTelemetry spans for /generate (1/0)")
    lean: bool = Field(
        True,
        description="GANSERVE_LEAN: valid /generate and /walk requests skip BentoML's request layer "
        "(1/0; off when the access log or tracing is on, which that layer provides)",
    )
    workers: int = Field(1, ge=1, description="GANSERVE_WORKERS: BentoML worker processes")
    timeout_s: float = Field(60.0, gt=0, description="GANSERVE_TIMEOUT: seconds before a request answers 504")
    max_concurrency: int = Field(512, ge=1, description="GANSERVE_MAX_CONCURRENCY: requests in flight (429)")
    max_body_bytes: int = Field(
        65536, ge=256, description="GANSERVE_MAX_BODY_BYTES: request body limit (413)"
    )
    api_key: str | None = Field(
        None, description="GANSERVE_API_KEY, or a file named by GANSERVE_API_KEY_FILE"
    )
    gpus: int | None = Field(None, ge=0, description="GANSERVE_GPUS: GPUs per worker (default: 1 if any)")
    providers: list[str] | None = Field(None, description="GANSERVE_PROVIDERS: comma-separated ORT providers")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        names = {
            "models_dir": "GANSERVE_MODELS_DIR",
            "max_count": "GANSERVE_MAX_COUNT",
            "max_batch_rows": "GANSERVE_MAX_BATCH_ROWS",
            "max_queue_rows": "GANSERVE_MAX_QUEUE_ROWS",
            "threads": "GANSERVE_THREADS",
            "workers": "GANSERVE_WORKERS",
            "access_log": "GANSERVE_ACCESS_LOG",
            "tracing": "GANSERVE_TRACING",
            "lean": "GANSERVE_LEAN",
            "timeout_s": "GANSERVE_TIMEOUT",
            "max_concurrency": "GANSERVE_MAX_CONCURRENCY",
            "max_body_bytes": "GANSERVE_MAX_BODY_BYTES",
            "api_key": "GANSERVE_API_KEY",
            "gpus": "GANSERVE_GPUS",
        }
        values: dict[str, object] = {k: env[v] for k, v in names.items() if env.get(v)}
        key_file = env.get("GANSERVE_API_KEY_FILE")
        if key_file and "api_key" not in values:
            values["api_key"] = read_key_file(Path(key_file))
        if env.get("GANSERVE_PROVIDERS"):
            values["providers"] = [p.strip() for p in env["GANSERVE_PROVIDERS"].split(",") if p.strip()]
        return cls.model_validate(values)

    def queue_rows(self) -> int:
        """The per-model queue bound in rows (GANSERVE_MAX_QUEUE_ROWS or its default)."""
        return self.max_queue_rows or 4 * self.max_batch_rows

    def gpu_resources(self) -> dict[str, int]:
        """BentoML resources: one GPU per worker when the host has NVIDIA devices (BentoML then sets
        CUDA_VISIBLE_DEVICES per worker); none on CPU hosts."""
        gpus = self.gpus if self.gpus is not None else int(any(Path("/dev").glob("nvidia[0-9]*")))
        return {"gpu": gpus} if gpus else {}


def read_key_file(path: Path) -> str:
    """The API key in ``path`` (surrounding whitespace dropped); an unreadable or empty file is an error,
    never a silently open service."""
    try:
        key = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"GANSERVE_API_KEY_FILE: cannot read the API key file {path} ({reason})") from exc
    if not key:
        raise ValueError(f"GANSERVE_API_KEY_FILE: the API key file {path} is empty")
    return key
