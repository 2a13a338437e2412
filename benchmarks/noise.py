"""Noise derivation speed: microseconds per image of ``gancore.contract.latent``, and proof it is unchanged.

    .venv/bin/python -m benchmarks.noise [--latent 100] [--batches 1,16,64,256,1024] [--rounds 30]

Compares the contract's in-place, blocked implementation with the derivation written out as its formulas
(``reference`` below, the code before the speed-up), interleaved round by round on the same indices so
machine noise hits both alike. Shows CPU time of this thread per image (best round: the cost with the least
interference; median) and the best wall time: on shared cores wall time also counts waiting for a core.
The last column is the floor: the float64 ``log1p``, ``cos`` and ``sin`` calls that define the contract's
bits.
Before timing, checks that both give the same float32 bytes, so a speed-up can never change an image.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.common import machine_line, print_table
from gancore.contract.noise import GAMMA, _bases, _mix, latent


def reference(seed: int, indices: np.ndarray, latent_dim: int) -> np.ndarray:
    """The derivation exactly as its docstring states it, one whole-array numpy expression per step."""
    base = _bases(seed, indices)
    pairs = (latent_dim + 1) // 2
    j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    h = _mix(base[:, None] + j[None, :] * GAMMA)
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)
    r = np.sqrt(-2.0 * np.log1p(-u[:, 0::2]))
    theta = (2.0 * np.pi) * u[:, 1::2]
    z = np.empty((len(base), 2 * pairs), dtype=np.float64)
    z[:, 0::2] = r * np.cos(theta)
    z[:, 1::2] = r * np.sin(theta)
    return z[:, :latent_dim].astype(np.float32)


def libm_floor(n: int, latent_dim: int):
    """The float64 log1p, cos and sin calls the derivation is defined by, alone, on contiguous arrays of
    the same size and value ranges: what any implementation of this contract version must spend."""
    pairs = (latent_dim + 1) // 2
    u = np.random.default_rng(0).random((n, pairs))
    neg, theta, out = -u, u * (2.0 * np.pi), np.empty((n, pairs))

    def run() -> None:
        np.log1p(neg, out=out)
        np.cos(theta, out=out)
        np.sin(theta, out=out)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--batches", default="1,16,64,256,1024")
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    print(f"noise derivation, latent {args.latent}; {machine_line()}")
    rows = []
    for n in batches:
        idx = np.arange(10**12, 10**12 + n, dtype=np.uint64)
        if latent(3, idx, args.latent).tobytes() != reference(3, idx, args.latent).tobytes():
            raise SystemExit(f"batch {n}: the contract's latent differs from the reference derivation")
        reps = max(1, 2048 // n)  # about 2000 images per round
        floor = libm_floor(n, args.latent)
        fns = (("contract", latent), ("reference", reference), ("libm", lambda *_, f=floor: f()))
        wall: dict[str, list[float]] = {name: [] for name, _ in fns}
        cpu: dict[str, list[float]] = {name: [] for name, _ in fns}
        for _ in range(args.rounds):
            for name, fn in fns:
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(reps):
                    fn(3, idx, args.latent)
                cpu[name].append((time.thread_time() - c0) / (reps * n) * 1e6)
                wall[name].append((time.perf_counter() - t0) / (reps * n) * 1e6)
        best = {k: min(v) for k, v in cpu.items()}
        rows.append(
            [n, best["contract"], statistics.median(cpu["contract"]), min(wall["contract"]),
             best["reference"], statistics.median(cpu["reference"]), min(wall["reference"]),
             best["reference"] / best["contract"], best["libm"]]
        )  # fmt: skip
    headers = ["batch", "contract CPU µs/img best", "median", "wall best", "reference CPU best", "median"]
    print_table([*headers, "wall best", "speed-up (CPU best)", "libm calls alone CPU best"], rows)


if __name__ == "__main__":
    main()
