"""Service settings: one typed class read from ``GANSERVE_*`` environment variables (pydantic-settings).

Each field's variable is ``GANSERVE_`` + its name in capitals, except where a field names its variable
itself (``timeout_s`` ← ``GANSERVE_TIMEOUT``). Empty variables count as unset. ``GANSERVE_PROVIDERS`` is a
comma-separated list; ``GANSERVE_API_KEY_FILE`` names a file holding the key when ``GANSERVE_API_KEY`` is
unset (a container secret).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources import PydanticBaseSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

ENV_PREFIX = "GANSERVE_"


class Settings(BaseSettings):
    """Every knob of the service, with its environment variable in docs/operations.md (generated)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    models_dir: Path = Field(Path("models"), description="folder of *.onnx generators")
    max_count: int = Field(256, ge=1, le=65536, description="most images per request")
    max_request_bytes: int = Field(
        256 * 64 * 64 * 4,
        ge=1,
        description="most image bytes (H × W × C per image) per request and per model run: a model's "
        "count limit is the smaller of max_count and this over its image size (16 images at 256×256×4)",
    )
    max_batch_rows: int = Field(256, ge=1, description="most rows in one model run")
    max_queue_rows: int | None = Field(
        None,
        ge=1,
        description="rows waiting per model before requests get 503 "
        "(default: 4 × GANSERVE_MAX_BATCH_ROWS, a few model runs' worth)",
    )
    threads: int = Field(
        0,
        ge=0,
        description="threads per model call on the CPU: its rows run as this many single-threaded "
        "ONNX Runtime calls at once (0: all cores)",
    )
    encode_threads: int = Field(
        0, ge=0, description="threads that deflate the served PNGs (0: all cores; also the offline job's)"
    )
    access_log: bool = Field(False, description="log one line per request (1/0)")
    tracing: bool = Field(False, description="OpenTelemetry spans for /generate (1/0)")
    lean: bool = Field(
        True,
        description="valid /generate and /walk requests skip BentoML's request layer "
        "(1/0; off when the access log or tracing is on, which that layer provides)",
    )
    workers: int = Field(1, ge=1, description="BentoML worker processes")
    timeout_s: float = Field(
        60.0, gt=0, validation_alias="GANSERVE_TIMEOUT", description="seconds before a request answers 504"
    )
    max_concurrency: int = Field(512, ge=1, description="requests in flight (429)")
    max_body_bytes: int = Field(65536, ge=256, description="request body limit (413)")
    api_key: str | None = Field(None, repr=False, description="the API key (or see api_key_file)")
    api_key_file: Path | None = Field(
        None, description="file holding the API key, read when api_key is unset"
    )
    gpus: int | None = Field(None, ge=0, description="GPUs per worker (default: 1 if the host has any)")
    providers: Annotated[list[str] | None, NoDecode] = Field(
        None, description="ONNX Runtime providers, comma-separated"
    )

    @field_validator("providers", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()] or None
        return value

    @model_validator(mode="after")
    def _key_from_file(self) -> Settings:
        if self.api_key is None and self.api_key_file is not None:
            self.api_key = read_key_file(self.api_key_file)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment (``from_env``'s mapping when one is given); no .env files."""
        environ = _ENVIRON.get()
        return (init_settings, env_settings if environ is None else _MappingEnvSource(settings_cls, environ))

    @classmethod
    def env_var(cls, field: str) -> str:
        """The environment variable of ``field``."""
        alias = cls.model_fields[field].validation_alias
        return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: the process environment); ValueError naming each bad variable."""
        try:
            with _environ(env):
                return cls()
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = str(err["loc"][0]) if err["loc"] else ""
                field = next((f for f in cls.model_fields if loc in (f, cls.env_var(f))), None)
                where = f"{cls.env_var(field)} ({field}): " if field else ""
                problems.append(where + str(err["msg"]).removeprefix("Value error, "))
            raise ValueError("; ".join(problems)) from None

    def queue_rows(self, image_bytes: int = 1) -> int:
        """The per-model queue bound in rows (GANSERVE_MAX_QUEUE_ROWS or four model runs of this size)."""
        return self.max_queue_rows or 4 * self.batch_rows(image_bytes)

    def max_images(self, image_bytes: int) -> int:
        """The most images of ``image_bytes`` bytes each that one request may ask for (at least 1)."""
        return max(1, min(self.max_count, self.max_request_bytes // image_bytes))

    def batch_rows(self, image_bytes: int) -> int:
        """The most rows of one model run for images of ``image_bytes`` bytes: memory stays bounded by
        GANSERVE_MAX_REQUEST_BYTES whatever the image size."""
        return max(1, min(self.max_batch_rows, self.max_request_bytes // image_bytes))

    def gpu_resources(self) -> dict[str, int]:
        """BentoML resources: one GPU per worker when the host has NVIDIA devices (BentoML then sets
        CUDA_VISIBLE_DEVICES per worker); none on CPU hosts."""
        gpus = self.gpus if self.gpus is not None else int(any(Path("/dev").glob("nvidia[0-9]*")))
        return {"gpu": gpus} if gpus else {}


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ganserve_settings_environ", default=None)


@contextmanager
def _environ(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(env)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, parsing a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


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
