"""The container CI's helpers: the serving requirements of the image and the stdlib request checker."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gancore.imaging import encode_png

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


requirements = load_script("serving_requirements")
checker = load_script("check_generate")


def test_image_requirements_are_pyprojects_serving_dependencies(tmp_path):
    script = [
        "scripts/serving_requirements.py",
        "pyproject.toml",
        str(tmp_path),
        "--ort-extras",
        "cuda,cudnn",
    ]
    subprocess.run([sys.executable, *script], cwd=ROOT, capture_output=True, text=True, check=True)
    ort = (tmp_path / "ort.txt").read_text().split()
    serve = (tmp_path / "serve.txt").read_text().split()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert len(ort) == 1 and ort[0].startswith("onnxruntime-gpu[cuda,cudnn]")
    assert len(ort) + len(serve) == len(deps)
    assert not any(line.startswith("torch") for line in ort + serve)


def test_requirements_extras_and_errors(tmp_path):
    assert requirements.split_requirements(["numpy>=1", "onnxruntime-gpu>=1.20"], "") == (
        ["onnxruntime-gpu>=1.20"],
        ["numpy>=1"],
    )
    assert requirements.split_requirements(["onnxruntime-gpu[cuda]>=1.2"], " cudnn , cuda") == (
        ["onnxruntime-gpu[cudnn,cuda]>=1.2"],
        [],
    )
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\ndependencies = ["numpy"]\n')
    assert requirements.main([str(bad), str(tmp_path / "out")]) == 2


def test_png_check_decodes_the_services_pngs_and_rejects_damage():
    image = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    png = encode_png(image)
    assert checker.png_size(png) == (5, 6, 3)
    assert checker.png_size(encode_png(image[..., :1])) == (5, 6, 1)
    damaged = bytearray(png)
    damaged[40] ^= 0xFF  # inside IDAT: its CRC no longer matches
    with pytest.raises(checker.CheckError, match="CRC"):
        checker.png_size(bytes(damaged))
    with pytest.raises(checker.CheckError, match="signature"):
        checker.png_size(b"GIF89a" + png[6:])
    with pytest.raises(checker.CheckError, match="truncated"):
        checker.png_size(png[:-20])
    with pytest.raises(checker.CheckError, match="IEND"):
        checker.png_size(png[:-12])


def test_request_checker_passes_a_real_server_and_fails_a_wrong_limit(server):
    args = ["--url", server.url, "--model", "tiny-dcgan", "--ready-timeout", "10"]
    models = ["--expect-models", "tiny-cgan,tiny-dcgan"]
    assert checker.main([*args, "--max-count", "64", *models, "--get", "/ui/", "--get", "/docs.json"]) == 0
    assert checker.main([*args, "--max-count", "64", "--get", "/no-such-page"]) == 1
    # The server allows 64: a checker told 32 sees count 33 accepted and must fail.
    assert checker.main([*args, "--max-count", "32"]) == 1
    assert checker.main([*args, "--max-count", "64", "--expect-models", "tiny-dcgan"]) == 1


def test_the_bento_ships_every_service_module_and_dependency():
    """bentofile.yaml lists its files and packages by hand: a new service sub-package or dependency must be
    added there too, or `bentoml build` makes a bento that cannot import the service."""
    import re
    from pathlib import PurePosixPath

    import yaml

    bento = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "service").rglob("*.py")]
    # bento include patterns are gitignore-like: "*" does not cross "/" (PurePath.match agrees)
    missing = [m for m in modules if not any(PurePosixPath(m).match(pat) for pat in bento["include"])]
    assert not missing, f"bentofile.yaml does not include {missing}"

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[<>=!~ ;]", r.strip(), maxsplit=1)[0].lower() for r in requirements}

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert names(deps) <= names(bento["python"]["packages"]), names(deps) - names(bento["python"]["packages"])
