"""The reproducibility contract between training's export and the service, in one torch-free package.

Same model file, seed, index and label → same image bytes, whatever else is in the batch and whichever
process draws it. Its parts, one module each:

- ``version``: ``CONTRACT_VERSION``, what a change of it means.
- ``tensors``: the graph's tensor names, dtypes and shapes; supported image sizes and channels.
- ``metadata``: ``ModelMetadata``, the typed ``metadata_props`` schema (export writes it, the service
  reads it).
- ``noise``: z and drawn labels as pure functions of (seed, index), for one seed or a seed per row.
- ``inputs``: a request's label → model inputs; ``generate`` (inputs → run → uint8).
- ``pixels``: float → uint8.

Training and the service both import it (from ``gancore``, which imports neither of them nor torch).
"""

from gancore.contract.inputs import LabelError, generate, inputs_for, one_hot, resolve_label
from gancore.contract.metadata import MetadataError, ModelMetadata
from gancore.contract.noise import (
    MAX_SEED,
    drawn_labels,
    drawn_labels_rows,
    image_indices,
    latent,
    latent_rows,
)
from gancore.contract.pixels import to_uint8
from gancore.contract.session import session_metadata
from gancore.contract.tensors import (
    IMAGE,
    LABEL,
    SUPPORTED_CHANNELS,
    SUPPORTED_IMAGE_SIZES,
    TensorSpec,
    Z,
    feeds,
    input_names,
    signature_problems,
)
from gancore.contract.version import CONTRACT_VERSION

__all__ = [
    "CONTRACT_VERSION",
    "IMAGE",
    "LABEL",
    "MAX_SEED",
    "SUPPORTED_CHANNELS",
    "SUPPORTED_IMAGE_SIZES",
    "Z",
    "LabelError",
    "MetadataError",
    "ModelMetadata",
    "TensorSpec",
    "drawn_labels",
    "drawn_labels_rows",
    "feeds",
    "generate",
    "image_indices",
    "input_names",
    "inputs_for",
    "latent",
    "latent_rows",
    "one_hot",
    "resolve_label",
    "session_metadata",
    "signature_problems",
    "to_uint8",
]
