"""The documentation: generated pages equal what generates them, the site builds strictly, and what users read
carries no lab notes (dates, load averages, issue numbers, machine paths)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from tests.conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
# Container paths (BentoML's home, the cache the manifests point at) are the image's, not a machine's.
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues? ?#?[0-9]|\(issue|issue-[0-9]", re.IGNORECASE),
    "a machine path": re.compile(r"/work/|/tmp/(?!bentoml|cache)|shared/notes"),
    "a load average": re.compile(r"load average", re.IGNORECASE),
    "a dated lab note": re.compile(r"\b20[0-9]{2}-[01][0-9]-[0-3][0-9]\b|2026-|[0-9]{2}:[0-9]{2} UTC"),
}


@cache
def gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def generated() -> dict[Path, bytes]:
    return gen_docs().generated()


def test_generated_pages_are_current():
    stale, extra = gen_docs().stale_files(generated())
    assert not stale and not extra, (
        f"stale: {[str(p.relative_to(ROOT)) for p in stale]}, not from any card: "
        f"{[str(p.relative_to(ROOT)) for p in extra]}; run .venv/bin/python scripts/gen_docs.py"
    )


@pytest.mark.parametrize("card", sorted((ROOT / "models").glob("*.md")), ids=lambda p: p.stem)
def test_each_model_page_is_its_card(card):
    page = DOCS / "models" / card.name
    assert page.read_bytes() == card.read_bytes()
    for image in re.findall(r"\]\(([^)]+\.png)\)", card.read_text()):
        assert (DOCS / "models" / image).read_bytes() == (ROOT / "models" / image).read_bytes()


def test_every_model_page_is_in_the_nav():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = set(re.findall(r"[\w/.-]+\.md", str(nav)))
    cards = {f"models/{card.name}" for card in (ROOT / "models").glob("*.md")}
    assert cards <= listed, f"add to mkdocs.yml's nav: {sorted(cards - listed)}"


def test_cli_reference_is_the_help():
    page = (DOCS / "reference" / "cli.md").read_text()
    for module, command in gen_docs().COMMANDS:
        help_text = gen_docs()._help(module, command)
        assert f"```text\n{help_text}```" in page, f"python -m {module} {command or ''} --help differs"


def test_environment_table_is_the_settings_model():
    page = (DOCS / "operations.md").read_text()
    begin, end = gen_docs().BEGIN, gen_docs().END
    table = page.split(begin)[1].split(end)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `GANSERVE_")]
    variables = [re.match(r"\| `([A-Z_]+)`", row).group(1) for row in rows]
    assert variables == [Settings.env_var(name) for name in Settings.model_fields]
    for row, (name, field) in zip(rows, Settings.model_fields.items(), strict=True):
        assert row.endswith(" |") and (field.description or "").split(" ")[0] in row, name


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move the detail into docs/"


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_lab_notes_where_users_read(path):
    found = [
        f"line {n}: {what}: {line.strip()[:120]}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for what, pattern in FORBIDDEN.items()
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\((?!https?:|#)([^)#]+)", README.read_text()):
        assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    """A broken link or anchor, or a page missing from the nav, fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").is_file()
