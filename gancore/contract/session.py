"""A loaded generator checked against the contract: its metadata and its tensors' signature.

Takes any object shaped like ``onnxruntime.InferenceSession`` (duck-typed), so the contract itself never
imports ONNX Runtime; the service's registry and training's evaluation loader both check files through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gancore.contract.metadata import MetadataError, ModelMetadata
from gancore.contract.tensors import TensorSpec, signature_problems


class _NodeArg(Protocol):
    name: str
    type: str
    shape: Sequence[Any]


class Session(Protocol):
    """The parts of ``onnxruntime.InferenceSession`` the check reads."""

    def get_modelmeta(self) -> Any: ...
    def get_inputs(self) -> Sequence[_NodeArg]: ...
    def get_outputs(self) -> Sequence[_NodeArg]: ...


def _specs(args: Sequence[_NodeArg]) -> Mapping[str, TensorSpec]:
    return {a.name: TensorSpec(a.type, a.shape) for a in args}


def session_metadata(session: Session) -> ModelMetadata:
    """The session's metadata, validated, with its inputs and output checked against it.

    Raises :class:`MetadataError` naming the key, or the first signature problem.
    """
    meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map)
    problems = signature_problems(
        _specs(session.get_inputs()),
        _specs(session.get_outputs()),
        meta.latent_dim,
        meta.num_classes,
        meta.image_shape,
    )
    if problems:
        raise MetadataError(problems[0])
    return meta
