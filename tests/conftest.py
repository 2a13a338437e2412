"""Shared fixtures: small training runs and exported models made by the project's own code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real ``bentoml serve`` of this repository on 127.0.0.1, stopped with SIGTERM."""

    def __init__(self, models_dir: Path, env: dict[str, str] | None = None, log_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or models_dir.parent / f"serve-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        bentoml = Path(sys.executable).with_name("bentoml")
        self.proc = subprocess.Popen(
            [str(bentoml), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own BENTOML_HOME: every `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir at start,
            # so servers sharing one would reset each other's metrics.
            env={
                **os.environ,
                "BENTOML_HOME": str(models_dir.parent / f"bentoml-home-{self.port}"),
                "GANSERVE_MODELS_DIR": str(models_dir),
                **(env or {}),
            },
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> Server:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


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
