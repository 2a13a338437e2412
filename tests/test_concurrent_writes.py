"""Atomic writes under concurrent writers: each writer has its own temporary name, so none renames another's
file away — two processes on one file, two trainings decoding one new folder, a two-process torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancore.files import is_tmp, stale_tmp_paths, write_atomic
from gancore.files import tmp_path as temporary_name
from tests.conftest import ROOT, run_torchrun

WRITER = """
import sys
from gancore.files import write_atomic
path, tag = sys.argv[1], sys.argv[2].encode()
for _ in range(400):
    write_atomic(path, tag * 200_000)
"""


def test_temporary_names_are_unique_per_writer(tmp_path):
    target = tmp_path / "x.bin"
    names = {temporary_name(target) for _ in range(100)}
    assert len(names) == 100 and all(is_tmp(n.name) and n.parent == tmp_path for n in names)


def test_two_processes_writing_one_file_at_once(tmp_path):
    target = tmp_path / "shared.bin"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(target), tag], env=env, stderr=subprocess.PIPE)
        for tag in ("a", "b")
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    data = target.read_bytes()
    assert data in (b"a" * 200_000, b"b" * 200_000)  # complete, one writer's
    assert stale_tmp_paths(target) == []


def test_stale_temporary_files_are_found_for_cleanup(tmp_path):
    target = tmp_path / "checkpoint.pt"
    write_atomic(target, b"ok")
    left = temporary_name(target)
    left.write_bytes(b"torn")
    (tmp_path / ".other.pt.1-ab.tmp").write_bytes(b"")  # another file's leftovers are not this one's
    assert stale_tmp_paths(target) == [left]


@pytest.fixture()
def new_folder(tmp_path) -> Path:
    """2,000 small RGB pictures: decoding them takes long enough for two decoders to overlap."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2000):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def train_args(folder: Path, out: Path) -> list[str]:
    """``python -m`` arguments of a one-step training on ``folder`` into ``out``."""
    return ["training", "train", "--dataset", f"folder:{folder}", "--image-size", "16", "--g-width", "8",
            "--d-width", "8", "--batch-size", "16", "--steps", "1", "--no-progress", "--device", "cpu",
            "--out", str(out)]  # fmt: skip


def test_two_trainings_decode_one_new_folder_at_once(tmp_path, new_folder):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GANSERVE_DATA_DIR": str(tmp_path / "data")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", *train_args(new_folder, tmp_path / f"run{i}")],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=600)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    decoded = tmp_path / "data" / "decoded"
    assert not [n for n in os.listdir(decoded) if is_tmp(n)]
    assert len(list(decoded.glob("*.npy"))) == 1


def test_two_process_torchrun_on_a_new_folder(tmp_path, new_folder):
    run_torchrun(
        "-m", *train_args(new_folder, tmp_path / "run"), env={"GANSERVE_DATA_DIR": str(tmp_path / "data")}
    )
    assert (tmp_path / "run" / "checkpoint.pt").exists()
