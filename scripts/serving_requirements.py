"""Write the serving dependencies of pyproject.toml as two pip requirements files, for the container build.

``ort.txt`` holds ONNX Runtime (with the CUDA/cuDNN extras asked for: by far the largest download) and
``serve.txt`` everything else, so the image keeps them in separate layers and a change to one list does not
reinstall the other. Only the standard library is used: this runs on the bare base image.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ORT = re.compile(r"^(onnxruntime(?:-gpu)?)\s*(\[[^\]]*\])?\s*(.*)$")


def split_requirements(dependencies: list[str], ort_extras: str) -> tuple[list[str], list[str]]:
    """(ONNX Runtime lines with ``ort_extras`` applied, the other lines), in pyproject order."""
    ort, rest = [], []
    for dep in dependencies:
        match = ORT.match(dep.strip())
        if not match:
            rest.append(dep.strip())
            continue
        name, _, spec = match.groups()
        extras = ",".join(e.strip() for e in ort_extras.split(",") if e.strip())
        ort.append(f"{name}[{extras}]{spec}" if extras else f"{name}{spec}")
    return ort, rest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("out", type=Path, help="folder for ort.txt and serve.txt")
    parser.add_argument("--ort-extras", default="", help='e.g. "cuda,cudnn"; empty for none')
    args = parser.parse_args(argv)
    try:
        deps = tomllib.loads(args.pyproject.read_text())["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"{args.pyproject}: cannot read [project].dependencies ({exc})", file=sys.stderr)
        return 2
    ort, rest = split_requirements(deps, args.ort_extras)
    if not ort:
        print(f"{args.pyproject}: [project].dependencies lists no onnxruntime package", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ort.txt").write_text("\n".join(ort) + "\n")
    (args.out / "serve.txt").write_text("\n".join(rest) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
