"""Service settings from the environment (pydantic-settings): names, parsing, errors, README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import ROOT


def test_defaults():
    s = Settings.from_env({})
    assert (s.models_dir, s.max_count, s.api_key, s.providers) == (Path("models"), 256, None, None)
    assert (s.timeout_s, s.max_concurrency, s.max_body_bytes, s.workers) == (60.0, 512, 65536, 1)


def test_environment_overrides(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    s = Settings.from_env(
        {
            "GANSERVE_MODELS_DIR": "/m",
            "GANSERVE_MAX_COUNT": "9",
            "GANSERVE_THREADS": "2",
            "GANSERVE_TIMEOUT": "2.5",
            "GANSERVE_API_KEY_FILE": str(key),
            "GANSERVE_PROVIDERS": " CUDAExecutionProvider, CPUExecutionProvider ,",
        }  # fmt: skip
    )
    assert (s.models_dir, s.max_count, s.threads, s.timeout_s, s.api_key) == (Path("/m"), 9, 2, 2.5, "s3cret")
    assert s.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert Settings.from_env({"GANSERVE_API_KEY": "a", "GANSERVE_API_KEY_FILE": str(key)}).api_key == "a"


def test_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("GANSERVE_MAX_BATCH_ROWS", "17")
    monkeypatch.setenv("GANSERVE_ACCESS_LOG", "1")
    monkeypatch.setenv("GANSERVE_MAX_COUNT", "")  # empty counts as unset
    s = Settings.from_env()
    assert (s.max_batch_rows, s.access_log, s.max_count) == (17, True, 256)
    assert Settings.from_env({}).max_batch_rows == 256  # an explicit mapping replaces the environment


def test_gpu_resources_follow_the_setting():
    assert Settings.from_env({"GANSERVE_GPUS": "0"}).gpu_resources() == {}
    assert Settings.from_env({"GANSERVE_GPUS": "1"}).gpu_resources() == {"gpu": 1}


@pytest.mark.parametrize(
    "env, words",
    [
        (
            {"GANSERVE_MAX_COUNT": "0"},
            "GANSERVE_MAX_COUNT (max_count): Input should be greater than or equal to 1",
        ),
        ({"GANSERVE_TIMEOUT": "soon"}, "GANSERVE_TIMEOUT (timeout_s): Input should be a valid number"),
        ({"GANSERVE_WORKERS": "0"}, "GANSERVE_WORKERS (workers)"),
        (
            {"GANSERVE_ACCESS_LOG": "maybe"},
            "GANSERVE_ACCESS_LOG (access_log): Input should be a valid boolean",
        ),
    ],
)
def test_bad_values_name_the_variable(env, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        Settings.from_env(env)


def test_every_setting_is_in_the_operations_page():
    page = (ROOT / "docs" / "operations.md").read_text()
    missing = [Settings.env_var(f) for f in Settings.model_fields if Settings.env_var(f) not in page]
    assert not missing, f"docs/operations.md does not mention {missing}"
