"""Training: recipes, configuration, determinism, resume, data sets and their errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import TINY, run_cli
from training.config import TrainConfig, override, preset, validate
from training.data import DatasetError, _download, load_dataset, read_idx
from training.networks import Critic, Generator
from training.objectives import gradient_penalty
from training.trainer import CHECKPOINT, Trainer


def assert_onnx_matches_run(run: Path, onnx_path: Path) -> np.ndarray:
    """The exported file, on ONNX Runtime, draws what the run's generator draws in PyTorch (checked here,
    not by trusting the exporter), and its images depend on z (and the label, when conditional)."""
    import onnxruntime as ort

    from training.export import load_generator

    g, cfg, _ = load_generator(run)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(5).standard_normal((3, cfg.model.latent_dim), dtype=np.float32)
    feeds, args = {"z": z}, [torch.from_numpy(z)]
    if cfg.model.conditional:
        y = np.eye(cfg.model.num_classes, dtype=np.float32)[[0, 1, 1]]
        feeds["label"], args = y, [*args, torch.from_numpy(y)]
    (got,) = sess.run(["image"], feeds)
    with torch.no_grad():
        want = g(*args).numpy()
    m = cfg.model
    assert got.shape == (3, m.channels, m.image_size, m.image_size)
    assert np.abs(got - want).max() <= 1e-4
    assert not np.array_equal(got[0], got[1])
    if m.conditional:  # same z, other label → other image
        feeds["z"] = np.repeat(z[:1], 3, axis=0)
        (same_z,) = sess.run(["image"], feeds)
        assert not np.array_equal(same_z[0], same_z[1])
    return got


def small(recipe: str, **changes) -> TrainConfig:
    base = dict(
        image_size=16, g_width=16, d_width=16, batch_size=16, steps=4, sample_every=2, checkpoint_every=2
    )
    return override(preset(recipe), **{**base, **changes})


def test_presets_follow_the_papers():
    dc, w, gp, c = (preset(r) for r in ("dcgan", "wgan", "wgan-gp", "cgan"))
    assert (dc.objective.kind, dc.optim.name, dc.optim.lr_g, dc.optim.beta1) == ("bce", "adam", 2e-4, 0.5)
    assert (w.objective.kind, w.objective.clip, w.objective.n_critic, w.optim.name, w.optim.lr_d) == (
        "wasserstein", 0.01, 5, "rmsprop", 5e-5,
    )  # fmt: skip
    assert (gp.objective.gp_weight, gp.objective.n_critic, gp.model.d_norm) == (10.0, 5, "layer")
    assert (gp.optim.lr_g, gp.optim.beta1, gp.optim.beta2) == (1e-4, 0.0, 0.9)
    assert c.model.conditional and c.objective.kind == "bce"


def test_objective_conditioning_and_normalization_compose():
    cfg = override(preset("wgan-gp"), conditional=True, d_conditioning="projection", lr_g=3e-4)
    assert cfg.model.conditional and cfg.objective.gp_weight == 10 and cfg.optim.lr_g == 3e-4
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_seed_design_at_64():
    g = Generator(override(preset("dcgan"), image_size=64, channels=3).model)
    shapes = [m.out_channels for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert shapes == [1024, 512, 256, 128, 3]
    assert g(torch.zeros(2, 100)).shape == (2, 3, 64, 64)
    assert not any(isinstance(m, torch.nn.Linear | torch.nn.MaxPool2d) for m in g.modules())


@pytest.mark.parametrize("size", [16, 32, 64])
def test_depth_follows_image_size(size):
    cfg = override(preset("cgan"), image_size=size, channels=4, num_classes=10, g_width=8, d_width=8).model
    g, d = Generator(cfg), Critic(cfg)
    y = torch.eye(10)[:3]
    img = g(torch.randn(3, 100), y)
    assert img.shape == (3, 4, size, size) and img.abs().max() <= 1
    assert d(img, y).shape == (3,)


def test_wgan_gp_critic_has_no_batchnorm():
    d = Critic(override(preset("wgan-gp"), channels=1).model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())


def test_wgan_clips_critic_weights(tmp_path):
    t = Trainer(small("wgan", steps=1), tmp_path)
    t.train_step()
    assert max(p.abs().max().item() for p in t.D.parameters()) <= 0.01 + 1e-9


def test_pacgan_critic_judges_groups_of_images():
    cfg = small("dcgan", pack=4, channels=1).model
    d = Critic(cfg)
    assert d.features[0].in_channels == 4  # four 1-channel images stacked on channels
    x = torch.randn(8, 1, 16, 16)
    scores = d.eval()(x)
    assert scores.shape == (2,)
    # A group's score depends on its own four images only.
    x2 = x.clone()
    x2[4:] = torch.randn(4, 1, 16, 16)
    assert torch.equal(d(x2)[0], scores[0]) and not torch.equal(d(x2)[1], scores[1])


def test_packed_gradient_penalty_is_per_group():
    # A critic whose score is the sum of its group's pixels has gradient 1 everywhere: per group of 2
    # 1×2×2 images the norm is sqrt(8), so the penalty is (sqrt(8) - 1)² whatever the inputs.
    def critic(x):
        return x.reshape(x.shape[0] // 2, -1).sum(1)

    real, fake = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(0), group=2)
    assert gp.item() == pytest.approx((8**0.5 - 1) ** 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(pack=3), "not a multiple of pack 3"),
        (dict(pack=0), "pack must be at least 1"),
        (dict(aux_classifier=True, conditional=False), "needs a conditional model"),
        (dict(aux_classifier=True, pack=2), "cannot be combined with pack"),
        (dict(pack=2, d_conditioning="projection"), "use --d-conditioning concat"),
        (dict(g_conditioning="batchnorm", conditional=False), "needs a conditional model"),
        (dict(joint_batch=True, minibatch_std=True), "use one of them"),
    ],
)
def test_impossible_combinations_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        validate(small("cgan", **changes))


def test_aux_classifier_learns_real_classes_and_scores_the_generator(tmp_path):
    t = Trainer(small("cgan", aux_classifier=True, steps=1), tmp_path)
    real, y = t._batch()
    score, logits = t.D.score_and_classes(real, y)
    assert score.shape == (16,) and logits.shape == (16, 10)
    before = t.D.classifier.weight.detach().clone()
    t.train_step()
    assert not torch.equal(before, t.D.classifier.weight)
    # Without the head (the plain recipe) the critic returns no class logits.
    assert Trainer(small("cgan"), tmp_path / "plain").D.score_and_classes(real, y)[1] is None


@pytest.mark.parametrize("recipe, pack", [("wgan", 2), ("cgan", 1)])
def test_joint_batch_scores_real_and_fake_in_one_call(tmp_path, recipe, pack):
    t = Trainer(small(recipe, joint_batch=True, pack=pack), tmp_path / "run")
    real, y = t._batch()
    fake = torch.randn_like(real)
    t.D.eval()  # BatchNorm on running statistics: joint and separate calls must then agree exactly
    joint_real, joint_fake, _, _ = t._scores(real, fake, y)
    assert joint_real.shape == joint_fake.shape == (16 // pack,)
    assert torch.allclose(joint_real, t.D(real, y), atol=1e-6)
    assert torch.allclose(joint_fake, t.D(fake, y), atol=1e-6)
    t.D.train()  # in training, the real scores now depend on the fakes beside them (shared statistics)
    assert not torch.allclose(t._scores(real, fake, y)[0], t._scores(real, -fake, y)[0])
    t.run(progress=False)
    separate = Trainer(small(recipe, pack=pack), tmp_path / "separate")
    separate.run(progress=False)
    assert not torch.equal(t.G.net[0].weight, separate.G.net[0].weight)


def test_packed_training_runs_and_exports(tmp_path):
    from training.export import export

    t = Trainer(small("wgan-gp", pack=2, steps=2), tmp_path / "run")
    t.run(progress=False)
    export(tmp_path / "run", tmp_path / "m.onnx")
    assert_onnx_matches_run(tmp_path / "run", tmp_path / "m.onnx")


def test_class_conditional_batchnorm_steers_every_generator_block(tmp_path):
    from training.export import export
    from training.networks import ConditionalBatchNorm2d

    t = Trainer(small("cgan", g_conditioning="batchnorm", steps=2), tmp_path / "run")
    norms = [m for m in t.G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2  # one per hidden block at 16×16
    t.run(progress=False)
    # Same z, different class: the per-layer gains alone already change the image.
    g = t.G.eval()
    with torch.no_grad():
        z = torch.randn(1, 100)
        a, b = g(z, torch.eye(10)[:1]), g(z, torch.eye(10)[1:2])
        norms[0].gain.weight.zero_()
        norms[0].bias.weight.zero_()
        assert not torch.equal(g(z, torch.eye(10)[:1]), a)
    assert not torch.equal(a, b)
    report = export(tmp_path / "run", tmp_path / "m.onnx")
    assert sorted(report.max_abs_diff) == [1, 7, 64] and max(report.max_abs_diff.values()) <= 1e-4
    assert_onnx_matches_run(tmp_path / "run", tmp_path / "m.onnx")


def test_resize_upsampling_generator_exports(tmp_path):
    from training.export import export

    cfg = small("dcgan", g_upsample="bilinear", steps=2)
    t = Trainer(cfg, tmp_path / "run")
    transposed = [m for m in t.G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == 1  # only the 1×1 → 4×4 projection; every doubling is resize + 3×3 conv
    assert sum(isinstance(m, torch.nn.Upsample) for m in t.G.modules()) == 2
    assert t.G(torch.randn(3, 100)).shape == (3, 1, 16, 16)
    t.run(progress=False)
    export(tmp_path / "run", tmp_path / "m.onnx")
    assert_onnx_matches_run(tmp_path / "run", tmp_path / "m.onnx")


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_reading_the_export_generator_leaves_training_modes_alone(tmp_path, ema_decay):
    """Without EMA the export generator is G itself: sampling from it must not leave G in eval mode
    (BatchNorm would train on running statistics from then on)."""
    t = Trainer(small("dcgan", ema_decay=ema_decay, steps=2, sample_every=1), tmp_path / "run")
    assert t.G.training
    g = t.export_generator
    assert t.G.training and g is (t.G if ema_decay == 0 else t.G_ema)
    t.write_samples()
    assert t.G.training and g.training == (ema_decay == 0)
    t.run(progress=False)  # samples every step
    assert t.G.training


def test_same_seed_same_weights(tmp_path):
    a, b = Trainer(small("dcgan"), tmp_path / "a"), Trainer(small("dcgan"), tmp_path / "b")
    a.run(progress=False)
    b.run(progress=False)
    for (k, x), y in zip(a.G.state_dict().items(), b.G.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


@pytest.mark.parametrize("recipe", ["dcgan", "wgan"])
def test_the_ema_copy_changes_nothing_else(tmp_path, recipe):
    """A run with --ema-decay trains the very G and D of the same run without it (the average is a side
    copy): exporting a run's raw G is exporting what the config without EMA trains (shipped digits-wgan)."""
    plain = Trainer(small(recipe, steps=5), tmp_path / "plain")
    plain.run(progress=False)
    averaged = Trainer(small(recipe, steps=5, ema_decay=0.9, ema_start=2), tmp_path / "ema")
    averaged.run(progress=False)
    assert averaged.G_ema is not None and plain.G_ema is None
    for name in ("G", "D"):
        for (k, x), y in zip(
            getattr(plain, name).state_dict().items(),
            getattr(averaged, name).state_dict().values(),
            strict=True,
        ):
            assert torch.equal(x, y), f"{name}.{k}"
    ema = averaged.G_ema.state_dict()
    assert any(not torch.equal(v, ema[k]) for k, v in averaged.G.state_dict().items())  # it did average


@pytest.mark.parametrize("recipe", ["dcgan", "wgan-gp"])
def test_resume_equals_continuous_run(tmp_path, recipe):
    full = Trainer(small(recipe, steps=6, ema_decay=0.9), tmp_path / "full")
    full.run(progress=False)
    part = Trainer(small(recipe, steps=3, ema_decay=0.9), tmp_path / "part")
    part.run(progress=False)
    resumed = Trainer(small(recipe, steps=6, ema_decay=0.9), tmp_path / "part")
    resumed.load()
    assert resumed.state.step == 3
    resumed.run(progress=False)
    for name in ("G", "D", "G_ema"):
        for (k, x), y in zip(
            getattr(full, name).state_dict().items(),
            getattr(resumed, name).state_dict().values(),
            strict=True,
        ):
            assert torch.equal(x, y), f"{name}.{k}"
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps))


def test_cli_resume_matches_uninterrupted(tmp_path):
    args = ["training", "train", "--recipe", "cgan", "--seed", "5", *TINY]
    run_cli(*args, "--steps", "4", "--out", str(tmp_path / "full"))
    run_cli(*args, "--steps", "2", "--out", str(tmp_path / "part"))
    run_cli("training", "train", "--resume", "--steps", "4", "--out", str(tmp_path / "part"), "--no-progress")
    a = torch.load(tmp_path / "full" / CHECKPOINT, weights_only=True)["G"]
    b = torch.load(tmp_path / "part" / CHECKPOINT, weights_only=True)["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_writes_its_artifacts(tmp_path):
    from gancore.contract import to_uint8
    from gancore.imaging import tile
    from training.trainer import evaluating, one_hot

    t = Trainer(small("cgan"), tmp_path)
    t.run(progress=False)
    with Image.open(tmp_path / "losses.png") as plot:
        assert plot.format == "PNG" and min(plot.size) >= 100
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    # the last sample grid is exactly the export generator's images of the fixed noise, 8 per row
    with evaluating(t.export_generator) as g, torch.no_grad():
        want = tile(to_uint8(g(t.fixed_z, one_hot(t.fixed_y, 10)).numpy()), columns=8)
    got = np.asarray(Image.open(tmp_path / "samples" / "step_000004.png"))
    assert np.array_equal(got.reshape(want.shape), want)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and {"d_loss", "g_loss"} <= rows[-1].keys()


# ---- data sets --------------------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(40) % 10)
    return tmp_path


def test_idx_dataset_loads_from_cache(idx_dir):
    ds = load_dataset("fashion-mnist", 16, data_dir=idx_dir)
    assert ds.images.shape == (40, 16, 16, 1) and ds.num_classes == 10 and ds.class_names[9] == "Ankle boot"


def test_idx_train_and_export(idx_dir, tmp_path):
    run_cli("training", "train", "--dataset", "mnist", "--data-dir", str(idx_dir), "--steps", "1",
            "--out", str(tmp_path / "run"), *TINY)  # fmt: skip
    run_cli("training", "export", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx"))


def test_bad_idx_file_is_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x03garbage"))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(4))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", 16, data_dir=tmp_path)
    assert read_idx(tmp_path / "train-labels-idx1-ubyte.gz").tolist() == [0, 1, 2, 3]


def test_download_verifies_checksum(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / "f.gz").write_bytes(b"payload")
    good = hashlib.md5(b"payload").hexdigest()
    with pytest.raises(DatasetError, match="checksum"):
        _download([src.as_uri() + "/"], "f.gz", "0" * 32, tmp_path / "cache" / "f.gz")
    assert not (tmp_path / "cache" / "f.gz").exists()
    _download([src.as_uri() + "/"], "f.gz", good, tmp_path / "cache" / "f.gz")
    assert (tmp_path / "cache" / "f.gz").read_bytes() == b"payload"


@pytest.fixture
def rgba_folder(tmp_path) -> Path:
    root = tmp_path / "shapes"
    for c, color in enumerate([(255, 0, 0, 128), (0, 0, 255, 255)]):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(10):
            Image.new("RGBA", (20 + i, 20), color).save(root / f"class{c}" / f"{i}.png")
    return root


def test_folder_dataset_keeps_alpha(rgba_folder):
    ds = load_dataset(f"folder:{rgba_folder}", 16, channels=4)
    assert ds.images.shape == (20, 16, 16, 4) and ds.class_names == ("class0", "class1")
    # Wider than tall: padded to square with transparency above and below, the picture's alpha kept.
    assert set(np.unique(ds.images[ds.labels == 0][:, 6:10, :, 3])) == {128}
    assert load_dataset(f"folder:{rgba_folder}", 16).images.shape[3] == 3


def test_folder_rgba_train_and_export(rgba_folder, tmp_path):
    run_cli("training", "train", "--recipe", "cgan", "--dataset", f"folder:{rgba_folder}", "--channels", "4",
            "--steps", "1", "--out", str(tmp_path / "run"), *TINY)  # fmt: skip
    run_cli("training", "export", str(tmp_path / "run"), "--out", str(tmp_path / "m.onnx"))
    import onnx

    meta = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert json.loads(meta["image_shape"]) == [4, 16, 16]
    assert json.loads(meta["class_names"]) == ["class0", "class1"]


@pytest.mark.parametrize(
    "make, dataset_args, message",
    [
        (lambda p: None, lambda p: ["--dataset", f"folder:{p}/missing"], "does not exist"),
        (
            lambda p: (p / "empty").mkdir(),
            lambda p: ["--dataset", f"folder:{p}/empty"],
            "holds no images",  # a plain folder is an unlabeled set now; an empty one has nothing to train on
        ),
        (
            lambda p: (
                (p / "d" / "a").mkdir(parents=True),
                (p / "d" / "a" / "x.png").write_bytes(b"not a png"),
            ),
            lambda p: ["--dataset", f"folder:{p}/d"],
            "cannot read image",
        ),
        (lambda p: None, lambda p: ["--dataset", "digits", "--image-size", "24"], "invalid choice"),
        (lambda p: None, lambda p: ["--dataset", "nope"], "unknown dataset"),
    ],
    ids=["missing", "empty", "unreadable", "size", "unknown"],
)
def test_bad_dataset_stops_before_training(tmp_path, make, dataset_args, message):
    make(tmp_path)
    out = tmp_path / "run"
    proc = run_cli(
        "training", "train", *dataset_args(tmp_path), "--steps", "1", "--out", str(out), check=False
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (out / CHECKPOINT).exists()


def test_unsupported_image_size_in_api():
    with pytest.raises(DatasetError, match="image size 24 is not supported"):
        load_dataset("digits", 24)


def test_quality_curve_checkpoints_equal_a_plain_training_run(tmp_path, monkeypatch):
    """benchmarks/quality_curve.py trains exactly what `train --steps N` trains, so a row can be shipped."""
    from benchmarks import quality_curve

    monkeypatch.setenv("GANSERVE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["--recipe", "dcgan", "--image-size", "16", "--g-width", "16", "--d-width", "16"]
    args += ["--batch-size", "16", "--ema-decay", "0.9"]
    curve = tmp_path / "curve"
    assert quality_curve.main([*args, "--steps", "4", "--eval-every", "2", "--eval-samples", "100",
                               "--evaluator-epochs", "1", "--keep-checkpoints", "--also-raw",
                               "--out", str(curve)]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (curve / "curve.jsonl").read_text().splitlines()]
    assert [(r["step"], r["generator"]) for r in rows] == [(2, "ema"), (2, "raw"), (4, "ema"), (4, "raw")]
    assert all(r["kl_to_real"] >= 0 and r["frechet_ratio"] > 0 for r in rows)
    run_cli("training", "train", *args, "--steps", "2", "--out", str(tmp_path / "plain"), "--no-progress")
    kept = torch.load(curve / "checkpoint-000002.pt", weights_only=True)
    plain = torch.load(tmp_path / "plain" / CHECKPOINT, weights_only=True)
    for key in ("G", "G_ema", "D"):
        for name, value in plain[key].items():
            assert torch.equal(value, kept[key][name]), (key, name)
    assert kept["state"]["cpu_seconds"] > 0  # training time only, recorded for the card
