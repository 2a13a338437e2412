"""A training run killed with SIGKILL (between steps, or in the middle of a checkpoint write) and resumed
ends with exactly the weights of a run that was never interrupted (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gancore.files import stale_tmp_paths
from tests.conftest import ROOT, TINY, run_cli
from training.trainer import CHECKPOINT, METRICS

pytestmark = pytest.mark.slow

STEPS = 30
ARGS = [
    "training",
    "train",
    "--recipe",
    "cgan",
    "--ema-decay",
    "0.9",
    "--seed",
    "2",
    *TINY,
    "--device",
    "cpu",
    "--checkpoint-every",
    "1",
    "--log-every",
    "1",
    "--sample-every",
    "1000",
]

# Runs the real command line in a process that SIGKILLs itself half-way through writing its Nth checkpoint:
# the temporary file holds half the bytes when the process dies, as when a kill lands mid-write.
KILL_MID_WRITE = """
import io, os, signal, sys
import torch
from training.__main__ import main

n, real_save = 0, torch.save
def save(obj, f, *args, **kwargs):
    global n
    n += 1
    if n == int(os.environ["KILL_AT_SAVE"]):
        buf = io.BytesIO()
        real_save(obj, buf)
        with open(f, "wb") as fh:
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
sys.exit(main(sys.argv[1:]))
"""


def weights(run) -> dict[str, dict[str, torch.Tensor]]:
    blob = torch.load(run / CHECKPOINT, weights_only=True)
    return {k: blob[k] for k in ("G", "D", "G_ema", "opt_g", "opt_d")} | {"step": blob["state"]["step"]}


def assert_same_weights(a, b) -> None:
    assert a["step"] == b["step"] == STEPS
    for net in ("G", "D", "G_ema"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("full") / "run"
    run_cli(*ARGS, "--steps", str(STEPS), "--out", str(run))
    return weights(run)


def resume(run) -> None:
    run_cli("training", "train", "--resume", "--out", str(run), "--no-progress")


def logged_steps(run) -> int:
    try:
        lines = (run / METRICS).read_text().splitlines()
    except FileNotFoundError:
        return 0
    return len(lines)


def test_sigkill_between_steps_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", *ARGS, "--steps", str(STEPS), "--out", str(run)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while logged_steps(run) < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    killed_at = torch.load(run / CHECKPOINT, weights_only=True)["state"]["step"]
    assert 0 < killed_at < STEPS, "the kill must land mid-run"
    resume(run)
    assert_same_weights(uninterrupted, weights(run))
    steps = [json.loads(line)["step"] for line in (run / METRICS).read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # redone steps are logged once


def test_sigkill_during_checkpoint_write_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_AT_SAVE": "4"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_MID_WRITE, *ARGS[1:], "--steps", str(STEPS), "--out", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL
    (torn,) = stale_tmp_paths(run / CHECKPOINT)
    assert torn.stat().st_size < (run / CHECKPOINT).stat().st_size
    assert torch.load(run / CHECKPOINT, weights_only=True)["state"]["step"] == 3  # the previous one, intact
    resume(run)
    assert not torn.exists()
    assert_same_weights(uninterrupted, weights(run))


def test_sigkill_before_the_first_checkpoint_resumes_from_the_start(tmp_path, uninterrupted):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_AT_SAVE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_MID_WRITE, *ARGS[1:], "--steps", str(STEPS), "--out", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (run / CHECKPOINT).exists()
    resume(run)
    assert_same_weights(uninterrupted, weights(run))
