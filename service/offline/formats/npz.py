"""``--format npz``: one uncompressed ``.npz`` per unit (``0000/000012.npz``), for numpy pipelines."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from service.offline.formats.base import FileFormat, UnitContext
from service.offline.layout import Unit

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps, so equal shards are equal bytes


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


class NpzFormat(FileFormat):
    """images uint8 [n, H, W, C], indices uint64 [n], labels int64 [n] (−1 for unconditional models).

    The shard is assembled in memory (one unit: 4096 × 64×64×4 is 64 MB) because its arrays are stored
    whole; the other file formats stream."""

    name = "npz"
    suffix = "npz"
    default_shard_size = 4096
    max_shard_size = 65536
    units_per_folder = 1000

    def write_file(self, ctx: UnitContext, unit: Unit, path: Path) -> None:
        c, h, w = ctx.job.image_shape
        images = np.empty((unit.count, h, w, c), dtype=np.uint8)
        labels = np.full(unit.count, -1, dtype=np.int64)
        indices, pos = unit.indices(), 0
        for idx, imgs, classes in ctx.batches(indices):
            images[pos : pos + len(idx)] = imgs
            if classes is not None:
                labels[pos : pos + len(idx)] = classes
            pos += len(idx)
        path.write_bytes(npz_bytes({"images": images, "indices": indices, "labels": labels}))
