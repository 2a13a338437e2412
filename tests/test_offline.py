"""Offline generation (`python -m service generate`): pixels equal the service's, kill -9 and resume, shards,
refused mixed jobs, bounded memory. Every test runs the real CLI on models exported by the project's CLI."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancore.contract import image_indices, resolve_label
from gancore.generator import GeneratorModel
from service.offline import Job, my_units, shard_images
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def models_dir(exported, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for recipe in ("dcgan", "cgan"):
        shutil.copy(exported[recipe], folder / exported[recipe].name)
    return folder


def generate_cmd(models_dir: Path, *args: str) -> list[str]:
    return ["service", "generate", "--models-dir", str(models_dir), "--no-progress", *args]


def gen(models_dir: Path, *args: str, check: bool = True, env: dict | None = None):
    return run_cli(*generate_cmd(models_dir, *args), check=check, env=env)


def tree(folder: Path, data_only: bool = False) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes); data_only drops job.json and manifests."""
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    if data_only:
        files = {k: v for k, v in files.items() if k != "job.json" and not k.startswith("manifest")}
    return files


def load_npz(folder: Path) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {"images": [], "indices": [], "labels": []}
    for path in sorted(folder.rglob("*.npz")):
        with np.load(path) as data:
            for k in parts:
                parts[k].append(data[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def service_images(models_dir: Path, name: str, seed: int, indices: np.ndarray, label=None):
    """What POST /generate computes for these images: GeneratorModel.generate (one call, one batch)."""
    model = GeneratorModel(models_dir / f"{name}.onnx")
    row = resolve_label(label, model.info.num_classes, model.info.class_names)
    return model.generate(seed, indices, row)


# ---------------------------------------------------------------- layout (pure)


@pytest.mark.parametrize(
    ("start", "count", "size", "shards"), [(0, 1, 4, 1), (0, 100, 7, 3), (5, 1000, 64, 7), (13, 9, 4, 8)]
)
def test_shard_split_covers_the_range_once(start, count, size, shards):
    job = Job("m", "0" * 64, [1, 8, 8], 0, None, start, count, "npz", size, shards)
    covered = []
    for k in range(shards):
        units = list(my_units(job, k))
        assert sum(u.count for u in units) == shard_images(job, k)
        for u in units:
            assert u.first // size == u.number and (u.first + u.count - 1) // size == u.number
            covered.extend(range(u.first, u.first + u.count))
    assert covered == list(range(start, start + count))


# ---------------------------------------------------------------- equality with the service


@pytest.mark.parametrize(("label", "start"), [(None, 0), ("3", 5), ("[0,0,0,0,0,0,0,0,0.5,0.5]", 1)])
def test_npz_equals_service_generate(models_dir, tmp_path, label, start):
    out = tmp_path / "out"
    args = ["--model", "digits-cgan", "--count", "700", "--seed", "11", "--start", str(start)]
    args += ["--out", str(out), "--format", "npz", "--shard-size", "256", "--batch-size", "100"]
    if label is not None:
        args += ["--label", label]
    result = json.loads(gen(models_dir, *args).stdout.strip().splitlines()[-1])
    assert result["generated"] == 700
    got = load_npz(out)
    indices = image_indices(start, 700)
    parsed = None if label is None else json.loads(label) if label.startswith("[") else int(label)
    want, classes = service_images(models_dir, "digits-cgan", 11, indices, parsed)
    assert got["images"].dtype == np.uint8 and got["images"].shape == (700, 16, 16, 1)
    np.testing.assert_array_equal(got["indices"], indices)
    np.testing.assert_array_equal(got["images"], want)
    np.testing.assert_array_equal(got["labels"], classes)
    if label is None:
        assert len(set(got["labels"].tolist())) > 1  # drawn per image from the seed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["images_done"] == 700
    model_sha = hashlib.sha256((models_dir / "digits-cgan.onnx").read_bytes()).hexdigest()
    assert manifest["job"]["model_sha256"] == model_sha
    ranges = [(u["first"], u["count"]) for u in manifest["units"]]
    assert sum(c for _, c in ranges) == 700 and ranges[0][0] == start
    for unit in manifest["units"]:
        assert hashlib.sha256((out / unit["path"]).read_bytes()).hexdigest() == unit["sha256"]


def test_png_equals_service_generate(models_dir, tmp_path):
    out = tmp_path / "out"
    gen(
        models_dir,
        *["--model", "digits-dcgan", "--count", "1300", "--seed", "4", "--start", "900", "--out", str(out)],
        *["--format", "png", "--shard-size", "500", "--workers", "2"],
    )
    indices = image_indices(900, 1300)
    want, _ = service_images(models_dir, "digits-dcgan", 4, indices)
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in folders] == ["000001", "000002", "000003", "000004"]  # aligned to index // 500
    seen = []
    for folder in folders:
        assert len(list(folder.iterdir())) <= 501
        rows = list(csv.DictReader(io.StringIO((folder / "index.csv").read_text())))
        for row in rows:
            data = (folder / row["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == row["sha256"]
            assert row["class"] == ""
            seen.append(int(row["index"]))
            pixels = np.asarray(Image.open(io.BytesIO(data)))
            np.testing.assert_array_equal(pixels, want[int(row["index"]) - 900][..., 0])
    assert seen == indices.tolist()


def test_png_labels_of_a_conditional_model(models_dir, tmp_path):
    out = tmp_path / "out"
    gen(
        models_dir,
        "--model",
        "digits-cgan",
        "--count",
        "40",
        "--seed",
        "2",
        "--out",
        str(out),
        "--format",
        "png",
    )
    _, classes = service_images(models_dir, "digits-cgan", 2, image_indices(0, 40))
    rows = list(csv.DictReader(io.StringIO((out / "000000" / "index.csv").read_text())))
    assert [int(r["class"]) for r in rows] == classes.tolist()


# ---------------------------------------------------------------- kill -9 and resume


def kill_when(cmd: list[str], ready, out: Path, timeout: float = 60.0) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``ready(out)`` holds; fail if it finished before that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *cmd], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready(out):
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "nothing written in time"
            time.sleep(0.005)
        assert proc.poll() is None, "finished before it could be killed"
        children = descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    # Worker processes die with it: an orphan still writing would race the rerun.
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive, f"processes outlived the killed job: {alive}"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def count_files(pattern: str, at_least: int):
    return lambda out: len(list(out.glob(pattern))) >= at_least


@pytest.mark.parametrize(
    ("fmt", "extra", "moments"),
    [
        # npz: killed right after the first shard, then again a few shards later
        ("npz", ["--shard-size", "512", "--batch-size", "64"], [("*/*.npz", 1), ("*/*.npz", 6)]),
        # png over two worker processes: killed mid-folder, twice
        ("png", ["--shard-size", "300", "--batch-size", "16", "--workers", "2"],
         [("*/*.png", 50), ("*/*.png", 900)]),
    ],
)  # fmt: skip
def test_killed_and_resumed_equals_uninterrupted(models_dir, tmp_path, fmt, extra, moments):
    count = "24000" if fmt == "npz" else "4800"  # long enough that a starved checker still kills it midway
    args = ["--model", "digits-cgan", "--count", count, "--seed", "9", "--format", fmt, *extra]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    gen(models_dir, *args, "--out", str(whole))
    for pattern, at_least in moments:
        kill_when(
            generate_cmd(models_dir, *args, "--out", str(resumed)), count_files(pattern, at_least), resumed
        )
    result = json.loads(gen(models_dir, *args, "--out", str(resumed)).stdout.strip().splitlines()[-1])
    assert result["skipped"] > 0 and result["generated"] > 0  # it really resumed
    assert not [p for p in resumed.rglob("*") if p.name.endswith(".tmp")]
    want, got = tree(whole), tree(resumed)
    assert sorted(got) == sorted(want)
    assert [k for k in want if want[k] != got[k]] == []


# ---------------------------------------------------------------- scale-out


def test_shards_together_equal_one_run(models_dir, tmp_path):
    args = [
        "--model",
        "digits-dcgan",
        "--count",
        "2500",
        "--seed",
        "5",
        "--start",
        "77",
        "--shard-size",
        "256",
    ]
    one, many = tmp_path / "one", tmp_path / "many"
    gen(models_dir, *args, "--out", str(one))
    gen(models_dir, *args, "--out", str(many), "--shard-count", "3", "--shard-index", "0")
    gen(models_dir, *args, "--out", str(many), "--shard-count", "3", env={"JOB_COMPLETION_INDEX": "2"})
    partial = tree(many, data_only=True)
    assert partial and set(partial) < set(tree(one, data_only=True))
    gen(models_dir, *args, "--out", str(many), "--shard-count", "3", "--shard-index", "1")
    assert tree(many, data_only=True) == tree(one, data_only=True)
    units = []
    for k in range(3):
        manifest = json.loads((many / f"manifest-{k:04d}-of-0003.json").read_text())
        assert manifest["complete"] and manifest["shard_index"] == k
        units += manifest["units"]
    assert sorted(units, key=lambda u: u["first"]) == json.loads((one / "manifest.json").read_text())["units"]


# ---------------------------------------------------------------- refusals and bad input


def test_a_different_job_over_an_existing_folder_is_refused(models_dir, tmp_path):
    out = tmp_path / "out"
    base = ["--model", "digits-dcgan", "--count", "300", "--out", str(out)]
    gen(models_dir, *base, "--seed", "1")
    before = tree(out)
    proc = gen(models_dir, *base, "--seed", "2", check=False)
    assert proc.returncode == 2
    assert "holds a different job" in proc.stderr and "seed: folder has 1, this command 2" in proc.stderr
    proc = gen(models_dir, *base, "--seed", "1", "--format", "png", check=False)
    assert proc.returncode == 2 and "format" in proc.stderr
    assert tree(out) == before
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    proc = gen(
        models_dir,
        "--model",
        "digits-dcgan",
        "--count",
        "3",
        "--seed",
        "1",
        "--out",
        str(stranger),
        check=False,
    )
    assert proc.returncode == 2 and "holds no job.json" in proc.stderr
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "no model 'nope'"),
        (["--model", "../digits-dcgan"], "--model: '../digits-dcgan' is not a model name"),
        (["--model", "digits-dcgan", "--count", "0"], "--count: must be at least 1, got 0"),
        (["--model", "digits-dcgan", "--label", "3"], "label: this model is unconditional"),
        (["--model", "digits-cgan", "--label", "12"], "label: class index must be in 0 … 9, got 12"),
        (["--model", "digits-cgan", "--label", "[1, 0]"], "exactly 10 numbers"),
        (["--model", "digits-dcgan", "--shard-count", "2", "--shard-index", "2"], "--shard-index: must"),
        (["--model", "digits-dcgan", "--format", "png", "--shard-size", "9000"], "--shard-size: must"),
        (["--model", "digits-dcgan", "--seed", "-1"], "--seed: must be in 0"),
    ],
)  # fmt: skip
def test_bad_input_names_the_field(models_dir, tmp_path, args, message):
    defaults = {"--count": "10", "--seed": "0"}
    for flag, value in defaults.items():
        if flag not in args:
            args = [*args, flag, value]
    proc = gen(models_dir, *args, "--out", str(tmp_path / "out"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "out" / "job.json").exists()


def test_bad_job_completion_index(models_dir, tmp_path):
    args = ["--model", "digits-dcgan", "--count", "10", "--seed", "0", "--out", str(tmp_path / "o")]
    proc = gen(models_dir, *args, "--shard-count", "2", check=False, env={"JOB_COMPLETION_INDEX": "x"})
    assert proc.returncode == 2 and "JOB_COMPLETION_INDEX" in proc.stderr


# ---------------------------------------------------------------- bounded memory


def peak_rss_mb(models_dir: Path, out: Path, count: int) -> float:
    """Peak RSS of one in-process generate run (the CLI's main, wrapped to report getrusage)."""
    code = (
        "import resource, sys; from service.__main__ import main; rc = main(sys.argv[1:]); "
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    )
    args = generate_cmd(models_dir, "--model", "digits-dcgan", "--count", str(count), "--seed", "1")[1:]
    args += ["--out", str(out), "--shard-size", "2048", "--batch-size", "256"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return int(proc.stderr.rsplit("PEAK", 1)[1].split()[0]) / 1024


def test_memory_stays_bounded_whatever_the_count(models_dir, tmp_path):
    small = peak_rss_mb(models_dir, tmp_path / "small", 2_000)
    large = peak_rss_mb(models_dir, tmp_path / "large", 160_000)
    # All 160k images held at once: 41 MB as uint8, 164 MB as the model's float32; a streamed run adds
    # about one shard (0.5 MB) and one batch.
    assert large - small < 20, (small, large)
    assert len(list((tmp_path / "large").rglob("*.npz"))) == 79


def test_the_kubernetes_job_runs_this_cli():
    """deploy/offline-job.yaml: an Indexed Job whose args the CLI accepts, one shard per completion index."""
    import yaml

    from service.__main__ import build_parser

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "offline-job.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "ganserve:latest"
    assert container["command"] == ["python", "-m", "service", "generate"]
    args = build_parser().parse_args(["generate", *container["args"]])
    assert args.shard_count == spec["completions"] and args.shard_index is None  # from JOB_COMPLETION_INDEX
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(str(args.out).startswith(m + "/") for m in mounts)
    claims = {v["persistentVolumeClaim"]["claimName"] for v in job["spec"]["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v}  # fmt: skip
    assert claims == {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
