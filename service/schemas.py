"""The JSON request bodies of ``POST /generate`` and ``POST /models``, and the error body every route answers.

BentoML validates with these classes and documents them in the OpenAPI document; the lean path validates with
the very same classes, so a body is valid on one path exactly when it is on the other.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.responses import JSONResponse

from gancore.contract import MAX_SEED


def generate_request(max_count: int) -> type[BaseModel]:
    """The body of ``POST /generate`` with this server's count limit (in the schema and the document)."""

    class GenerateRequest(BaseModel):
        """Body of ``POST /generate``."""

        model_config = ConfigDict(extra="forbid")

        model: str = Field(min_length=1, max_length=128, description="Model name (see POST /models)")
        count: StrictInt = Field(1, ge=1, le=max_count, description="Number of images")
        seed: StrictInt | None = Field(
            None, ge=0, le=MAX_SEED, description="Noise seed; drawn and returned when omitted"
        )
        start: StrictInt = Field(
            0, ge=0, le=2**62, description="Index of the first image (images start … start+count-1)"
        )
        label: StrictInt | StrictStr | list[float] | None = Field(
            None,
            description="Class index, class name, or a one-hot list of num_classes numbers (conditional "
            "models only); omitted: each image's label is drawn from the seed",
        )
        format: Literal["png", "grid", "npy"] = Field(
            "png",
            description="png: JSON with base64 PNGs; grid: one image/png; npy: uint8 [N, H, W, C] as .npy",
        )

    return GenerateRequest


class ModelsRequest(BaseModel):
    """Body of ``POST /models`` (empty)."""

    model_config = ConfigDict(extra="forbid")


def error(status: int, message: str, field: str | None, request_id: str) -> JSONResponse:
    body: dict[str, Any] = {"error": message, "request_id": request_id}
    if field:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers={"X-Request-ID": request_id})
