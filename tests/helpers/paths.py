"""Where the tests find the checkout and the real fixture folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    """The real fixtures: $TOOLKIT_FIXTURES, else ../shared/fixtures/real beside the checkout."""
    return Path(os.environ.get("TOOLKIT_FIXTURES", ROOT.parent / "shared" / "fixtures" / "real"))
