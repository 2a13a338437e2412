"""``--format webdataset``: one tar shard per unit (``000012.tar``), as WebDataset, Hugging Face
``datasets``, DALI and Ray Data read them.

Each sample is a key without dots (the zero-padded image index) and the members ``KEY.png``, ``KEY.cls``
(the class index as decimal text; conditional models only) and ``KEY.json`` (model name and sha256, seed,
index, label row, class). Written with the standard library's tarfile rather than ``webdataset.TarWriter``:
TarWriter stamps each member with the current time, which would make reruns differ byte for byte, and
the service would need webdataset and its dependencies only to wrap tarfile. Every header field is fixed
here (mtime 0, uid/gid 0, mode 0644, ustar), so a shard's bytes depend on its images alone.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from service.imaging import encode_png
from service.offline.formats.base import Batch, FileFormat, UnitContext
from service.offline.layout import Unit, sample_key

Sample = list[tuple[str, bytes]]  # (member name, contents) of one sample, in write order


def label_row(ctx: UnitContext, cls: int | None) -> list[float] | None:
    """The label row the model was fed for this image: the job's row, else the one-hot of its drawn class."""
    if ctx.job.label is not None:
        return ctx.job.label
    if cls is None:
        return None
    row = [0.0] * ctx.model.info.num_classes
    row[cls] = 1.0
    return row


def sample_json(ctx: UnitContext, index: int, cls: int | None) -> bytes:
    """One sample's metadata: enough to regenerate the image through ``POST /generate``."""
    info = ctx.model.info
    body = {
        "model": info.name,
        "model_sha256": info.sha256,
        "seed": ctx.job.seed,
        "index": index,
        "label": label_row(ctx, cls),
        "class": cls,
        "class_name": None if cls is None or not info.class_names else info.class_names[cls],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class WebDatasetFormat(FileFormat):
    name = "webdataset"
    suffix = "tar"
    default_shard_size = 4096  # 64×64×4: ≈ 20–30 MB per shard
    max_shard_size = 65536

    def encode(self, ctx: UnitContext, batch: Batch) -> list[Sample]:
        """A batch's samples, ready to archive (runs on a stream thread: PNG encoding is the work)."""
        idx, images, classes = batch
        samples = []
        for k, index in enumerate(idx.tolist()):
            key = sample_key(index)
            cls = None if classes is None else int(classes[k])
            members = [(f"{key}.png", encode_png(images[k]))]
            if cls is not None:
                members.append((f"{key}.cls", str(cls).encode()))
            members.append((f"{key}.json", sample_json(ctx, index, cls)))
            samples.append(members)
        return samples

    def write_file(self, ctx: UnitContext, unit: Unit, path: Path) -> None:
        with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for samples in ctx.batches(unit.indices(), lambda batch: self.encode(ctx, batch)):
                for members in samples:
                    for name, data in members:
                        tar.addfile(member(name, len(data)), io.BytesIO(data))


def member(name: str, size: int) -> tarfile.TarInfo:
    """A tar header that depends on the name and size alone."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
