"""Service settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_defaults():
    s = Settings.from_env({})
    assert (s.models_dir, s.max_count, s.api_key, s.providers) == (Path("models"), 256, None, None)


def test_environment_overrides(tmp_path):
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    s = Settings.from_env(
        {
            "GANSERVE_MODELS_DIR": "/m",
            "GANSERVE_MAX_COUNT": "9",
            "GANSERVE_THREADS": "2",
            "GANSERVE_API_KEY_FILE": str(key),
            "GANSERVE_PROVIDERS": "CPUExecutionProvider",
        }  # fmt: skip
    )
    assert (s.models_dir, s.max_count, s.threads, s.api_key) == (Path("/m"), 9, 2, "s3cret")
    assert s.providers == ["CPUExecutionProvider"]
    assert Settings.from_env({"GANSERVE_API_KEY": "a", "GANSERVE_API_KEY_FILE": str(key)}).api_key == "a"


def test_gpu_resources_follow_the_setting():
    assert Settings.from_env({"GANSERVE_GPUS": "0"}).gpu_resources() == {}
    assert Settings.from_env({"GANSERVE_GPUS": "1"}).gpu_resources() == {"gpu": 1}


def test_bad_values_name_the_setting():
    with pytest.raises(ValidationError, match="max_count"):
        Settings.from_env({"GANSERVE_MAX_COUNT": "0"})
