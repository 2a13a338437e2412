"""The one-way flow, as the imports say it: training and the service both import ``gancore``; importing any
training module never imports the server package, and ``gancore`` imports neither end nor torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import gancore
import training
from tests.conftest import ROOT

CHECK = """
import importlib, sys
names = sys.argv[1:]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN})
print("\\n".join(leaked))
raise SystemExit(1 if leaked else 0)
"""


def modules(package) -> list[str]:
    found = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            found.append(info.name)
    return found


def leaked_imports(names: list[str], forbidden: set[str]) -> str:
    code = CHECK.replace("{FORBIDDEN}", repr(forbidden))
    proc = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    return proc.stdout.strip()


def test_no_training_module_imports_the_server_package():
    names = modules(training) + ["training.__main__"]
    assert len(names) > 30  # every module, not only the package
    assert leaked_imports(names, {"service", "bentoml"}) == ""


@pytest.mark.parametrize("forbidden", [{"service", "training", "torch", "bentoml"}])
def test_gancore_imports_neither_end_nor_torch(forbidden):
    assert leaked_imports(modules(gancore), forbidden) == ""


def test_the_check_detects_a_leak():
    # The instrument itself: a module that does import the server package is reported.
    assert "service" in leaked_imports(["service.settings"], {"service"}).splitlines()
