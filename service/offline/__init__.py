"""Offline batch generation: millions of images to disk, streamed, resumable and split across machines.

The index range [start, start + count) is cut into *units* aligned to absolute image indices (unit n holds
images n·S … n·S + S − 1, clipped to the range): one npz shard, WebDataset tar or Parquet file of S images,
or one png folder of S files. A unit is written under a temporary name and renamed into place, so a file at
its final name is always complete, and a killed job rerun with the same command redoes only the units
without their final file. ``job.json`` pins what the folder holds (model hash, seed, label, range, format,
unit size, shard count); a different job is refused. With ``shard_count`` M, worker K takes a contiguous
slice of the units, so M workers write exactly the files one worker would. Every image comes from
GeneratorModel.generate, the code path of ``POST /generate``.

Modules, one job each: ``options`` (speed settings), ``validation`` (arguments → Job), ``layout`` (units
and slices), ``folder`` (job.json, finished units, manifests), ``formats`` (one writer per format),
``pool`` (worker processes), ``run`` (one worker's part of a job, start to finish), ``errors``.
"""

from __future__ import annotations

from service.offline.errors import DiskFullError, OfflineError
from service.offline.folder import JOB_FILE, UnitRecord
from service.offline.formats import FORMATS, get_format
from service.offline.layout import Unit, manifest_name, my_units, shard_images
from service.offline.options import Options, available_cores, default_options
from service.offline.run import run_job
from service.offline.validation import Job, find_model, make_job, parse_label, shard_from_env

__all__ = [
    "FORMATS",
    "JOB_FILE",
    "DiskFullError",
    "Job",
    "OfflineError",
    "Options",
    "Unit",
    "UnitRecord",
    "available_cores",
    "default_options",
    "find_model",
    "get_format",
    "make_job",
    "manifest_name",
    "my_units",
    "parse_label",
    "run_job",
    "shard_from_env",
    "shard_images",
]
