"""A models folder or setting that cannot be served stops `bentoml serve` at start-up, naming the culprit."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import Server
from tests.onnx_graphs import foreign_model


def _truncated(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    data = exported["dcgan"].read_bytes()
    (folder / "truncated.onnx").write_bytes(data[: len(data) // 2])
    return folder / "truncated.onnx", "not a loadable ONNX model"


def _corrupt(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    data = bytearray(exported["dcgan"].read_bytes())
    data[:64] = b"\xff" * 64  # the protobuf header: nothing after it can be parsed
    (folder / "corrupt.onnx").write_bytes(bytes(data))
    return folder / "corrupt.onnx", "not a loadable ONNX model"


def _foreign(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    return foreign_model(folder / "identity.onnx"), "not a ganserve generator"


def _empty_file(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    (folder / "empty.onnx").write_bytes(b"")
    return folder / "empty.onnx", "the file is empty"


def _directory(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    # Tests run as root, so chmod cannot make a file unreadable: a folder named like a model cannot be read.
    (folder / "folder.onnx").mkdir()
    return folder / "folder.onnx", "cannot read the file"


def _dangling_link(folder: Path, exported: dict[str, Path]) -> tuple[Path, str]:
    os.symlink(folder / "gone.bin", folder / "dangling.onnx")
    return folder / "dangling.onnx", "cannot read the file"


@pytest.mark.parametrize(
    "make",
    [_truncated, _corrupt, _foreign, _empty_file, _directory, _dangling_link],
    ids=lambda f: f.__name__[1:],
)
def test_bad_model_file_stops_start_up_naming_it(exported, tmp_path, make):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(exported["dcgan"], folder / "good.onnx")  # one good model does not save a bad one
    bad, problem = make(folder, exported)
    srv = Server(folder)
    code = srv.proc.wait(120)
    log = srv.log()
    srv.stop()
    assert code != 0, log
    assert f"ganserve: cannot start: {bad}" in log and problem in log, log[-2000:]


@pytest.mark.parametrize("state", ["missing", "empty", "no onnx"])
def test_missing_or_empty_models_folder_stops_start_up(tmp_path, state):
    folder = tmp_path / "models"
    if state != "missing":
        folder.mkdir()
    if state == "no onnx":
        (folder / "README.md").write_text("no models here")
    srv = Server(folder)
    code = srv.proc.wait(120)
    log = srv.log()
    srv.stop()
    assert code != 0, log
    words = "does not exist" if state == "missing" else "holds no .onnx files"
    assert f"ganserve: cannot start: models folder {folder} {words}" in log, log[-2000:]


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_unusable_api_key_file_stops_start_up(models_dir, tmp_path, content):
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    srv = Server(models_dir, env={"GANSERVE_API_KEY_FILE": str(key_file)}, log_path=tmp_path / "serve.log")
    code = srv.proc.wait(120)
    log = srv.log()
    srv.stop()
    assert code != 0, log
    assert "GANSERVE_API_KEY_FILE: " in log and str(key_file) in log, log[-2000:]
    assert ("is empty" if content is not None else "No such file") in log


def test_key_file_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=f"cannot read the API key file {tmp_path / 'nope'}"):
        Settings.from_env({"GANSERVE_API_KEY_FILE": str(tmp_path / "nope")})
    (tmp_path / "blank").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        Settings.from_env({"GANSERVE_API_KEY_FILE": str(tmp_path / "blank")})
