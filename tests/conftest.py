"""Shared test fixtures: the real fixture folder and small datasets made on the fly in real layouts
(the builders themselves live in tests/helpers/builders.py; test modules import them from there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.builders import make_tiktok_layout
from tests.helpers.paths import ROOT, fixtures_dir


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    d = fixtures_dir()
    if not d.is_dir():
        pytest.skip(f"real fixtures not found at {d} (set TOOLKIT_FIXTURES)")
    return d


@pytest.fixture
def tiny_tiktok(tmp_path: Path) -> Path:
    return make_tiktok_layout(tmp_path / "tiktok_src")


@pytest.fixture(scope="session")
def default_shards() -> Path:
    """The default dataset's shards, made by `make prepare-data` (CI runs it before the tests)."""
    d = ROOT / "data" / "shards" / "synthetic"
    if not (d / "videos.parquet").is_file():
        pytest.skip(f"default dataset not prepared at {d} (run `make prepare-data`)")
    return d
