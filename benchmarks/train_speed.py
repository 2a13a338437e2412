"""Training speed: images/s per recipe, our trainer against a bare PyTorch loop; fp32 against bf16; 1 and 2
processes.

    .venv/bin/python -m benchmarks.train_speed [--recipes dcgan,wgan,wgan-gp,cgan] [--shapes 32x1,64x4]
        [--width 32] [--batch 64] [--rounds 3] [--steps 1] [--device auto] [--threads 1] [--no-processes]

"Ours" is ``Trainer.train_step`` (the body of ``python -m training train``'s loop); "bare" is the shortest
loop a PyTorch user would write for the same recipe: the same Generator and Critic, the same batch and
optimizers, data already on the device, no sampler, no label bookkeeping, no autocast or scaler objects.
Images per second count the generator's batch per generator step (a WGAN step holds its critic steps). The
variants are interleaved round by round (ours fp32, bare fp32, ours bf16), so they see the same machine load;
each figure is the median step time over rounds. 32x1 trains on digits, 64x4 on random RGBA pictures (speed
does not depend on the pixels).

The processes table runs ``torchrun --nproc-per-node 2`` on this script (``--worker``) for one recipe and
shape and compares it with one process measured just before it; each process gets ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import machine_line, print_table
from training.config import override, preset
from training.data import ImageDataset
from training.networks import Critic, Generator
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def dataset_for(shape: str) -> ImageDataset | None:
    """None: the trainer loads digits (32x1); else random pictures of that size and channel count."""
    size, channels = (int(v) for v in shape.split("x"))
    if (size, channels) == (32, 1):
        return None
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (512, size, size, channels), dtype=np.uint8)
    labels = np.arange(512, dtype=np.int64) % 10
    return ImageDataset(images, labels, tuple(str(i) for i in range(10)), f"random-{shape}")


def trainer_for(recipe: str, shape: str, args: argparse.Namespace, precision: str, out: Path) -> Trainer:
    size, channels = (int(v) for v in shape.split("x"))
    cfg = override(
        preset(recipe),
        image_size=size,
        channels=channels,
        g_width=args.width,
        d_width=args.width,
        batch_size=args.batch,
        threads=args.threads,
        device=args.device,
        precision=precision,
        steps=10**9,
    )
    return Trainer(cfg, out, dataset_for(shape))


class BareLoop:
    """The recipe written as a plain PyTorch loop over the trainer's networks, data and settings."""

    def __init__(self, trainer: Trainer):
        cfg = trainer.cfg
        self.cfg, self.device = cfg, trainer.device
        self.G, self.D = Generator(cfg.model).to(self.device), Critic(cfg.model).to(self.device)
        self.G.load_state_dict(trainer.G.state_dict())
        self.D.load_state_dict(trainer.D.state_dict())
        o = cfg.optim
        if o.name == "adam":
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=(o.beta1, o.beta2))
        else:
            self.opt_g = torch.optim.RMSprop(self.G.parameters(), lr=o.lr_g)
            self.opt_d = torch.optim.RMSprop(self.D.parameters(), lr=o.lr_d)
        self.data = trainer.images.to(self.device)
        self.onehot = F.one_hot(trainer.labels, trainer.dataset.num_classes).float().to(self.device)

    def _real(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, len(self.data), (n,), device=self.device)
        return self.data[idx], self.onehot[idx] if self.cfg.model.conditional else None

    def step(self) -> None:
        o, n, latent = self.cfg.objective, self.cfg.batch_size, self.cfg.model.latent_dim
        bce = o.kind == "bce"
        for _ in range(o.n_critic):
            real, y = self._real(n)
            with torch.no_grad():
                fake = self.G(torch.randn(n, latent, device=self.device), y)
            rs, fs = self.D(real, y), self.D(fake, y)
            if bce:
                loss = F.binary_cross_entropy_with_logits(rs, torch.ones_like(rs))
                loss = loss + F.binary_cross_entropy_with_logits(fs, torch.zeros_like(fs))
            else:
                loss = fs.mean() - rs.mean()
            if o.gp_weight > 0:
                alpha = torch.rand(n, 1, 1, 1, device=self.device)
                mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(self.D(mixed, y).sum(), mixed, create_graph=True)
                loss = loss + o.gp_weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
            if o.clip > 0:
                with torch.no_grad():
                    for p in self.D.parameters():
                        p.clamp_(-o.clip, o.clip)
        _, y = self._real(n)
        fs = self.D(self.G(torch.randn(n, latent, device=self.device), y), y)
        g = F.binary_cross_entropy_with_logits(fs, torch.ones_like(fs)) if bce else -fs.mean()
        self.opt_g.zero_grad(set_to_none=True)
        g.backward()
        self.opt_g.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, steps: int, device: torch.device) -> float:
    """Seconds per step over ``steps`` steps (the device drained before and after)."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def ours_step(trainer: Trainer):
    def step() -> None:
        trainer.G.train()
        trainer.train_step()

    return step


def measure(recipe: str, shape: str, args: argparse.Namespace, work: Path, bf16: bool) -> dict[str, float]:
    """Median seconds per generator step of ours fp32, bare fp32 (and ours bf16), interleaved by round."""
    ours = trainer_for(recipe, shape, args, "fp32", work / "fp32")
    variants = {"ours": ours_step(ours), "bare": BareLoop(ours).step}
    if bf16:
        variants["ours_bf16"] = ours_step(trainer_for(recipe, shape, args, "bf16", work / "bf16"))
    for step in variants.values():  # warm-up: first-call allocations, lazy initialisation
        step()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            times[name].append(timed(step, args.steps, ours.device))
    return {k: statistics.median(v) for k, v in times.items()} | {"device": str(ours.device)}


def worker(args: argparse.Namespace) -> None:
    """Under torchrun: time our trainer's step for one recipe and shape; rank 0 prints one JSON line."""
    with tempfile.TemporaryDirectory() as tmp:
        t = trainer_for(args.recipes[0], args.shapes[0], args, "fp32", Path(tmp))
        step = ours_step(t)
        step()
        per_step = statistics.median(timed(step, args.steps, t.device) for _ in range(args.rounds))
        if t.is_main:
            print("RESULT " + json.dumps({"s_per_step": per_step, "processes": t.procs.world}), flush=True)
        t.close()


def processes(recipe: str, shape: str, args: argparse.Namespace, one_process: float) -> list[list[object]]:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "benchmarks.train_speed", "--worker",
           "--recipes", recipe, "--shapes", shape, "--width", str(args.width), "--batch", str(args.batch),
           "--rounds", str(args.rounds), "--steps", str(args.steps), "--device", args.device,
           "--threads", str(args.threads)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"torchrun failed ({proc.returncode}): {proc.stderr[-2000:]}")
    two = json.loads(lines[0][len("RESULT ") :])["s_per_step"]
    ips = [args.batch / one_process, args.batch / two]
    return [
        [recipe, shape, 1, args.threads, ips[0], 1.0],
        [recipe, shape, 2, 2 * args.threads, ips[1], ips[1] / ips[0]],
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", type=lambda s: s.split(","), default=["dcgan", "wgan", "wgan-gp", "cgan"])
    p.add_argument("--shapes", type=lambda s: s.split(","), default=["32x1", "64x4"], help="SIZExCHANNELS")
    p.add_argument("--width", type=int, default=32, help="g_width and d_width")
    p.add_argument("--batch", type=int, default=64, help="global batch size")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the figure is their median)")
    p.add_argument("--steps", type=int, default=1, help="generator steps per round and variant")
    p.add_argument(
        "--bf16",
        type=lambda s: s.split(","),
        default=None,
        help="RECIPE:SHAPE,... (or all) also timed in bf16 (default: all on CUDA; dcgan:32x1,cgan:32x1 on a "
        "CPU, where bf16 without native support is several times slower than fp32)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--no-processes", action="store_true", help="skip the 1-vs-2-process table")
    p.add_argument("--processes-case", default="dcgan:32x1", help="RECIPE:SHAPE of the processes table")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.bf16 is None:
        cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
        args.bf16 = ["all"] if cuda else ["dcgan:32x1", "cgan:32x1"]
    if args.worker:
        worker(args)
        return 0
    print(f"# {machine_line()}; torch {torch.__version__}; width {args.width}, batch {args.batch}, "
          f"{args.threads} thread(s), {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes:
            for recipe in args.recipes:
                bf16 = args.bf16 == ["all"] or f"{recipe}:{shape}" in args.bf16
                m = measure(recipe, shape, args, Path(tmp) / f"{recipe}-{shape}", bf16)
                ips = {k: args.batch / v for k, v in m.items() if k != "device"}
                half = ips.get("ours_bf16", float("nan"))
                print(
                    f"# {recipe} {shape}: {json.dumps({k: round(v, 2) for k, v in ips.items()})}", flush=True
                )
                overhead = f"{100 * (m['ours'] / m['bare'] - 1):+.1f}%"
                rows.append(
                    [recipe, shape, m["device"], ips["ours"], ips["bare"], overhead, half, half / ips["ours"]]
                )
    print_table(
        [
            "recipe",
            "shape",
            "device",
            "ours img/s",
            "bare img/s",
            "our overhead",
            "ours bf16 img/s",
            "bf16/fp32",
        ],
        rows,
        title="Training speed: our trainer vs a bare PyTorch loop (fp32), and bf16 (generator images per s)",
    )
    if not args.no_processes:
        recipe, shape = args.processes_case.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            m = measure(recipe, shape, args, Path(tmp), bf16=False)  # one process, just before the two
        print_table(
            ["recipe", "shape", "processes", "threads in all", "img/s", "vs 1 process"],
            processes(recipe, shape, args, m["ours"]),
            title="One process against two under torchrun (the same global batch, split in two)",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
