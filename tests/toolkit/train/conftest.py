"""Fixtures for the training-loop tests: the checkout importable (for tests.toolkit.train.*), one thread, one reference run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # `pytest` does not put the checkout on sys.path; `python -m pytest` does
    sys.path.insert(0, str(ROOT))

from tests.toolkit.train.runs import TOY, one_thread  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted 30-step run of the toy tiny config that interrupted runs must reproduce."""
    from tests.toolkit.train.toy_recipe import ToyRecipe
    from toolkit.train.loop import train

    out = tmp_path_factory.mktemp("reference") / "run"
    with one_thread():
        train(ToyRecipe(), "tiny", out.parent, out, progress=False, method=TOY)
    return out
