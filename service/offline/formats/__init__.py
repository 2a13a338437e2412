"""The output formats, one module each, behind :class:`~service.offline.formats.base.UnitFormat`.

A new format is one module with a UnitFormat subclass, listed in FORMATS below.
"""

from __future__ import annotations

from service.offline.errors import OfflineError
from service.offline.formats.base import UnitContext, UnitFormat
from service.offline.formats.npz import NpzFormat
from service.offline.formats.parquet import ParquetFormat
from service.offline.formats.png import PngFormat
from service.offline.formats.webdataset import WebDatasetFormat

FORMATS: dict[str, UnitFormat] = {
    f.name: f for f in (NpzFormat(), PngFormat(), WebDatasetFormat(), ParquetFormat())
}


def get_format(name: str) -> UnitFormat:
    """The format called ``name``; OfflineError naming ``--format`` otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise OfflineError(f"--format: must be one of {', '.join(FORMATS)}, got {name!r}") from None


__all__ = ["FORMATS", "UnitContext", "UnitFormat", "get_format"]
