"""Latent walks: slerp, the walk's model inputs, and POST /walk against a real `bentoml serve`."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from gancore.contract import drawn_labels, latent, one_hot, to_uint8
from gancore.generator import GeneratorModel
from service.walk import MAX_STEPS, slerp, walk_inputs
from tests.test_service import metric_sum, npy, post

RNG = np.random.default_rng(0)


def angle(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.arccos(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)), -1, 1)))


def test_slerp_ends_exactly_at_both_vectors():
    a, b = RNG.standard_normal((2, 100)).astype(np.float32)
    out = slerp(a, b, np.linspace(0, 1, 5))
    assert out.shape == (5, 100)
    assert np.array_equal(out[0].astype(np.float32), a) and np.array_equal(out[-1].astype(np.float32), b)


def test_slerp_moves_at_constant_angular_speed_and_interpolates_the_norm():
    a, b = RNG.standard_normal((2, 64))
    b *= 2.0 / np.linalg.norm(b) * np.linalg.norm(a)  # |b| = 2 |a|
    t = np.linspace(0, 1, 9)
    out = slerp(a, b, t)
    omega = angle(a, b)
    for k in range(9):
        assert angle(a, out[k]) == pytest.approx(t[k] * omega, abs=1e-9)
        assert np.linalg.norm(out[k]) == pytest.approx((1 + t[k]) * np.linalg.norm(a))


def test_slerp_midpoint_keeps_a_gaussian_norm_where_lerp_shrinks_it():
    # Why slerp: the straight line's midpoint of two independent N(0, I) vectors has norm ≈ |z| / √2.
    a, b = RNG.standard_normal((2, 100))
    mid = slerp(a, b, np.array([0.5]))[0]
    assert np.linalg.norm(mid) == pytest.approx((np.linalg.norm(a) + np.linalg.norm(b)) / 2)
    assert np.linalg.norm((a + b) / 2) < 0.8 * np.linalg.norm(mid)


def test_slerp_parallel_opposite_and_zero_vectors():
    a = np.array([1.0, 2.0, 2.0])
    assert np.allclose(slerp(a, 3 * a, np.array([0.5]))[0], 2 * a)  # same direction: lerp
    out = slerp(a, -a, np.linspace(0, 1, 5))  # opposite: a half great circle, norm kept
    assert np.allclose(np.linalg.norm(out, axis=1), 3.0)
    assert abs(out[2] @ a) < 1e-9 and np.allclose(out[-1], -a)
    zero = np.zeros(3)
    assert np.allclose(slerp(zero, a, np.array([0.0, 0.5, 1.0])), [zero, a / 2, a])


def test_walk_inputs_start_and_end_at_the_seeds_inputs():
    idx = np.array([5], dtype=np.uint64)
    w = walk_inputs(11, 12, 6, latent_dim=20, num_classes=10, label_a=one_hot(np.array([2]), 10)[0], index=5)
    assert w.z.shape == (6, 20) and w.z.dtype == np.float32 and w.label.shape == (6, 10)
    assert np.array_equal(w.z[0], latent(11, idx, 20)[0]) and np.array_equal(w.z[-1], latent(12, idx, 20)[0])
    drawn_b = int(drawn_labels(12, idx, 10)[0])  # label_b omitted: the one seed 12 draws at index 5
    assert w.classes[0] == 2 and w.classes[-1] == drawn_b
    assert np.array_equal(w.label[-1], one_hot(np.array([drawn_b]), 10)[0])
    assert np.allclose(w.label.sum(axis=1), 1.0) and np.array_equal(w.t, np.linspace(0, 1, 6))
    # Labels move linearly: the weight of label_a falls from 1 to 0 (unless both ends are the same class).
    if drawn_b != 2:
        assert np.allclose(w.label[:, 2], 1 - w.t, atol=1e-6)


def test_walk_inputs_reject_bad_steps_and_labels_for_unconditional_models():
    assert walk_inputs(1, 2, MAX_STEPS, 8, 0).label is None
    for steps in (1, MAX_STEPS + 1):
        with pytest.raises(ValueError, match="steps"):
            walk_inputs(1, 2, steps, 8, 0)
    with pytest.raises(ValueError, match="unconditional"):
        walk_inputs(1, 2, 4, 8, 0, label_a=np.ones(1, dtype=np.float32))


def test_walk_endpoints_are_the_seeds_own_images(exported):
    model = GeneratorModel(exported["cgan"], ["CPUExecutionProvider"], threads=1)
    n = model.info.num_classes
    label_a, label_b = one_hot(np.array([1]), n)[0], one_hot(np.array([8]), n)[0]
    w = walk_inputs(3, 4, 5, model.info.latent_dim, n, label_a, label_b, index=2)
    frames = to_uint8(model.run(w.z, w.label))
    at = np.array([2], dtype=np.uint64)
    assert np.array_equal(frames[0], model.generate(3, at, label_a)[0][0])
    assert np.array_equal(frames[-1], model.generate(4, at, label_b)[0][0])
    assert not np.array_equal(frames[2], frames[0]) and not np.array_equal(frames[2], frames[-1])


# ---- POST /walk on the session server ----------------------------------------------------------------


def pixels(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_walk_endpoint_frames_match_generate(server):
    images_before = metric_sum(server, "ganserve_images_generated_total", "tiny-cgan")
    body = {
        "model": "tiny-cgan",
        "seed_a": 5,
        "seed_b": 9,
        "steps": 6,
        "index": 3,
        "label_a": 2,
        "label_b": "7",
    }
    r = post(server, body, path="/walk")
    assert r.status_code == 200, r.text
    walk = r.json()
    assert walk["seed_a"] == 5 and walk["seed_b"] == 9 and walk["index"] == 3
    assert walk["t"] == pytest.approx(np.linspace(0, 1, 6).tolist())
    assert walk["labels"][0] == 2 and walk["labels"][-1] == 7 and walk["label_names"][-1] == "7"
    frames = np.stack([pixels(b) for b in walk["images"]])[..., None]
    assert frames.shape == (6, 16, 16, 1)
    assert np.array_equal(frames[0], npy(server, model="tiny-cgan", seed=5, start=3, label=2)[0])
    assert np.array_equal(frames[-1], npy(server, model="tiny-cgan", seed=9, start=3, label=7)[0])
    # The walk ran through the model's batcher like /generate (2 more images for the two npy calls).
    assert metric_sum(server, "ganserve_images_generated_total", "tiny-cgan") - images_before == 6 + 2


def test_walk_omitted_labels_are_the_seeds_drawn_labels(server):
    walk = post(server, {"model": "tiny-cgan", "seed_a": 21, "seed_b": 22, "steps": 3}, path="/walk").json()
    drawn = post(server, {"model": "tiny-cgan", "seed": 21}).json()
    assert walk["labels"][0] == drawn["labels"][0] and walk["images"][0] == drawn["images"][0]


def test_walk_unconditional_and_grid(server):
    walk = post(server, {"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "steps": 4}, path="/walk").json()
    assert walk["labels"] is None and len(walk["images"]) == 4
    assert len({tuple(pixels(b).ravel()) for b in walk["images"]}) == 4  # every frame differs
    r = post(
        server, {"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "steps": 4, "format": "grid"}, path="/walk"
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(r.content)))
    assert grid.shape[:2] == (18 + 2, 4 * 18 + 2)  # one row of 4 frames, 16 px each with 2 px padding
    assert np.array_equal(grid[2:18, 2:18], pixels(walk["images"][0]))


@pytest.mark.parametrize(
    "body, status, field, words",
    [
        ({"model": "nope", "seed_a": 1, "seed_b": 2}, 404, "model", "unknown model"),
        (
            {"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "steps": 1},
            400,
            "steps",
            "greater than or equal to 2",
        ),
        (
            {"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "steps": 65},
            400,
            "steps",
            "less than or equal to 64",
        ),
        ({"model": "tiny-dcgan", "seed_a": -1, "seed_b": 2}, 400, "seed_a", "greater than or equal to 0"),
        ({"model": "tiny-dcgan", "seed_a": 1}, 400, "seed_b", "required"),
        ({"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "index": -1}, 400, "index", "greater than"),
        ({"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "label_b": 1}, 400, "label_b", "unconditional"),
        ({"model": "tiny-cgan", "seed_a": 1, "seed_b": 2, "label_a": 10}, 400, "label_a", "0 … 9"),
        ({"model": "tiny-cgan", "seed_a": 1, "seed_b": 2, "label_b": "ten"}, 400, "label_b", "unknown class"),
        ({"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "format": "npy"}, 400, "format", "png"),
        ({"model": "tiny-dcgan", "seed_a": 1, "seed_b": 2, "frames": 3}, 400, "frames", "Extra inputs"),
    ],
)
def test_walk_bad_input_is_a_clear_4xx(server, body, status, field, words):
    r = httpx.post(server.url + "/walk", json=body, timeout=60)
    assert r.status_code == status, r.text
    assert field in r.text and words in r.text
