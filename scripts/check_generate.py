"""Check a running ganserve over HTTP: ready, ``POST /generate`` returns valid PNGs, reproducibly.

Standard library only, so it runs on a bare CI host against a container. Exits non-zero with a message
naming what was wrong.

    python3 scripts/check_generate.py --url http://127.0.0.1:3000 --model digits-dcgan --max-count 8
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type → samples per pixel (no palettes expected)


class CheckError(AssertionError):
    """The service answered, but not as the contract says."""


def png_size(data: bytes) -> tuple[int, int, int]:
    """(width, height, channels) of a PNG after checking every chunk's CRC and decoding its pixel data."""
    if not data.startswith(PNG_SIGNATURE):
        raise CheckError("not a PNG (bad signature)")
    pos, idat, header, ended = len(PNG_SIGNATURE), b"", None, False
    while pos < len(data) and not ended:
        (length,) = struct.unpack(">I", data[pos : pos + 4].rjust(4, b"\0"))
        if pos + 12 + length > len(data):
            raise CheckError("truncated PNG chunk")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise CheckError(f"PNG chunk {kind!r}: CRC mismatch")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        ended = kind == b"IEND"
        pos += 12 + length
    if header is None or not idat or not ended:
        raise CheckError("PNG lacks IHDR, IDAT or IEND")
    width, height, depth, colour = header[:4]
    if depth != 8 or colour not in CHANNELS:
        raise CheckError(f"PNG is {depth}-bit colour type {colour}; expected 8-bit grey/RGB/RGBA")
    try:
        raw = zlib.decompress(idat)
    except zlib.error as exc:
        raise CheckError(f"PNG pixel data does not decompress ({exc})") from exc
    stride = 1 + width * CHANNELS[colour]
    if len(raw) != height * stride:
        raise CheckError(f"PNG pixel data is {len(raw)} bytes, {width}x{height} needs {height * stride}")
    if any(raw[row * stride] > 4 for row in range(height)):
        raise CheckError("PNG row with an invalid filter type")
    return width, height, CHANNELS[colour]


def post(url: str, body: dict, timeout: float = 60) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(url: str, timeout: float) -> float:
    """Seconds until ``/readyz`` answered 200; raises CheckError after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise CheckError(f"{url}/readyz did not answer 200 within {timeout:.0f} s")


def generate(url: str, model: str, count: int, seed: int) -> dict[int, bytes]:
    """index → PNG bytes of one ``POST /generate``, after checking the reply's fields and every PNG."""
    status, body = post(f"{url}/generate", {"model": model, "count": count, "seed": seed})
    if status != 200:
        raise CheckError(f"POST /generate count={count} answered {status}: {body[:300]!r}")
    reply = json.loads(body)
    for key in ("model", "seed", "indices", "labels", "images"):
        if key not in reply:
            raise CheckError(f"reply lacks {key!r} (has {sorted(reply)})")
    if reply["model"] != model or reply["seed"] != seed:
        raise CheckError(f"reply names model {reply['model']!r} seed {reply['seed']}, asked {model!r} {seed}")
    images, indices = reply["images"], reply["indices"]
    if len(images) != count or len(indices) != count:
        raise CheckError(f"asked {count} images, got {len(images)} images and {len(indices)} indices")
    pngs = [base64.b64decode(image, validate=True) for image in images]
    sizes = {png_size(png) for png in pngs}
    if len(sizes) != 1:
        raise CheckError(f"images of one reply differ in size: {sorted(sizes)}")
    width, height, channels = sizes.pop()
    if "image_shape" in reply and list(reply["image_shape"]) != [height, width, channels]:
        raise CheckError(
            f"PNGs are {height}x{width}x{channels}; reply says image_shape {reply['image_shape']}"
        )
    return dict(zip(indices, pngs, strict=True))


def check_models(url: str, expected: set[str]) -> None:
    """``POST /models`` lists exactly the expected model names."""
    status, body = post(f"{url}/models", {})
    if status != 200:
        raise CheckError(f"POST /models answered {status}: {body[:300]!r}")
    served = {m["name"]: m.get("provider", "?") for m in json.loads(body)["models"]}
    if set(served) != expected:
        raise CheckError(f"POST /models lists {sorted(served)}, expected {sorted(expected)}")
    print("models: " + ", ".join(f"{name} on {provider}" for name, provider in sorted(served.items())))


def check_get(url: str, path: str) -> None:
    """``GET path`` answers 200 with a body (e.g. the demo page's static files are in the image)."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, b""
    if status != 200 or not body:
        raise CheckError(f"GET {path} answered {status} with {len(body)} bytes")
    print(f"GET {path}: {len(body)} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:3000")
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-count", type=int, required=True, help="the server's GANSERVE_MAX_COUNT")
    parser.add_argument("--ready-timeout", type=float, default=120)
    parser.add_argument("--expect-models", default="", help="comma-separated names POST /models must list")
    parser.add_argument("--get", action="append", default=[], help="a path GET must answer 200 (repeatable)")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        print(f"ready after {wait_ready(url, args.ready_timeout):.1f} s")
        if args.expect_models:
            check_models(url, set(args.expect_models.split(",")))
        for path in args.get:
            check_get(url, path)
        started = time.monotonic()
        first = generate(url, args.model, 4, seed=1)
        print(f"POST /generate: 4 valid PNGs in {time.monotonic() - started:.2f} s")
        # The reproducibility contract: image i depends on (model, seed, i) only, not on the batch around it.
        again = generate(url, args.model, 2, seed=1)
        if any(again[i] != first[i] for i in again):
            raise CheckError("the same (model, seed, index) gave different PNGs in two requests")
        if generate(url, args.model, 4, seed=2) == first:
            raise CheckError("seeds 1 and 2 gave identical images")
        generate(url, args.model, args.max_count, seed=3)
        status, body = post(f"{url}/generate", {"model": args.model, "count": args.max_count + 1, "seed": 3})
        if not 400 <= status < 500:
            raise CheckError(f"count {args.max_count + 1} > GANSERVE_MAX_COUNT answered {status}, not 4xx")
        print(f"reproducible across requests; count {args.max_count} served, {args.max_count + 1} refused")
    except CheckError as exc:
        print(f"check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
