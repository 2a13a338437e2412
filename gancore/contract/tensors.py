"""The generator graph's signature: tensor names, dtypes, shapes, and the image sizes and channels supported.

Inputs ``z`` float32 [N, latent_dim] and, for conditional models only, ``label`` float32 [N, num_classes]
(one-hot rows; soft mixtures allowed); output ``image`` float32 [N, C, H, W] in [-1, 1]; N dynamic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z = "z"
LABEL = "label"
IMAGE = "image"
FLOAT = "tensor(float)"  # ONNX Runtime's name for float32 tensors

# What the trainer builds; a service serves any H×W a graph declares.
SUPPORTED_IMAGE_SIZES = (16, 32, 64, 128, 256)
SUPPORTED_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def input_names(conditional: bool) -> list[str]:
    """The graph's input names, in order."""
    return [Z, LABEL] if conditional else [Z]


def feeds(z, label=None) -> dict:
    """The feed dict for one run: ``z`` and, when given, the label rows."""
    return {Z: z} if label is None else {Z: z, LABEL: label}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output as ONNX Runtime describes it (dims: ints, or None/str when symbolic)."""

    type: str
    shape: Sequence[int | str | None]


def signature_problems(
    inputs: Mapping[str, TensorSpec],
    outputs: Mapping[str, TensorSpec],
    latent_dim: int,
    num_classes: int,
    image_shape: Sequence[int],
) -> list[str]:
    """What keeps a graph with these inputs and outputs from being a generator for this metadata (empty: ok).

    ``num_classes`` 0 means unconditional.
    """
    want = input_names(num_classes > 0)
    if sorted(inputs) != sorted(want):
        return [f"inputs {sorted(inputs)} != contract {want}"]
    if IMAGE not in outputs:
        return [f"no output named {IMAGE!r} (has {sorted(outputs)})"]
    z, image = inputs[Z], outputs[IMAGE]
    checks = [
        (z.type == FLOAT, f"input {Z} must be float32"),
        (list(z.shape[1:]) == [latent_dim], f"input {Z} must be [N, {latent_dim}]"),
        (image.type == FLOAT, f"output {IMAGE} must be float32"),
        (
            list(image.shape[1:]) in (list(image_shape), [None] * 3),
            f"output {IMAGE} must be [N, {list(image_shape)}]",
        ),
    ]
    if num_classes:
        label = inputs[LABEL]
        checks += [
            (label.type == FLOAT, f"input {LABEL} must be float32"),
            (list(label.shape[1:]) == [num_classes], f"input {LABEL} must be [N, {num_classes}]"),
        ]
    return [problem for ok, problem in checks if not ok]
