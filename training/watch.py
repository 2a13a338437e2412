"""Watching a run while it trains: TensorBoard event files, and quality snapshots that keep ``best.pt``.

- ``EventLog``: ``RUN/tensorboard/`` event files (scalars: losses, D(real) and D(fake), penalties, gradient
  norms, learning rates, images/s, data-loader wait; images: the sample grids, RGBA over a checkerboard).
  ``tensorboard --logdir runs`` shows every run under ``runs/``. On ``--resume`` the writer purges events
  after the checkpoint's step, so the curves continue instead of doubling back.
- ``Snapshots`` (``--eval-every N``): every N steps, ``evaluate``'s figures (label-free, and the class
  figures where the data set has classes) of samples of the raw G and of its EMA, into ``metrics.jsonl``
  (``{"step", "eval": {"ema": {...}, "raw": {...}}}``) and TensorBoard; the checkpoint of the step whose
  shipped generator scores best on ``--best-metric`` is copied to ``RUN/best.pt``
  (``python -m training export RUN --checkpoint best``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gancore.files import atomic_path
from gancore.imaging import tile

if TYPE_CHECKING:
    from training.trainer import Trainer

EVENTS = "tensorboard"
BEST = "best.pt"
# Figures that can pick best.pt, and whether lower is better. The default, the Fréchet ratio, is one a
# collapsed generator cannot score well on: coverage alone can (a generator drawing one central blob on a
# sprite set scored coverage 0.88 with recall 0.00), the Fréchet distance compares means and covariances.
LOWER_IS_BETTER: dict[str, bool] = {
    "frechet_ratio": True,
    "ndb_k": True,
    "js": True,
    "recall": False,
    "coverage": False,
    "precision": False,
    "density": False,
    "label_accuracy": False,
}


def checkerboard(images: np.ndarray, square: int = 8) -> np.ndarray:
    """uint8 RGBA [..., H, W, 4] → RGB over a light checkerboard (how transparency is shown); others as is."""
    if images.shape[-1] != 4:
        return images
    h, w = images.shape[-3:-1]
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // square) + (xx // square)) % 2 == 0, 204, 153).astype(np.float32)[..., None]
    alpha = images[..., 3:].astype(np.float32) / 255.0
    rgb = images[..., :3].astype(np.float32) * alpha + board * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


class EventLog:
    """TensorBoard event files of one run (the main process only)."""

    def __init__(self, out: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events after the checkpoint's step belong to work about to be redone
        self.writer = SummaryWriter(str(Path(out) / EVENTS), purge_step=resume_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def grid(self, step: int, name: str, images: np.ndarray) -> None:
        """uint8 images [N, H, W, C] as one grid image."""
        grid = tile(checkerboard(images), columns=8)
        if grid.shape[-1] == 1:
            grid = np.repeat(grid, 3, axis=-1)
        self.writer.add_image(name, grid, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Snapshots:
    """``--eval-every``: the figures of G and its EMA at a step, and ``best.pt``."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._reals: Any = None  # (evaluator, real features), built at the first snapshot (cached on disk)

    def _instruments(self) -> Any:
        if self._reals is None:
            from training.evaluate.quality import evaluator_for, real_features

            real = self.trainer.dataset
            evaluator = evaluator_for(real)
            self._reals = (evaluator, real_features(real, evaluator, second_space=False))
        return self._reals

    def measure(self) -> dict[str, dict[str, float]]:
        """{"ema"?: figures, "raw": figures} of the current generators (the figures ``curve`` reports)."""
        from training.evaluate.curve import FIGURE_NAMES, curve_row, sample_trainer
        from training.evaluate.quality import measure

        trainer, cfg = self.trainer, self.trainer.cfg
        evaluator, reals = self._instruments()
        out: dict[str, dict[str, float]] = {}
        kinds = {"ema": False, "raw": True} if trainer.G_ema is not None else {"raw": True}
        for kind, raw in kinds.items():
            images, labels = sample_trainer(trainer, cfg.eval_samples, seed=0, raw=raw)
            q = measure(images, evaluator, trainer.dataset, labels, seed=0, reals=reals)
            row = curve_row(q, trainer.state.step, 0.0, 0.0, kind)
            out[kind] = {k: float(v) for k, v in row["figures"].items() if k in FIGURE_NAMES}
        return out

    def shipped(self, figures: dict[str, dict[str, float]]) -> dict[str, float]:
        """The figures of the generator ``export`` ships (the EMA when the run has one)."""
        return figures.get("ema", figures["raw"])

    def better(self, value: float) -> bool:
        state, lower = self.trainer.state, LOWER_IS_BETTER[self.trainer.cfg.best_metric]
        if state.best_step < 0:
            return True
        return value < state.best_value if lower else value > state.best_value

    def keep_best(self, figures: dict[str, dict[str, float]]) -> bool:
        """Copy the checkpoint just written to ``best.pt`` when this step's figure is the best so far."""
        name = self.trainer.cfg.best_metric
        value = self.shipped(figures).get(name)
        if value is None or not np.isfinite(value) or not self.better(value):
            return False
        state = self.trainer.state
        state.best_step, state.best_value = state.step, float(value)
        return True

    def write_best(self, out: Path, checkpoint: Path) -> None:
        with atomic_path(out / BEST) as tmp:
            shutil.copyfile(checkpoint, tmp)


class Timer:
    """Seconds spent in a kind of work between two reads (the data loader's wait, an evaluation)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> Timer:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._started

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds
