"""Decode one image file into a square uint8 array of the training size.

Any size and aspect: the picture is padded to a square (centred; transparent for RGBA, the pad colour
otherwise) and then resized with an antialiasing filter (area averaging when shrinking, bilinear when
enlarging). RGBA is resized through premultiplied
alpha (Pillow's ``RGBa`` mode), so transparent pixels' hidden colour cannot bleed into the edges as dark or
coloured fringes. Palette images with transparency and the first frame of animated GIFs are handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor

# Bump when the decoding below changes, so decoded caches made by older code are not reused.
DECODER_VERSION = 1
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class DecodeSpec:
    """How files become training images; part of the decoded cache's key."""

    size: int
    channels: int
    pad: tuple[int, int, int] = (0, 0, 0)  # fills the square (and flattens alpha) for 1 or 3 channels


def parse_colour(text: str) -> tuple[int, int, int]:
    """A ``--pad`` colour: a CSS name (``white``) or ``#rrggbb``; raises ValueError naming the flag."""
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise ValueError(f"--pad: {text!r} is not a colour (use a name such as white, or #rrggbb)") from None
    return tuple(rgb[:3])  # type: ignore[return-value]


def _as_rgba(img: Image.Image) -> Image.Image:
    """Any Pillow mode as RGBA (Pillow maps palette transparency to alpha; 16-bit grey is scaled, not
    clipped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).round().astype(np.uint8), "L")
    return img.convert("RGBA")


def to_square(img: Image.Image, spec: DecodeSpec) -> np.ndarray:
    """A decoded picture → uint8 [size, size, channels], padded centred then resized."""
    rgba = _as_rgba(img)
    if spec.channels == 4:
        fill: tuple[int, ...] = (0, 0, 0, 0)
        work = rgba.convert("RGBa")  # premultiplied: resampling weighs colour by coverage
    else:
        background = Image.new("RGBA", rgba.size, (*spec.pad, 255))
        work = Image.alpha_composite(background, rgba).convert("RGB")
        fill = spec.pad
    w, h = work.size
    side = max(w, h)
    if w != h:
        square = Image.new(work.mode, (side, side), fill)
        square.paste(work, ((side - w) // 2, (side - h) // 2))
        work = square
    if side != spec.size:
        # Area averaging down, bilinear up: filters without negative lobes. Lanczos or bicubic would ring,
        # leaving faint alpha halos (values 1–3) around every sprite and overshooting colours at edges.
        down = side > spec.size
        resample = Image.Resampling.BOX if down else Image.Resampling.BILINEAR
        work = work.resize((spec.size, spec.size), resample, reducing_gap=3.0 if down else None)
    if spec.channels == 4:
        work = work.convert("RGBA")
    elif spec.channels == 1:
        work = work.convert("L")
    return np.asarray(work, dtype=np.uint8).reshape(spec.size, spec.size, spec.channels)


def decode_file(path: Path, spec: DecodeSpec) -> np.ndarray:
    """Read ``path`` (the first frame of an animation) as uint8 [size, size, channels].

    Raises whatever Pillow raises for an unreadable file (callers name the file).
    """
    with Image.open(path) as img:
        if img.format == "JPEG":  # decode at a reduced scale when the file is much larger than needed
            img.draft("RGB", (2 * spec.size, 2 * spec.size))
        img.seek(0)
        img.load()
        return to_square(img, spec)
