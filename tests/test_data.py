"""Real data: folders of any size and aspect, RGBA, the decoded cache, emoji, Fashion-MNIST, the loader."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT, TINY, run_cli
from training.config import override, preset
from training.data import DatasetError, load_dataset
from training.data import emoji as emoji_data
from training.data.builtin import DEBIAN_DIRS
from training.data.cache import decode_cached
from training.data.gather import take
from training.data.images import DecodeSpec, decode_file
from training.data.loader import BatchLoader, to_float
from training.trainer import BatchSampler, Trainer

CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def data_cache(tmp_path, monkeypatch) -> Path:
    """Decoded caches and downloads of these tests go to a temporary folder, not the user's."""
    root = tmp_path / "data-cache"
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(root))
    return root


def sprite(w: int, h: int, colour=(255, 0, 0), hidden=(0, 255, 0)) -> Image.Image:
    """An opaque disc of ``colour`` on a transparent ground whose hidden colour is ``hidden``."""
    img = Image.new("RGBA", (w, h), (*hidden, 0))
    yy, xx = np.mgrid[:h, :w]
    disc = (yy + 0.5 - h / 2) ** 2 + (xx + 0.5 - w / 2) ** 2 < (min(w, h) / 2.5) ** 2
    arr = np.asarray(img).copy()
    arr[disc] = (*colour, 255)
    return Image.fromarray(arr, "RGBA")


# ---- one file → one square image ------------------------------------------------------------------
def test_non_square_rgba_is_padded_transparent_and_resized_without_fringes(tmp_path):
    path = tmp_path / "wide.png"
    sprite(90, 30).save(path)
    out = decode_file(path, DecodeSpec(16, 4))
    assert out.shape == (16, 16, 4)
    alpha = out[..., 3]
    assert (alpha[:4] == 0).all() and (alpha[-4:] == 0).all() and alpha[8, 8] == 255  # centred band
    seen = alpha > 0
    # Straight resizing would mix the hidden green of transparent pixels into the edge: premultiplied not.
    assert out[seen][:, 1].max() == 0 and out[seen][:, 0].min() == 255
    assert np.array_equal(np.nonzero(alpha.any(1))[0], 15 - np.nonzero(alpha.any(1))[0][::-1])  # symmetric


def test_rgb_pad_colour_and_alpha_flattened_onto_it(tmp_path):
    path = tmp_path / "tall.png"
    sprite(20, 60).save(path)
    out = decode_file(path, DecodeSpec(16, 3, pad=(255, 255, 255)))
    assert out.shape == (16, 16, 3)
    assert (out[:, 0] == 255).all() and (out[0, :] == 255).all()  # padding and transparent ground: white
    assert tuple(out[8, 8]) == (255, 0, 0)
    grey = decode_file(path, DecodeSpec(16, 1, pad=(0, 0, 0)))
    assert grey.shape == (16, 16, 1) and grey[0, 0, 0] == 0 and grey[8, 8, 0] == 76  # L of pure red


def test_palette_transparency_and_first_gif_frame(tmp_path):
    frames = []
    for colour in ((255, 0, 0), (0, 0, 255)):
        frames.append(sprite(40, 24, colour).convert("RGB").quantize(4))
    first = np.asarray(sprite(40, 24).convert("RGB").quantize(4).convert("RGB"))
    key = int(np.asarray(frames[0])[0, 0])  # the palette index of the ground
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], transparency=key, duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    out = decode_file(path, DecodeSpec(16, 4))
    assert out[0, 0, 3] == 0 and out[8, 8, 3] == 255  # palette transparency became alpha
    assert tuple(out[8, 8, :3]) == tuple(first[12, 20])  # the first frame (red), not the second (blue)


# ---- folders ----------------------------------------------------------------------------------------
@pytest.fixture
def gif_folder(tmp_path) -> Path:
    """A plain folder (no class sub-folders) of non-square transparent GIFs of several sizes."""
    root = tmp_path / "gifs"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        w, h = (int(v) for v in rng.integers(20, 90, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        img = sprite(w, h, colour).convert("RGB").quantize(8)
        img.save(root / f"{i:02d}.gif", transparency=int(np.asarray(img)[0, 0]))
    return root


def test_plain_folder_is_one_unlabeled_set_and_conditional_is_refused(gif_folder, tmp_path):
    ds = load_dataset(f"folder:{gif_folder}", 16, 4)
    assert ds.images.shape == (24, 16, 16, 4) and ds.class_names == () and not ds.labeled
    assert set(ds.labels.tolist()) == {0}
    cfg = override(preset("cgan"), dataset=f"folder:{gif_folder}", image_size=16, channels=4, batch_size=8)
    with pytest.raises(ValueError, match=f"--conditional.*{gif_folder}"):
        Trainer(cfg, tmp_path / "run")


def test_mixed_folder_and_empty_folder_are_named(tmp_path):
    root = tmp_path / "mixed"
    (root / "a").mkdir(parents=True)
    sprite(8, 8).save(root / "a" / "x.png")
    sprite(8, 8).save(root / "loose.png")
    with pytest.raises(DatasetError, match="loose.png"):
        load_dataset(f"folder:{root}", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}", 16)


def test_bad_image_stops_the_run_naming_it_unless_skipped(gif_folder, capfd):
    (gif_folder / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"broken\.png.*--skip-bad-images"):
        load_dataset(f"folder:{gif_folder}", 16, 4)
    capfd.readouterr()
    ds = load_dataset(f"folder:{gif_folder}", 16, 4, skip_bad_images=True)
    assert ds.images.shape == (24, 16, 16, 4)  # the cache file's row count was rewritten
    err = capfd.readouterr().err
    assert "skipped 1 unreadable image" in err and "broken.png" in err
    again = load_dataset(f"folder:{gif_folder}", 16, 4, skip_bad_images=True)  # from the cache
    assert np.array_equal(again.images, ds.images) and "broken.png" in capfd.readouterr().err


def test_decoded_cache_is_mapped_on_later_runs_and_keyed_by_files(gif_folder, data_cache):
    files = sorted(gif_folder.glob("*.gif"))
    labels = np.zeros(len(files), dtype=np.int64)
    spec = DecodeSpec(16, 4)
    cache = data_cache / "decoded"
    first = decode_cached(files, labels, spec, cache)
    assert not first.from_cache and first.images.dtype == np.uint8
    second = decode_cached(files, labels, spec, cache)
    assert second.from_cache and isinstance(second.images, np.memmap) and second.path == first.path
    assert np.array_equal(first.images, second.images)
    assert decode_cached(files, labels, DecodeSpec(32, 4), cache).path != first.path  # size is in the key
    assert decode_cached(files, labels, DecodeSpec(16, 3), cache).path != first.path  # channels too
    sprite(30, 30, (0, 0, 255)).save(files[0])  # a changed file (new size and mtime)
    os.utime(files[0], ns=(1, 1))
    changed = decode_cached(files, labels, spec, cache)
    assert not changed.from_cache and not np.array_equal(changed.images[0], first.images[0])
    assert not list(cache.glob(".*.tmp"))  # no temporary files left behind


def test_done_when_plain_folder_of_transparent_gifs_trains_64x4_and_exports(gif_folder, tmp_path):
    run = tmp_path / "run"
    run_cli("training", "train", "--dataset", f"folder:{gif_folder}", "--image-size", "64", "--channels", "4",
            "--steps", "2", "--g-width", "8", "--d-width", "8", "--batch-size", "8", "--no-progress",
            "--mirror", "--diffaugment", "color,translation,cutout", "--out", str(run))  # fmt: skip
    run_cli("training", "export", str(run), "--out", str(tmp_path / "m.onnx"))
    import onnx

    meta = {p.key: p.value for p in onnx.load(tmp_path / "m.onnx").metadata_props}
    assert json.loads(meta["image_shape"]) == [4, 64, 64] and meta["num_classes"] == "0"
    refused = run_cli("training", "train", "--recipe", "cgan", "--dataset", f"folder:{gif_folder}",
                      "--steps", "1", "--out", str(tmp_path / "c"), *TINY, check=False)  # fmt: skip
    assert refused.returncode == 2 and "--conditional" in refused.stderr and str(gif_folder) in refused.stderr


# ---- the loader ------------------------------------------------------------------------------------
def test_batches_equal_the_old_whole_set_conversion_values_and_layout():
    for channels in (1, 3):
        ds = load_dataset("digits", 16, channels)
        old = torch.from_numpy(ds.as_float())  # what training held before: the whole set as float32
        sampler = BatchSampler(len(ds.images), 16, seed=5)
        loader = BatchLoader(ds.images, sampler.indices)
        for cursor in (0, 1, 200):
            x, idx = loader.get(cursor)
            assert torch.equal(idx, sampler.indices(cursor))
            assert torch.equal(x, old[idx]) and x.stride() == old[idx].stride()


def test_worker_processes_give_the_same_batches_in_the_same_order(gif_folder):
    ds = load_dataset(f"folder:{gif_folder}", 16, 4)
    sampler = BatchSampler(len(ds.images), 4, seed=1)
    plain = BatchLoader(ds.images, sampler.indices)
    pooled = BatchLoader(ds.images, sampler.indices, workers=2)
    try:
        for cursor in (0, 1, 2, 9, 3, 0):  # includes a jump ahead and a rewind (as after a resume)
            a, b = plain.get(cursor), pooled.get(cursor)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    finally:
        pooled.close()
    assert np.array_equal(take(ds.images, np.array([5, 1, 3])), ds.images[[5, 1, 3]])
    assert to_float(torch.full((1, 2, 2, 3), 255, dtype=torch.uint8)).eq(1).all()


def test_decoding_with_worker_processes_gives_the_same_cache(tmp_path):
    from benchmarks.data_memory import make_folder

    files = sorted(make_folder(tmp_path / "imgs", 300).glob("*.png"))  # enough for the pool to be used
    labels = np.zeros(len(files), dtype=np.int64)
    one = decode_cached(files, labels, DecodeSpec(16, 3), tmp_path / "a")
    pooled = decode_cached(files, labels, DecodeSpec(16, 3), tmp_path / "b", workers=2)
    assert np.array_equal(one.images, pooled.images) and one.images.shape == (300, 16, 16, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_are_pinned_copies_equal_to_the_cpu_ones():
    ds = load_dataset("digits", 16, 3)
    sampler = BatchSampler(len(ds.images), 16, seed=2)
    cpu = BatchLoader(ds.images, sampler.indices)
    gpu = BatchLoader(ds.images, sampler.indices, device="cuda")
    for cursor in range(3):
        x, idx = gpu.get(cursor)
        assert x.device.type == "cuda" and torch.equal(x.cpu(), cpu.get(cursor)[0])


# ---- built-in sets ---------------------------------------------------------------------------------
def debian_fashion_mnist() -> Path:
    folder = DEBIAN_DIRS["fashion-mnist"]
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        if CI:
            pytest.fail("CI=true but Debian's dataset-fashion-mnist is not installed (make test installs it)")
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return folder


def test_fashion_mnist_from_debian_trains_a_few_steps(tmp_path):
    debian_fashion_mnist()
    run = tmp_path / "run"
    run_cli("training", "train", "--dataset", "fashion-mnist", "--recipe", "cgan", "--steps", "2",
            "--out", str(run), *TINY)  # fmt: skip
    assert json.loads((run / "class_names.json").read_text())[9] == "Ankle boot"
    assert not (Path(os.environ["GANSERVE_DATA_DIR"]) / "fashion-mnist").exists()  # nothing downloaded


# ---- emoji -----------------------------------------------------------------------------------------
EMOJI = [
    {"image": "1f600.png", "category": "Smileys & Emotion", "sort_order": 1, "has_img_google": True},
    {"image": "1f44b.png", "category": "People & Body", "sort_order": 200, "has_img_google": True,
     "skin_variations": {"1F3FB": {"image": "1f44b-1f3fb.png", "has_img_google": True},
                         "1F3FF": {"image": "1f44b-1f3ff.png", "has_img_google": False}}},
    {"image": "1f3fb.png", "category": "Component", "sort_order": 300, "has_img_google": True},
    {"image": "1f436.png", "category": "Animals & Nature", "sort_order": 400, "has_img_google": True},
    {"image": "1f431.png", "category": "Animals & Nature", "sort_order": 401, "has_img_google": True},
    {"image": "1f98a.png", "category": "Animals & Nature", "sort_order": 402, "has_img_google": False},
]  # fmt: skip


def fake_package(root: Path) -> Path:
    """An unpacked package in npm's layout: package/emoji.json and package/img/google/64/*.png."""
    pkg = root / "package"
    (pkg / emoji_data.IMAGE_DIR).mkdir(parents=True)
    (pkg / "emoji.json").write_text(json.dumps(EMOJI))
    (pkg / "img" / "google" / "sheets").mkdir()
    for i, entry in enumerate(EMOJI):
        names = [entry["image"], *(v["image"] for v in entry.get("skin_variations", {}).values())]
        for name in names:
            sprite(64, 64, (40 * i, 255 - 40 * i, 128)).save(pkg / emoji_data.IMAGE_DIR / name)
    return root


def test_emoji_catalogue_categories_component_dropped_skin_tones_flag(tmp_path):
    root = fake_package(tmp_path / "copy") / "package"
    files, labels, names = emoji_data.catalogue(root)
    assert names == ("Smileys & Emotion", "People & Body", "Animals & Nature")  # Unicode's order
    assert [f.name for f in files] == ["1f600.png", "1f44b.png", "1f436.png", "1f431.png"]
    assert labels.tolist() == [0, 1, 2, 2]
    files, labels, _ = emoji_data.catalogue(root, skin_tones=True)
    assert "1f44b-1f3fb.png" in [f.name for f in files] and "1f44b-1f3ff.png" not in [f.name for f in files]
    assert labels.tolist() == [0, 1, 1, 2, 2]


def test_emoji_from_an_unpacked_copy_with_data_dir(tmp_path):
    copy = fake_package(tmp_path / "copy")
    ds = load_dataset("emoji", 32, data_dir=copy)
    assert ds.images.shape == (4, 32, 32, 4) and ds.num_classes == 3 and ds.name == "emoji"
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("emoji", 32, data_dir=tmp_path)


def test_emoji_tarball_integrity_and_unpacking(tmp_path):
    fake_package(tmp_path / "src")
    tarball = tmp_path / "pkg.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "src" / "package", arcname="package")
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    emoji_data.verify_integrity(tarball, f"sha512-{digest}")
    with pytest.raises(DatasetError, match="does not match"):
        emoji_data.verify_integrity(tarball)  # the pinned hash is the real package's
    dest = emoji_data.unpack(tarball, tmp_path / "cache" / "emoji")
    assert (dest / "emoji.json").exists() and len(list((dest / emoji_data.IMAGE_DIR).glob("*.png"))) == 8
    assert not (dest / "img" / "google" / "sheets").exists()  # only what training reads is unpacked
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["emoji"]  # no temporary folder left


def test_emoji_without_npm_names_data_dir(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatasetError, match="npm.*--data-dir"):
        load_dataset("emoji", 64)


def real_emoji_package() -> Path:
    """The real package in the user's cache, fetched with npm when possible (network: CI must have it)."""
    cache = Path(os.environ.get("GANSERVE_TEST_DATA_DIR", Path.home() / ".cache" / "ganserve" / "datasets"))
    try:
        return emoji_data.locate(None, cache)
    except DatasetError as exc:
        if CI:
            pytest.fail(f"CI=true but the emoji package cannot be had: {exc}")
        pytest.skip(f"emoji package not cached and not fetchable here: {exc}")


def test_done_when_conditional_emoji_64x4_trains_and_exports(tmp_path):
    root = real_emoji_package()
    _, labels, names = emoji_data.catalogue(root)
    counts = dict(zip(names, np.bincount(labels).tolist(), strict=True))
    assert len(labels) == 1906 and "Component" not in counts and counts["People & Body"] == 386
    run = tmp_path / "run"
    run_cli("training", "train", "--recipe", "cgan", "--dataset", "emoji", "--data-dir", str(root),
            "--image-size", "64", "--steps", "2", "--g-width", "8", "--d-width", "8", "--batch-size", "16",
            "--diffaugment", "color,translation", "--no-progress", "--out", str(run))  # fmt: skip
    run_cli("training", "export", str(run), "--out", str(tmp_path / "emoji.onnx"))
    import onnx

    meta = {p.key: p.value for p in onnx.load(tmp_path / "emoji.onnx").metadata_props}
    assert json.loads(meta["image_shape"]) == [4, 64, 64] and json.loads(meta["class_names"]) == list(names)


def test_data_modules_do_not_import_torch():
    """Worker processes import the data package: it must start light (torch only in the loader)."""
    code = (
        "import sys, training.data, training.data.cache, training.data.gather; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- memory (the small version of benchmarks/data_memory.py) ---------------------------------------
def test_training_memory_grows_by_far_less_than_a_float_copy_of_the_set(tmp_path):
    """Peak RSS of training on 4,000 vs 64 images of 64×64×3: the difference must stay well under the
    float32 copy the old loader made (197 MB), which alone would exceed the bound."""
    from benchmarks.data_memory import make_folder, measured, run_measured

    env = {**os.environ, "GANSERVE_DATA_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    peaks = {}
    for count in (64, 4000):
        folder = make_folder(tmp_path / f"set{count}", count)
        cmd = ["training", "train", "--dataset", f"folder:{folder}", "--image-size", "64", "--channels", "3",
               "--steps", "2", "--g-width", "8", "--d-width", "8", "--batch-size", "16", "--no-progress",
               "--out", str(tmp_path / f"run{count}")]  # fmt: skip
        peaks[count], _, _ = run_measured(measured(cmd), env)
    float_copy = 4000 * 64 * 64 * 3 * 4
    assert peaks[4000] - peaks[64] < float_copy / 2, peaks
