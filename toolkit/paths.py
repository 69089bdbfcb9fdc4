"""Where the toolkit finds what it ships (dataset and protocol cards, published numbers) and where results go.

The resources live in the repository's top-level folders ``datasets/`` and
``eval/`` (``eval/protocols/*.toml``, ``eval/paper_results.csv``). A wheel ships
a copy of them as data files under ``<prefix>/share/animation-toolkit/``
(``[tool.setuptools.data-files]`` in pyproject.toml), so the toolkit works the
same from any folder after a plain ``pip install .``.

:func:`resource_root` prefers the source checkout the package is imported from
(an editable install, or running inside the repository), so edits to a dataset card
take effect at once; otherwise it uses the installed copy, located through the
distribution's file list (any install scheme: venv, ``--user``, ``--prefix``).

The results store is user data, never inside the installed package:
``$TOOLKIT_RESULTS`` if set, else ``eval/results`` under the current directory
(in a checkout's root that is the repository's ``eval/results``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sysconfig
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "animation-toolkit"
DATA_PREFIX = "share/animation-toolkit"      # where the wheel's data files land, relative to the install prefix
RESULTS_ENV = "TOOLKIT_RESULTS"


class ResourcesMissing(FileNotFoundError):
    """Neither a source checkout nor an installed copy of the toolkit's resources was found."""


def checkout_root() -> Path | None:
    """The repository root when the package is imported from a source checkout, else None."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "datasets").is_dir() and (root / "eval" / "protocols").is_dir():
        return root
    return None


def _installed_root() -> Path | None:
    """`<prefix>/share/animation-toolkit` of the installed distribution, found through its RECORD."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        dist = None
    marker = f"{DATA_PREFIX}/datasets/"
    for file in (dist.files or []) if dist is not None else []:
        posix = file.as_posix()
        if marker in posix:
            located = Path(dist.locate_file(file)).resolve()
            # .../share/animation-toolkit/datasets/NAME.toml -> .../share/animation-toolkit
            root = located.parents[1]
            if (root / "datasets").is_dir():
                return root
    for scheme in {sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")}:
        root = Path(sysconfig.get_path("data", scheme)) / DATA_PREFIX
        if (root / "datasets").is_dir():
            return root
    return None


@functools.cache
def resource_root() -> Path:
    """The folder holding ``datasets/`` and ``eval/``: the source checkout, else the installed copy."""
    root = checkout_root() or _installed_root()
    if root is None:
        raise ResourcesMissing(
            f"the toolkit's resources (datasets/*.toml, eval/protocols/*.toml, eval/paper_results.csv) were found "
            f"neither beside the package ({Path(__file__).resolve().parents[1]}) nor in an installed "
            f"{DISTRIBUTION} ({DATA_PREFIX}); reinstall it with `pip install .` from the repository")
    return root


def datasets_dir() -> Path:
    """Dataset cards, ``datasets/NAME.toml``."""
    return resource_root() / "datasets"


def protocols_dir() -> Path:
    """Protocol cards, ``eval/protocols/NAME.toml``."""
    return resource_root() / "eval" / "protocols"


def paper_results_csv() -> Path:
    """Published numbers, ``eval/paper_results.csv``."""
    return resource_root() / "eval" / "paper_results.csv"


def default_results() -> Path:
    """The results store used when none is given: ``$TOOLKIT_RESULTS``, else ``./eval/results``."""
    return Path(os.environ.get(RESULTS_ENV) or Path("eval") / "results")


def mediapipe_env_python() -> Path | None:
    """``<checkout>/.venv-mediapipe/bin/python`` (made by ``make mediapipe-env``) in a source checkout, else None."""
    root = checkout_root()
    return root / ".venv-mediapipe" / "bin" / "python" if root else None


#: the longest file-name stem a user-given string becomes (most file systems allow 255 bytes per name; this leaves
#: room for a timestamp, suffixes and a temporary's ``.tmp-PID`` ending)
MAX_NAME_BYTES = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_filename(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """`text` reduced to one safe file-name component: no separators, no leading dot, at most `max_bytes` bytes.

    Characters other than letters, digits and ``._+=-`` become ``_`` (so ``../x`` can never leave its folder).
    A name that had to be changed this way or shortened ends in 8 hex digits of its sha256, so distinct
    strings keep distinct names. Raises ValueError for an empty or blank string.
    """
    if not text or not text.strip():
        raise ValueError("a name must not be empty")
    cleaned = _UNSAFE.sub("_", text).lstrip(".") or "_"
    if cleaned == text and len(text.encode()) <= max_bytes:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{cleaned[:max_bytes - 9]}-{digest}"


#: the longest video id kept as it is: its frames file and temporaries (``ID.parquet.tmp-PID``) stay under 255 bytes
MAX_VIDEO_ID_BYTES = 200


def safe_video_id(video_id: str) -> str:
    """A source's video id as shards store it: unchanged when it is a safe file name of at most
    `MAX_VIDEO_ID_BYTES` bytes, else shortened and cleaned by `safe_filename` (with a hash of the original)."""
    if (video_id and len(video_id.encode()) <= MAX_VIDEO_ID_BYTES and not video_id.startswith(".")
            and not any(c in video_id for c in "/\\\0")):
        return video_id
    return safe_filename(video_id, MAX_VIDEO_ID_BYTES)
