"""``--format webdataset``: one tar shard per unit (``000012.tar``), as WebDataset, Hugging Face
``datasets``, DALI and Ray Data read them.

Each sample is a key without dots (the zero-padded image index) and the members ``KEY.png``, ``KEY.cls``
(the class index as decimal text; conditional models only) and ``KEY.json`` (model name and sha256, seed,
index, label row, class). The tar is ustar, written here rather than with ``tarfile`` or
``webdataset.TarWriter``: TarWriter stamps members with the current time (reruns would differ byte for
byte), tarfile's header code costs ≈ 40 µs of Python per member (≈ 200 µs per sample with its writes, on
the main thread) and its header bytes have changed between Python versions. Every header field but the
name and size is fixed (mtime 0, uid/gid 0, mode 0644, no owner names), so a shard's bytes depend on its
images alone; headers are built on the model threads, next to the PNG encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

from gancore.imaging import encode_png
from service.offline.formats.base import Batch, FileFormat, UnitContext
from service.offline.layout import Unit, sample_key


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


BLOCK = 512
RECORD = 20 * BLOCK  # tar pads the archive to whole records of 20 blocks, as tarfile and GNU tar do


def ustar_member(name: str, data: bytes) -> bytes:
    """One regular-file member: its ustar header (POSIX.1-1988) then ``data`` padded to whole blocks."""
    raw = name.encode("utf-8")
    if len(raw) > 100:
        raise ValueError(f"tar member name longer than 100 bytes: {name!r}")
    header = bytearray(BLOCK)
    header[0 : len(raw)] = raw
    header[100:108] = b"0000644\0"  # mode
    header[108:116] = b"0000000\0"  # uid
    header[116:124] = b"0000000\0"  # gid
    header[124:136] = b"%011o\0" % len(data)  # size
    header[136:148] = b"00000000000\0"  # mtime
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[156:157] = b"0"  # regular file
    header[257:265] = b"ustar\x0000"  # magic, version
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + data + b"\0" * (-len(data) % BLOCK)


class WebDatasetFormat(FileFormat):
    name = "webdataset"
    suffix = "tar"
    default_shard_size = 4096  # 64×64×4: ≈ 20–70 MB per shard
    max_shard_size = 65536

    def encode(self, ctx: UnitContext, batch: Batch) -> bytes:
        """A batch's samples as tar members (runs on a stream thread: PNG encoding is the work)."""
        idx, images, classes = batch
        parts = []
        for k, index in enumerate(idx.tolist()):
            key = sample_key(index)
            cls = None if classes is None else int(classes[k])
            parts.append(ustar_member(f"{key}.png", encode_png(images[k], reproducible=True)))
            if cls is not None:
                parts.append(ustar_member(f"{key}.cls", str(cls).encode()))
            parts.append(ustar_member(f"{key}.json", sample_json(ctx, index, cls)))
        return b"".join(parts)

    def write_file(self, ctx: UnitContext, unit: Unit, path: Path) -> None:
        size = 0
        with open(path, "wb") as f:
            for members in ctx.batches(unit.indices(), lambda batch: self.encode(ctx, batch)):
                size += f.write(members)
            end = 2 * BLOCK  # the end-of-archive marker: two zero blocks, then padding to a whole record
            f.write(b"\0" * (end + (-(size + end) % RECORD)))
