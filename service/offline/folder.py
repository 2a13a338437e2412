"""The output folder's state: ``job.json`` (what the folder holds), finished units, and the manifests.

A unit is complete exactly when its file (npz, tar, parquet; a png folder's ``index.csv``) exists at its
final name: every file is written under a temporary name and renamed into place (gancore.files). The
manifest lists each finished unit with its sha256; it is a report, rewritten as units finish, never the
source of truth, so a lost or stale manifest costs a re-hash, never an image.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from gancore.files import is_tmp, tmp_path, write_atomic
from service.offline.errors import OfflineError, is_disk_full
from service.offline.layout import manifest_name, shard_images
from service.offline.validation import Job

JOB_FILE = "job.json"


@dataclass(frozen=True)
class UnitRecord:
    """A finished unit as the manifest lists it; ``path`` is relative to the output folder."""

    path: str
    first: int
    count: int
    sha256: str
    bytes: int


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in 1 MiB chunks."""
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def record_of(out: Path, rel: str, first: int, count: int) -> UnitRecord:
    """The manifest record of the finished file ``out / rel``."""
    digest, size = sha256_file(out / rel)
    return UnitRecord(rel, first, count, digest, size)


def claim_folder(out: Path, job: Job, shard_index: int) -> None:
    """Create ``out`` with job.json, or check that the job.json already there is this very job.

    Several workers may start at once on a shared volume: job.json is published with os.link, which
    fails when another worker got there first; then that file must hold the same job.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        raise OfflineError(f"--out: cannot create the folder {out} ({exc.strerror or exc})") from exc
    job_path = out / JOB_FILE
    names = os.listdir(out)
    if JOB_FILE not in names:
        others = [n for n in names if not (n.startswith(f".{JOB_FILE}.") and is_tmp(n))]
        if others:
            raise OfflineError(
                f"--out: {out} is not empty and holds no {JOB_FILE}; refusing to mix a job into it "
                "(use a new or empty folder)"
            )
        # Not write_atomic: the publication must fail when another worker's job.json is already there
        # (os.link), where a rename would silently replace it.
        tmp = tmp_path(job_path)
        try:
            tmp.write_text(job.to_json())
            try:
                os.link(tmp, job_path)
            except FileExistsError:
                pass
            except OSError as exc:  # a filesystem without hard links: fall back to a plain (atomic) rename
                if is_disk_full(exc):
                    raise
                if not job_path.exists():
                    os.replace(tmp, job_path)
        finally:
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


def write_manifest(
    out: Path, job: Job, shard_index: int, records: list[UnitRecord], complete: bool, checksums: str
) -> None:
    """The manifest: the job, this worker's slice and every finished unit with its checksum (atomic)."""
    done = sorted(records, key=lambda r: r.first)
    body = {
        "job": asdict(job),
        "shard_index": shard_index,
        "shard_count": job.shard_count,
        "images": shard_images(job, shard_index),
        "images_done": sum(r.count for r in done),
        "units": [asdict(r) for r in done],
        "complete": complete,
        "checksums": checksums,
    }
    write_atomic(out / manifest_name(job, shard_index), (json.dumps(body, indent=1) + "\n").encode())
