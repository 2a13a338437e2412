"""Offline batch generation: millions of images to disk, streamed, resumable and split across machines.

The index range [start, start + count) is cut into *units* aligned to absolute image indices (unit n holds
images n·S … n·S + S − 1, clipped to the range): one npz shard of S images, or one png folder of S files.
A unit is written under a temporary name and renamed into place, so a file at its final name is always
complete, and a killed job rerun with the same command redoes only the units without their final file.
``job.json`` pins what the folder holds (model hash, seed, label, range, format, unit size, shard count);
a different job is refused. With ``shard_count`` M, worker K takes a contiguous slice of the units, so M
workers write exactly the files one worker would. Every image comes from GeneratorModel.generate, the
code path of ``POST /generate``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from service.contract import MAX_SEED, image_indices, inputs_for, resolve_label
from service.files import is_tmp, tmp_path, write_atomic
from service.imaging import encode_png
from service.registry import MODEL_NAME, GeneratorModel

FORMATS = ("npz", "png")
DEFAULT_SHARD_SIZE = {"npz": 4096, "png": 1000}
MAX_SHARD_SIZE = {"npz": 65536, "png": 5000}  # png: no folder may hold more than a few thousand files
MAX_BATCH = 4096
UNITS_PER_GROUP = 1000  # npz shards per sub-folder
JOB_FILE = "job.json"
PNG_INDEX = "index.csv"  # written last in a png folder: its presence marks the folder complete
LAYOUT_VERSION = 1
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps, so equal shards are equal bytes


class OfflineError(ValueError):
    """Bad arguments or an output folder that cannot take this job; the message names the field or file."""


@dataclass(frozen=True)
class Job:
    """What an output folder holds; two commands with equal Jobs write identical files."""

    model: str
    model_sha256: str
    image_shape: list[int]
    seed: int
    label: list[float] | None  # the resolved one-hot (or soft) row; None: drawn per image from the seed
    start: int
    count: int
    format: str
    shard_size: int
    shard_count: int
    layout: int = LAYOUT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Unit:
    """One npz shard or one png folder: images first … first + count − 1."""

    number: int
    first: int
    count: int

    def indices(self) -> np.ndarray:
        return image_indices(self.first, self.count)


@dataclass(frozen=True)
class UnitRecord:
    """A finished unit as the manifest lists it; ``path`` is relative to the output folder."""

    path: str
    first: int
    count: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Options:
    """How to run a job; none of these change the files written."""

    batch_size: int = 256
    workers: int = 1  # processes, each writing whole units (png: spreads the encoding over the cores)
    streams: int = 1  # concurrent model calls per process (threads; ORT and numpy release the GIL)
    threads: int = 1  # ORT intra-op threads per model call
    progress: bool = True
    manifest_every_s: float = 5.0


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_options(
    fmt: str,
    batch_size: int = 256,
    workers: int | None = None,
    streams: int | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> Options:
    """Fill in what is not given so the cores are used once: npz runs one process with a model call per
    core (single-threaded calls overlap one call's noise and uint8 work with another's convolutions);
    png runs one process per core, each encoding its own folders."""
    cores = available_cores()
    workers = workers or (cores if fmt == "png" else 1)
    streams = streams or (max(1, cores // workers) if fmt == "npz" else 1)
    threads = threads or max(1, cores // (workers * streams))
    for name, value in (("--workers", workers), ("--streams", streams), ("--threads", threads)):
        if value < 1:
            raise OfflineError(f"{name}: must be at least 1, got {value}")
    if not 1 <= batch_size <= MAX_BATCH:
        raise OfflineError(f"--batch-size: must be in 1 … {MAX_BATCH}, got {batch_size}")
    return Options(batch_size, workers, streams, threads, progress)


# ---------------------------------------------------------------- arguments → Job


def find_model(models_dir: str | Path, name: str) -> Path:
    """The ``.onnx`` file of model ``name`` in ``models_dir``: looked up among the folder's files, so the
    name itself never reaches the filesystem."""
    if not MODEL_NAME.match(name):
        raise OfflineError(f"--model: {name!r} is not a model name (must match {MODEL_NAME.pattern})")
    folder = Path(models_dir)
    if not folder.is_dir():
        raise OfflineError(f"--models-dir: {folder} does not exist or is not a folder")
    found = {p.stem: p for p in folder.iterdir() if p.suffix == ".onnx" and not p.name.startswith(".")}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise OfflineError(f"--model: no model {name!r} in {folder} (models there: {known})")
    return found[name]


def parse_label(text: str | None) -> int | str | list[float] | None:
    """CLI label text → what resolve_label takes: a JSON list, a class index, or else a class name."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise OfflineError(f"--label: not a JSON list of numbers ({exc})") from exc
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise OfflineError("--label: a one-hot list must hold numbers only")
        return value
    return int(stripped) if stripped.isdigit() else text


def shard_from_env(shard_index: int | None, environ: dict[str, str] | None = None) -> int:
    """``--shard-index`` when given, else Kubernetes' JOB_COMPLETION_INDEX, else 0."""
    if shard_index is not None:
        return shard_index
    raw = (os.environ if environ is None else environ).get("JOB_COMPLETION_INDEX", "")
    if not raw:
        return 0
    if not raw.isdigit():
        raise OfflineError(f"JOB_COMPLETION_INDEX: must be a non-negative integer, got {raw!r}")
    return int(raw)


def make_job(
    model: GeneratorModel,
    *,
    seed: int,
    count: int,
    start: int = 0,
    label: int | str | list[float] | None = None,
    fmt: str = "npz",
    shard_size: int | None = None,
    shard_count: int = 1,
) -> Job:
    """Validate the arguments against their limits and the model, and pin them as a Job."""
    info = model.info
    if fmt not in FORMATS:
        raise OfflineError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not 0 <= seed <= MAX_SEED:
        raise OfflineError(f"--seed: must be in 0 … {MAX_SEED}, got {seed}")
    if count < 1:
        raise OfflineError(f"--count: must be at least 1, got {count}")
    if start < 0:
        raise OfflineError(f"--start: must be at least 0, got {start}")
    if start + count > 2**64:
        raise OfflineError(f"--start + --count: image indices must stay below 2**64, got {start + count}")
    size = DEFAULT_SHARD_SIZE[fmt] if shard_size is None else shard_size
    if not 1 <= size <= MAX_SHARD_SIZE[fmt]:
        raise OfflineError(f"--shard-size: must be in 1 … {MAX_SHARD_SIZE[fmt]} for {fmt}, got {size}")
    if shard_count < 1:
        raise OfflineError(f"--shard-count: must be at least 1, got {shard_count}")
    try:
        row = resolve_label(label, info.num_classes, info.class_names)
    except ValueError as exc:
        raise OfflineError(f"--{exc}") from exc
    return Job(
        model=info.name,
        model_sha256=info.sha256,
        image_shape=list(info.image_shape),
        seed=seed,
        label=None if row is None else [float(v) for v in row],
        start=start,
        count=count,
        format=fmt,
        shard_size=size,
        shard_count=shard_count,
    )


# ---------------------------------------------------------------- layout


def _unit_range(job: Job, shard_index: int) -> tuple[int, int]:
    """Unit numbers [lo, hi) of worker ``shard_index``: a contiguous slice, as even as integers allow."""
    if not 0 <= shard_index < job.shard_count:
        raise OfflineError(f"--shard-index: must be in 0 … {job.shard_count - 1}, got {shard_index}")
    s = job.shard_size
    first_unit, last_unit = job.start // s, (job.start + job.count - 1) // s
    total = last_unit - first_unit + 1
    lo = first_unit + shard_index * total // job.shard_count
    return lo, first_unit + (shard_index + 1) * total // job.shard_count


def my_units(job: Job, shard_index: int) -> Iterator[Unit]:
    """The units worker ``shard_index`` of ``job.shard_count`` writes, clipped to the job's index range."""
    lo, hi = _unit_range(job, shard_index)
    s, end = job.shard_size, job.start + job.count
    for n in range(lo, hi):
        a, b = max(n * s, job.start), min((n + 1) * s, end)
        yield Unit(n, a, b - a)


def shard_images(job: Job, shard_index: int) -> int:
    """How many images worker ``shard_index`` writes."""
    lo, hi = _unit_range(job, shard_index)
    s = job.shard_size
    return 0 if hi == lo else min(hi * s, job.start + job.count) - max(lo * s, job.start)


def unit_path(job: Job, unit: Unit) -> str:
    """Where a unit's completion marker lives, relative to the output folder."""
    if job.format == "npz":
        return f"{unit.number // UNITS_PER_GROUP:04d}/{unit.number:06d}.npz"
    return f"{unit.number:06d}/{PNG_INDEX}"


def png_name(index: int) -> str:
    return f"{index:09d}.png"


def manifest_name(job: Job, shard_index: int) -> str:
    if job.shard_count == 1:
        return "manifest.json"
    return f"manifest-{shard_index:04d}-of-{job.shard_count:04d}.json"


def _sha256_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


# ---------------------------------------------------------------- the output folder


def claim_folder(out: Path, job: Job, shard_index: int) -> None:
    """Create ``out`` with job.json, or check that the job.json already there is this very job.

    Several workers may start at once on a shared volume: job.json is published with os.link, which
    fails when another worker got there first; then that file must hold the same job.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OfflineError(f"--out: cannot create the folder {out} ({exc.strerror or exc})") from exc
    job_path = out / JOB_FILE
    names = os.listdir(out)
    if JOB_FILE not in names:
        others = [n for n in names if not (n.startswith(f".{JOB_FILE}.") and n.endswith(".tmp"))]
        if others:
            raise OfflineError(
                f"--out: {out} is not empty and holds no {JOB_FILE}; refusing to mix a job into it "
                "(use a new or empty folder)"
            )
        tmp = out / f".{JOB_FILE}.{shard_index}.tmp"
        tmp.write_text(job.to_json())
        try:
            os.link(tmp, job_path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: fall back to a plain (atomic) rename
            if not job_path.exists():
                os.replace(tmp, job_path)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    try:
        theirs = json.loads(job_path.read_text())
    except (OSError, ValueError) as exc:
        raise OfflineError(f"{job_path}: unreadable ({exc}); not a folder this command can resume") from exc
    ours = asdict(job)
    diff = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
    if diff:
        detail = "; ".join(f"{k}: folder has {theirs.get(k)!r}, this command {ours.get(k)!r}" for k in diff)
        raise OfflineError(
            f"--out: {out} holds a different job ({detail}). Rerun the original command to resume it, "
            "or write this job to another folder."
        )


def read_manifest(out: Path, job: Job, shard_index: int) -> dict[str, UnitRecord]:
    """Units a previous run of this worker recorded (empty when none); a bad manifest is just ignored."""
    path = out / manifest_name(job, shard_index)
    try:
        data = json.loads(path.read_text())
        return {u["path"]: UnitRecord(**u) for u in data["units"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(out: Path, job: Job, shard_index: int, records: list[UnitRecord], complete: bool) -> None:
    """The manifest: the job, this worker's slice and every finished unit with its checksum (atomic)."""
    images = shard_images(job, shard_index)
    done = sorted(records, key=lambda r: r.first)
    body = {
        "job": asdict(job),
        "shard_index": shard_index,
        "shard_count": job.shard_count,
        "images": images,
        "images_done": sum(r.count for r in done),
        "units": [asdict(r) for r in done],
        "complete": complete,
        "checksums": "sha256 of each npz file; for png of the folder's index.csv, which lists each file's",
    }
    write_atomic(out / manifest_name(job, shard_index), (json.dumps(body, indent=1) + "\n").encode())


# ---------------------------------------------------------------- writing units


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (np.load reads it) whose bytes depend on the arrays alone: fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _batches(indices: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(indices), batch_size):
        yield indices[i : i + batch_size]


def generated(
    model: GeneratorModel, job: Job, indices: np.ndarray, opts: Options
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(indices, uint8 images, classes) batch after batch, in order, from GeneratorModel.generate (the
    service's code path); with ``opts.streams`` > 1 that many batches are computed at once, at most
    ``2 × streams`` in flight so memory stays bounded."""
    label = _label_row(job)
    if opts.streams <= 1:
        for idx in _batches(indices, opts.batch_size):
            yield idx, *model.generate(job.seed, idx, label)
        return
    with ThreadPoolExecutor(opts.streams) as pool:
        queue: deque[tuple[np.ndarray, Future]] = deque()
        for idx in _batches(indices, opts.batch_size):
            queue.append((idx, pool.submit(model.generate, job.seed, idx, label)))
            if len(queue) >= 2 * opts.streams:
                first, future = queue.popleft()
                yield first, *future.result()
        while queue:
            first, future = queue.popleft()
            yield first, *future.result()


def _label_row(job: Job) -> np.ndarray | None:
    return None if job.label is None else np.asarray(job.label, dtype=np.float32)


def write_npz_unit(
    model: GeneratorModel, job: Job, unit: Unit, out: Path, opts: Options, progress: Callable[[int], None]
) -> UnitRecord:
    """Generate one shard and write it: images uint8 [n, H, W, C], indices uint64 [n], labels int64 [n]
    (−1 for unconditional models)."""
    c, h, w = job.image_shape
    images = np.empty((unit.count, h, w, c), dtype=np.uint8)
    labels = np.full(unit.count, -1, dtype=np.int64)
    indices, pos = unit.indices(), 0
    for idx, imgs, classes in generated(model, job, indices, opts):
        images[pos : pos + len(idx)] = imgs
        if classes is not None:
            labels[pos : pos + len(idx)] = classes
        pos += len(idx)
        progress(len(idx))
    data = npz_bytes({"images": images, "indices": indices, "labels": labels})
    rel = unit_path(job, unit)
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return UnitRecord(rel, unit.first, unit.count, hashlib.sha256(data).hexdigest(), len(data))


def write_png_unit(
    model: GeneratorModel, job: Job, unit: Unit, out: Path, opts: Options, progress: Callable[[int], None]
) -> UnitRecord:
    """Generate the images of one png folder that are not on disk yet, then its index.csv
    (index, file, class, sha256 per image), whose presence marks the folder complete."""
    folder = out / f"{unit.number:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    present = set()
    for name in os.listdir(folder):
        if is_tmp(name):  # left by a killed run; this worker owns the folder
            (folder / name).unlink()
        else:
            present.add(name)
    indices, label = unit.indices(), _label_row(job)
    digests: dict[int, str] = {}
    classes_of: dict[int, int] = {}
    missing = np.array([i for i in indices.tolist() if png_name(i) not in present], dtype=np.uint64)
    progress(len(indices) - len(missing))
    for idx, imgs, _ in generated(model, job, missing, opts):
        for k, i in enumerate(idx.tolist()):
            data = encode_png(imgs[k])
            write_atomic(folder / png_name(i), data)
            digests[i] = hashlib.sha256(data).hexdigest()
        progress(len(idx))
    # Images written by an earlier run: hash them, and recover their classes from the seed (cheap, pure).
    for i in indices.tolist():
        if i not in digests:
            digests[i] = _sha256_file(folder / png_name(i))[0]
    if model.info.conditional:  # each image's class, from the same sampling code generate uses
        _, _, classes = inputs_for(job.seed, indices, model.info.latent_dim, model.info.num_classes, label)
        classes_of = dict(zip(indices.tolist(), classes.tolist(), strict=True))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "file", "class", "sha256"])
    for i in indices.tolist():
        writer.writerow([i, png_name(i), classes_of.get(i, ""), digests[i]])
    data = text.getvalue().encode()
    write_atomic(folder / PNG_INDEX, data)
    return UnitRecord(
        unit_path(job, unit), unit.first, unit.count, hashlib.sha256(data).hexdigest(), len(data)
    )


WRITERS = {"npz": write_npz_unit, "png": write_png_unit}


def record_of_finished(job: Job, unit: Unit, out: Path) -> UnitRecord | None:
    """The record of a unit already complete on disk (None when it is not)."""
    rel = unit_path(job, unit)
    path = out / rel
    if not path.exists():
        return None
    digest, size = _sha256_file(path)
    return UnitRecord(rel, unit.first, unit.count, digest, size)


# ---------------------------------------------------------------- worker processes

_worker: dict = {}


def _die_with_parent(parent_pid: int) -> None:
    """Linux: a worker gets SIGKILL as soon as the main process dies, so that no orphan goes on writing
    after a kill -9 (a rerun would then race it); exit at once if the main process died before this."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(model_path: str, sha256: str, threads: int, counter, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # the failed CUDA-provider probe on CPU machines is not news
    model = GeneratorModel(Path(model_path), intra_threads=threads)
    if model.info.sha256 != sha256:
        raise OfflineError(f"{model_path}: the model file changed while the job ran")
    _worker.update(model=model, counter=counter)


def _count(n: int) -> None:
    counter = _worker["counter"]
    with counter.get_lock():
        counter.value += n


def _run_unit(job: Job, unit: Unit, out: str, opts: Options) -> tuple[UnitRecord, float]:
    """In a worker: write one unit; return its record and the CPU seconds it took (for the summary)."""
    cpu = _cpu_seconds()
    record = WRITERS[job.format](_worker["model"], job, unit, Path(out), opts, _count)
    return record, _cpu_seconds() - cpu


def _cpu_seconds() -> float:
    """User + system CPU of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the job


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, unit="img", unit_scale=True, disable=not enabled, smoothing=0.1,
        dynamic_ncols=True, desc="generate",
    )  # fmt: skip


def run_job(
    model: GeneratorModel, job: Job, out: str | Path, shard_index: int = 0, options: Options | None = None
) -> dict:
    """Write worker ``shard_index``'s part of ``job`` into ``out``, resuming whatever is there.

    Returns a summary: images this run generated, images skipped as already done, wall seconds, and CPU
    seconds (this process plus its workers' time on units).
    """
    opts = options or default_options(job.format)
    if model.info.sha256 != job.model_sha256:
        raise OfflineError(f"--model: {model.path} is not the model of this job")
    out = Path(out)
    units = list(my_units(job, shard_index))  # validates shard_index
    claim_folder(out, job, shard_index)
    known = read_manifest(out, job, shard_index)
    records: list[UnitRecord] = []
    pending: list[Unit] = []
    for unit in units:
        rel = unit_path(job, unit)
        if (out / rel).exists():
            records.append(known.get(rel) or record_of_finished(job, unit, out))
        else:
            _clean_npz_tmp(job, unit, out)
            pending.append(unit)
    total = sum(u.count for u in units)
    skipped = sum(r.count for r in records)
    started, cpu = time.perf_counter(), _cpu_seconds()
    worker_cpu = [0.0]
    last_manifest = started
    write_manifest(out, job, shard_index, records, complete=not pending)
    with _progress_bar(total, skipped, opts.progress) as bar:
        for record in _execute(model, job, pending, out, opts, bar, worker_cpu):
            records.append(record)
            if time.perf_counter() - last_manifest >= opts.manifest_every_s:
                write_manifest(out, job, shard_index, records, complete=False)
                last_manifest = time.perf_counter()
    write_manifest(out, job, shard_index, records, complete=True)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu + worker_cpu[0]
    return {
        "generated": total - skipped,
        "skipped": skipped,
        "units": len(units),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
    }


def _clean_npz_tmp(job: Job, unit: Unit, out: Path) -> None:
    if job.format == "npz":
        with contextlib.suppress(FileNotFoundError):
            tmp_path(out / unit_path(job, unit)).unlink()


def _execute(
    model: GeneratorModel,
    job: Job,
    pending: list[Unit],
    out: Path,
    opts: Options,
    bar,
    worker_cpu: list[float],
):
    """Yield each pending unit's record as it is finished, in order; in-process or over worker processes
    (whose CPU seconds are added to ``worker_cpu[0]``)."""
    writer = WRITERS[job.format]
    if opts.workers == 1 or len(pending) <= 1:
        for unit in pending:
            yield writer(model, job, unit, out, opts, bar.update)
        return
    # spawn: never fork a process whose ONNX Runtime threads may be running; and the workers must be this
    # process's own children so that they die with it (a forkserver would keep them alive after a kill -9).
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    seen = 0
    with ProcessPoolExecutor(
        max_workers=min(opts.workers, len(pending)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(str(model.path), job.model_sha256, opts.threads, counter, os.getpid()),
    ) as pool:
        queue: deque[Future] = deque()
        todo = iter(pending)
        try:
            while True:
                # Bounded: at most two units per worker in flight, so memory does not grow with the job.
                while len(queue) < 2 * opts.workers and (unit := next(todo, None)) is not None:
                    queue.append(pool.submit(_run_unit, job, unit, str(out), opts))
                if not queue:
                    break
                while not queue[0].done():
                    wait_futures([queue[0]], timeout=0.5)
                    seen = _tick(bar, counter, seen)
                seen = _tick(bar, counter, seen)
                record, cpu = queue.popleft().result()
                worker_cpu[0] += cpu
                yield record
        finally:
            for f in queue:
                f.cancel()


def _tick(bar, counter, seen: int) -> int:
    now = counter.value
    if now > seen:
        bar.update(now - seen)
    return now
