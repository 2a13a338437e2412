"""uint8 image arrays → grids and PNG bytes (shared by the service, offline generation and training).

Float → uint8 is part of the sampling contract: ``gancore.contract.to_uint8``.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # libdeflate: deterministic deflate for the files that promise the same bytes (a serving dependency)
    import deflate
except ImportError:  # training-only environments (e.g. a GPU box running the checkout) never need it
    deflate = None

try:  # ISA-L's deflate: same zlib format, 2–3× faster at level 1 on these images
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - a platform without isal wheels
    _deflate = zlib

PNG_COMPRESS_LEVEL = 1  # fast; tiny images gain almost nothing from harder compression (ISA-L: 0–3)


def tile(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] into one [H', W', C] grid, row-major, ``columns`` wide."""
    n, h, w, c = images.shape
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[y : y + h, x : x + w] = img
    return grid


def encode_png(
    image: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL, parts: int = 1, reproducible: bool = False
) -> bytes:
    """One uint8 image [H, W, C] (C = 1, 2, 3 or 4; 4 is RGBA, alpha kept) → PNG bytes.

    Written directly (signature, IHDR, one IDAT of unfiltered rows, IEND): for the small images served
    here this is about twice as fast as going through Pillow (whose per-row filter choice also costs time)
    and decodes to exactly the same pixels (tested). The deflate is ISA-L's (``isal``; 2–3× zlib's speed at
    level 1 with output as small, see docs/design/deflate.md), zlib where it is not installed.
    ``parts`` > 1 compresses that many row ranges at once on the encoder threads (for one large image,
    such as a grid); the result is one valid zlib stream either way.

    ``reproducible``: deflate with libdeflate (the ``deflate`` package), whose bytes are a function of the
    image and libdeflate's version alone, at 2.2× zlib's speed and zlib's size (docs/design/deflate.md).
    ISA-L's are not: the same image has been seen to encode to different (equally valid) bytes when encoded
    on several threads at once (its level buffer is allocated uninitialized; upstream does not promise
    deterministic output, intel/isa-l#140), which breaks files that promise byte-identical reruns. Offline
    formats and image URLs (strong ETags) pass True; POST /generate's responses need not.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in _COLOR_TYPES:
        raise ValueError(f"encode_png: expected uint8 [H, W, 1|2|3|4], got {image.dtype} {list(image.shape)}")
    h, w, c = image.shape
    rows = np.empty((h, w * c + 1), dtype=np.uint8)
    rows[:, 0] = 0  # each row starts with filter type 0 (none)
    rows[:, 1:] = image.reshape(h, w * c)
    data = memoryview(rows).cast("B")
    if reproducible:
        if deflate is None:  # no fallback: other bytes would break the promise these callers make
            raise RuntimeError("encode_png(reproducible=True) needs the 'deflate' package (libdeflate)")
        idat = deflate.zlib_compress(data, compress_level)
    elif parts > 1 and h >= 2 * parts:
        idat = _parallel_deflate(data, rows.shape[1], h, parts, compress_level)
    else:
        idat = _codec(compress_level).compress(data, compress_level)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPES[c], 0, 0, 0)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _IEND))


def encode_pngs_sync(images: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> list[bytes]:
    """uint8 images [N, H, W, C] → one PNG each, spread over the encoder threads (deflate drops the GIL).

    Blocks until done: call it from a thread of your own, never from an encoder thread (it waits on them).
    """
    slices = _slices(images)
    if len(slices) <= 1:
        return _encode_slice(images, 0, len(images), compress_level)
    jobs = [_pool().submit(_encode_slice, images, a, b, compress_level) for a, b in slices]
    return [png for job in jobs for png in job.result()]


async def encode_pngs(images: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> list[bytes]:
    """``encode_pngs_sync`` without blocking the event loop (a few small images are encoded in place).

    The loop awaits each slice's encoder job itself: an encoder thread never waits on another, so any
    number of concurrent requests cannot take every encoder thread and wait on work queued behind them.
    """
    slices = _slices(images)
    if len(slices) <= 1:
        return _encode_slice(images, 0, len(images), compress_level)
    loop = asyncio.get_running_loop()
    jobs = [loop.run_in_executor(_pool(), _encode_slice, images, a, b, compress_level) for a, b in slices]
    return [png for part in await asyncio.gather(*jobs) for png in part]


def _slices(images: np.ndarray) -> list[tuple[int, int]]:
    """One contiguous slice of ``images`` per encoder thread (few hand-offs); one slice when small."""
    n = len(images)
    workers = min(ENCODE_THREADS, n)
    if workers <= 1 or n * images[0].size < _PARALLEL_MIN_BYTES:
        return [(0, n)]
    bounds = np.linspace(0, n, workers + 1).astype(int)
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _encode_slice(images: np.ndarray, a: int, b: int, compress_level: int) -> list[bytes]:
    return [encode_png(img, compress_level) for img in images[a:b]]


async def encode_grid(images: np.ndarray, columns: int | None = None) -> bytes:
    """``tile`` + ``encode_png`` of the grid, its deflate split over the encoder threads, off the loop."""

    def work() -> bytes:
        grid = tile(images, columns)
        return encode_png(grid, parts=ENCODE_THREADS if grid.size >= _PARALLEL_MIN_BYTES else 1)

    if images.size < _PARALLEL_MIN_BYTES:
        return work()
    return await asyncio.to_thread(work)


def _parallel_deflate(data: memoryview, stride: int, height: int, parts: int, level: int) -> bytes:
    """One zlib stream made of ``parts`` raw-deflate pieces compressed at once (as pigz does).

    Each piece but the last ends with a sync flush (an empty stored block, byte-aligned), so the pieces
    concatenate into one valid deflate stream; the zlib header and the Adler-32 of all the data frame it.
    Pieces start from an empty window, which costs a little compression at the piece boundaries.
    """
    bounds = [round(i * height / parts) * stride for i in range(parts + 1)]

    codec = _codec(level)

    def piece(i: int) -> bytes:
        c = codec.compressobj(level, codec.DEFLATED, -15)
        last = i == parts - 1
        return c.compress(data[bounds[i] : bounds[i + 1]]) + c.flush(
            codec.Z_FINISH if last else codec.Z_SYNC_FLUSH
        )

    if threading.current_thread().name.startswith(_POOL_PREFIX):  # waiting on the pool from it could deadlock
        pieces = [piece(i) for i in range(parts)]
    else:
        pieces = list(_pool().map(piece, range(parts)))
    header = b"\x78\x01"  # deflate, 32 KiB window, "fastest" level hint; FCHECK makes it divisible by 31
    return b"".join((header, *pieces, struct.pack(">I", zlib.adler32(data))))


def _codec(level: int):
    """ISA-L for its levels 1–3; zlib for 0 (stored) and 4–9 (which ISA-L does not have)."""
    return _deflate if 1 <= level <= 3 else zlib


def set_encode_threads(threads: int) -> None:
    """Use ``threads`` deflate threads (0: every core); call it before the first encode."""
    global ENCODE_THREADS, _POOL
    ENCODE_THREADS = max(1, threads or (os.cpu_count() or 1))
    if _POOL is not None:
        _POOL.shutdown(wait=False)
        _POOL = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=ENCODE_THREADS, thread_name_prefix=_POOL_PREFIX)
    return _POOL


_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # grey, grey + alpha, RGB, RGBA
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Below this many pixel bytes in a request the thread hand-off costs more than it saves.
_PARALLEL_MIN_BYTES = 64 * 1024
# PNG deflate threads: every core (encoding runs beside the model's own threads, which wait on the GPU when
# there is one); the service sets its GANSERVE_ENCODE_THREADS with ``set_encode_threads`` before encoding.
ENCODE_THREADS = os.cpu_count() or 1
_POOL: ThreadPoolExecutor | None = None
_POOL_PREFIX = "png-encoder"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return b"".join(
        (struct.pack(">I", len(data)), kind, data, struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))
    )


_IEND = _chunk(b"IEND", b"")
