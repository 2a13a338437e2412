"""``--format parquet``: one Parquet file per unit (``000012.parquet``), as Hugging Face ``datasets``,
pyarrow, Ray Data and Spark read them.

Columns: ``image`` as the Hugging Face image struct ``{bytes: PNG, path: "KEY.png"}``, ``label`` (the class
index; conditional models only), ``index`` (uint64) and ``seed``. The schema carries the Hugging Face
feature types (``huggingface`` metadata: ``image`` an Image, ``label`` a ClassLabel with the model's class
names), so ``datasets`` decodes images to PIL and labels to named classes without being told; the
``ganserve`` metadata holds the job (less its shard count). Row groups hold 100 rows, counted from the
unit's first image (not per model call), so the bytes do not depend on ``--batch-size``. PNG bytes do not
compress further: the file is written uncompressed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from gancore.imaging import encode_png
from service.offline.formats.base import Batch, FileFormat, UnitContext
from service.offline.layout import Unit, sample_key

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

IMAGE_COLUMN = "image"  # Hugging Face's image column (not the ONNX tensor name)
ROW_GROUP = 100  # rows per row group: ≈ 1 MB of 64×64×4 PNGs, a reader's unit of random access


def schema(ctx: UnitContext) -> pa.Schema:
    """The unit files' Arrow schema, with the Hugging Face feature metadata."""
    import pyarrow as pa  # imported when a parquet job runs: the other formats never load it

    info = ctx.model.info
    fields = [pa.field(IMAGE_COLUMN, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]
    features: dict = {IMAGE_COLUMN: {"_type": "Image"}}
    if info.conditional:
        fields.append(pa.field("label", pa.int64()))
        names = list(info.class_names) or [str(k) for k in range(info.num_classes)]
        features["label"] = {"_type": "ClassLabel", "names": names}
    fields += [pa.field("index", pa.uint64()), pa.field("seed", pa.int64())]
    features["index"] = {"_type": "Value", "dtype": "uint64"}
    features["seed"] = {"_type": "Value", "dtype": "int64"}
    metadata = {
        "huggingface": json.dumps({"info": {"features": features}}, sort_keys=True),
        # The job, less how it was split: M shards must write exactly one machine's bytes.
        "ganserve": json.dumps(
            {k: v for k, v in asdict(ctx.job).items() if k != "shard_count"}, sort_keys=True
        ),
    }
    return pa.schema(fields, metadata=metadata)


class ParquetFormat(FileFormat):
    name = "parquet"
    suffix = "parquet"
    default_shard_size = 4096
    max_shard_size = 65536

    def encode(self, batch: Batch) -> dict[str, list]:
        """A batch's rows as columns (runs on a stream thread: PNG encoding is the work)."""
        idx, images, classes = batch
        indices = idx.tolist()
        return {
            IMAGE_COLUMN: [
                {"bytes": encode_png(images[k], reproducible=True), "path": f"{sample_key(i)}.png"}
                for k, i in enumerate(indices)
            ],
            "label": None if classes is None else classes.tolist(),
            "index": indices,
        }

    def write_file(self, ctx: UnitContext, unit: Unit, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        file_schema = schema(ctx)
        conditional = ctx.model.info.conditional
        pending: dict[str, list] = {IMAGE_COLUMN: [], "label": [], "index": []}

        def flush(writer: pq.ParquetWriter, rows: int) -> None:
            columns = {k: v[:rows] for k, v in pending.items() if k != "label" or conditional}
            columns["seed"] = [ctx.job.seed] * rows
            writer.write_table(pa.table(columns, schema=file_schema), row_group_size=rows)
            for v in pending.values():
                del v[:rows]

        with pq.ParquetWriter(
            path,
            file_schema,
            compression="none",
            write_statistics=["index", "seed", *(["label"] if conditional else [])],
            store_schema=True,
        ) as writer:
            for rows in ctx.batches(unit.indices(), self.encode):
                for k in pending:
                    if k != "label" or conditional:
                        pending[k].extend(rows[k])
                while len(pending["index"]) >= ROW_GROUP:
                    flush(writer, ROW_GROUP)
            if pending["index"]:
                flush(writer, len(pending["index"]))
