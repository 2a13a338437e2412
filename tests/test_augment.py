"""Augmentation: mirror flips and DiffAugment (color, translation, cutout) on the critic's inputs."""

from __future__ import annotations

import pytest
import torch

from training.augment import Augmenter, color, cutout, mirror, translation
from training.config import AugmentConfig, override, parse_policy, preset, validate
from training.trainer import Trainer

POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def images(channels: int, n: int = 16, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def rng(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_policy_changes_the_input_keeps_the_range_and_passes_gradients(name, channels):
    x = images(channels).requires_grad_()
    y = POLICIES[name](x, rng())
    assert y.shape == x.shape and not torch.equal(y, x)
    assert y.min() >= -1 and y.max() <= 1
    (y * torch.linspace(0, 1, y.numel()).view_as(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # differentiable: G learns through T


def test_color_leaves_alpha_alone_and_jitters_each_image_differently():
    x = images(4)
    y = color(x, rng())
    assert torch.equal(y[:, 3], x[:, 3])
    shift = (y[:, :3] - x[:, :3]).mean(dim=(1, 2, 3))
    assert shift.std() > 0.05  # per-image draws, not one for the batch


def test_translation_moves_content_by_at_most_an_eighth_with_fill():
    x = torch.full((64, 3, 16, 16), -0.5)
    x[:, :, 8, 8] = 1.0  # one bright pixel
    y = translation(x, rng())
    where = [(img[0] == 1.0).nonzero()[0].tolist() for img in y]
    offsets = {(r - 8, c - 8) for r, c in where}
    assert max(max(abs(a), abs(b)) for a, b in offsets) == 2 and len(offsets) > 5  # ±16/8
    assert (y == 0).any()  # the uncovered border is filled with 0, as in the paper
    rgba = translation(images(4, n=64), rng())
    assert (rgba == -1).all(dim=1).any()  # RGBA: the uncovered border is transparent


def test_cutout_blanks_one_square_of_half_the_size():
    x = torch.ones(64, 3, 16, 16)
    y = cutout(x, rng())
    holes = (y == 0).all(dim=1).flatten(1).sum(1)
    assert holes.max() == 64 and holes.min() > 0  # 8×8 at most (clipped at the borders)
    assert (cutout(torch.ones(8, 4, 16, 16), rng()) == -1).any()  # RGBA: transparent hole


def test_mirror_flips_about_half_the_images():
    x = images(3, n=200)
    y = mirror(x, rng())
    flipped = torch.tensor([torch.equal(a, b.flip(2)) for a, b in zip(x, y, strict=True)])
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(x, y, strict=True)])
    assert (flipped | kept).all() and 70 < flipped.sum() < 130


def test_draws_come_from_the_runs_generator():
    x = images(3)
    a = Augmenter(AugmentConfig(mirror=True, diffaugment="color,translation,cutout"), rng(1))
    b = Augmenter(AugmentConfig(mirror=True, diffaugment="cutout,color,translation"), rng(1))  # same policy
    assert torch.equal(a.critic_input(a.real(x)), b.critic_input(b.real(x)))
    c = Augmenter(AugmentConfig(diffaugment="color"), rng(2))
    assert not torch.equal(a.critic_input(x), c.critic_input(x))


def test_off_draws_nothing_and_returns_the_inputs():
    g = rng()
    before = g.get_state()
    off = Augmenter(AugmentConfig(), g)
    x = images(3)
    assert off.real(x) is x and off.critic_input(x) is x
    assert torch.equal(g.get_state(), before)  # the run's random stream is exactly as without the option


def test_policy_is_checked_naming_the_flag():
    assert parse_policy("cutout, color") == ("color", "cutout")
    with pytest.raises(ValueError, match="--diffaugment: unknown policy flip"):
        validate(override(preset("dcgan"), diffaugment="color,flip"))


def small(**changes):
    base = dict(image_size=16, g_width=8, d_width=8, batch_size=16, sample_every=100, checkpoint_every=100)
    return override(preset("wgan-gp"), **{**base, **changes})


def test_generator_learns_through_diffaugment_and_resume_stays_exact(tmp_path):
    aug = dict(mirror=True, diffaugment="color,translation,cutout", n_critic=2)
    t = Trainer(small(**aug, steps=1), tmp_path / "probe")
    z = torch.randn(8, t.cfg.model.latent_dim)
    score = t.D(t.augment.critic_input(t.G(z))).sum()
    grads = torch.autograd.grad(score, list(t.G.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)

    full = Trainer(small(**aug, steps=4), tmp_path / "full")
    full.run(progress=False)
    Trainer(small(**aug, steps=2), tmp_path / "part").run(progress=False)
    resumed = Trainer(small(**aug, steps=4), tmp_path / "part")
    resumed.load()
    resumed.run(progress=False)
    for k, v in full.G.state_dict().items():
        assert torch.equal(v, resumed.G.state_dict()[k]), k
    plain = Trainer(small(n_critic=2, steps=4), tmp_path / "plain")
    plain.run(progress=False)
    assert not torch.equal(plain.G.net[0].weight, full.G.net[0].weight)  # the options are wired in
