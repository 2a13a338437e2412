"""WebDataset and Parquet jobs of `python -m service generate`, read back with the real reader libraries
(webdataset, Hugging Face datasets, pyarrow): pixels equal `POST /generate`, reruns byte-identical, kill -9
then resume, M shards = one machine, bounded memory, and a disk that fills up mid-run (a small tmpfs)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import deflate
import numpy as np
import pytest
from PIL import Image

from gancore.contract import image_indices
from tests.conftest import ROOT, TINY, run_cli
from tests.test_offline import gen, generate_cmd, kill_when, service_images, tree

datasets = pytest.importorskip("datasets")
wds = pytest.importorskip("webdataset")
pq = pytest.importorskip("pyarrow.parquet")

FILE_FORMATS = ("webdataset", "parquet")
SUFFIX = {"webdataset": "tar", "parquet": "parquet", "npz": "npz"}


@pytest.fixture(scope="module")
def fmt_models(exported, tmp_path_factory) -> Path:
    """digits-cgan and digits-dcgan (1×16×16) and sprites-cgan, a 4×16×16 (RGBA) conditional model trained
    two steps on a folder of synthetic transparent sprites in two classes."""
    folder = tmp_path_factory.mktemp("fmt-models")
    for recipe in ("dcgan", "cgan"):
        shutil.copy(exported[recipe], folder / exported[recipe].name)
    data = tmp_path_factory.mktemp("sprites")
    rng = np.random.default_rng(0)
    for cls in ("dot", "bar"):
        (data / cls).mkdir()
        for i in range(8):
            pixels = np.zeros((16, 16, 4), dtype=np.uint8)
            y, x = rng.integers(2, 12, 2)
            pixels[y : y + 4, x : x + (4 if cls == "dot" else 10) // 2 * 2] = [*rng.integers(0, 255, 3), 255]
            Image.fromarray(pixels, "RGBA").save(data / cls / f"{i}.png")
    run = tmp_path_factory.mktemp("sprites-run") / "run"
    run_cli(
        "training", "train", "--recipe", "cgan", "--dataset", f"folder:{data}", "--channels", "4",
        "--steps", "2", "--seed", "1", "--out", str(run), *TINY,
    )  # fmt: skip
    run_cli("training", "export", str(run), "--out", str(folder / "sprites-cgan.onnx"))
    return folder


def last_json(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shards(out: Path, fmt: str) -> list[str]:
    return [str(p) for p in sorted(out.glob(f"*.{SUFFIX[fmt]}"))]


def reference_png(image: np.ndarray) -> bytes:
    """The PNG offline files must hold for ``image``: encode_png's layout, deflated by libdeflate at level 1
    (deterministic for its version). ISA-L's bytes for one image varied with what ran on other
    threads (valid PNGs of equal pixels, different bytes), so resumed, sharded and Kubernetes jobs differed
    from one run."""
    h, w, c = image.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * c)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = bytes(deflate.zlib_compress(rows.tobytes(), 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def as_array(image: Image.Image, channels: int) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels[..., None] if channels == 1 else pixels


# ---------------------------------------------------------------- WebDataset


@pytest.mark.parametrize(
    ("model", "label"), [("digits-cgan", None), ("sprites-cgan", "bar"), ("digits-dcgan", None)]
)
def test_webdataset_reads_back_with_webdataset(fmt_models, tmp_path, model, label):
    out = tmp_path / "out"
    args = ["--model", model, "--count", "300", "--seed", "7", "--start", "90", "--format", "webdataset"]
    args += ["--shard-size", "128", "--out", str(out), *(["--label", label] if label else [])]
    gen(fmt_models, *args)
    # images 90 … 389 in units of 128: 90–127, 128–255, 256–383, 384–389
    assert [Path(p).name for p in shards(out, "webdataset")] == [f"00000{k}.tar" for k in range(4)]
    indices = image_indices(90, 300)
    want, classes = service_images(fmt_models, model, 7, indices, label)
    channels = want.shape[-1]
    # Keys without dots, members in order: KEY.png, KEY.cls (conditional only), KEY.json.
    with tarfile.open(shards(out, "webdataset")[0]) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in tar.getmembers())
    per_sample = ["png", "cls", "json"] if classes is not None else ["png", "json"]
    assert names[: len(per_sample)] == [f"000000090.{ext}" for ext in per_sample]
    # The reader: decode("pil") (RGB); "pilrgba" keeps the alpha channel exactly.
    decoder = "pilrgba" if channels == 4 else "pill"
    samples = list(wds.WebDataset(shards(out, "webdataset"), shardshuffle=False).decode(decoder))
    rgb = list(wds.WebDataset(shards(out, "webdataset"), shardshuffle=False).decode("pil"))
    raw = [s["png"] for s in wds.WebDataset(shards(out, "webdataset"), shardshuffle=False)]
    assert len(samples) == len(rgb) == 300
    assert [s["__key__"] for s in samples] == [f"{i:09d}" for i in indices.tolist()]
    info = json.loads((out / "job.json").read_text())
    for k, (sample, plain) in enumerate(zip(samples, rgb, strict=True)):
        pixels = np.asarray(sample["png"]) if channels == 4 else np.asarray(sample["png"])[..., None]
        np.testing.assert_array_equal(pixels, want[k])
        assert raw[k] == reference_png(want[k])  # the reproducible encoder
        expect_rgb = np.asarray(
            Image.fromarray(want[k].squeeze(-1) if channels == 1 else want[k]).convert("RGB")
        )
        np.testing.assert_array_equal(np.asarray(plain["png"]), expect_rgb)
        meta = sample["json"]
        assert meta["index"] == int(indices[k]) and meta["seed"] == 7
        assert meta["model"] == model and meta["model_sha256"] == info["model_sha256"]
        if classes is None:
            assert "cls" not in sample and meta["label"] is None and meta["class"] is None
        else:
            assert sample["cls"] == int(classes[k]) == meta["class"]
            row = np.zeros(len(meta["label"]))
            row[classes[k]] = 1
            assert meta["label"] == row.tolist()
    if model == "sprites-cgan":
        assert {s["json"]["class_name"] for s in samples} == {"bar"}
        assert (want[..., 3] < 255).any()  # the alpha channel is really there, and survived the round trip


def test_webdataset_reads_back_with_hf_datasets(fmt_models, tmp_path):
    out = tmp_path / "out"
    args = ["--model", "sprites-cgan", "--count", "250", "--seed", "3", "--format", "webdataset"]
    gen(fmt_models, *args, "--shard-size", "100", "--out", str(out))
    ds = datasets.load_dataset(
        "webdataset",
        data_files={"train": shards(out, "webdataset")},
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert len(ds) == 250
    assert isinstance(ds.features["png"], datasets.Image)
    want, classes = service_images(fmt_models, "sprites-cgan", 3, image_indices(0, 250))
    assert ds["__key__"] == [f"{i:09d}" for i in range(250)]
    assert ds["cls"] == classes.tolist()
    assert [m["index"] for m in ds["json"]] == list(range(250))
    for k in (0, 99, 100, 249):
        image = ds[k]["png"]
        assert image.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(image), want[k])


# ---------------------------------------------------------------- Parquet


@pytest.mark.parametrize(
    ("model", "label"), [("sprites-cgan", None), ("digits-cgan", "[0,0,0,0.5,0.5,0,0,0,0,0]")]
)
def test_parquet_reads_back_with_hf_datasets(fmt_models, tmp_path, model, label):
    out = tmp_path / "out"
    args = ["--model", model, "--count", "450", "--seed", "5", "--start", "30", "--format", "parquet"]
    args += [
        "--shard-size",
        "256",
        "--batch-size",
        "64",
        "--out",
        str(out),
        *(["--label", label] if label else []),
    ]
    gen(fmt_models, *args)
    assert [Path(p).name for p in shards(out, "parquet")] == ["000000.parquet", "000001.parquet"]
    ds = datasets.load_dataset(
        "parquet", data_files={"train": shards(out, "parquet")}, split="train", cache_dir=str(tmp_path / "hf")
    )
    indices = image_indices(30, 450)
    parsed = json.loads(label) if label else None
    want, classes = service_images(fmt_models, model, 5, indices, parsed)
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["label"], datasets.ClassLabel)
    class_names = ["bar", "dot"] if model == "sprites-cgan" else [str(d) for d in range(10)]
    assert ds.features["label"].names == class_names
    assert ds["index"] == indices.tolist() and set(ds["seed"]) == {5}
    assert ds["label"] == classes.tolist()
    channels = want.shape[-1]
    for k in range(0, 450, 37):
        row = ds[k]
        np.testing.assert_array_equal(as_array(row["image"], channels), want[k])
    assert ds.features["label"].int2str(ds[0]["label"]) == class_names[classes[0]]


def test_parquet_reads_back_with_pyarrow(fmt_models, tmp_path):
    out = tmp_path / "out"
    args = [
        "--model",
        "digits-dcgan",
        "--count",
        "700",
        "--seed",
        "2",
        "--start",
        "150",
        "--format",
        "parquet",
    ]
    gen(fmt_models, *args, "--shard-size", "512", "--batch-size", "96", "--out", str(out))
    want, _ = service_images(fmt_models, "digits-dcgan", 2, image_indices(150, 700))
    first = pq.ParquetFile(shards(out, "parquet")[0])
    schema = first.schema_arrow
    assert schema.names == ["image", "index", "seed"]  # an unconditional model has no label column
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"
    assert str(schema.field("index").type) == "uint64"
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    assert json.loads(schema.metadata[b"ganserve"])["seed"] == 2
    # Row groups of 100 counted from each file's first image, whatever the batch size (96 here).
    files = [pq.ParquetFile(p) for p in shards(out, "parquet")]
    sizes = [[f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] for f in files]
    assert sizes == [[100, 100, 100, 62], [100, 100, 100, 38]]  # images 150…511, 512…849
    rows = []
    for path in shards(out, "parquet"):
        rows += pq.read_table(path).to_pylist()
    assert [r["index"] for r in rows] == list(range(150, 850)) and {r["seed"] for r in rows} == {2}
    for k, r in enumerate(rows):
        assert r["image"]["path"] == f"{150 + k:09d}.png"
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])))[..., None], want[k]
        )
        assert r["image"]["bytes"] == reference_png(want[k])  # the reproducible encoder


# ---------------------------------------------------------------- equality with the HTTP service


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_pixels_equal_post_generate(server, models_dir, tmp_path, fmt):
    """The same (model, seed, index) over HTTP (a real `bentoml serve`) and offline: the same pixels."""
    import httpx

    out = tmp_path / "out"
    run_cli(*generate_cmd(models_dir, "--model", "tiny-cgan", "--count", "60", "--seed", "21", "--start", "4",
                          "--format", fmt, "--shard-size", "16", "--out", str(out)))  # fmt: skip
    r = httpx.post(
        server.url + "/generate",
        json={"model": "tiny-cgan", "count": 60, "seed": 21, "start": 4, "format": "npy"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    want = np.load(io.BytesIO(r.content), allow_pickle=False)
    if fmt == "webdataset":
        got = [
            np.asarray(s["png"])[..., None]
            for s in wds.WebDataset(shards(out, fmt), shardshuffle=False).decode("pill")
        ]
    else:
        got = [np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])))[..., None]
               for p in shards(out, fmt) for r in pq.read_table(p).to_pylist()]  # fmt: skip
    np.testing.assert_array_equal(np.stack(got), want)


# ---------------------------------------------------------------- reruns, kill -9, shards


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_reruns_write_identical_bytes_whatever_the_speed_options(fmt_models, tmp_path, fmt):
    args = ["--model", "sprites-cgan", "--count", "500", "--seed", "8", "--start", "3", "--format", fmt]
    args += ["--shard-size", "200"]
    gen(fmt_models, *args, "--out", str(tmp_path / "a"), "--batch-size", "256", "--streams", "1")
    gen(
        fmt_models,
        *args,
        "--out",
        str(tmp_path / "b"),
        "--batch-size",
        "33",
        "--streams",
        "3",
        "--workers",
        "2",
    )
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert len([k for k in a if k.endswith(SUFFIX[fmt])]) == 3
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_killed_and_resumed_equals_uninterrupted(fmt_models, tmp_path, fmt):
    args = ["--model", "digits-cgan", "--count", "12000", "--seed", "9", "--format", fmt]
    args += ["--shard-size", "500", "--batch-size", "50"]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    gen(fmt_models, *args, "--out", str(whole))
    pattern = f"*.{SUFFIX[fmt]}"
    for at_least in (1, 6):  # killed right after the first file, then again a few files later
        kill_when(
            generate_cmd(fmt_models, *args, "--out", str(resumed)),
            lambda out, n=at_least: len(list(out.glob(pattern))) >= n and any(out.glob(".*.tmp")),
            resumed,
        )
    result = last_json(gen(fmt_models, *args, "--out", str(resumed)))
    assert result["skipped"] > 0 and result["generated"] > 0  # it really resumed
    assert not [p for p in resumed.rglob("*") if p.name.endswith(".tmp")]
    want, got = tree(whole), tree(resumed)
    assert sorted(got) == sorted(want)
    assert [k for k in want if want[k] != got[k]] == []


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_shards_together_equal_one_run(fmt_models, tmp_path, fmt):
    args = [
        "--model",
        "digits-cgan",
        "--count",
        "1100",
        "--seed",
        "5",
        "--start",
        "77",
        "--shard-size",
        "256",
    ]
    args += ["--format", fmt]
    one, many = tmp_path / "one", tmp_path / "many"
    gen(fmt_models, *args, "--out", str(one))
    for k in range(3):
        gen(fmt_models, *args, "--out", str(many), "--shard-count", "3", env={"JOB_COMPLETION_INDEX": str(k)})
    assert tree(many, data_only=True) == tree(one, data_only=True)
    units = []
    for k in range(3):
        manifest = json.loads((many / f"manifest-{k:04d}-of-0003.json").read_text())
        assert manifest["complete"]
        units += manifest["units"]
    assert sorted(units, key=lambda u: u["first"]) == json.loads((one / "manifest.json").read_text())["units"]


# ---------------------------------------------------------------- bounded memory


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_memory_stays_bounded_whatever_the_count(fmt_models, tmp_path, fmt):
    def peak_mb(count: int, out: Path) -> float:
        code = (
            "import resource, sys; from service.__main__ import main; rc = main(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
        )
        args = generate_cmd(fmt_models, "--model", "digits-dcgan", "--count", str(count), "--seed", "1")[1:]
        args += ["--out", str(out), "--format", fmt, "--shard-size", "8192", "--streams", "2"]
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, check=True)  # fmt: skip
        return int(proc.stderr.rsplit("PEAK", 1)[1].split()[0]) / 1024

    small, large = peak_mb(1_000, tmp_path / "small"), peak_mb(60_000, tmp_path / "large")
    # 60k images held at once would be 15 MB as uint8 PNG-encoded, 61 MB as the model's float32; a streamed
    # run holds a few batches.
    assert large - small < 12, (small, large)
    assert len(list((tmp_path / "large").glob(f"*.{SUFFIX[fmt]}"))) == 8


# ---------------------------------------------------------------- a disk that fills up


@contextlib.contextmanager
def small_filesystem(path: Path, size: str):
    """A size-limited tmpfs mounted at ``path`` (needs root, as in the project's CI containers)."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "npz", "png"])
def test_disk_full_stops_cleanly_and_resumes(fmt_models, tmp_path, fmt):
    args = [
        "--model",
        "sprites-cgan",
        "--count",
        "3000",
        "--seed",
        "4",
        "--format",
        fmt,
        "--shard-size",
        "250",
    ]
    whole = tmp_path / "whole"
    gen(fmt_models, *args, "--out", str(whole))
    need = sum(p.stat().st_blocks * 512 for p in whole.rglob("*") if p.is_file())  # what tmpfs charges
    with small_filesystem(tmp_path / "small", f"{need // 2 // 1024}k") as mount:
        out = mount / "job"
        proc = gen(fmt_models, *args, "--out", str(out), check=False)
        assert proc.returncode == 1, proc.stderr
        assert f"no space left in {out}" in proc.stderr and "rerun the same command" in proc.stderr
        assert "Traceback" not in proc.stderr
        # No partial file at a final name: every unit file there equals the uninterrupted run's; no temp
        # files are left either.
        want = tree(whole, data_only=True)
        got = tree(out, data_only=True)
        assert got
        assert [k for k in got if k not in want] == []
        assert [k for k in got if got[k] != want[k]] == []
        assert not [p for p in out.rglob(".*.tmp")]
        manifest = json.loads((out / "manifest.json").read_text())
        assert not manifest["complete"]
        assert len(got) < len(want)
        # Space is freed: the same command completes the job, equal to the uninterrupted run.
        subprocess.run(["mount", "-o", f"remount,size={need * 2 // 1024 + 1024}k", str(mount)], check=True)
        result = last_json(gen(fmt_models, *args, "--out", str(out)))
        assert result["skipped"] > 0 and result["generated"] > 0
        assert tree(out, data_only=True) == want
        assert (
            json.loads((out / "manifest.json").read_text())["units"]
            == json.loads((whole / "manifest.json").read_text())["units"]
        )


# ---------------------------------------------------------------- arguments


def test_cli_offers_every_format():
    from service.__main__ import build_parser
    from service.offline import FORMATS

    action = next(a for a in build_parser()._subparsers._group_actions[0].choices["generate"]._actions
                  if a.dest == "format")  # fmt: skip
    assert sorted(action.choices) == sorted(FORMATS)


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_shard_size_limit_names_the_flag(fmt_models, tmp_path, fmt):
    proc = gen(fmt_models, "--model", "digits-cgan", "--count", "5", "--seed", "0", "--format", fmt,
               "--shard-size", "70000", "--out", str(tmp_path / "o"), check=False)  # fmt: skip
    assert proc.returncode == 2
    assert f"--shard-size: must be in 1 … 65536 for {fmt}, got 70000" in proc.stderr


@pytest.mark.parametrize("fmt", ["npz", "webdataset", "parquet", "png"])
def test_the_kubernetes_job_works_with_any_format(fmt_models, tmp_path, fmt):
    """deploy/offline-job.yaml's container args with only --format, --count, --out and the models folder
    changed: its `completions` pods (JOB_COMPLETION_INDEX 0 … n − 1) write what one machine writes."""
    import yaml

    docs = list(yaml.safe_load_all((ROOT / "deploy" / "offline-job.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "Job")
    completions = job["spec"]["completions"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "service", "generate"]
    changed = {"--format": fmt, "--count": "900", "--out": str(tmp_path / "pods"), "--shard-size": "100"}
    args = [a for a in container["args"] if a.split("=", 1)[0] not in changed]
    args += [f"{k}={v}" for k, v in changed.items()]
    for k in range(completions):
        run_cli(
            *container["command"][2:],
            *args,
            "--models-dir",
            str(fmt_models),
            env={"JOB_COMPLETION_INDEX": str(k)},
        )
    one = [a for a in args if not a.startswith(("--shard-count", "--out"))] + [f"--out={tmp_path / 'one'}"]
    run_cli(*container["command"][2:], *one, "--models-dir", str(fmt_models))
    pods, single = tree(tmp_path / "pods", data_only=True), tree(tmp_path / "one", data_only=True)
    assert len(pods) >= 9 and pods == single
    for k in range(completions):
        assert json.loads((tmp_path / "pods" / f"manifest-{k:04d}-of-{completions:04d}.json").read_text())[
            "complete"
        ]


def test_tar_headers_are_the_standard_librarys():
    """The WebDataset writer builds ustar headers itself (fast, version-independent): they must be the
    bytes tarfile writes for the same member, and the archive must read back with tarfile."""
    import tarfile

    from service.offline.formats.webdataset import ustar_member

    for name, data in (("000000007.png", b"\x89PNG" * 300), ("123456789012.json", b"{}"), ("0.cls", b"")):
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = (
            len(data),
            0,
            0o644,
            0,
            0,
            "",
            "",
        )
        member = ustar_member(name, data)
        assert member[:512] == info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        assert len(member) % 512 == 0 and member[512 : 512 + len(data)] == data


def test_without_libdeflate_training_imports_and_reproducible_pngs_refuse():
    """A training-only environment (the GPU check runs the checkout without installing it) needs no
    ``deflate``; asking for reproducible PNG bytes there fails loudly instead of giving other bytes."""
    code = (
        "import sys; sys.modules['deflate'] = None\n"
        "import numpy as np, training.trainer, gancore.imaging as im\n"
        "assert im.encode_png(np.zeros((4, 4, 4), np.uint8)).startswith(b'\\x89PNG')\n"
        "try:\n    im.encode_png(np.zeros((4, 4, 4), np.uint8), reproducible=True)\n"
        "except RuntimeError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "needs the 'deflate' package" in proc.stdout


def test_offline_pngs_are_the_reproducible_encoders():
    """encode_png(reproducible=True), which every offline format uses, is libdeflate's deflate: bytes that
    depend on the image alone, for every channel count the service supports, and the same when
    many threads encode at once (where ISA-L's were seen to vary)."""
    from concurrent.futures import ThreadPoolExecutor

    from gancore.imaging import encode_png

    rng = np.random.default_rng(19)
    images = []
    for shape in ((16, 16, 1), (28, 28, 1), (7, 5, 2), (9, 11, 3), (64, 64, 4)):
        image = (rng.integers(0, 256, shape) // rng.integers(1, 8)).astype(np.uint8)
        assert encode_png(image, reproducible=True) == reference_png(image)
        np.testing.assert_array_equal(as_array(Image.open(io.BytesIO(reference_png(image))), shape[2]), image)
        images.append(image)
    many = [images[i % len(images)] for i in range(400)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda im: encode_png(im, reproducible=True), many))
            assert got == [reference_png(im) for im in many]
