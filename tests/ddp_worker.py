"""Run by ``torchrun --nproc-per-node 2`` from tests/test_distributed.py (test-only, not a test module).

``python tests/ddp_worker.py OUT``: for each recipe, trains a few steps with the real Trainer and checks after
every step that both ranks hold identical parameters; then stops at step 2, resumes from the checkpoint in a
fresh Trainer and checks the result against an uninterrupted run. Rank 0 writes OUT/report.json; the
runs' checkpoints stay in OUT/RECIPE-{full,part} for the test to compare with one process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from training.config import override, preset
from training.trainer import Trainer

# name: (recipe, changes). The last case has no batch statistics anywhere, so two processes must train the
# same weights as one (up to float summation order): the test compares it with a one-process run.
CASES = {
    "dcgan": ("dcgan", {}),
    "wgan": ("wgan", {"pack": 2}),
    "wgan-gp": ("wgan-gp", {"ema_decay": 0.9}),
    "cgan": ("cgan", {"aux_classifier": True}),
    "wgan-gp-no-batchnorm": ("wgan-gp", {"g_norm": "none"}),
}


def small(case: str, steps: int, **extra):
    recipe, changes = CASES[case]
    base = dict(image_size=16, g_width=16, d_width=16, batch_size=16, sample_every=2, checkpoint_every=2)
    return override(preset(recipe), device="cpu", steps=steps, **base, **changes, **extra)


def params_equal_across_ranks(trainer: Trainer) -> bool:
    """Whether every rank holds rank 0's parameters (G and D), bit for bit."""
    flat = torch.cat([p.detach().flatten() for m in (trainer.G, trainer.D) for p in m.parameters()])
    theirs = flat.clone()
    dist.broadcast(theirs, 0)
    same = torch.tensor([int(torch.equal(flat, theirs))])
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    report: dict[str, dict] = {}
    for recipe in CASES:
        full = Trainer(small(recipe, 4), out / f"{recipe}-full")
        equal_after_each_step, losses = [], []
        while full.state.step < 4:
            full.G.train()
            step_losses = full.train_step()
            equal_after_each_step.append(params_equal_across_ranks(full))
            both = torch.stack([step_losses["d_loss"], step_losses["g_loss"]])
            dist.all_reduce(both)
            losses.append((both / dist.get_world_size()).tolist())
        full.save()
        part = Trainer(small(recipe, 2), out / f"{recipe}-part")
        part.run(progress=False)
        resumed = Trainer(small(recipe, 4), out / f"{recipe}-part")
        resumed.load()
        start = resumed.state.step
        resumed.run(progress=False)
        same = all(
            torch.equal(a, b)
            for m in ("G", "D")
            for a, b in zip(
                getattr(full, m).state_dict().values(), getattr(resumed, m).state_dict().values(), strict=True
            )
        )
        report[recipe] = {
            "equal_after_each_step": equal_after_each_step,
            "resumed_from": start,
            "resume_equals_uninterrupted": same,
            "local_batch": full.local_batch,
            "losses": losses,
        }
    if dist.get_rank() == 0:
        (out / "report.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
