"""Typed training configuration: objective, conditioning and normalization are independent choices.

The four recipe names are presets over the same dataclasses, so e.g. a conditional WGAN-GP is
``--recipe wgan-gp --conditional``, not new code.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from training import SUPPORTED_CHANNELS, SUPPORTED_IMAGE_SIZES
from training.watch import LOWER_IS_BETTER

Objective = Literal["bce", "wasserstein", "relativistic"]
Arch = Literal["dcgan", "resnet"]
GenNorm = Literal["batch", "none"]
CriticNorm = Literal["batch", "layer", "spectral", "none"]
Conditioning = Literal["concat", "projection"]
GenConditioning = Literal["input", "batchnorm"]
Upsample = Literal["transposed", "nearest", "bilinear"]
Optimizer = Literal["adam", "rmsprop"]
Precision = Literal["fp32", "bf16", "fp16"]

RECIPES = ("dcgan", "wgan", "wgan-gp", "cgan", "r3gan", "small-data")
# The r3gan preset's widths and γ. Not yet tuned by measurement: the CPU ablation (docs/quality.md, "The
# 1000-mode benchmark") ran widths 16 and this γ, and found neither the best setting at its budget.
R3GAN_WIDTH = 32
R3GAN_GAMMA = 0.05  # the paper's CIFAR-10 (32×32) starting γ
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")  # Zhao et al. 2020, applied in this order
# Figures --best-metric may name: those training.watch knows the better direction of.
BEST_METRICS = tuple(LOWER_IS_BETTER)


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


def setting(default: Any, help: str, **meta: Any) -> Any:
    """A configuration field with its command-line help (``python -m training train`` derives its flags).

    Extra metadata: ``flag`` (the flag's name when not ``--field-name``), ``choices`` (allowed values of a
    non-``Literal`` field), ``cli=False`` (not a flag), ``resume=True`` (may change on ``--resume``).
    """
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class ModelConfig:
    """Generator and critic architecture (depth derived from the image size)."""

    # dcgan: the DCGAN paper's strided convolutions; resnet: R3GAN's normalization-free residual networks.
    arch: Arch = setting("dcgan", "network family of G and D (resnet: needs --g-norm none --d-norm none)")
    latent_dim: int = setting(100, "size of the noise vector z")
    image_size: int = setting(32, "image side in pixels", choices=SUPPORTED_IMAGE_SIZES)
    channels: int | None = setting(
        None, "image channels (default: the data set's own: 1 for digits/IDX, 3 for folders; 4 keeps RGBA)",
        choices=SUPPORTED_CHANNELS,
    )  # fmt: skip
    conditional: bool = setting(False, "condition G and D on the class label (CGAN)")
    num_classes: int = setting(0, "filled from the data set when conditional", cli=False)
    g_width: int = setting(
        128, "channels of G's last hidden layer (resnet: at the image's resolution); doubled at each earlier "
        "stage",
    )  # fmt: skip
    d_width: int = setting(
        128, "channels of D's first layer (resnet: at the image's resolution); doubled at each later stage"
    )
    blocks: int = setting(1, "residual blocks per resolution (--arch resnet)")
    g_norm: GenNorm = setting("batch", "normalization of G's blocks")
    # The DCGAN paper's 4×4 stride-2 transposed convolutions, or a resize then a 3×3 convolution
    # (Odena et al. 2016), which cannot draw the transposed convolution's checkerboard.
    g_upsample: Upsample = setting("transposed", "how G doubles its resolution")
    d_norm: CriticNorm = setting("batch", "normalization of the critic's layers")
    d_conditioning: Conditioning = setting("concat", "label maps on D's input, or a projection head")
    # "input": the label joins z (the CGAN paper); "batchnorm": also class-conditional BatchNorm gains and
    # biases in every G block (as in SNGAN/BigGAN), so the class steers every layer, not only the first.
    g_conditioning: GenConditioning = setting(
        "input", "the label joins z only, or also sets class-conditional BatchNorm gains in every G block"
    )
    minibatch_std: bool = setting(
        False, "append a minibatch standard-deviation feature map before D's last layer"
    )
    pack: int = setting(
        1, "PacGAN (Lin et al. 2018): samples the critic judges together, stacked on channels"
    )
    aux_classifier: bool = setting(
        False, "AC-GAN classifier head on the critic: it learns real classes, G is scored on asked-for ones"
    )


@dataclass(frozen=True)
class ObjectiveConfig:
    """Loss of the game and the critic's constraint."""

    # relativistic: RpGAN (Jolicoeur-Martineau 2019; R3GAN), each real image paired with a fake by position.
    kind: Objective = setting(
        "bce", "loss of the game (relativistic: D minimises softplus(D(fake) - D(real)), G the reverse)",
        flag="--objective",
    )  # fmt: skip
    gp_weight: float = setting(0.0, "gradient penalty weight λ (WGAN-GP); 0 disables it")
    # Zero-centred penalties (γ/2)·E‖∇D‖² (Mescheder et al. 2018), on the images before augmentation.
    r1: float = setting(0.0, "R1: zero-centred gradient penalty γ on real images; 0 disables it")
    r2: float = setting(0.0, "R2: zero-centred gradient penalty γ on generated images; 0 disables it")
    # Lazy regularisation (StyleGAN2): the penalties' double backward on one critic step in k, weighted k×.
    penalty_every: int = setting(1, "apply R1 and R2 on every k-th critic step only, with γ scaled by k")
    clip: float = setting(0.0, "clip the critic's weights to ±this after every critic step (WGAN); 0: off")
    n_critic: int = setting(1, "critic steps per generator step")
    critic_boost: bool = setting(
        False, "WGAN paper: 100 critic steps for the first 25 G steps and every 500th"
    )
    aux_weight: float = setting(1.0, "weight of the auxiliary classifier's cross-entropy")
    # With separate calls each batch is centred on its own mean, which hides from a BatchNorm critic how the
    # fake batch as a whole differs from the real one (e.g. in how often each digit appears).
    joint_batch: bool = setting(
        False, "score real and fake images in one critic call (shared BatchNorm statistics)"
    )


@dataclass(frozen=True)
class OptimConfig:
    """Optimizers of both players; a two time-scale update is just lr_d != lr_g."""

    name: Optimizer = setting("adam", "optimizer of both players", flag="--optimizer")
    lr_g: float = setting(2e-4, "generator learning rate")
    lr_d: float = setting(2e-4, "critic learning rate")
    beta1: float = setting(0.5, "Adam beta1")
    beta2: float = setting(0.999, "Adam beta2")


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
    """Augmentation of what the critic sees; off in every preset but small-data."""

    mirror: bool = field(default=False, metadata={"help": "random horizontal flips of real images"})
    diffaugment: str = field(
        default="",
        metadata={"help": "DiffAugment policy (Zhao et al. 2020) for real and fake critic inputs: "
                  "comma-separated color, translation, cutout"},
    )  # fmt: skip


# The sections of a TrainConfig, listed once: the JSON record, flat overrides and the command line's groups
# (training.flags) all follow this table.
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the seed, it determines the weights)."""

    recipe: str = setting("dcgan", "preset to start from", choices=RECIPES)
    dataset: str = setting(
        "digits",
        "digits, stacked-digits (the 1000-mode benchmark), mnist, fashion-mnist, emoji or folder:PATH",
    )
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    steps: int = setting(2000, "generator steps", resume=True)
    batch_size: int = setting(64, "global batch size (split across processes under torchrun)")
    seed: int = setting(0, "seed of every random draw")
    ema_decay: float = setting(0.0, "exponential moving average of G's weights; 0 disables it")
    ema_start: int = setting(0, "G step at which the average starts (before it, it tracks G exactly)")
    threads: int = setting(1, "torch CPU threads", resume=True)
    sample_every: int = setting(250, "write a sample grid every this many steps", resume=True)
    checkpoint_every: int = setting(250, "write the checkpoint every this many steps", resume=True)
    log_every: int = setting(10, "log the losses every this many steps", resume=True)
    # Kept copies cost disk, not weights: the checkpoint is written and copied, nothing else changes.
    keep_every: int = setting(
        0, "also keep a copy of the checkpoint every this many steps in RUN/checkpoints/step-NNNNNN.pt "
        "(0: off; `python -m training curve RUN` evaluates them)", resume=True,
    )  # fmt: skip
    eval_every: int = setting(
        2000, "every this many steps, measure the figures of `evaluate` on samples of G and of its EMA (into "
        "metrics.jsonl and TensorBoard) and keep the best step's checkpoint as RUN/best.pt (0: off)",
        resume=True,
    )  # fmt: skip
    eval_samples: int = setting(1000, "samples per --eval-every measurement", resume=True)
    best_metric: str = setting(
        "frechet_ratio", "the figure that picks RUN/best.pt (of the generator export ships)",
        choices=BEST_METRICS, resume=True,
    )  # fmt: skip
    tensorboard: bool = setting(True, "write TensorBoard event files into RUN/tensorboard", resume=True)
    data_dir: str | None = setting(
        None,
        "folder of mnist / fashion-mnist IDX files, or of an unpacked emoji-datasource-google package",
        resume=True,
    )
    device: str = setting(
        "auto", "auto (CUDA when torch sees one), cpu, cuda or cuda:N; under torchrun each rank takes "
        "cuda:LOCAL_RANK", resume=True,
    )  # fmt: skip
    precision: Precision = setting(
        "fp32", "fp32, or autocast to bf16 or fp16 (with a gradient scaler); penalty and losses stay fp32",
        resume=True,
    )  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        # a section absent from the record (runs made before it existed) holds its defaults
        parts = {name: section(**data.pop(name, {})) for name, section in SECTIONS.items()}
        known = {f.name for f in fields(cls)}
        return cls(**parts, **{k: v for k, v in data.items() if k in known})

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
    if recipe == "r3gan":
        # R3GAN (Huang et al. 2024): RpGAN + R1 + R2 on normalization-free residual nets, Adam (0, 0.99),
        # an EMA of G.
        return TrainConfig(
            recipe=recipe,
            model=ModelConfig(
                arch="resnet",
                g_norm="none",
                d_norm="none",
                g_upsample="bilinear",
                g_width=R3GAN_WIDTH,
                d_width=R3GAN_WIDTH,
                d_conditioning="projection",
            ),  # fmt: skip
            objective=ObjectiveConfig(kind="relativistic", r1=R3GAN_GAMMA, r2=R3GAN_GAMMA),
            optim=OptimConfig(name="adam", lr_g=2e-4, lr_d=2e-4, beta1=0.0, beta2=0.99),
            ema_decay=0.999,
        )
    if recipe == "small-data":
        # The settings that scored best per CPU-minute on the emoji set (a few thousand pictures; see
        # docs/quality.md, "Real data at equal CPU time"): a spectral-norm critic with DiffAugment and
        # mirroring, an EMA of G, and resize-then-convolve up-sampling, which matched the transposed
        # convolutions' figures there without their checkerboard. The relativistic loss with R1 + R2 scored
        # lower there; on Fashion-MNIST's 60,000 labelled images it scored higher, so it stays a flag.
        return TrainConfig(
            recipe=recipe,
            model=ModelConfig(
                g_width=32, d_width=32, d_norm="spectral", g_upsample="nearest", d_conditioning="projection"
            ),
            augment=AugmentConfig(mirror=True, diffaugment="color,translation,cutout"),
            steps=10000,
            ema_decay=0.995,
            ema_start=500,
        )
    raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the setting when a combination cannot be trained."""
    m = cfg.model
    if not re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", cfg.device):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    for name in ("steps", "batch_size", "threads", "sample_every", "checkpoint_every", "log_every"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.keep_every < 0:
        raise ValueError(f"--keep-every must be 0 (off) or more, got {cfg.keep_every}")
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
    o = cfg.objective
    for name in ("gp_weight", "r1", "r2"):
        if getattr(o, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be 0 (off) or more, got {getattr(o, name)}")
    if o.penalty_every < 1:
        raise ValueError(f"--penalty-every must be at least 1, got {o.penalty_every}")
    penalties = [f for f, v in (("--gp-weight", o.gp_weight), ("--r1", o.r1), ("--r2", o.r2)) if v > 0]
    if penalties and m.d_norm == "batch":
        raise ValueError(
            f"{' and '.join(penalties)} {'penalise' if len(penalties) > 1 else 'penalises'} each sample's "
            "gradient, but --d-norm batch mixes the samples "
            "of a batch: use --d-norm layer, spectral or none"
        )
    if m.arch == "resnet":
        wrong = []
        if m.g_norm != "none":
            wrong.append("--g-norm none")
        if m.d_norm != "none":
            wrong.append("--d-norm none")
        if m.g_upsample == "transposed":
            wrong.append("--g-upsample bilinear (or nearest)")
        if wrong:
            raise ValueError(
                "--arch resnet is normalization-free and resizes before it convolves: it needs "
                + ", ".join(wrong)
                + " (--recipe r3gan sets them)"
            )
    if m.blocks < 1:
        raise ValueError(f"--blocks must be at least 1, got {m.blocks}")
    if cfg.data.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {cfg.data.workers}")
    parse_policy(cfg.augment.diffaugment)


def override(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """Apply flat overrides (``lr_g=...``, ``n_critic=...``) to whichever section owns each name."""
    sections = SECTIONS
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
