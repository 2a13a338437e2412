"""The training loop: critic and generator steps, EMA, samples, metrics, checkpoints and resume.

Reproducibility: every random draw after initialisation comes from one seeded ``torch.Generator`` whose
state is checkpointed, and the data order is a pure function of (seed, epoch), so a run stopped and
resumed ends with exactly the weights of one that was not.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from service.contract import to_uint8
from service.files import atomic_path
from service.imaging import encode_png, tile
from training.config import TrainConfig, validate
from training.data import ImageDataset, load_dataset
from training.networks import Critic, Generator, init_weights
from training.objectives import critic_loss, generator_loss, gradient_penalty

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


@dataclass
class RunState:
    """Everything that changes during training and must survive a resume."""

    step: int = 0
    cursor: int = 0  # batches drawn so far
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


class BatchSampler:
    """Draws batches in a fresh permutation per epoch, the permutation a pure function of (seed, epoch)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, cursor: int) -> torch.Tensor:
        per_epoch = self.n // self.batch_size
        epoch, offset = divmod(cursor, per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[offset * self.batch_size : (offset + 1) * self.batch_size]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).float()


class Trainer:
    """Trains one generator/critic pair as configured; ``run()`` trains up to ``cfg.steps``."""

    def __init__(self, cfg: TrainConfig, out: Path, dataset: ImageDataset | None = None):
        validate(cfg)
        torch.set_num_threads(cfg.threads)
        self.out = Path(out)
        ds = dataset or load_dataset(cfg.dataset, cfg.model.image_size, cfg.model.channels, cfg.data_dir)
        if len(ds.images) < cfg.batch_size:
            raise ValueError(
                f"dataset {ds.name} has {len(ds.images)} images, fewer than batch size {cfg.batch_size}"
            )
        model_cfg = replace(
            cfg.model,
            channels=ds.images.shape[3],
            num_classes=ds.num_classes if cfg.model.conditional else 0,
        )
        self.cfg = replace(cfg, model=model_cfg)
        self.dataset = ds
        self.images = torch.from_numpy(ds.as_float())
        self.labels = torch.from_numpy(ds.labels)

        torch.manual_seed(cfg.seed)
        self.G, self.D = Generator(model_cfg), Critic(model_cfg)
        self.G.apply(init_weights)
        self.D.apply(init_weights)
        self.G_ema = copy.deepcopy(self.G).eval() if cfg.ema_decay > 0 else None
        self.opt_g, self.opt_d = (
            self._optimizer(self.G, cfg.optim.lr_g),
            self._optimizer(self.D, cfg.optim.lr_d),
        )
        self.rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.sampler = BatchSampler(len(self.images), cfg.batch_size, cfg.seed)
        sample_rng = torch.Generator().manual_seed(cfg.seed + 2)
        self.fixed_z = torch.randn(64, model_cfg.latent_dim, generator=sample_rng)
        self.fixed_y = torch.arange(64) % max(1, ds.num_classes)
        self.state = RunState()

    def _optimizer(self, module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        if o.name == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, betas=(o.beta1, o.beta2))
        return torch.optim.RMSprop(module.parameters(), lr=lr)

    # ---- checkpoints -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the checkpoint atomically (a kill mid-write leaves the previous one intact)."""
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CONFIG).write_text(self.cfg.to_json())
        (self.out / "class_names.json").write_text(json.dumps(list(self.dataset.class_names)))
        blob = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
            "state": vars(self.state).copy(),
        }
        with atomic_path(self.out / CHECKPOINT) as tmp:
            torch.save(blob, tmp)

    def load(self) -> None:
        blob = torch.load(self.out / CHECKPOINT, weights_only=True)  # no pickle of arbitrary objects
        self.G.load_state_dict(blob["G"])
        self.D.load_state_dict(blob["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(blob["G_ema"])
        self.opt_g.load_state_dict(blob["opt_g"])
        self.opt_d.load_state_dict(blob["opt_d"])
        self.rng.set_state(blob["rng"])
        self.state = RunState(**blob["state"])
        # Metrics logged after the checkpoint belong to work that is about to be redone.
        metrics = self.out / METRICS
        if metrics.exists():
            kept = [
                line
                for line in metrics.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= self.state.step
            ]
            metrics.write_text("".join(line + "\n" for line in kept))

    # ---- one step ----------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.sampler.indices(self.state.cursor)
        self.state.cursor += 1
        y = one_hot(self.labels[idx], self.cfg.model.num_classes) if self.cfg.model.conditional else None
        return self.images[idx], y

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.model.latent_dim, generator=self.rng)

    def _critic_steps(self) -> int:
        o = self.cfg.objective
        if o.critic_boost and (self.state.step < 25 or self.state.step % 500 == 0):
            return 100
        return o.n_critic

    def train_step(self) -> dict[str, float]:
        obj = self.cfg.objective
        d_loss = torch.zeros(())
        for _ in range(self._critic_steps()):
            real, y = self._batch()
            with torch.no_grad():
                fake = self.G(self._noise(len(real)), y)
            real_score, fake_score, real_classes, _ = self._scores(real, fake, y)
            loss = critic_loss(obj.kind, real_score, fake_score)
            if real_classes is not None:  # the classifier learns from real images only
                loss = loss + obj.aux_weight * F.cross_entropy(real_classes, y.argmax(1))
            if obj.gp_weight > 0:
                loss = loss + obj.gp_weight * gradient_penalty(
                    functools.partial(self.D, label=y), real, fake, self.rng, self.cfg.model.pack
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            if obj.clip > 0:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-obj.clip, obj.clip)
            d_loss = loss.detach()

        # The generator's labels follow the data's class frequencies (those of the last real batch).
        real, y = self._batch() if self.cfg.model.conditional or obj.joint_batch else (None, None)
        fake = self.G(self._noise(self.cfg.batch_size), y)
        if obj.joint_batch:  # the critic sees the fakes beside real images, as in its own steps
            _, fake_score, _, fake_classes = self._scores(real, fake, y)
        else:
            fake_score, fake_classes = self.D.score_and_classes(fake, y)
        g_loss = generator_loss(obj.kind, fake_score)
        if fake_classes is not None:  # AC-GAN: the image must show the class it was asked for
            g_loss = g_loss + obj.aux_weight * F.cross_entropy(fake_classes, y.argmax(1))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self._update_ema()
        self.state.step += 1
        return {"d_loss": float(d_loss), "g_loss": float(g_loss.detach())}

    def _scores(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(real scores, fake scores, real class logits, fake class logits; logits None without the head).

        One critic call on real and fake together with ``joint_batch``, else one call each. Packed groups
        never mix the two: both halves hold a multiple of ``pack`` images (checked by ``validate``).
        """
        if not self.cfg.objective.joint_batch:
            real_score, real_classes = self.D.score_and_classes(real, y)
            fake_score, fake_classes = self.D.score_and_classes(fake, y)
            return real_score, fake_score, real_classes, fake_classes
        labels = None if y is None else torch.cat([y, y])
        scores, classes = self.D.score_and_classes(torch.cat([real, fake]), labels)
        groups, n = len(real) // self.cfg.model.pack, len(real)
        if classes is None:
            return scores[:groups], scores[groups:], None, None
        return scores[:groups], scores[groups:], classes[:n], classes[n:]

    def _update_ema(self) -> None:
        if self.G_ema is None:
            return
        decay = self.cfg.ema_decay if self.state.step >= self.cfg.ema_start else 0.0
        with torch.no_grad():
            for e, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                e.lerp_(p, 1.0 - decay)
            for e, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                e.copy_(b)

    @property
    def export_generator(self) -> Generator:
        """The generator to ship: the EMA copy when enabled, else G itself. Reading it changes nothing
        (G keeps training in its own mode); sample from it inside ``evaluating(...)``."""
        return self.G_ema if self.G_ema is not None else self.G

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> RunState:
        self.out.mkdir(parents=True, exist_ok=True)
        cfg = self.cfg
        (self.out / CONFIG).write_text(cfg.to_json())
        wall0, cpu0 = time.perf_counter(), time.process_time()
        base_wall, base_cpu = self.state.wall_seconds, self.state.cpu_seconds
        bar = tqdm(
            total=cfg.steps, initial=self.state.step, disable=not progress, unit="step", dynamic_ncols=True
        )
        with open(self.out / METRICS, "a") as metrics:
            while self.state.step < cfg.steps:
                self.G.train()
                losses = self.train_step()
                self.state.wall_seconds = base_wall + time.perf_counter() - wall0
                self.state.cpu_seconds = base_cpu + time.process_time() - cpu0
                step = self.state.step
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    bar.set_postfix(d=f"{losses['d_loss']:.3f}", g=f"{losses['g_loss']:.3f}")
                    record = {"step": step, **losses, "wall_s": round(self.state.wall_seconds, 3)}
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                if step % cfg.sample_every == 0 or step == cfg.steps:
                    self.write_samples()
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    self.save()
        bar.close()
        self.save()
        plot_losses(self.out / METRICS, self.out / "losses.png")
        return self.state

    def write_samples(self) -> Path:
        G = self.export_generator
        with evaluating(G), torch.no_grad():
            y = one_hot(self.fixed_y, self.cfg.model.num_classes) if self.cfg.model.conditional else None
            images = G(self.fixed_z, y).numpy()
        path = self.out / "samples" / f"step_{self.state.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(tile(to_uint8(images), columns=8)))
        return path


@contextlib.contextmanager
def evaluating(net: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``net`` in eval mode for the block, then back in the mode it had (BatchNorm statistics in training
    must not depend on whether samples were drawn)."""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def plot_losses(metrics_path: Path, out: Path) -> None:
    """Plot the logged losses against the generator step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot(steps, [r["d_loss"] for r in rows], label="critic / discriminator")
    ax.plot(steps, [r["g_loss"] for r in rows], label="generator")
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
