"""Reading pickled PyTorch checkpoints without ever running code from them.

Every pickle the toolkit reads goes through ``torch.load(weights_only=True)``. Before
that, :func:`unsafe_globals` lists, statically (nothing is unpickled), the functions and
classes a pickle names outside the weights-only allow-list, so a file that smuggles in,
say, ``os.system`` is refused with that name. Errors say what the file holds and never
suggest switching the protection off.

Some released checkpoints also carry training metadata beside their tensors (a Lightning
``ModelCheckpoint`` callback's state, numpy scalars). A registry artifact names those
globals (``allow_globals``); :func:`load` then unpickles each of them as :class:`Opaque`, an
inert object that keeps nothing and runs nothing, so the tensors load weights-only and the
metadata is dropped.
"""

from __future__ import annotations

import os
import pickletools
import zipfile
from pathlib import Path
from typing import Iterable

import torch

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
# The legacy (non-zip) torch.save format is a run of pickles: magic number, protocol, system info, the object,
# the storage keys; raw storage bytes follow.
_LEGACY_PICKLES = 5


class Opaque:
    """What an allowed non-tensor global of a checkpoint (a callback class, a numpy scalar) becomes on load:
    called or built with anything, it keeps nothing and runs nothing."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


def _allowed_by(name: str, allow: tuple[str, ...]) -> bool:
    return any(name == a or (a.endswith(".") and name.startswith(a)) for a in allow)


class UnsafeCheckpoint(ValueError):
    """A file that cannot be read as a weights-only checkpoint; the message names the file and the reason."""


def _allowed() -> set[str]:
    from torch import _weights_only_unpickler

    return set(_weights_only_unpickler._get_allowed_globals()) | set(
        _weights_only_unpickler._get_user_allowed_globals())


def _pickle_globals(stream) -> tuple[set[str], bool]:
    """(globals named by the pickles in `stream`, whether the first pickle parsed at all)."""
    found: set[str] = set()
    strings: list[str] = []
    for k in range(_LEGACY_PICKLES):
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL":
                    found.add(str(arg).replace(" ", "."))
                elif op.name in _STRING_OPS:
                    strings.append(arg if isinstance(arg, str) else str(arg))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(f"{strings[-2]}.{strings[-1]}")
        except (ValueError, EOFError, UnicodeDecodeError):
            return found, k > 0
    return found, True


def unsafe_globals(path: str | os.PathLike, allow: Iterable[str] = ()) -> list[str]:
    """Functions and classes the checkpoint's pickle names that a weights-only load does not allow (static scan).

    `allow`: extra names (or prefixes ending in ".") a particular artifact is known to need.
    Raises UnsafeCheckpoint when the file is not a PyTorch pickle at all.
    """
    path = Path(path)
    extra = tuple(allow)
    if zipfile.is_zipfile(path):
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # a zip that is not a torch.save archive
            raise UnsafeCheckpoint(f"{path}: not a PyTorch checkpoint archive ({type(exc).__name__})") from None
    else:
        with open(path, "rb") as fh:
            found, parsed = _pickle_globals(fh)
        if not parsed:
            raise UnsafeCheckpoint(f"{path}: not a pickled PyTorch checkpoint")
        safe = _allowed()
        names = [g for g in found if g not in safe]
    return sorted(g for g in names if not _allowed_by(g, extra))


def load(path: str | os.PathLike, allow: Iterable[str] = ()) -> object:
    """``torch.load(weights_only=True)`` on CPU after the static check; zip checkpoints are memory-mapped.

    Globals matched by `allow` (names, or prefixes ending in ".") load as :class:`Opaque`.
    """
    path = Path(path)
    allow = tuple(allow)
    found = unsafe_globals(path)
    bad = [g for g in found if not _allowed_by(g, allow)]
    if bad:
        raise UnsafeCheckpoint(f"{path}: refused: its pickle names {', '.join(bad[:5])}"
                               f"{' ...' if len(bad) > 5 else ''}, which a weights-only load does not allow "
                               "(a weights file holds tensors and plain containers only)")
    try:
        with torch.serialization.safe_globals([(Opaque, g) for g in found]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:
        raise UnsafeCheckpoint(f"{path}: cannot be read as a weights-only PyTorch checkpoint "
                               f"({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """A one-line reason from torch's error, without its advice to load with weights_only=False."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [line for line in lines if "weights_only" not in line and "Weights only" not in line]
    return (keep[0] if keep else type(exc).__name__)[:200]


def tensors_of(obj: object, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping of a loaded checkpoint (itself, or its 'state_dict' / 'model' entry)."""
    for candidate in (obj, *(obj.get(k) for k in ("state_dict", "model", "module") if isinstance(obj, dict))):
        if isinstance(candidate, dict) and candidate and all(isinstance(v, torch.Tensor) for v in candidate.values()):
            return candidate
    raise UnsafeCheckpoint(f"{path}: holds no mapping of names to tensors (got {type(obj).__name__})")
