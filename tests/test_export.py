"""The ONNX contract: inputs, output, dynamic batch, metadata and parity with PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gancore.contract import CONTRACT_VERSION, ModelMetadata
from tests.conftest import run_cli
from training.export import ExportError, check_parity, load_generator


@pytest.mark.parametrize("recipe", ["dcgan", "wgan", "wgan-gp", "cgan"])
def test_export_contract(exported, recipe):
    model = onnx.load(exported[recipe])
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(ModelMetadata.required_keys()) <= meta.keys()
    assert meta["contract_version"] == str(CONTRACT_VERSION)
    assert ModelMetadata.from_props(meta).latent_dim == int(meta["latent_dim"])  # reads back what it wrote
    assert meta["recipe"] == recipe and meta["dataset"] == "digits" and meta["steps"] == "2"
    conditional = json.loads(meta["conditional"])
    assert conditional == (recipe == "cgan")
    assert json.loads(meta["image_shape"]) == [1, 16, 16]

    sess = ort.InferenceSession(str(exported[recipe]), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert names == (["z", "label"] if conditional else ["z"])
    assert [o.name for o in sess.get_outputs()] == ["image"]
    for i in sess.get_inputs():
        assert i.type == "tensor(float)" and isinstance(i.shape[0], str)  # dynamic batch
    for n in (1, 5, 33):
        feeds = {
            "z": np.random.default_rng(n).standard_normal((n, int(meta["latent_dim"])), dtype=np.float32)
        }
        if conditional:
            assert json.loads(meta["class_names"]) == [str(i) for i in range(10)]
            feeds["label"] = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
        (image,) = sess.run(None, feeds)
        assert image.shape == (n, 1, 16, 16) and image.dtype == np.float32
        assert image.min() >= -1 and image.max() <= 1


def test_export_matches_pytorch_at_several_batch_sizes(exported, tmp_path):
    # Independent of the exporter's own check: recompute parity here.
    run = exported["cgan"].parent / "cgan"
    g, cfg, _ = load_generator(run)
    sess = ort.InferenceSession(str(exported["cgan"]), providers=["CPUExecutionProvider"])
    for n in (1, 7, 64):
        z = np.random.default_rng(n).standard_normal((n, 100), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
        with torch.no_grad():
            want = g(torch.from_numpy(z), torch.from_numpy(y)).numpy()
        got = sess.run(["image"], {"z": z, "label": y})[0]
        assert np.abs(got - want).max() <= 1e-4


def test_parity_failure_is_an_error(exported):
    g, _, _ = load_generator(exported["dcgan"].parent / "dcgan")
    with torch.no_grad():
        g.net[0].weight.add_(0.5)  # the PyTorch side no longer matches the file
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(g, exported["dcgan"].read_bytes(), 100, 0)


def test_export_of_a_non_run_fails_clearly(tmp_path):
    proc = run_cli("training", "export", str(tmp_path), "--out", str(tmp_path / "x.onnx"), check=False)
    assert proc.returncode == 1 and "not a training run folder" in proc.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_truncated_export_samples_g_of_scaled_noise(exported, tmp_path):
    from gancore.generator import GeneratorModel

    run = exported["cgan"].parent / "cgan"
    out = tmp_path / "trunc.onnx"
    run_cli("training", "export", str(run), "--out", str(out), "--truncation", "0.6")
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert float(meta["truncation"]) == 0.6
    g, _, _ = load_generator(run)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((9, 100), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(9)]
    with torch.no_grad():
        want = g(torch.from_numpy(z * 0.6), torch.from_numpy(y)).numpy()
        untruncated = g(torch.from_numpy(z), torch.from_numpy(y)).numpy()
    got = sess.run(["image"], {"z": z, "label": y})[0]
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(got - untruncated).max() > 10 * 1e-4  # ψ really changed the images (tiny 2-step model)
    # The service reads ψ from the file and shows it; files without the key sample as trained.
    assert GeneratorModel(out, ["CPUExecutionProvider"], 1).info.truncation == 0.6
    assert GeneratorModel(exported["cgan"], ["CPUExecutionProvider"], 1).info.truncation == 1.0


@pytest.mark.parametrize("psi", ["0", "-0.5", "1.5", "nan"])
def test_export_rejects_a_truncation_outside_0_1(exported, tmp_path, psi):
    out = tmp_path / "x.onnx"
    proc = run_cli(
        "training", "export", str(exported["dcgan"].parent / "dcgan"), "--out", str(out), "--truncation", psi,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "--truncation must be in (0, 1]" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "2", "psi"])
def test_service_refuses_a_file_with_a_bad_truncation(exported, tmp_path, value):
    from gancore.generator import GeneratorModel, ModelLoadError

    model = onnx.load(exported["dcgan"])
    props = {p.key: p.value for p in model.metadata_props}
    onnx.helper.set_model_props(model, {**props, "truncation": value})
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelLoadError, match="truncation|malformed metadata"):
        GeneratorModel(path, ["CPUExecutionProvider"], 1)
