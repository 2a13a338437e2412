"""The training loop: critic and generator steps, EMA, samples, metrics, checkpoints and resume.

Reproducibility: every random draw after initialisation comes from one seeded ``torch.Generator`` on the
run's device whose state is checkpointed, and the data order is a pure function of (seed, epoch), so a run
stopped (or killed) and resumed on the same device type ends with exactly the weights of one that was not.

Under torchrun every process draws the whole global batch's noise and indices from the same generator and
keeps its own share, so the random stream does not depend on the number of processes.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gancore.contract import to_uint8
from gancore.files import atomic_path, stale_tmp_paths, write_atomic
from gancore.imaging import encode_png, tile
from training.augment import Augmenter
from training.config import TrainConfig, validate
from training.data import ImageDataset, load_dataset
from training.data.loader import BatchLoader
from training.networks import build_networks
from training.objectives import (
    critic_loss,
    generator_loss,
    gradient_penalty,
    needs_real_scores,
    zero_centred_penalty,
)
from training.runtime import (
    autocast,
    full_precision,
    mean_across,
    processes_from_env,
    resolve_device,
    start_process_group,
    stop_process_group,
)
from training.watch import EventLog, Snapshots, Timer

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
KEPT = "checkpoints"  # --keep-every's copies: KEPT/step-NNNNNN.pt


def kept_checkpoint(out: Path, step: int) -> Path:
    """Where ``--keep-every`` keeps the checkpoint of ``step`` in run folder ``out``."""
    return Path(out) / KEPT / f"step-{step:06d}.pt"


@dataclass
class RunState:
    """Everything that changes during training and must survive a resume."""

    step: int = 0
    cursor: int = 0  # batches drawn so far
    critic_steps: int = 0  # critic updates so far (--penalty-every counts them)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # training only: --eval-every's measurements are counted apart
    eval_cpu_seconds: float = 0.0
    best_step: int = -1  # the step of RUN/best.pt (-1: none yet)
    best_value: float = 0.0  # its --best-metric figure


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


class Scorer(torch.nn.Module):
    """The critic's (scores, class logits) as ``forward``: DistributedDataParallel sees every critic call."""

    def __init__(self, critic: torch.nn.Module):
        super().__init__()
        self.critic = critic

    def forward(
        self, x: torch.Tensor, label: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.critic.score_and_classes(x, label)


class Trainer:
    """Trains one generator/critic pair as configured; ``run()`` trains up to ``cfg.steps``."""

    def __init__(self, cfg: TrainConfig, out: Path, dataset: ImageDataset | None = None):
        validate(cfg)
        self.procs = processes_from_env()
        self.device = resolve_device(cfg.device, self.procs)  # before any work: a bad --device exits at once
        if cfg.batch_size % (self.procs.world * cfg.model.pack):
            raise ValueError(
                f"batch size {cfg.batch_size} does not split into {self.procs.world} processes"
                + (f" of whole packs of {cfg.model.pack}" if cfg.model.pack > 1 else "")
            )
        self.local_batch = cfg.batch_size // self.procs.world
        torch.set_num_threads(cfg.threads)
        self.out = Path(out)
        ds = dataset or load_dataset(
            cfg.dataset,
            cfg.model.image_size,
            cfg.model.channels,
            cfg.data_dir,
            pad=cfg.data.pad,
            skip_bad_images=cfg.data.skip_bad_images,
            skin_tones=cfg.data.skin_tones,
            workers=cfg.data.workers,
        )
        if cfg.model.conditional and not ds.labeled:
            raise ValueError(
                f"--conditional needs labelled data, but {ds.name} has no class sub-folders: put each class "
                "in its own sub-folder, or train without --conditional"
            )
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
        self.labels = torch.from_numpy(ds.labels)

        torch.manual_seed(cfg.seed)
        self.G, self.D = build_networks(model_cfg)
        # Initialised on the CPU, then moved: the same seed starts from the same weights on every device.
        self.G.to(self.device)
        self.D.to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval() if cfg.ema_decay > 0 else None
        self._owns_group = start_process_group(self.procs, self.device)
        self._g, self._d = self._parallel(self.G), self._parallel(Scorer(self.D))
        self.opt_g, self.opt_d = (
            self._optimizer(self.G, cfg.optim.lr_g),
            self._optimizer(self.D, cfg.optim.lr_d),
        )
        self.rng = torch.Generator(self.device).manual_seed(cfg.seed + 1)
        self.sampler = BatchSampler(len(ds.images), cfg.batch_size, cfg.seed)
        # Images stay uint8 (memory-mapped for folders) and become float one batch at a time, on the device.
        self.loader = BatchLoader(ds.images, self._indices, device=self.device, workers=cfg.data.workers)
        self.augment = Augmenter(cfg.augment, self.rng)
        sample_rng = torch.Generator().manual_seed(cfg.seed + 2)
        self.fixed_z = torch.randn(64, model_cfg.latent_dim, generator=sample_rng).to(self.device)
        self.fixed_y = (torch.arange(64) % max(1, ds.num_classes)).to(self.device)
        fp16 = cfg.precision == "fp16"  # bf16 has float32's range: no scaling needed
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        rank = self.procs.rank
        self._share = slice(rank * self.local_batch, (rank + 1) * self.local_batch)
        self.state = RunState()
        self.data_wait = Timer()  # seconds the loop waited for batches (TensorBoard's speed/data_wait)
        self.stats: dict[str, torch.Tensor] = {}  # the last step's extra figures, when asked for

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files (rank 0, or the only process)."""
        return self.procs.is_main

    def log(self, message: str) -> None:
        if self.is_main:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Leave the process group this trainer joined (torchrun's processes then exit cleanly)."""
        if self._owns_group:
            stop_process_group()
            self._owns_group = False

    def _parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under DistributedDataParallel when there are several processes (else itself).

        On CUDA BatchNorm becomes SyncBatchNorm, so statistics are those of the global batch as in one
        process; torch refuses SyncBatchNorm on CPU modules, so CPU ranks normalise with their own share.
        Buffers are synchronised at the start only: with SyncBatchNorm they agree anyway, and on the CPU
        the running statistics of rank 0 are the ones saved.
        """
        if not self.procs.distributed:
            return module
        if self.device.type == "cuda":
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)

    def _optimizer(self, module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        o = self.cfg.optim
        if o.name == "adam":
            return torch.optim.Adam(module.parameters(), lr=lr, betas=(o.beta1, o.beta2))
        return torch.optim.RMSprop(module.parameters(), lr=lr)

    # ---- checkpoints -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the checkpoint atomically (a kill mid-write leaves the previous one intact); rank 0 only."""
        if not self.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(self.out / CONFIG, self.cfg.to_json().encode())
        write_atomic(self.out / "class_names.json", json.dumps(list(self.dataset.class_names)).encode())
        blob = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict() if self.G_ema is not None else {},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
            "rng_device": self.device.type,
            "scaler_d": self.scaler_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "processes": self.procs.world,
            "state": vars(self.state).copy(),
        }
        with atomic_path(self.out / CHECKPOINT) as tmp:
            torch.save(blob, tmp)

    def keep(self) -> Path | None:
        """Copy the checkpoint just written to ``kept_checkpoint(out, step)`` (atomically; rank 0 only)."""
        if not self.is_main:
            return None
        dest = kept_checkpoint(self.out, self.state.step)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp:
            shutil.copyfile(self.out / CHECKPOINT, tmp)
        return dest

    def load(self) -> None:
        """Continue from the checkpoint (every process reads it; tensors land on this run's device)."""
        self.load_checkpoint(self.out / CHECKPOINT)
        if self.is_main:  # a write cut short by a kill; the next checkpoint would overwrite it anyway
            for stale in stale_tmp_paths(self.out / CHECKPOINT):
                stale.unlink(missing_ok=True)
        self.discard_metrics_after(self.state.step)

    def load_checkpoint(self, path: Path) -> None:
        """Set weights, optimizers, random state and run state from the checkpoint file ``path``.

        Unlike ``load`` it leaves the run folder alone (no metrics are dropped): evaluating a kept checkpoint
        (``python -m training curve``) must not change the run it reads.
        """
        # weights_only: no pickle of arbitrary objects; map_location: a GPU checkpoint loads on a CPU.
        blob = torch.load(path, map_location=self.device, weights_only=True)
        self.G.load_state_dict(blob["G"])
        self.D.load_state_dict(blob["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(blob["G_ema"])
        self.opt_g.load_state_dict(blob["opt_g"])
        self.opt_d.load_state_dict(blob["opt_d"])
        self.state = RunState(**blob["state"])
        if blob.get("rng_device", "cpu") == self.device.type:
            self.rng.set_state(blob["rng"].cpu())
        else:  # CPU and CUDA generators hold different states: a fresh stream, so not bit-exact
            self.rng.manual_seed(self.cfg.seed + 1 + 1_000_003 * self.state.step)
            self.log(
                f"resume: checkpoint made on {blob['rng_device']}, resuming on {self.device.type}; the "
                "run continues from its weights but not bit-exactly as it would have on the same device"
            )
        for scaler, key in ((self.scaler_d, "scaler_d"), (self.scaler_g, "scaler_g")):
            if blob.get(key) and scaler.is_enabled():
                scaler.load_state_dict(blob[key])
        if blob.get("processes", 1) != self.procs.world:
            self.log(
                f"resume: checkpoint made by {blob.get('processes', 1)} process(es), resuming with "
                f"{self.procs.world}; batch statistics differ, so the weights will not match either run"
            )

    def discard_metrics_after(self, step: int) -> None:
        """Drop logged metrics after ``step``: they belong to work that is about to be redone (and a run
        killed mid-write may have left a torn last line)."""
        metrics = self.out / METRICS
        if metrics.exists() and self.is_main:
            kept = []
            for line in metrics.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):
                    continue
            write_atomic(metrics, "".join(line + "\n" for line in kept).encode())

    # ---- one step ----------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        with self.data_wait:
            images, idx = self.loader.get(self.state.cursor)
        self.state.cursor += 1
        y = one_hot(self.labels[idx], self.cfg.model.num_classes) if self.cfg.model.conditional else None
        return self.augment.real(images), self._to_device(y)

    def _indices(self, cursor: int) -> torch.Tensor:
        """This process's share of the batch at ``cursor``."""
        return self.sampler.indices(cursor)[self._share]

    def _to_device(self, x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(self.device, non_blocking=True)

    def _noise(self, n: int) -> torch.Tensor:
        """``n`` noise vectors: this process's share of the global batch's draw."""
        z = torch.randn(
            n * self.procs.world, self.cfg.model.latent_dim, generator=self.rng, device=self.device
        )
        return z if not self.procs.distributed else z[self.procs.rank * n : (self.procs.rank + 1) * n]

    def _alpha(self, n: int) -> torch.Tensor:
        """Per-sample interpolation weights of the gradient penalty, drawn like the noise."""
        a = torch.rand(n * self.procs.world, 1, 1, 1, generator=self.rng, device=self.device)
        return a if not self.procs.distributed else a[self.procs.rank * n : (self.procs.rank + 1) * n]

    def _critic_steps(self) -> int:
        o = self.cfg.objective
        if o.critic_boost and (self.state.step < 25 or self.state.step % 500 == 0):
            return 100
        return o.n_critic

    def train_step(self, watch: bool = False) -> dict[str, torch.Tensor]:
        """One generator step and its critic steps; the losses stay on the device (read them at log steps).

        ``watch``: also keep D(real), D(fake), the penalty and both gradient norms in ``self.stats``.
        """
        obj = self.cfg.objective
        amp = functools.partial(autocast, self.device, self.cfg.precision)
        d_loss = torch.zeros((), device=self.device)
        for _ in range(self._critic_steps()):
            # Counted in critic steps (not G steps), so that --n-critic does not change which ones pay.
            lazy = self.state.critic_steps % obj.penalty_every == 0
            self.state.critic_steps += 1
            real, y = self._batch()
            with torch.no_grad(), amp():
                fake = self._g(self._noise(len(real)), y).float()
            # R1 and R2 differentiate with respect to the images before augmentation (R3GAN, StyleGAN2-ADA).
            r1, r2 = (obj.r1 > 0 and lazy), (obj.r2 > 0 and lazy)
            real.requires_grad_(r1)
            fake.requires_grad_(r2)
            real_in, fake_in = self.augment.critic_input(real), self.augment.critic_input(fake)  # DiffAugment
            with amp():
                real_score, fake_score, real_classes, _ = self._scores(real_in, fake_in, y)
            # The losses in float32: scores (and logits) leave autocast before any reduction.
            loss = critic_loss(obj.kind, real_score.float(), fake_score.float())
            penalty = None
            if r1 or r2:
                penalty = self._zero_centred_penalties(
                    real, fake, real_in, fake_in, real_score, fake_score, y
                )
                loss = loss + obj.penalty_every * penalty
            if real_classes is not None:  # the classifier learns from real images only
                loss = loss + obj.aux_weight * F.cross_entropy(real_classes.float(), y.argmax(1))
            if obj.gp_weight > 0:
                with full_precision(self.device):
                    alpha = self._alpha(len(real))
                    penalty = obj.gp_weight * gradient_penalty(
                        lambda x, y=y: self._d(x, y)[0], real, fake, self.rng, self.cfg.model.pack, alpha
                    )
                    loss = loss + penalty
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(loss).backward()
            if watch:
                self.stats = {
                    "critic/real_score": real_score.detach().float().mean(),
                    "critic/fake_score": fake_score.detach().float().mean(),
                    "grad_norm/D": _grad_norm(self.D),
                }
                if penalty is not None:
                    self.stats["loss/penalty"] = penalty.detach().float()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if obj.clip > 0:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-obj.clip, obj.clip)
            d_loss = loss.detach()

        # The generator's labels follow the data's class frequencies (those of the last real batch).
        relativistic = needs_real_scores(obj.kind)
        need_real = self.cfg.model.conditional or obj.joint_batch or relativistic
        real, y = self._batch() if need_real else (None, None)
        real_score = None
        # The critic's gradients of this step are discarded (zeroed before its next step): no all-reduce.
        with amp(), self._no_sync(self._d):
            fake = self.augment.critic_input(self._g(self._noise(self.local_batch), y))
            if obj.joint_batch:  # the critic sees the fakes beside real images, as in its own steps
                real_score, fake_score, _, fake_classes = self._scores(
                    self.augment.critic_input(real), fake, y
                )
            else:
                fake_score, fake_classes = self._d(fake, y)
                if relativistic:  # G's gradient does not flow through the real images' scores
                    with torch.no_grad():
                        real_score = self._d(self.augment.critic_input(real), y)[0]
            paired = real_score.float() if relativistic else None
            g_loss = generator_loss(obj.kind, fake_score.float(), paired)
            if fake_classes is not None:  # AC-GAN: the image must show the class it was asked for
                g_loss = g_loss + obj.aux_weight * F.cross_entropy(fake_classes.float(), y.argmax(1))
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(g_loss).backward()
        if watch:
            self.stats["grad_norm/G"] = _grad_norm(self.G)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self._update_ema()
        self.state.step += 1
        return {"d_loss": d_loss, "g_loss": g_loss.detach()}

    def _zero_centred_penalties(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        real_in: torch.Tensor,
        fake_in: torch.Tensor,
        real_score: torch.Tensor,
        fake_score: torch.Tensor,
        y: torch.Tensor | None,
    ) -> torch.Tensor:
        """γ₁·R1 + γ₂·R2 in float32. At fp32 the loss's own critic call is differentiated again (no extra
        forward); under autocast the critic scores the same augmented images once more in full precision."""
        obj, pack = self.cfg.objective, self.cfg.model.pack
        with full_precision(self.device):
            if self.cfg.precision != "fp32":
                real_score, fake_score = self._scores(real_in, fake_in, y)[:2]
            total = torch.zeros((), device=self.device)
            if obj.r1 > 0:
                total = total + obj.r1 * zero_centred_penalty(real_score.float(), real, pack)
            if obj.r2 > 0:
                total = total + obj.r2 * zero_centred_penalty(fake_score.float(), fake, pack)
        return total

    @staticmethod
    def _no_sync(module: torch.nn.Module) -> contextlib.AbstractContextManager:
        no_sync = getattr(module, "no_sync", None)
        return no_sync() if no_sync is not None else contextlib.nullcontext()

    def _scores(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(real scores, fake scores, real class logits, fake class logits; logits None without the head).

        One critic call on real and fake together with ``joint_batch``, else one call each. Packed groups
        never mix the two: both halves hold a multiple of ``pack`` images (checked by ``validate``).
        """
        if not self.cfg.objective.joint_batch:
            real_score, real_classes = self._d(real, y)
            fake_score, fake_classes = self._d(fake, y)
            return real_score, fake_score, real_classes, fake_classes
        labels = None if y is None else torch.cat([y, y])
        scores, classes = self._d(torch.cat([real, fake]), labels)
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
    def export_generator(self) -> torch.nn.Module:
        """The generator to ship: the EMA copy when enabled, else G itself. Reading it changes nothing
        (G keeps training in its own mode); sample from it inside ``evaluating(...)``."""
        return self.G_ema if self.G_ema is not None else self.G

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self, progress: bool = True, resumed: bool = False) -> RunState:
        """Train up to ``cfg.steps``; only the main process writes files (every process trains).

        ``resumed``: the state came from the run's checkpoint (the event files drop what follows it).
        """
        cfg, main = self.cfg, self.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / CONFIG, cfg.to_json().encode())
        events = (
            EventLog(self.out, self.state.step + 1 if resumed else None) if main and cfg.tensorboard else None
        )
        snapshots = Snapshots(self) if main and cfg.eval_every > 0 else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        base_wall, base_cpu, base_eval = (
            self.state.wall_seconds,
            self.state.cpu_seconds,
            self.state.eval_cpu_seconds,
        )
        bar = tqdm(
            total=cfg.steps,
            initial=self.state.step,
            disable=not (progress and main),
            unit="step",
            dynamic_ncols=True,
        )
        last_log = (time.perf_counter(), self.state.step)
        with open(self.out / METRICS, "a") if main else contextlib.nullcontext() as metrics:
            while self.state.step < cfg.steps:
                self.G.train()
                next_step = self.state.step + 1
                log_now = next_step % cfg.log_every == 0 or next_step == cfg.steps
                losses = self.train_step(watch=log_now and events is not None)
                eval_cpu = self.state.eval_cpu_seconds - base_eval
                self.state.wall_seconds = base_wall + time.perf_counter() - wall0
                self.state.cpu_seconds = base_cpu + time.process_time() - cpu0 - eval_cpu
                step = self.state.step
                bar.update(1)
                if log_now:
                    # The only host synchronisation of the loop: losses are read at log steps.
                    both = mean_across(torch.stack([losses["d_loss"], losses["g_loss"]]), self.procs)
                    d, g = both.tolist()
                    if main:
                        bar.set_postfix(d=f"{d:.3f}", g=f"{g:.3f}")
                        record = {"step": step, "d_loss": d, "g_loss": g}
                        record["wall_s"] = round(self.state.wall_seconds, 3)
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                    if events is not None:
                        now = time.perf_counter()
                        seconds = max(now - last_log[0], 1e-9)
                        events.scalars(step, {
                            "loss/critic": d,
                            "loss/generator": g,
                            **{k: float(v) for k, v in self.stats.items()},
                            "lr/G": self.opt_g.param_groups[0]["lr"],
                            "lr/D": self.opt_d.param_groups[0]["lr"],
                            "speed/images_per_s": (step - last_log[1]) * cfg.batch_size / seconds,
                            "speed/data_wait_share": self.data_wait.take() / seconds,
                        })  # fmt: skip
                        last_log = (now, step)
                if main and (step % cfg.sample_every == 0 or step == cfg.steps):
                    images = self.write_samples()
                    if events is not None:
                        events.grid(step, "samples", images)
                keep = cfg.keep_every > 0 and step % cfg.keep_every == 0
                snapshot = snapshots is not None and step % cfg.eval_every == 0
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or keep or snapshot:
                    self.save()
                if keep:
                    self.keep()
                if snapshot:
                    self._snapshot(snapshots, events, metrics)
                    last_log = (time.perf_counter(), step)
        bar.close()
        self.save()
        if events is not None:
            events.close()
        if main:
            plot_losses(self.out / METRICS, self.out / "losses.png")
        return self.state

    def _snapshot(self, snapshots: Snapshots, events: EventLog | None, metrics) -> None:
        """``--eval-every``: measure G and its EMA, log the figures, keep ``best.pt`` (main process)."""
        cpu0 = time.process_time()
        figures = snapshots.measure()
        best = snapshots.keep_best(figures)
        if best:
            self.save()  # the checkpoint now records this step as the best
            snapshots.write_best(self.out, self.out / CHECKPOINT)
        self.state.eval_cpu_seconds += time.process_time() - cpu0
        record = {"step": self.state.step, "eval": figures, "best_step": self.state.best_step,
                  "eval_cpu_s": round(self.state.eval_cpu_seconds, 3)}  # fmt: skip
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        if events is not None:
            for kind, values in figures.items():
                events.scalars(self.state.step, {f"eval/{kind}/{k}": v for k, v in values.items()})
            events.flush()
        self.log(
            f"step {self.state.step}: {self.cfg.best_metric} "
            f"{snapshots.shipped(figures).get(self.cfg.best_metric)} (best at step {self.state.best_step})"
        )

    def write_samples(self) -> np.ndarray:
        """Write the fixed-noise grid of this step to RUN/samples/; returns its uint8 images."""
        G = self.export_generator
        with evaluating(G), torch.no_grad():
            y = one_hot(self.fixed_y, self.cfg.model.num_classes) if self.cfg.model.conditional else None
            images = to_uint8(G(self.fixed_z, y).float().cpu().numpy())
        path = self.out / "samples" / f"step_{self.state.step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_png(tile(images, columns=8)))
        return images


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    """The L2 norm of all of ``module``'s gradients (0 when it has none)."""
    grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())


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
    rows = [r for r in rows if "d_loss" in r]  # --eval-every's rows hold figures, not losses
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
