"""The quality evaluation: it runs on exported generators, and its figures tell good samples from bad ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.conftest import run_cli
from training.data import load_dataset
from training.evaluate import (
    EvaluatorSettings,
    evaluate_model,
    frechet_distance,
    get_evaluator,
    measure,
)

FAST = EvaluatorSettings(epochs=4)  # a few epochs are enough to tell digits apart at 16×16
SIZE = 16


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluators")


@pytest.fixture(scope="module")
def real():
    return load_dataset("digits", SIZE, 1)


@pytest.fixture(scope="module")
def evaluator(real, cache):
    return get_evaluator(real, FAST, cache)


def constant_generator(path, image: np.ndarray, latent_dim: int = 8, dataset: str = "digits") -> None:
    """A "generator" of the ONNX contract that ignores z and always draws ``image`` (float [C, H, W])."""
    c, h, w = image.shape
    nodes = [
        helper.make_node("MatMul", ["z", "W"], ["zw"]),  # W is zero: z has no effect
        helper.make_node("Add", ["zw", "B"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["image"]),
    ]
    inits = [
        helper.make_tensor("W", TensorProto.FLOAT, [latent_dim, c * h * w], np.zeros(latent_dim * c * h * w)),
        helper.make_tensor("B", TensorProto.FLOAT, [c * h * w], image.reshape(-1)),
        helper.make_tensor("shape", TensorProto.INT64, [4], [-1, c, h, w]),
    ]
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent_dim])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", c, h, w])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    meta = {
        "recipe": "dcgan", "objective": "bce", "conditional": "false", "latent_dim": str(latent_dim),
        "num_classes": "0", "class_names": "[]", "image_shape": json.dumps([c, h, w]), "dataset": dataset,
        "steps": "0", "seed": "0", "training_seconds": "0", "version": "test",
    }  # fmt: skip
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means 2 apart along one axis: the distance is the squared mean difference.
    assert frechet_distance(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, abs=1e-6)
    # Scaled by 2: tr Σ + tr 4Σ − 2 tr 2Σ = tr Σ ≈ 3.
    assert frechet_distance(a, 2 * a) == pytest.approx(3.0, rel=0.05)


def test_evaluator_is_accurate_deterministic_and_cached(real, evaluator, cache):
    assert evaluator.held_out_accuracy >= 0.9
    assert evaluator.path is not None and evaluator.path.parent == cache and evaluator.path.exists()
    again = get_evaluator(real, FAST, cache)  # from the cache
    assert again.held_out_accuracy == evaluator.held_out_accuracy
    p1, f1 = evaluator.predict(real.images[:50])
    p2, f2 = again.predict(real.images[:50])
    assert (p1 == p2).all() and np.allclose(f1, f2)


def test_evaluator_is_an_ensemble_of_differently_seeded_networks(real, evaluator):
    import torch

    assert len(evaluator.nets) == FAST.members == 3 and len(evaluator.member_accuracies) == 3
    a, b = (net.state_dict()["classify.weight"] for net in evaluator.nets[:2])
    assert not torch.equal(a, b)
    _, feats = evaluator.predict(real.images[:20])
    assert feats.shape == (20, 3 * 128)  # the members' features side by side
    # The class is the argmax of the mean probability, not any one member's vote.
    x = torch.from_numpy(real.images[:200].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    with torch.no_grad():
        mean = torch.stack([net(x)[0].softmax(1) for net in evaluator.nets]).mean(0).argmax(1).numpy()
    assert (evaluator.predict(real.images[:200])[0] == mean).all()


def test_evaluator_weights_do_not_depend_on_the_callers_threads(real):
    import torch

    from training.evaluate import train_evaluator

    quick = EvaluatorSettings(epochs=1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a, acc_a = train_evaluator(real, quick)
        assert torch.get_num_threads() == 2  # the caller's setting is restored
        torch.set_num_threads(1)
        b, acc_b = train_evaluator(real, quick)
    finally:
        torch.set_num_threads(before)
    assert acc_a == acc_b
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_real_data_scores_near_perfect(real, evaluator):
    q = measure(real.images, evaluator, real, labels=real.labels)
    assert q.label_accuracy >= 0.95
    assert q.classes_at_5pct == 10
    assert q.kl_to_real < 0.01
    assert q.frechet_distance < 1e-3 < q.frechet_real_vs_real  # identical sets vs two different halves
    assert 0.9 < q.diversity_ratio < 1.1
    assert abs(q.checkerboard - q.real_checkerboard) < 0.1  # real images show no lattice real ones lack
    assert {t["name"]: t["ok"] for t in q.targets} == {
        "label_accuracy": q.label_accuracy >= 0.995,  # a 4-epoch evaluator need not reach the target itself
        "frechet_ratio": True,
    }


def test_frechet_floor_is_taken_at_the_samples_size(real, evaluator):
    """Real images scored as samples have a Fréchet ratio near 1 whatever their number: the floor
    is as many other real images against the rest. Two fixed halves as the floor gave a few hundred real
    images a ratio of several, because the distance of a finite set grows as the set shrinks."""
    from training.evaluate.metrics import frechet_distance

    rng = np.random.default_rng(1)
    few = rng.choice(len(real.images), 150, replace=False)
    q = measure(real.images[few], evaluator, real, labels=real.labels[few], seed=3)
    assert 0.6 < q.frechet_ratio < 1.6
    _, feats = evaluator.predict(real.images)
    halves = rng.permutation(len(feats))
    old_floor = frechet_distance(feats[halves[: len(feats) // 2]], feats[halves[len(feats) // 2 :]])
    assert q.frechet_distance / old_floor > 2.0  # what the halves yardstick said of these real images


def test_collapsed_generator_scores_badly(tmp_path, real, evaluator, cache):
    path = tmp_path / "collapsed.onnx"
    constant_generator(path, real.as_float()[0])  # the first digit, forever
    q, _ = evaluate_model(path, samples=300, cache_dir=cache, settings=FAST)
    assert q.classes_at_5pct == 1
    assert q.kl_to_real > 1.5  # ≈ ln 10 for one class
    assert q.diversity_ratio < 0.01
    assert q.frechet_ratio > 5
    assert not any(t["ok"] for t in q.targets)
    # The label-free figures see the same collapse, beside real data that does not show it.
    lf = q.label_free
    assert lf.feature_space == "evaluator" and lf.compared_size == 300
    assert lf.samples.duplicates == 1.0 and lf.real.duplicates < 0.1
    assert lf.samples.recall < 0.05 < 0.8 < lf.real.recall
    assert lf.samples.coverage < 0.05 < 0.6 < lf.real.coverage  # 300 samples cover less than 898 would
    assert lf.samples.ndb_k > 0.5 > 0.15 > lf.real.ndb_k
    assert {t["name"] for t in lf.targets if not t["ok"]} >= {"ndb_k", "recall", "coverage", "duplicates"}


def test_shuffled_pixels_look_unlike_digits(real, evaluator):
    rng = np.random.default_rng(0)
    noise = rng.permuted(real.images.reshape(len(real.images), -1), axis=1).reshape(real.images.shape)
    q = measure(noise, evaluator, real)
    assert q.frechet_ratio > 5


@pytest.mark.parametrize("recipe", ["dcgan", "cgan"])
def test_cli_evaluates_exported_models(exported, recipe, tmp_path, cache, evaluator):
    model = tmp_path / exported[recipe].name
    shutil.copy(exported[recipe], model)
    out = tmp_path / "quality.json"
    proc = run_cli(
        "training", "evaluate", str(model), "--samples", "200", "--cache-dir", str(cache),
        "--evaluator-epochs", str(FAST.epochs), "--json", str(out), "--card",
    )  # fmt: skip
    assert "Frechet distance" in proc.stdout and "real vs real" in proc.stdout
    assert "NDB/K" in proc.stdout and "copies of training images" in proc.stdout
    assert "checkerboard score" in proc.stdout
    q = json.loads(out.read_text())
    keys = {"class_histogram", "classes_at_5pct", "kl_to_real", "frechet_distance", "frechet_real_vs_real",
            "frechet_ratio", "diversity_per_class", "diversity_ratio", "evaluator_accuracy",
            "targets", "checkerboard", "real_checkerboard"}  # fmt: skip
    assert keys <= q.keys()
    assert q["samples"] == 200 and abs(sum(q["class_histogram"]) - 1) < 1e-3
    assert q["evaluator_accuracy"] == evaluator.held_out_accuracy  # the cached evaluator was reused
    if recipe == "cgan":
        assert 0 <= q["label_accuracy"] <= 1 and len(q["label_accuracy_per_class"]) == 10
    else:
        assert q["label_accuracy"] is None
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["quality"] == q and card["recipe"] == recipe and card["steps"] == 2
    assert model.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = model.with_suffix(".md").read_text()
    assert "Fréchet" in md and "Label-free figures" in md and "| recall (k = 3) |" in md
    lf = q["label_free"]
    assert set(lf["samples"]) == set(lf["real"]) >= {"ndb_k", "js", "precision", "recall", "density",
                                                      "coverage", "duplicates", "copies"}  # fmt: skip
    from scripts.results_table import label_free_row

    assert label_free_row(card).startswith(f"| `{model.stem}` | evaluator | ")


def test_cli_rejects_bad_input(tmp_path, cache):
    proc = run_cli(
        "training", "evaluate", str(tmp_path / "missing.onnx"), "--cache-dir", str(cache), check=False
    )
    assert proc.returncode == 2 and "missing.onnx" in proc.stderr
    proc = run_cli("training", "evaluate", str(tmp_path / "x.onnx"), "--samples", "10", check=False)
    assert proc.returncode == 2 and "--samples" in proc.stderr
    proc = run_cli("training", "evaluate", str(tmp_path / "x.onnx"), "--autoencoder-steps", "0", check=False)
    assert proc.returncode == 2 and "--autoencoder-steps" in proc.stderr


def test_truncation_sweep_agrees_with_truncated_exports_and_evaluate(exported, cache, tmp_path):
    """benchmarks/truncation.py's row for ψ is what exporting with --truncation ψ and evaluating reports."""
    from benchmarks.truncation import sweep

    run = exported["cgan"].parent / "cgan"
    truncated = tmp_path / "trunc.onnx"
    run_cli("training", "export", str(run), "--out", str(truncated), "--truncation", "0.5")
    rows = dict(sweep(exported["cgan"], [1.0, 0.5], 200, 0, FAST, cache))
    plain, _ = evaluate_model(exported["cgan"], samples=200, cache_dir=cache, settings=FAST)
    at_half, _ = evaluate_model(truncated, samples=200, cache_dir=cache, settings=FAST)
    assert rows[1.0].to_dict() == plain.to_dict()
    assert rows[0.5].to_dict() == at_half.to_dict()
    assert rows[0.5].to_dict() != plain.to_dict()
    # Its targets column names label-free misses too (it once said "all met" beside NDB/K 0.44 on emoji).
    q = rows[1.0]
    q.targets = [t | {"ok": True} for t in q.targets]
    q.label_free.targets = [{"name": "coverage", "value": 0.5, "limit": ">= 0.7", "ok": False}]
    q.label_free_pixels.targets = [t | {"ok": t["name"] != "recall"} for t in q.label_free_pixels.targets]
    assert q.missed_targets() == ["coverage", "recall (pixel PCA)"]  # the second space's rows say so
    # The card says the file is truncated, and the results table shows it beside the training changes.
    from scripts.results_table import row
    from training.cards import write_card

    _, model = evaluate_model(truncated, samples=200, cache_dir=cache, settings=FAST)
    paths = write_card(model, at_half, tmp_path / "card")
    card = json.loads(paths["json"].read_text())
    assert card["truncation"] == 0.5 and "truncation ψ = 0.5" in paths["md"].read_text()
    assert "(export --truncation 0.5)" in row(card)
