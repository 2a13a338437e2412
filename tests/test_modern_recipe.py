"""The modern recipe's parts (relativistic loss, R1/R2, residual networks, the r3gan preset) and the 1000-mode
benchmark's data set and instrument, each checked against a case whose answer is known."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import run_cli
from training.config import ModelConfig, TrainConfig, preset, validate
from training.data import load_dataset
from training.data.builtin import stack_indices
from training.evaluate.modes import MODES, count_modes, real_stacks
from training.networks import build_networks
from training.networks.resnet import ResidualBlock, ResnetCritic, ResnetGenerator, widths
from training.objectives import critic_loss, generator_loss, zero_centred_penalty
from training.trainer import Trainer

SMALL_R3GAN = ["--recipe", "r3gan", "--g-width", "8", "--d-width", "8", "--batch-size", "16", "--no-progress"]


# ---- the instrument ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stacks() -> np.ndarray:
    return load_dataset("stacked-digits", 16).images


def test_stacked_digits_hold_three_digits_and_every_mode(stacks):
    from sklearn.datasets import load_digits

    assert stacks.shape == (50_000, 16, 16, 3) and stacks.dtype == np.uint8
    idx = stack_indices()
    truth = load_digits().target[idx]
    modes = truth[:, 0] * 100 + truth[:, 1] * 10 + truth[:, 2]
    assert len(np.unique(modes)) == MODES  # the data itself holds all 1000 modes
    gray = load_dataset("digits", 16).images[..., 0]
    for c in range(3):  # channel c of stack i is digit idx[i, c], as the labels say
        assert np.array_equal(stacks[:50, :, :, c], gray[idx[:50, c]])


def test_mode_counter_on_known_cases(stacks):
    real = count_modes(real_stacks(stacks))
    assert real.samples == 26_000 and real.modes == MODES and real.kl < 0.05  # ≈ 999 / (2 · 26,000)

    rng = np.random.default_rng(1)
    hundred = stacks[rng.choice(len(stacks), 100, replace=False)]
    truth = count_modes(hundred)  # the modes those 100 stacks hold (some share one)
    repeated = count_modes(hundred[np.arange(26_000) % 100])
    assert repeated.modes == truth.modes and 85 <= repeated.modes <= 100
    assert repeated.kl > math.log(MODES / 100) - 0.05  # ≥ log 10 for ≤ 100 equally likely modes

    one = count_modes(np.repeat(stacks[:1], 1000, axis=0))
    assert one.modes == 1 and one.kl == pytest.approx(math.log(MODES), abs=1e-3)


def test_stacked_digits_refuses_other_channel_counts():
    with pytest.raises(ValueError, match="stacked-digits has 3 channels.*--channels 1"):
        load_dataset("stacked-digits", 16, 1)


# ---- losses and penalties ------------------------------------------------------------------------------
def test_relativistic_losses_pair_real_and_fake_by_position():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    sp = torch.nn.functional.softplus
    assert critic_loss("relativistic", real, fake) == pytest.approx(sp(fake - real).mean().item())
    assert generator_loss("relativistic", fake, real) == pytest.approx(sp(real - fake).mean().item())
    # Pairing, not batch means: swapping the fakes changes the loss.
    assert critic_loss("relativistic", real, fake.flip(0)) != pytest.approx(
        critic_loss("relativistic", real, fake)
    )
    with pytest.raises(ValueError, match="real images' scores"):
        generator_loss("relativistic", fake)


def test_zero_centred_penalty_is_half_the_squared_gradient_norm():
    w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # D(x) = <w, x>: ∇D = w for every sample, ‖w‖² = 30
    x = torch.randn(6, 1, 2, 2, requires_grad=True)
    score = (x * w).flatten(1).sum(1)
    assert zero_centred_penalty(score, x).item() == pytest.approx(15.0)
    # A critic that packs 2 images per score: the squared norm is summed over the group.
    packed = (x * w).reshape(3, -1).sum(1)
    assert zero_centred_penalty(packed, x, group=2).item() == pytest.approx(30.0)
    # Zero-centred: a flat critic pays nothing (WGAN-GP's one-centred penalty would charge it 1).
    assert zero_centred_penalty((x * 0).flatten(1).sum(1), x).item() == 0.0


def test_lazy_penalties_run_on_every_kth_critic_step(monkeypatch, tmp_path):
    cfg = replace(
        preset("r3gan"),
        dataset="digits",
        batch_size=16,
        model=replace(preset("r3gan").model, image_size=16, g_width=8, d_width=8),
    )
    calls: list[int] = []

    def run(every: int, n_critic: int) -> list[int]:
        calls.clear()
        c = replace(cfg, objective=replace(cfg.objective, penalty_every=every, n_critic=n_critic))
        t = Trainer(c, tmp_path)
        original = t._zero_centred_penalties

        def counted(*args: torch.Tensor) -> torch.Tensor:
            calls.append(t.state.critic_steps)
            return original(*args)

        monkeypatch.setattr(t, "_zero_centred_penalties", counted)
        for _ in range(4):
            t.train_step()
        return list(calls)

    assert run(1, 1) == [1, 2, 3, 4]
    assert run(3, 1) == [1, 4]  # critic steps 0 and 3 (counted before the step: 1 and 4 after)
    assert run(2, 2) == [1, 3, 5, 7]  # counted in critic steps, whatever n_critic is


# ---- the residual networks -----------------------------------------------------------------------------
def test_residual_blocks_start_as_the_identity():
    block = ResidualBlock(16, total_blocks=4)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_resnet_shapes_and_widths(size):
    cfg = ModelConfig(arch="resnet", image_size=size, channels=3, g_width=8, d_width=8, g_norm="none",
                      d_norm="none", g_upsample="bilinear")  # fmt: skip
    assert widths(8, size)[-1] == 8 and widths(8, size)[0] == 8 * 2 ** (len(widths(8, size)) - 1)
    g, d = ResnetGenerator(cfg), ResnetCritic(cfg)
    images = g(torch.randn(5, 100))
    assert images.shape == (5, 3, size, size)
    assert d(images).shape == (5,)


def test_resnet_conditioning_pack_and_heads():
    base = dict(arch="resnet", image_size=16, channels=1, g_width=8, d_width=8, g_norm="none", d_norm="none",
                g_upsample="bilinear", conditional=True, num_classes=10)  # fmt: skip
    y = torch.eye(10)[torch.arange(6) % 10]
    g = ResnetGenerator(ModelConfig(**base))
    torch.manual_seed(0)
    z = torch.randn(6, 100)
    # The label steers G: same z, another class → another image (after a step away from the zero init).
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert not torch.allclose(g(z, y), g(z, y.roll(1, 0)))
    proj = ResnetCritic(ModelConfig(**base, d_conditioning="projection", aux_classifier=True))
    score, classes = proj.score_and_classes(g(z, y), y)
    assert score.shape == (6,) and classes.shape == (6, 10)
    packed = ResnetCritic(ModelConfig(**base, d_conditioning="concat", pack=2, minibatch_std=True))
    assert packed(g(z, y), y).shape == (3,)


def test_r3gan_preset_and_refused_combinations():
    cfg = preset("r3gan")
    assert (cfg.model.arch, cfg.objective.kind, cfg.model.g_norm, cfg.model.d_norm) == (
        "resnet", "relativistic", "none", "none")  # fmt: skip
    assert (
        cfg.objective.r1 > 0 and cfg.objective.r2 > 0 and cfg.optim.beta1 == 0.0 and cfg.optim.beta2 == 0.99
    )
    assert cfg.ema_decay > 0
    validate(cfg)
    refusals = [
        (
            preset("wgan-gp"),
            {"d_norm": "batch"},
            "--gp-weight penalises each sample's gradient.*--d-norm batch",
        ),
        (preset("dcgan"), {"r1": 1.0}, "--r1 penalises each sample's gradient.*--d-norm batch"),
        (
            preset("dcgan"),
            {"arch": "resnet"},
            "--arch resnet.*--g-norm none, --d-norm none, --g-upsample bilinear",
        ),
        (cfg, {"penalty_every": 0}, "--penalty-every must be at least 1"),
        (cfg, {"blocks": 0}, "--blocks must be at least 1"),
        (cfg, {"r2": -1.0}, "--r2 must be 0"),
    ]
    from training.config import override

    for base, change, message in refusals:
        with pytest.raises(ValueError, match=message):
            validate(override(base, **change))


def test_dcgan_networks_unchanged_by_the_builder():
    """build_networks draws the DCGAN weights in the order earlier runs did (golden images depend on it)."""
    from training.networks import Critic, Generator, init_weights

    cfg = ModelConfig(image_size=16, channels=1, g_width=16, d_width=16)
    torch.manual_seed(7)
    g, d = build_networks(cfg)
    torch.manual_seed(7)
    g2, d2 = Generator(cfg), Critic(cfg)
    g2.apply(init_weights)
    d2.apply(init_weights)
    for a, b in zip([*g.state_dict().values(), *d.state_dict().values()],
                    [*g2.state_dict().values(), *d2.state_dict().values()], strict=True):  # fmt: skip
        assert torch.equal(a, b)


# ---- end to end ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dataset", "size", "extra", "shape"),
    [
        ("stacked-digits", 16, [], [3, 16, 16]),
        ("digits", 16, ["--conditional", "--channels", "4"], [4, 16, 16]),
        ("digits", 32, ["--channels", "1", "--diffaugment", "translation,cutout", "--penalty-every", "2"],
         [1, 32, 32]),
    ],
)  # fmt: skip
def test_r3gan_trains_exports_and_matches_onnx(tmp_path, dataset, size, extra, shape):
    run = tmp_path / "run"
    size_flags = ["--dataset", dataset, "--image-size", str(size), "--steps", "3"]
    run_cli("training", "train", *SMALL_R3GAN, *size_flags, "--out", str(run), *extra)
    out = tmp_path / "m.onnx"
    proc = run_cli("training", "export", str(run), "--out", str(out))
    assert "max |diff|" in proc.stdout + proc.stderr
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["image_shape"]) == shape and meta["recipe"] == "r3gan"
    feeds = {"z": np.random.default_rng(0).standard_normal((4, 100), dtype=np.float32) * 30}
    if "--conditional" in extra:
        feeds["label"] = np.eye(10, dtype=np.float32)[:4]
    (image,) = sess.run(None, feeds)
    assert image.shape == (4, *shape) and image.min() >= -1 and image.max() <= 1  # clipped to the contract


def test_evaluate_reports_modes_for_stacked_digits(tmp_path):
    run = tmp_path / "run"
    run_cli("training", "train", *SMALL_R3GAN, "--dataset", "stacked-digits", "--image-size", "16",
            "--steps", "2", "--out", str(run))  # fmt: skip
    out = tmp_path / "m.onnx"
    run_cli("training", "export", str(run), "--out", str(out))
    report = tmp_path / "q.json"
    proc = run_cli("training", "evaluate", str(out), "--samples", "500", "--autoencoder-steps", "50",
                   "--json", str(report),
                   timeout=900)  # fmt: skip
    q = json.loads(report.read_text())
    assert q["modes_samples"] == 26_000 and 1 <= q["modes"] <= MODES and q["modes_kl"] > 0
    assert q["real_modes"] == MODES and q["real_modes_kl"] < 0.05
    assert {"modes", "modes_kl"} <= {t["name"] for t in q["targets"]}
    assert "modes (of 1000) in 26000 samples" in proc.stdout


def test_trainer_config_round_trip_keeps_new_fields():
    cfg = replace(preset("r3gan"), objective=replace(preset("r3gan").objective, penalty_every=4))
    back = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg


# ---- the small-data preset: the settings the real-data comparison measured best ------------------------
def test_small_data_preset_is_the_setting_the_comparison_measured():
    """The preset users are told to run on their own pictures is exactly the measured run's settings."""
    from tests.conftest import ROOT

    measured = TrainConfig.load(ROOT / "benchmarks/realdata/emoji-2-nearest.json")
    cfg = preset("small-data")
    unsized = ("image_size", "channels")  # the data decides these, not the preset
    projection = replace(measured.model, d_conditioning="projection")  # used only when conditional
    assert replace(cfg.model, image_size=64, channels=4) == projection
    assert [getattr(cfg.model, f) for f in unsized] == [32, None]
    assert cfg.augment == measured.augment and cfg.objective == measured.objective
    assert cfg.optim == measured.optim
    assert (cfg.ema_decay, cfg.ema_start) == (measured.ema_decay, measured.ema_start)


@pytest.mark.parametrize("extra", [[], ["--conditional"]], ids=["unconditional", "conditional"])
def test_small_data_preset_trains_and_exports(tmp_path, extra):
    run = tmp_path / "run"
    small = ["--g-width", "8", "--d-width", "8", "--batch-size", "8", "--steps", "2", "--no-progress"]
    args = ["--recipe", "small-data", "--dataset", "digits", "--image-size", "16", *extra, *small]
    run_cli("training", "train", *args, "--out", str(run))
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["g_upsample"] == "nearest" and saved["augment"]["diffaugment"]
    out = run_cli("training", "export", str(run), "--out", str(tmp_path / "m.onnx")).stdout
    assert "ONNX Runtime vs PyTorch: max |diff|" in out
