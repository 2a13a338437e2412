"""The README's first requests run as written against a real server of the shipped models (only the port is
the test server's): its curl commands and its Python client example."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, Server

README = (ROOT / "README.md").read_text()
URL = "http://127.0.0.1:3000"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    home = tmp_path_factory.mktemp("readme")
    srv = Server(ROOT / "models", env={"BENTOML_HOME": str(home / "bentoml")}, log_path=home / "serve.log")
    yield srv.wait_ready()
    srv.stop()


def test_the_readme_curl_commands_run(shipped, tmp_path):
    curl = [b for b in blocks("bash") if "curl " in b]
    assert curl, "the README shows its first request with curl"
    script = "set -euo pipefail\n" + curl[0].replace(URL, shipped.url)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"images"' in proc.stdout and '"models"' in proc.stdout
    for name in re.findall(r"-o (\S+)", curl[0]):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_python_example_runs(shipped, tmp_path):
    (example,) = [b for b in blocks("python") if "ganserve_client" in b]
    proc = subprocess.run(
        [sys.executable, "-c", example.replace(URL, shipped.url)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
