"""A 64×64×4 (RGBA) generator of real size for serving tests and benchmarks, made by the project's own code.

    .venv/bin/python -m benchmarks.sprites OUT.onnx [--g-width 32] [--steps 20] [--images 64]

Writes a small synthetic folder of transparent sprites (coloured discs and squares on a fully transparent
background, one class sub-folder, as the folder loader expects), trains a short DCGAN run on it with
``--channels 4 --image-size 64`` and exports the generator. The images it makes are not good — a few steps
of training — but it has the shape and cost of a sprite generator a user would serve, which is what the
serving code is measured and tested on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def write_sprites(folder: Path, count: int = 64, size: int = 64, seed: int = 0) -> Path:
    """``count`` RGBA PNGs of ``size``² in ``folder``/sprites/: a disc or square, alpha 0 around it."""
    rng = np.random.default_rng(seed)
    out = folder / "sprites"
    out.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        img = np.zeros((size, size, 4), dtype=np.uint8)
        cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
        r = int(rng.integers(size // 8, size // 4))
        mask = (
            (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            if i % 2
            else (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
        )
        img[mask, :3] = rng.integers(0, 256, size=3, dtype=np.uint8)
        img[mask, 3] = int(rng.integers(128, 256))  # partly transparent shapes too
        Image.fromarray(img, "RGBA").save(out / f"{i:04d}.png")
    return folder


def make_model(
    out: Path, g_width: int = 32, steps: int = 20, images: int = 64, batch: int = 16, size: int = 64
) -> Path:
    """Train ``steps`` DCGAN steps on synthetic sprites; export a ``size``×``size``×4 generator to ``out``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_sprites(Path(tmp) / "data", count=images)
        run = Path(tmp) / "run"
        common = ["--no-progress", "--seed", "1"]
        train = [
            *("training", "train", "--recipe", "dcgan", "--dataset", f"folder:{data}"),
            *("--channels", "4", "--image-size", str(size), "--g-width", str(g_width), "--d-width", "16"),
            *("--batch-size", str(batch), "--steps", str(steps), "--out", str(run), *common[:1]),
            *common[1:],
        ]
        for args in (train, ["training", "export", str(run), "--out", str(out)]):
            proc = subprocess.run(
                [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if proc.returncode:
                raise RuntimeError(f"{args[:2]} failed:\n{proc.stdout}\n{proc.stderr}")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the .onnx file to write (its name is the model name)")
    parser.add_argument("--g-width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="image side (16 … 256)")
    args = parser.parse_args(argv)
    print(make_model(args.out, args.g_width, args.steps, args.images, size=args.size))


if __name__ == "__main__":
    main()
