"""The generator's metadata schema: what an exported ONNX file says about itself in ``metadata_props``.

ONNX metadata values are strings; lists and booleans are stored as JSON, numbers as their decimal text.
``ModelMetadata.to_props`` writes that form and ``ModelMetadata.from_props`` reads and validates it, so the
exporter and the service cannot disagree about a key or its encoding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gancore.contract.tensors import SUPPORTED_CHANNELS
from gancore.contract.version import CONTRACT_VERSION

# Files exported before the contract version existed were made with version 1's derivation (the only one).
_LEGACY_CONTRACT_VERSION = 1
_JSON_KEYS = ("conditional", "class_names", "image_shape")


class MetadataError(ValueError):
    """Metadata that is missing, malformed or inconsistent; the message names the key and the problem."""


class ModelMetadata(BaseModel):
    """Every metadata key of a ganserve generator, typed. Required unless a default is given."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    recipe: str = Field(description="training preset (dcgan, wgan, wgan-gp, cgan)")
    objective: str = Field(description="loss: bce, wasserstein, wasserstein-gp, …")
    conditional: bool = Field(description="whether the graph takes a label input")
    latent_dim: int = Field(ge=1, description="width of z")
    num_classes: int = Field(ge=0, description="label width; 0 for unconditional models")
    class_names: list[str] = Field(description="one name per class (empty when unconditional)")
    image_shape: list[int] = Field(description="[C, H, W] of one output image")
    dataset: str = Field(description="training data set")
    steps: int = Field(ge=0, description="generator steps the weights took")
    seed: int = Field(description="training seed")
    training_seconds: float = Field(ge=0, description="wall-clock training time")
    version: str = Field(description="ganserve version that exported the file")
    contract_version: int = Field(
        _LEGACY_CONTRACT_VERSION, description="the sampling contract the model's images are defined by"
    )
    truncation: float = Field(1.0, gt=0.0, le=1.0, description="ψ: the graph samples G(ψ·z)")
    training_cpu_seconds: float | None = Field(None, description="CPU time of the training run")
    config: str | None = Field(None, description="the full training config as JSON")

    @model_validator(mode="after")
    def _consistent(self) -> ModelMetadata:
        shape = self.image_shape
        if len(shape) != 3 or shape[0] not in SUPPORTED_CHANNELS or min(shape) < 1:
            channels = ", ".join(map(str, SUPPORTED_CHANNELS))
            raise ValueError(f"image_shape must be [C, H, W] with C in {channels}, got {shape}")
        if self.conditional:
            if self.num_classes < 1:
                raise ValueError("a conditional model needs num_classes > 0")
            if len(self.class_names) != self.num_classes:
                raise ValueError("class_names must list num_classes names")
        elif self.num_classes or self.class_names:
            # an unconditional graph takes no label whatever the file says: normalise, don't trust
            object.__setattr__(self, "num_classes", 0)
            object.__setattr__(self, "class_names", [])
        return self

    @classmethod
    def required_keys(cls) -> list[str]:
        return [name for name, f in cls.model_fields.items() if f.is_required()]

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ModelMetadata:
        """Parse and validate ONNX ``metadata_props``; MetadataError names what is wrong.

        A file that names a contract version other than this one is refused: its images would differ.
        """
        missing = [k for k in cls.required_keys() if k not in props]
        if missing:
            raise MetadataError(f"not a ganserve generator: metadata lacks {', '.join(missing)}")
        values: dict[str, Any] = {k: v for k, v in props.items() if k in cls.model_fields}
        for key in _JSON_KEYS:
            try:
                values[key] = json.loads(values[key])
            except ValueError as exc:
                raise MetadataError(f"malformed metadata: {key} is not JSON ({exc})") from exc
        try:
            meta = cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "metadata"
            raise MetadataError(f"malformed metadata: {where}: {first['msg']}") from exc
        if meta.contract_version != CONTRACT_VERSION:
            raise MetadataError(
                f"the model was made for sampling contract version {meta.contract_version}, this ganserve "
                f"implements version {CONTRACT_VERSION} (its images would differ; see "
                "docs/design/noise-contract.md)"
            )
        return meta

    def public(self) -> dict[str, Any]:
        """What a client is shown (``POST /models``): everything but the full training config and CPU time."""
        return self.model_dump(exclude={"training_cpu_seconds", "config"})

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` strings (JSON for lists and booleans; optional keys only when set)."""
        out = {}
        for key, value in self.model_dump(exclude_none=True).items():
            out[key] = (
                json.dumps(value)
                if key in _JSON_KEYS
                else repr(value)
                if isinstance(value, float)
                else str(value)
            )
        return out
