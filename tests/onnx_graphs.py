"""Hand-built ONNX graphs that meet the generator contract but misbehave on purpose (test-only).

Each is a valid generator as far as start-up validation can tell (inputs, output, metadata, warm-up at batch
sizes 1 and 16 all pass); the misbehaviour shows only at request time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LATENT = 4
SHAPE = [1, 4, 4]  # [C, H, W]
SIDE = 128  # the slow model multiplies SIDE×SIDE matrices


def _metadata() -> dict[str, str]:
    return {
        "recipe": "test", "objective": "none", "conditional": "false", "latent_dim": str(LATENT),
        "num_classes": "0", "class_names": "[]", "image_shape": json.dumps(SHAPE), "dataset": "none",
        "steps": "0", "seed": "0", "training_seconds": "0", "version": "test", "config": "{}",
    }  # fmt: skip


def _image_nodes() -> tuple[list, list]:
    """z [N, LATENT] → 'img' [N, 1, 4, 4] in [-1, 1]: a fixed linear map and tanh."""
    weight = np.random.default_rng(0).standard_normal((LATENT, 16)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.array([-1, *SHAPE], dtype=np.int64), "img_shape"),
    ]
    nodes = [
        helper.make_node("MatMul", ["z", "w"], ["zw"]),
        helper.make_node("Tanh", ["zw"], ["t"]),
        helper.make_node("Reshape", ["t", "img_shape"], ["img"]),
    ]
    return nodes, inits


def _save(nodes: list, inits: list, path: Path, name: str) -> Path:
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", LATENT])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *SHAPE])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, _metadata())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _batch_size_nodes() -> tuple[list, list]:
    """'n' int64 [1]: the batch size N, read at run time."""
    return [helper.make_node("Shape", ["z"], ["n"], start=0, end=1)], []


def failing_model(path: Path, max_batch: int = 16) -> Path:
    """A generator that fails in ONNX Runtime for batches larger than ``max_batch``.

    It gathers element N-1 of a table of ``max_batch`` zeros and adds it to the image: an index out of range
    is a run-time error, so it passes warm-up (batches 1 and 16) and fails for a request of 17 images.
    """
    img_nodes, inits = _image_nodes()
    size_nodes, _ = _batch_size_nodes()
    inits += [
        numpy_helper.from_array(np.zeros(max_batch, dtype=np.float32), "table"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
    ]
    nodes = [
        *img_nodes,
        *size_nodes,
        helper.make_node("Sub", ["n", "one"], ["last"]),
        helper.make_node("Gather", ["table", "last"], ["g"], axis=0),
        helper.make_node("Add", ["img", "g"], ["image"]),
    ]
    return _save(nodes, inits, path, "failing")


def slow_model(path: Path, rounds_per_image: int = 40) -> Path:
    """A generator whose run time grows with the batch: N·rounds_per_image SIDE×SIDE matrix products.

    The products run in a Loop whose trip count is only known at run time, so nothing is folded away; their
    result is multiplied by zero before it touches the image, so the output stays in [-1, 1].
    """
    img_nodes, inits = _image_nodes()
    size_nodes, _ = _batch_size_nodes()
    rng = np.random.default_rng(1)
    inits += [
        numpy_helper.from_array((rng.standard_normal((SIDE, SIDE)) / SIDE).astype(np.float32), "b"),
        numpy_helper.from_array(np.eye(SIDE, dtype=np.float32), "a0"),
        numpy_helper.from_array(np.array([rounds_per_image], dtype=np.int64), "rounds"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array(True), "cond"),
    ]
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["a_in", "b"], ["ab"]),
            helper.make_node("Tanh", ["ab"], ["a_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("a_in", TensorProto.FLOAT, [SIDE, SIDE]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("a_out", TensorProto.FLOAT, [SIDE, SIDE]),
        ],
    )
    nodes = [
        *img_nodes,
        *size_nodes,
        helper.make_node("Mul", ["n", "rounds"], ["trips1"]),
        helper.make_node("Squeeze", ["trips1"], ["trips"]),
        helper.make_node("Loop", ["trips", "cond", "a0"], ["a_final"], body=body),
        helper.make_node("ReduceMean", ["a_final"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["nothing"]),
        helper.make_node("Add", ["img", "nothing"], ["image"]),
    ]
    return _save(nodes, inits, path, "slow")


def foreign_model(path: Path) -> Path:
    """A valid ONNX file that is not a generator: one Identity node, no metadata."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
