"""One worker's part of a job, start to finish: claim the folder, skip finished units, write the rest,
keep the manifest current, and stop cleanly when the disk fills up."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from gancore.generator import GeneratorModel
from service.offline.errors import DiskFullError, OfflineError, is_disk_full
from service.offline.folder import UnitRecord, claim_folder, read_manifest, record_of, write_manifest
from service.offline.formats import get_format
from service.offline.layout import Unit, my_units
from service.offline.options import Options, default_options
from service.offline.pool import cpu_seconds, execute
from service.offline.validation import Job


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
    seconds (this process plus its workers' time on units). Raises DiskFullError when the volume fills
    up: every file at a final name is then complete, and the same call resumes once space is free.
    """
    opts = options or default_options(job.format)
    if model.info.sha256 != job.model_sha256:
        raise OfflineError(f"--model: {model.path} is not the model of this job")
    out = Path(out)
    units = list(my_units(job, shard_index))  # validates shard_index
    records: list[UnitRecord] = []
    try:
        return _run(model, job, out, shard_index, opts, units, records)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        # Record what is finished if a manifest still fits (it is a report: a rerun re-hashes otherwise).
        with contextlib.suppress(OSError):
            if (out / "job.json").exists():
                write_manifest(out, job, shard_index, records, False, get_format(job.format).checksums)
        raise DiskFullError(out, exc) from exc


def _run(
    model: GeneratorModel,
    job: Job,
    out: Path,
    shard_index: int,
    opts: Options,
    units: list[Unit],
    records: list[UnitRecord],
) -> dict:
    unit_format = get_format(job.format)
    claim_folder(out, job, shard_index)
    known = read_manifest(out, job, shard_index)
    pending: list[Unit] = []
    for unit in units:
        rel = unit_format.unit_path(unit)
        if (out / rel).exists():
            records.append(known.get(rel) or record_of(out, rel, unit.first, unit.count))
        else:
            unit_format.clean(out, unit)
            pending.append(unit)
    total = sum(u.count for u in units)
    skipped = sum(r.count for r in records)
    started, cpu = time.perf_counter(), cpu_seconds()
    worker_cpu = [0.0]
    last_manifest = started
    write_manifest(out, job, shard_index, records, not pending, unit_format.checksums)
    with _progress_bar(total, skipped, opts.progress) as bar:
        for record in execute(model, job, pending, out, opts, bar, worker_cpu):
            records.append(record)
            if time.perf_counter() - last_manifest >= opts.manifest_every_s:
                write_manifest(out, job, shard_index, records, False, unit_format.checksums)
                last_manifest = time.perf_counter()
    write_manifest(out, job, shard_index, records, True, unit_format.checksums)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu + worker_cpu[0]
    return {
        "generated": total - skipped,
        "skipped": skipped,
        "units": len(units),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
    }
