"""The contract package: one place for it, torch-free, the boundary training keeps, the metadata schema."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import onnx
import pytest

from gancore.contract import (
    CONTRACT_VERSION,
    SUPPORTED_CHANNELS,
    SUPPORTED_IMAGE_SIZES,
    MetadataError,
    ModelMetadata,
    TensorSpec,
    signature_problems,
)
from tests.conftest import ROOT


def _imports(path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth of its code (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [
                (node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "service"
            ]
    return found


def _training_sources():
    return sorted((ROOT / "training").rglob("*.py"))


def test_training_imports_nothing_of_the_service_even_inside_functions():
    """What both need lives in gancore; tests/test_layering.py checks the same by importing every module,
    this scan also sees imports inside functions that no import runs."""
    problems = []
    for path in _training_sources():
        for line, module in _imports(path):
            if module.split(".")[0] == "service":
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not problems, problems


def test_the_boundary_scan_sees_function_level_imports(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from service.image_urls import ImageApp\n    import service.walk\n")
    assert [m for _, m in _imports(bad)] == ["service.image_urls", "service.walk"]


def test_the_contract_needs_neither_torch_nor_onnxruntime():
    code = "import sys, gancore.contract; print(sorted({'torch', 'onnxruntime', 'onnx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# A line that spells "z" or "image" for another meaning says so in a comment carrying this phrase.
NOT_A_TENSOR_NAME = "not the ONNX tensor name"


def test_contract_literals_live_only_in_the_contract():
    """Tensor names and the size/channel lists are written once, in gancore/contract/tensors.py."""
    problems = []
    sources = sorted((ROOT / "service").rglob("*.py")) + sorted((ROOT / "gancore").rglob("*.py"))
    for path in sources + _training_sources():
        if "contract" in path.relative_to(ROOT).parts:
            continue
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and node.value in ("z", "image"):
                if NOT_A_TENSOR_NAME in lines[node.lineno - 1]:  # e.g. a JSON field of an input file
                    continue
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
            literal = isinstance(node, ast.Tuple | ast.List) and all(
                isinstance(e, ast.Constant) for e in node.elts
            )
            if literal and tuple(e.value for e in node.elts) in (SUPPORTED_IMAGE_SIZES, SUPPORTED_CHANNELS):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno} a copy of a supported-values list")
    assert not problems, problems


# --- the metadata schema -------------------------------------------------------------------------------


def _meta(**changes) -> ModelMetadata:
    values = dict(
        recipe="cgan", objective="bce", conditional=True, latent_dim=100, num_classes=2,
        class_names=["a", "b"], image_shape=[4, 64, 64], dataset="folder:x", steps=10, seed=3,
        training_seconds=1.5, version="0.1.0",
    )  # fmt: skip
    return ModelMetadata(**{**values, **changes})


def test_metadata_round_trips_through_onnx_props():
    meta = _meta(truncation=0.7, config='{"a": 1}')
    props = meta.to_props()
    assert all(isinstance(v, str) for v in props.values())
    assert props["contract_version"] == str(CONTRACT_VERSION) and props["conditional"] == "true"
    assert json.loads(props["class_names"]) == ["a", "b"] and json.loads(props["image_shape"]) == [4, 64, 64]
    assert ModelMetadata.from_props(props) == meta
    # through a real ONNX file's metadata_props
    model = onnx.ModelProto()
    onnx.helper.set_model_props(model, props)
    assert ModelMetadata.from_props({p.key: p.value for p in model.metadata_props}) == meta


def test_files_without_a_contract_version_are_version_1():
    props = _meta().to_props()
    del props["contract_version"]
    assert ModelMetadata.from_props(props).contract_version == 1


@pytest.mark.parametrize(
    "change, words",
    [
        ({"contract_version": str(CONTRACT_VERSION + 1)}, f"contract version {CONTRACT_VERSION + 1}"),
        ({"latent_dim": "many"}, "latent_dim"),
        ({"class_names": "[a"}, "class_names is not JSON"),
        ({"image_shape": "[2, 8, 8]"}, "C in 1, 3, 4"),
        ({"image_shape": "[3, 8]"}, "image_shape must be [C, H, W]"),
        ({"num_classes": "3"}, "class_names must list num_classes names"),
        ({"truncation": "1.5"}, "truncation"),
        ({"steps": None}, "metadata lacks steps"),
    ],
)
def test_bad_metadata_is_named(change, words):
    props = _meta().to_props()
    for key, value in change.items():
        if value is None:
            del props[key]
        else:
            props[key] = value
    with pytest.raises(MetadataError, match=words.replace("[", r"\[")):
        ModelMetadata.from_props(props)


def test_unconditional_metadata_never_carries_classes():
    meta = _meta(conditional=False, num_classes=10, class_names=["x"] * 10)
    assert (meta.num_classes, meta.class_names) == (0, [])


def test_signature_checks_name_the_tensor():
    z, image = TensorSpec("tensor(float)", ["N", 8]), TensorSpec("tensor(float)", ["N", 1, 4, 4])
    label = TensorSpec("tensor(float)", ["N", 3])
    assert signature_problems({"z": z}, {"image": image}, 8, 0, [1, 4, 4]) == []
    assert signature_problems({"z": z, "label": label}, {"image": image}, 8, 3, [1, 4, 4]) == []
    assert signature_problems({"z": z}, {"image": image}, 8, 3, [1, 4, 4]) == [
        "inputs ['z'] != contract ['z', 'label']"
    ]
    assert signature_problems({"z": z}, {"out": image}, 8, 0, [1, 4, 4]) == [
        "no output named 'image' (has ['out'])"
    ]
    assert signature_problems({"z": z}, {"image": image}, 9, 0, [1, 4, 4]) == ["input z must be [N, 9]"]
    half = TensorSpec("tensor(float16)", ["N", 3])
    assert signature_problems({"z": z, "label": half}, {"image": image}, 8, 3, [1, 4, 4]) == [
        "input label must be float32"
    ]


def test_the_service_refuses_a_model_of_another_contract_version(tmp_path):
    from gancore.generator import GeneratorModel, ModelLoadError

    model = onnx.load(ROOT / "models" / "digits-dcgan.onnx")
    props = {p.key: p.value for p in model.metadata_props}
    onnx.helper.set_model_props(model, {**props, "contract_version": str(CONTRACT_VERSION + 1)})
    onnx.save(model, str(tmp_path / "future.onnx"))
    with pytest.raises(ModelLoadError, match="future.onnx: the model was made for sampling contract version"):
        GeneratorModel(tmp_path / "future.onnx", ["CPUExecutionProvider"], 1)
