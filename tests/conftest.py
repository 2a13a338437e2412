"""Shared fixtures: small training runs and exported models made by the project's own code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ServeProcess

ROOT = Path(__file__).resolve().parents[1]
# Tiny settings so every recipe trains and exports in seconds.
TINY = ["--image-size", "16", "--g-width", "16", "--d-width", "16", "--batch-size", "16", "--no-progress"]


def run_cli(
    *args: str, check: bool = True, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` from the repository root and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def run_torchrun(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``torchrun --standalone --nproc-per-node 2 ARGS`` (the venv's own torchrun) from the repository
    root, one torch thread per process; fails the test with the end of stderr when it exits non-zero."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    """Each recipe trained a few steps on digits at 16×16 and exported: recipe → .onnx path."""
    base = tmp_path_factory.mktemp("recipes")
    paths = {}
    for recipe in ("dcgan", "wgan", "wgan-gp", "cgan"):
        run = base / recipe
        run_cli(
            "training", "train", "--recipe", recipe, "--steps", "2", "--seed", "3", "--out", str(run), *TINY
        )
        out = base / f"digits-{recipe}.onnx"
        run_cli("training", "export", str(run), "--out", str(out))
        paths[recipe] = out
    return paths


@pytest.fixture(scope="session")
def sprites_models_dir(tmp_path_factory) -> Path:
    """A models folder with ``tiny-sprites``: a 64×64×4 (RGBA) DCGAN of width 16 trained two steps on
    synthetic transparent sprites (benchmarks/sprites.py)."""
    from tests.support.sprites import make_model

    folder = tmp_path_factory.mktemp("sprites") / "models"
    folder.mkdir()
    make_model(folder / "tiny-sprites.onnx", g_width=16, steps=2, images=32)
    return folder


# The launcher the benchmarks use too: own port, own BENTOML_HOME, the README's keep-alive, SIGTERM on stop.
Server = ServeProcess


@pytest.fixture(scope="session")
def models_dir(exported, tmp_path_factory) -> Path:
    """A models folder holding the tiny dcgan and cgan exports."""
    import shutil

    folder = tmp_path_factory.mktemp("served") / "models"
    folder.mkdir()
    for recipe in ("dcgan", "cgan"):
        shutil.copy(exported[recipe], folder / f"tiny-{recipe}.onnx")
    return folder


@pytest.fixture(scope="session")
def server(models_dir) -> Server:
    """One real server for the whole session (max count 64 so limits are cheap to test)."""
    srv = Server(models_dir, env={"GANSERVE_MAX_COUNT": "64"}).wait_ready()
    yield srv
    srv.stop()


KEY = "test-key-0123456789"


@pytest.fixture(scope="session")
def keyed_server(models_dir) -> Server:
    """A second real server over the same models, with an API key and at most 8 images per request."""
    srv = Server(models_dir, env={"GANSERVE_API_KEY": KEY, "GANSERVE_MAX_COUNT": "8"}).wait_ready()
    yield srv
    srv.stop()
