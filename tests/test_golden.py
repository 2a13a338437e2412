"""Golden values of the reproducibility contract, written here as literals (never recomputed by the code).

Image i of (model, seed, label) must never change silently: every image anyone has saved depends on the
noise and label derivation, the float → uint8 rounding and the shipped weights. These literals were
produced by contract version 1 (the derivation the service has always used) and are keyed by contract
version: changing any derivation makes these tests fail until the version is bumped and a new, separately
reviewed set of goldens is added beside the old one (see docs/design/noise-contract.md).

Floats are float32 values written as exact hex (``float.hex``); image goldens are sha256 of the uint8
[N, H, W, C] bytes on ONNX Runtime's CPU provider.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math

import httpx
import numpy as np
import pytest
from PIL import Image

from gancore.contract import CONTRACT_VERSION, drawn_labels, latent, one_hot, to_uint8
from tests.conftest import ROOT, Server

MODELS = ROOT / "models"

# (seed, index, z[0], z[99] of latent 100, label drawn of 10 classes, label drawn of 7 classes)
NOISE_V1 = [
    (0, 0, "-0x1.da55220000000p-2", "-0x1.4996b80000000p+0", 3, 5),
    (0, 1, "-0x1.4883380000000p+0", "-0x1.acde440000000p-1", 2, 3),
    (0, 10**12, "0x1.4ac9c00000000p-1", "-0x1.4d43320000000p+0", 4, 5),
    (1, 0, "-0x1.32253e0000000p+1", "-0x1.439f260000000p-2", 5, 1),
    (1, 1, "0x1.44d3540000000p+0", "-0x1.7b005e0000000p+0", 7, 2),
    (1, 10**12, "0x1.21acbc0000000p-4", "-0x1.065e0c0000000p+0", 4, 0),
    (2**63 - 1, 0, "-0x1.e804600000000p+0", "-0x1.af4b120000000p-1", 5, 6),
    (2**63 - 1, 1, "-0x1.e0aa280000000p-2", "0x1.ec08460000000p-2", 7, 2),
    (2**63 - 1, 10**12, "0x1.5ea0200000000p-1", "0x1.cb279c0000000p-2", 4, 4),
]

# float32 generator outputs → uint8 (clipping, round half to even, values next to the ties)
UINT8_V1 = [
    ("-0x1.0000000000000p+1", 0), ("-0x1.0000000000000p+0", 0), ("-0x1.fef9dc0000000p-1", 0),
    ("-0x1.fdfdfc0000000p-1", 1), ("0x0.0p+0", 128), ("0x1.0101020000000p-8", 128),
    ("0x1.0000000000000p-1", 191), ("0x1.fae1480000000p-1", 254), ("0x1.0000000000000p+0", 255),
    ("0x1.8000000000000p+1", 255), ("-0x1.fdfdfe0000000p-1", 0), ("-0x1.fbfbfc0000000p-1", 1),
    ("-0x1.f9f9fa0000000p-1", 1),
]  # fmt: skip

GOLDEN = {
    1: {
        "noise": NOISE_V1,
        # every value, not just the ends: sha256 of z float32 bytes
        "z_rows": [
            (0, 0, 16, 100, "f797c228012c6178039b4841e3572d7f5716a0c19ea053adcc6d8925c404725d"),
            (2**63 - 1, 10**12, 16, 7, "bbd49dd25b322f5d86771f1c15209d315426b2f480142cd71466fa6ffd1e8174"),
        ],
        "uint8": UINT8_V1,
        # to_uint8 of 100001 evenly spaced float32 values in [-1.01, 1.01] (np.linspace), as [1, 1, 1, N]
        "uint8_sweep": "78ead1529f02b4450d42aa1a4ea40e7a3eb659c6a0da00d46168040603914ba2",
        # shipped models, seed 0, images 0–15: label drawn / label 0; walk: seed 0 → 1, 8 steps, index 0
        "models": {
            "digits-cgan": {
                "drawn": "7cddf69dd8497e931b07b875ca9dea94aafee6122d80a1022271b485f90bddae",
                "classes": [3, 2, 9, 2, 3, 9, 9, 6, 7, 2, 8, 1, 6, 6, 7, 0],
                "label0": "658ba96ebfb2acdbfa5709b603ce5e7a7bdbea3c130ace9f9d8d9ac63237c28d",
                "walk": "be5b001ecedf417e01d9ce639f632f368a1c3db15a2f280705b0e1816df0a524",
            },
            "digits-dcgan": {
                "drawn": "efad310f2cdfef5718ace45b8e27374ebfccfd758e1d799f3fe9ca19db7e8f43",
                "walk": "022a521d0861e3e9dc21a88eab508d24f3355032643eed152877ee6d59bd0a06",
            },
            "digits-wgan": {
                "drawn": "e57cb514f3104778b80ae054cb11c7fc18207e4e21dde6a5bfb8a7cc4a763779",
                "walk": "7f47a31c11bdac77de475b0f22c566d17daeb1427cbb34591794d4f8b2daa6db",
            },
            "digits-wgan-gp": {
                "drawn": "ee07cf3bed8c5d25d41feba38c87e7f66b50412084522efbb77fd83b267fb38a",
                "walk": "2fc26d6cc97d45a7cbcef1492af22562e674004030237912e897a27f26e54363",
            },
            "emoji-cgan": {
                "drawn": "e8ad5aba9ec83931ba09e3b601e5c9eeceb416a588d0609c3a719efa27fe61af",
                "classes": [3, 8, 1, 8, 0, 1, 1, 6, 5, 0, 8, 2, 7, 5, 6, 7],
                "label0": "6ad1d7e67364c570de0d6fb723ae11ba5754daa4e29da41541cacdd80f4905b5",
                "walk": "53854582478cec8f827354f45879d035948a2e2aa9d363ee41fb611982a286d7",
            },
            "emoji-dcgan": {
                "drawn": "dd47204e6f11c885c633abbaa018922ea42a41af25b0fd958add4558ea53d457",
                "walk": "21073f7360a0051e0d773237817d6609422e0f5a578d0e9639fb33b97e9e3c45",
            },
            "fashion-cgan": {
                "drawn": "52b05315d88c4178147e38a709b83e864ad2f78e7f5697f93ca4dba05a993fb7",
                "classes": [3, 2, 9, 2, 3, 9, 9, 6, 7, 2, 8, 1, 6, 6, 7, 0],
                "label0": "3eb8465b2ef2740838a5c7377132e072ac29ade148db66d63417cf8588985769",
                "walk": "33c62227e0820e6392a86bb6726bd031b119fcf4a631a203c43a20e7f701bf07",
            },
        },
    },
}


def test_the_contract_version_has_goldens():
    """Bumping the version without writing its goldens fails here; so does deleting an old version's."""
    assert CONTRACT_VERSION in GOLDEN, f"add GOLDEN[{CONTRACT_VERSION}] (see the module docstring)"
    assert sorted(GOLDEN) == list(range(1, CONTRACT_VERSION + 1))


G = GOLDEN[CONTRACT_VERSION]
SHIPPED = sorted(p.stem for p in MODELS.glob("*.onnx"))


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize("seed, index, first, last, label10, label7", G["noise"])
def test_noise_and_drawn_labels(seed, index, first, last, label10, label7):
    at = np.array([index], dtype=np.uint64)
    z = latent(seed, at, 100)
    assert z.dtype == np.float32 and z.shape == (1, 100)
    assert (float(z[0, 0]).hex(), float(z[0, -1]).hex()) == (first, last)
    assert int(drawn_labels(seed, at, 10)[0]) == label10 and int(drawn_labels(seed, at, 7)[0]) == label7


@pytest.mark.parametrize("seed, start, count, dim, digest", G["z_rows"])
def test_noise_rows_whole(seed, start, count, dim, digest):
    idx = np.arange(start, start + count, dtype=np.uint64)
    assert sha(latent(seed, idx, dim)) == digest
    # any batch composition: one row at a time, reversed, gives the same rows
    one_by_one = np.concatenate([latent(seed, idx[i : i + 1], dim) for i in range(count)])
    assert sha(one_by_one) == digest
    assert sha(latent(seed, idx[::-1], dim)[::-1]) == digest


def test_noise_is_the_same_on_the_small_and_the_blocked_path():
    """latent() takes one small-array pass for small batches (bases in Python integers up to 16 images) and
    blocks for large ones: same bytes."""
    idx = np.arange(10**12 - 100, 10**12 + 200, dtype=np.uint64)
    whole = latent(2**63 - 1, idx, 100)  # 300 rows: blocked
    assert np.array_equal(whole, np.concatenate([latent(2**63 - 1, idx[i : i + 1], 100) for i in range(300)]))
    assert np.array_equal(whole[:64], latent(2**63 - 1, idx[:64], 100))  # 64 rows: small path
    assert float(whole[100, 0]).hex() == G["noise"][8][2]  # index 10¹², inside a block


def test_drawn_labels_are_the_same_for_few_and_many_images():
    """Up to 16 images the bases are mixed in Python integers, beyond that in numpy: the same labels."""
    idx = np.arange(2**62 - 10, 2**62 + 30, dtype=np.uint64)
    many = drawn_labels(2**63 - 1, idx, 1000)  # 40 images: numpy
    few = np.concatenate([drawn_labels(2**63 - 1, idx[i : i + 16], 1000) for i in range(0, 40, 16)])
    assert many.dtype == few.dtype == np.int64 and np.array_equal(many, few)
    assert len(set(many.tolist())) > 30  # not a constant: the comparison means something


def test_noise_rows_are_prefixes_across_latent_sizes():
    """z of latent d is the first d values of z of any larger latent (odd sizes drop the last sine)."""
    idx = np.arange(5, dtype=np.uint64)
    wide = latent(7, idx, 100)
    for d in (1, 2, 7, 64, 99):
        assert np.array_equal(latent(7, idx, d), wide[:, :d])


def test_noise_follows_its_documented_formula_in_exact_integer_arithmetic():
    """An independent scalar reading of the docstring (Python ints, math): the uniforms agree exactly and
    z to within float64 rounding of the last bits, which float32 absorbs for these values."""
    mask = 2**64 - 1

    def mix(x: int) -> int:
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    for seed, index, first, last, label10, _ in G["noise"]:
        base = mix(mix(seed) ^ index)
        assert mix(base) % 10 == label10

        def u(j: int, base: int = base) -> float:
            return (mix((base + j * 0x9E3779B97F4A7C15) & mask) >> 11) * 2.0**-53

        r0 = math.sqrt(-2.0 * math.log1p(-u(1)))
        r49 = math.sqrt(-2.0 * math.log1p(-u(99)))
        assert np.float32(r0 * math.cos(2 * math.pi * u(2))) == np.float32(float.fromhex(first))
        assert np.float32(r49 * math.sin(2 * math.pi * u(100))) == np.float32(float.fromhex(last))


def test_float_to_uint8():
    values = np.array([float.fromhex(v) for v, _ in G["uint8"]], dtype=np.float32)
    got = to_uint8(values.reshape(1, 1, 1, -1))
    assert got.shape == (1, 1, len(values), 1) and got.dtype == np.uint8
    assert got.reshape(-1).tolist() == [b for _, b in G["uint8"]]
    sweep = np.linspace(-1.01, 1.01, 100001, dtype=np.float32).reshape(1, 1, 1, -1)
    assert sha(to_uint8(sweep)) == G["uint8_sweep"]


def test_every_shipped_model_has_goldens():
    assert SHIPPED and sorted(G["models"]) == SHIPPED


def _images(model, indices: np.ndarray, label) -> np.ndarray:
    return model.generate(0, indices, label)[0]


@pytest.fixture(scope="module")
def shipped():
    from gancore.generator import GeneratorModel

    return {name: GeneratorModel(MODELS / f"{name}.onnx", ["CPUExecutionProvider"], 1) for name in SHIPPED}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_images(shipped, name):
    from service.walk import walk_inputs

    model, want = shipped[name], G["models"][name]
    assert model.info.contract_version == CONTRACT_VERSION
    idx = np.arange(16, dtype=np.uint64)
    images, classes = model.generate(0, idx, None)
    assert sha(images) == want["drawn"]
    # any batch composition: uneven batches, single images, reversed order
    parts = [model.generate(0, idx[a:b], None)[0] for a, b in ((0, 5), (5, 6), (6, 16))]
    assert sha(np.concatenate(parts)) == want["drawn"]
    assert sha(model.generate(0, idx[::-1], None)[0][::-1]) == want["drawn"]
    if model.info.conditional:
        assert classes.tolist() == want["classes"]
        assert (
            sha(model.generate(0, idx, one_hot(np.array([0]), model.info.num_classes)[0])[0])
            == want["label0"]
        )
    w = walk_inputs(0, 1, 8, model.info.latent_dim, model.info.num_classes)
    assert sha(to_uint8(model.run(w.z, w.label))) == want["walk"]


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("golden") / "serve.log"  # the server's log and home stay out of the repo
    srv = Server(MODELS, env={"GANSERVE_PROVIDERS": "CPUExecutionProvider"}, log_path=log).wait_ready()
    yield srv
    srv.stop()


@pytest.mark.slow
def test_served_images_are_the_goldens(shipped_server):
    """The same goldens through a real `bentoml serve` of models/: /generate (npy), /walk (PNG frames)
    and the contract version in POST /models."""
    url = shipped_server.url
    listed = httpx.post(url + "/models", json={}, timeout=60).json()
    assert listed["contract_version"] == CONTRACT_VERSION
    assert {m["name"]: m["contract_version"] for m in listed["models"]} == dict.fromkeys(
        SHIPPED, CONTRACT_VERSION
    )
    for name in SHIPPED:
        want = G["models"][name]
        r = httpx.post(
            url + "/generate", json={"model": name, "count": 16, "seed": 0, "format": "npy"}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert sha(np.load(io.BytesIO(r.content), allow_pickle=False)) == want["drawn"]
        if "label0" in want:
            body = {"model": name, "count": 16, "seed": 0, "label": 0, "format": "npy"}
            r = httpx.post(url + "/generate", json=body, timeout=60)
            assert sha(np.load(io.BytesIO(r.content), allow_pickle=False)) == want["label0"]
        r = httpx.post(url + "/walk", json={"model": name, "seed_a": 0, "seed_b": 1, "steps": 8}, timeout=60)
        assert r.status_code == 200, r.text
        frames = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in r.json()["images"]]
        assert sha(np.stack(frames)[..., None]) == want["walk"]
