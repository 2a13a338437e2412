"""The label-free figures (NDB/K, precision/recall, density/coverage, duplicates, copies) as an instrument.

Each figure is first checked on cases with a known answer, then on real digits: held-out real data must score
like the other half, and a subset missing a class, a generator repeating a few images and one returning
training images must each be flagged — in the evaluator's features and in the autoencoder's (the feature space
of data without classes). Then the same on a small synthetic 64×64×4 RGBA set, and end to end by the CLI.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from tests.test_evaluate import FAST, SIZE, constant_generator
from training.data import load_dataset
from training.evaluate import (
    AutoencoderSettings,
    LabelFreeSettings,
    compare,
    fit_reference,
    get_autoencoder,
    get_evaluator,
    measure,
    ndb_test,
    train_autoencoder,
)
from training.evaluate.autoencoder import premultiplied
from training.evaluate.pixels import PixelSpace

QUICK_AE = AutoencoderSettings(steps=150)  # enough for digits at 16×16 to separate (checked below)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluators")


@pytest.fixture(scope="module")
def real():
    return load_dataset("digits", SIZE, 1)


@pytest.fixture(scope="module", params=["evaluator", "autoencoder", "pixel PCA"])
def space(request, real, cache):
    """(name, real features [N, F]) in each feature space the figures are computed in."""
    if request.param == "evaluator":
        return "evaluator", get_evaluator(real, FAST, cache).predict(real.images)[1]
    if request.param == "pixel PCA":  # the second space, learned from nothing but the pixels' spread
        return "pixel PCA", PixelSpace.fit(real.images).features(real.images)
    return "autoencoder", get_autoencoder(real.images, real.name, QUICK_AE, cache).features(real.images)


@pytest.fixture(scope="module")
def split(real):
    """Disjoint index sets: reference (half), held-out (a quarter), and "samples" (the last quarter)."""
    perm = np.random.default_rng(1).permutation(len(real.images))
    return perm[:900], perm[900:1350], perm[1350:]


@pytest.fixture(scope="module")
def reference(space, split):
    name, feats = space
    ref_idx, held_idx, _ = split
    both = np.concatenate([ref_idx, held_idx])
    mask = np.r_[np.zeros(len(ref_idx), bool), np.ones(len(held_idx), bool)]
    return fit_reference(feats[both], mask, LabelFreeSettings(), name)


# ---- known answers --------------------------------------------------------------------------------------
def test_ndb_test_known_answers():
    same = np.array([100, 200, 300, 400])
    assert ndb_test(same, same)[:2] == (0, 0.0)
    assert ndb_test(same, 2 * same)[0] == 0  # the same proportions at another sample size
    shifted = np.array([160, 140, 300, 400])  # bins 0 and 1 moved by 6% of the total each
    n, js, different = ndb_test(same, shifted)
    assert n == 2 and different.tolist() == [True, True, False, False] and js > 0
    # Disjoint histograms: JS divergence is ln 2 (its maximum, natural log).
    assert ndb_test(np.array([50, 50, 0, 0]), np.array([0, 0, 50, 50]))[1] == pytest.approx(math.log(2))
    # Small counts: the same one-bin difference is not significant on 10 images but is on 10,000.
    assert ndb_test(np.array([5, 5]), np.array([7, 3]))[0] == 0
    assert ndb_test(np.array([5000, 5000]), np.array([7000, 3000]))[0] == 2  # both bins moved


def test_geometry_known_answers():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((800, 4))
    mask = np.zeros(800, bool)
    mask[400:] = True
    ref = fit_reference(real, mask, LabelFreeSettings(bins=10))
    fresh = compare(ref, rng.standard_normal((400, 4))).samples  # a perfect generator
    far = compare(ref, rng.standard_normal((400, 4)) + 50).samples  # off the real manifold entirely
    assert fresh.precision > 0.85 and fresh.recall > 0.85 and fresh.coverage > 0.85
    assert 0.8 < fresh.density < 1.2 and fresh.ndb_k <= 0.2
    assert far.precision == far.recall == far.density == far.coverage == 0.0
    assert far.ndb_k >= 0.8 and far.js > 0.5  # all samples pile into the bins nearest to them
    one_point = compare(ref, np.repeat(rng.standard_normal((1, 4)), 400, axis=0)).samples
    assert one_point.duplicates == 1.0 and one_point.recall < 0.05 and one_point.coverage < 0.05


# ---- the instrument on real digits, in both feature spaces -------------------------------------------------
def test_held_out_half_scores_like_the_other(space, reference, split):
    _, feats = space
    real, other = reference.real, compare(reference, feats[split[2]]).samples
    assert real.ndb_k <= 0.15 and other.ndb_k <= 0.15
    for key in ("precision", "recall", "coverage"):
        assert getattr(real, key) > 0.8 and abs(getattr(other, key) - getattr(real, key)) < 0.06, key
    assert abs(other.density - real.density) < 0.15
    # Near-duplicates and copies: the real rate is ≈ the 5% quantile the thresholds are set at.
    for key in ("duplicates", "copies"):
        assert getattr(real, key) <= 0.1 and getattr(other, key) <= 2 * getattr(real, key) + 0.03, key


def test_one_class_removed_is_flagged(space, reference, split, real):
    _, feats = space
    rest = np.concatenate(split[1:])  # held-out and spare images: enough left after removing the zeros
    missing = compare(reference, feats[rest[real.labels[rest] != 0]]).samples
    yardstick = reference.real  # the held-out images with their zeros
    assert missing.ndb_k >= yardstick.ndb_k + 0.05 and missing.js >= 1.5 * yardstick.js
    assert missing.recall <= yardstick.recall - 0.05
    assert missing.coverage <= yardstick.coverage - 0.04
    assert missing.precision > 0.85  # every image is a real digit: fidelity alone would not see it


def test_repeating_a_few_images_is_flagged(space, reference, split):
    _, feats = space
    few = np.repeat(feats[split[2][:5]], 90, axis=0)  # 5 real images, 90 times each
    s = compare(reference, few).samples
    assert s.duplicates >= 0.95 and reference.real.duplicates <= 0.1
    assert s.recall < 0.1 and s.coverage < 0.1 and s.ndb_k > 0.5


def test_returning_training_images_is_flagged(space, reference, split):
    _, feats = space
    s = compare(reference, feats[split[0][:450]]).samples  # the reference (training) images themselves
    assert s.copies >= 0.95 and reference.real.copies <= 0.1
    assert s.recall > 0.8  # a copying generator looks perfect to the other figures


def test_measure_reports_label_free_figures(real, cache):
    """Through measure(): training images returned as samples are copies; the yardstick is held-out real."""
    evaluator = get_evaluator(real, FAST, cache)
    q = measure(real.images[::2], evaluator, real)
    lf = q.label_free
    assert lf.feature_space == "evaluator" and lf.reference_size + lf.compared_size <= len(real.images)
    assert lf.samples.copies == 1.0 and lf.real.copies <= 0.1
    assert {t["name"]: t["ok"] for t in lf.targets}["copies"] is False
    assert lf.real.ndb_k <= 0.15 and lf.real.recall > 0.8
    assert q.to_dict()["label_free"]["samples"]["copies"] == 1.0


# ---- the autoencoder and RGBA ------------------------------------------------------------------------------
def test_autoencoder_is_deterministic_and_cached(real, cache):
    quick = AutoencoderSettings(steps=20)
    a, _ = train_autoencoder(real.images, quick)
    b, _ = train_autoencoder(real.images, quick)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert (x == y).all()
    first = get_autoencoder(real.images, real.name, quick, cache)
    again = get_autoencoder(real.images, real.name, quick, cache)
    assert first.path == again.path and first.path.exists()
    assert np.array_equal(first.features(real.images[:30]), again.features(real.images[:30]))
    # The images are part of the key: another image set of the same name gets its own network.
    other = get_autoencoder(real.images[::-1].copy(), real.name, quick, cache)
    assert other.path != first.path


def sprites(count: int, seed: int = 0) -> np.ndarray:
    """Synthetic 64×64 RGBA sprites: one coloured disc or square each, at random places and sizes, on a
    transparent background whose (invisible) colour is random noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    out = np.empty((count, 64, 64, 4), dtype=np.uint8)
    for i in range(count):
        cy, cx, r = rng.integers(18, 46), rng.integers(18, 46), rng.integers(6, 16)
        if i % 2:
            shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            shape = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        out[i, ..., :3] = rng.integers(0, 256, (64, 64, 3))  # hidden under alpha 0
        out[i, shape, :3] = rng.integers(0, 256, 3)
        out[i, ..., 3] = np.where(shape, 255, 0)
    return out


def test_premultiplied_alpha_hides_transparent_colour():
    a = sprites(4)
    b = a.copy()
    b[..., :3][a[..., 3] == 0] = 0  # the same sprites, another invisible background colour
    assert np.array_equal(premultiplied(a).numpy(), premultiplied(b).numpy())
    assert not np.array_equal(a, b)


def test_rgba_sprites_instrument(cache):
    images = sprites(400)
    ae = get_autoencoder(images, "sprites", AutoencoderSettings(steps=60, batch_size=32), cache)
    feats = ae.features(images)
    assert feats.shape == (400, 128) and np.isfinite(feats).all()
    mask = np.zeros(300, bool)
    mask[150:] = True
    ref = fit_reference(feats[:300], mask, LabelFreeSettings(bins=10), "autoencoder")
    held = compare(ref, feats[300:]).samples
    assert abs(held.recall - ref.real.recall) < 0.15 and held.ndb_k <= 0.3
    few = compare(ref, np.repeat(feats[300:303], 34, axis=0)).samples
    assert few.duplicates == 1.0 and few.recall < 0.15 and few.recall < held.recall - 0.3
    copies = compare(ref, feats[:100]).samples
    assert copies.copies == 1.0 and ref.real.copies <= 0.2


def test_cli_evaluates_a_generator_of_rgba_data_without_classes(tmp_path, cache):
    """A folder of 64×64 RGBA sprites without classes: no evaluator, figures in autoencoder space."""
    folder = tmp_path / "sprites" / "all"
    folder.mkdir(parents=True)
    images = sprites(120, seed=1)
    for i, img in enumerate(images):
        Image.fromarray(img, mode="RGBA").save(folder / f"{i:03d}.png")
    spec = f"folder:{tmp_path / 'sprites'}"
    model = tmp_path / "blob.onnx"
    first = images[0].transpose(2, 0, 1).astype(np.float32) / 127.5 - 1
    constant_generator(model, first, dataset=spec)
    out = tmp_path / "q.json"
    proc = run_cli(
        "training", "evaluate", str(model), "--samples", "100", "--cache-dir", str(cache),
        "--autoencoder-steps", "30", "--json", str(out),
    )  # fmt: skip
    assert "autoencoder features" in proc.stdout and "near-duplicates" in proc.stdout
    q = json.loads(out.read_text())
    assert q["evaluator_accuracy"] is None and q["label_accuracy"] is None
    lf = q["label_free"]
    assert lf["feature_space"] == "autoencoder" and lf["compared_size"] == 60
    assert lf["samples"]["duplicates"] == 1.0 and lf["samples"]["recall"] < 0.1
    assert lf["samples"]["copies"] == 1.0  # image 0 is a training image
    assert {t["name"] for t in q["targets"]} == {"frechet_ratio"}  # no class targets without classes
    missed = {t["name"] for t in lf["targets"] if not t["ok"]}
    assert {"recall", "coverage", "duplicates", "copies"} <= missed
