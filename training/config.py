"""Typed training configuration: objective, conditioning and normalization are independent choices.

The four recipe names are presets over the same dataclasses, so e.g. a conditional WGAN-GP is
``--recipe wgan-gp --conditional``, not new code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

Objective = Literal["bce", "wasserstein"]
GenNorm = Literal["batch", "none"]
CriticNorm = Literal["batch", "layer", "spectral", "none"]
Conditioning = Literal["concat", "projection"]
GenConditioning = Literal["input", "batchnorm"]
Upsample = Literal["transposed", "nearest", "bilinear"]
Optimizer = Literal["adam", "rmsprop"]

RECIPES = ("dcgan", "wgan", "wgan-gp", "cgan")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")  # Zhao et al. 2020, applied in this order


def parse_policy(text: str) -> tuple[str, ...]:
    """``"color,translation"`` → the policies in DiffAugment's order; raises ValueError naming the flag."""
    names = {p.strip() for p in text.split(",") if p.strip()}
    unknown = sorted(names - set(DIFFAUGMENT_POLICIES))
    if unknown:
        raise ValueError(
            f"--diffaugment: unknown policy {', '.join(unknown)}; use a comma-separated subset of "
            f"{','.join(DIFFAUGMENT_POLICIES)}"
        )
    return tuple(p for p in DIFFAUGMENT_POLICIES if p in names)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and critic architecture (DCGAN-style, depth derived from the image size)."""

    latent_dim: int = 100
    image_size: int = 32
    channels: int | None = None  # None: the data set's own (1 for digits/IDX, 3 for folders)
    conditional: bool = False
    num_classes: int = 0  # filled from the dataset when conditional
    g_width: int = 128  # channels of G's last hidden layer; doubled at each earlier stage
    d_width: int = 128  # channels of D's first layer; doubled at each later stage
    g_norm: GenNorm = "batch"
    # How G doubles its resolution: the DCGAN paper's 4×4 stride-2 transposed convolutions, or a resize then
    # a 3×3 convolution (Odena et al. 2016), which cannot draw the transposed convolution's checkerboard.
    g_upsample: Upsample = "transposed"
    d_norm: CriticNorm = "batch"
    d_conditioning: Conditioning = "concat"  # label maps on D's input, or a projection head
    # "input": the label joins z (the CGAN paper); "batchnorm": also class-conditional BatchNorm gains and
    # biases in every G block (as in SNGAN/BigGAN), so the class steers every layer, not only the first.
    g_conditioning: GenConditioning = "input"
    minibatch_std: bool = False  # append a minibatch standard-deviation feature map before D's last layer
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges this many samples at once, stacked on channels
    aux_classifier: bool = False  # AC-GAN head on D: it learns real classes, G is scored on asked-for ones


@dataclass(frozen=True)
class ObjectiveConfig:
    """Loss of the game and the critic's constraint."""

    kind: Objective = "bce"
    gp_weight: float = 0.0  # gradient penalty λ (WGAN-GP); 0 disables it
    clip: float = 0.0  # weight clipping bound (WGAN); 0 disables it
    n_critic: int = 1  # critic steps per generator step
    critic_boost: bool = False  # WGAN paper: 100 critic steps for the first 25 G steps and every 500th
    aux_weight: float = 1.0  # weight of the auxiliary classifier's cross-entropy (when the model has one)
    # Score real and fake images in one critic call, so a BatchNorm critic normalizes them with shared
    # statistics: with separate calls each batch is centred on its own mean, which hides from the critic
    # how the fake batch as a whole differs from the real one (e.g. in how often each digit appears).
    joint_batch: bool = False


@dataclass(frozen=True)
class OptimConfig:
    """Optimizers of both players; a two time-scale update is just lr_d != lr_g."""

    name: Optimizer = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999


@dataclass(frozen=True)
class DataConfig:
    """How the data set's files become training images (the spec itself is ``TrainConfig.dataset``)."""

    pad: str = field(
        default="black",
        metadata={"help": "colour that pads non-square pictures to square (and flattens alpha) for 1 or 3 "
                  "channels: a name or #rrggbb; RGBA pads with transparency"},
    )  # fmt: skip
    skip_bad_images: bool = field(
        default=False,
        metadata={"help": "leave out files Pillow cannot read (their count and first names are printed) "
                  "instead of stopping"},
    )  # fmt: skip
    skin_tones: bool = field(
        default=False, metadata={"help": "emoji: add the skin-tone variants (People & Body becomes 60%)"}
    )
    workers: int = field(
        default=0,
        metadata={"help": "worker processes that decode folders and prefetch batches from the decoded cache"},
    )


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of what the critic sees; all off in the presets (off = the same runs as before)."""

    mirror: bool = field(default=False, metadata={"help": "random horizontal flips of real images"})
    diffaugment: str = field(
        default="",
        metadata={"help": "DiffAugment policy (Zhao et al. 2020) for real and fake critic inputs: "
                  "comma-separated color, translation, cutout"},
    )  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the seed, it determines the weights)."""

    recipe: str = "dcgan"
    dataset: str = "digits"
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = 2000  # generator steps
    batch_size: int = 64
    seed: int = 0
    ema_decay: float = 0.0  # exponential moving average of G's weights; 0 disables it
    ema_start: int = 0  # G step at which the average starts (before it, it tracks G exactly)
    threads: int = 1
    sample_every: int = 250
    checkpoint_every: int = 250
    log_every: int = 10
    data_dir: str | None = None  # cache folder for downloaded data sets

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        model = ModelConfig(**data.pop("model"))
        objective = ObjectiveConfig(**data.pop("objective"))
        optim = OptimConfig(**data.pop("optim"))
        data_cfg = DataConfig(**data.pop("data", {}))  # absent from runs made before these sections
        augment = AugmentConfig(**data.pop("augment", {}))
        known = {f.name for f in fields(cls)}
        return cls(
            model=model,
            objective=objective,
            optim=optim,
            data=data_cfg,
            augment=augment,
            **{k: v for k, v in data.items() if k in known},
        )

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def preset(recipe: str) -> TrainConfig:
    """The published settings of a recipe, before any command-line override."""
    if recipe == "dcgan":
        return TrainConfig(recipe=recipe)
    if recipe == "wgan":
        return TrainConfig(
            recipe=recipe,
            objective=ObjectiveConfig(kind="wasserstein", clip=0.01, n_critic=5),
            optim=OptimConfig(name="rmsprop", lr_g=5e-5, lr_d=5e-5),
        )
    if recipe == "wgan-gp":
        return TrainConfig(
            recipe=recipe,
            model=ModelConfig(d_norm="layer"),
            objective=ObjectiveConfig(kind="wasserstein", gp_weight=10.0, n_critic=5),
            optim=OptimConfig(name="adam", lr_g=1e-4, lr_d=1e-4, beta1=0.0, beta2=0.9),
        )
    if recipe == "cgan":
        return TrainConfig(recipe=recipe, model=ModelConfig(conditional=True))
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the setting when a combination cannot be trained."""
    m = cfg.model
    if m.pack < 1:
        raise ValueError(f"pack must be at least 1, got {m.pack}")
    if cfg.batch_size % m.pack:
        raise ValueError(f"batch size {cfg.batch_size} is not a multiple of pack {m.pack}")
    if m.pack > 1 and m.conditional and m.d_conditioning == "projection":
        raise ValueError("pack > 1 needs one label per critic input: use --d-conditioning concat")
    if m.g_conditioning == "batchnorm" and (not m.conditional or m.g_norm != "batch"):
        raise ValueError("--g-conditioning batchnorm needs a conditional model with --g-norm batch")
    if m.aux_classifier and not m.conditional:
        raise ValueError("--aux-classifier needs a conditional model (--conditional or --recipe cgan)")
    if cfg.objective.joint_batch and m.minibatch_std:
        raise ValueError(
            "--joint-batch mixes real and fake images in one batch, so --minibatch-std would measure the "
            "mixture: use one of them"
        )
    if m.aux_classifier and m.pack > 1:
        raise ValueError("--aux-classifier classifies single images: it cannot be combined with pack > 1")
    if cfg.data.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {cfg.data.workers}")
    parse_policy(cfg.augment.diffaugment)


def override(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """Apply flat overrides (``lr_g=...``, ``n_critic=...``) to whichever section owns each name."""
    sections = {
        "model": ModelConfig,
        "objective": ObjectiveConfig,
        "optim": OptimConfig,
        "data": DataConfig,
        "augment": AugmentConfig,
    }
    per_section: dict[str, dict[str, Any]] = {name: {} for name in sections}
    top: dict[str, Any] = {}
    for key, value in changes.items():
        if value is None:
            continue
        owner = next((s for s, cls in sections.items() if key in {f.name for f in fields(cls)}), None)
        if owner is None:
            top[key] = value
        else:
            per_section[owner][key] = value
    updated = {s: replace(getattr(cfg, s), **vals) for s, vals in per_section.items() if vals}
    return replace(cfg, **top, **updated)
