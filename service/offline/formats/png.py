"""``--format png``: one folder per unit (``000012/000012345.png``) plus its ``index.csv``, for tools that
want loose image files. The slowest format on a disk: one file per image."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from pathlib import Path

import numpy as np

from gancore.contract import inputs_for
from gancore.files import is_tmp, write_atomic
from gancore.imaging import encode_png
from service.offline.folder import UnitRecord, sha256_file
from service.offline.formats.base import UnitContext, UnitFormat
from service.offline.layout import Unit, sample_key

PNG_INDEX = "index.csv"  # written last in a png folder: its presence marks the folder complete


def png_name(index: int) -> str:
    return f"{sample_key(index)}.png"


class PngFormat(UnitFormat):
    name = "png"
    default_shard_size = 1000
    max_shard_size = 5000  # no folder may hold more than a few thousand files
    process_per_core = True  # creating a file per image holds the GIL: spread it over processes
    checksums = "sha256 of each png folder's index.csv, which lists each file's"

    def unit_path(self, unit: Unit) -> str:
        return f"{unit.number:06d}/{PNG_INDEX}"

    def clean(self, out: Path, unit: Unit) -> None:
        """Nothing: :meth:`write` keeps a killed run's finished images and removes its temporary files."""

    def write(self, ctx: UnitContext, unit: Unit) -> UnitRecord:
        """Generate the images of one folder that are not on disk yet, then its index.csv
        (index, file, class, sha256 per image), whose presence marks the folder complete."""
        folder = ctx.out / f"{unit.number:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        present = set()
        for name in os.listdir(folder):
            if is_tmp(name):  # left by a killed run; this worker owns the folder
                (folder / name).unlink()
            else:
                present.add(name)
        indices = unit.indices()
        digests: dict[int, str] = {}
        missing = np.array([i for i in indices.tolist() if png_name(i) not in present], dtype=np.uint64)
        ctx.progress(len(indices) - len(missing))
        for idx, imgs, _ in ctx.batches(missing):
            for k, i in enumerate(idx.tolist()):
                data = encode_png(imgs[k], reproducible=True)
                write_atomic(folder / png_name(i), data)
                digests[i] = hashlib.sha256(data).hexdigest()
        # Images written by an earlier run: hash them, and recover their classes from the seed (cheap, pure).
        for i in indices.tolist():
            if i not in digests:
                digests[i] = sha256_file(folder / png_name(i))[0]
        classes_of: dict[int, int] = {}
        info = ctx.model.info
        if info.conditional:  # each image's class, from the same sampling code generate uses
            _, _, classes = inputs_for(
                ctx.job.seed, indices, info.latent_dim, info.num_classes, ctx.label_row()
            )
            classes_of = dict(zip(indices.tolist(), classes.tolist(), strict=True))
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["index", "file", "class", "sha256"])
        for i in indices.tolist():
            writer.writerow([i, png_name(i), classes_of.get(i, ""), digests[i]])
        data = text.getvalue().encode()
        write_atomic(folder / PNG_INDEX, data)
        return UnitRecord(
            self.unit_path(unit), unit.first, unit.count, hashlib.sha256(data).hexdigest(), len(data)
        )
