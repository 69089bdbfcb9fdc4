"""Atomic file writes: write to a temporary file beside the target, then rename.

Temporary files are made by :func:`_mkstemp_beside`, which gives them the mode a
plain ``open()`` would (0666 less the umask: 0644 under umask 022), not the 0600
of ``tempfile.mkstemp``, so a renamed file is readable like any other the user writes.
Their names carry the writing process id, so a later run can tell the leftovers
of a killed writer (:func:`stale_temporaries`) from a live writer's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


TEMP_SUFFIX = ".tmp"
LOCK = ".lock"


def _umask() -> int:
    """The process umask, read without changing it where the platform allows (/proc), else by a swap."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mkstemp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file in path's folder, with the permissions ``open(path, "w")`` would give it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write bytes so that readers see either the old file or the whole new one."""
    path = Path(path)
    fd, tmp = _mkstemp_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk and the like: name the file being written
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files this module made under `folder` whose writing process is no longer running (a run killed
    mid-write leaves them; a live writer's are never listed). Names look like ``.NAME.PID.RANDOM.tmp``."""
    out = []
    for p in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        parts = p.name[:-len(TEMP_SUFFIX)].rsplit(".", 2)
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if p.is_file() and (pid is None or not _running(pid)):
            out.append(p)
    return sorted(out)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def temp_path_for(path: str | os.PathLike) -> Path:
    """A unique temporary name in the target's folder, for writers that need a path (then os.replace)."""
    fd, tmp = _mkstemp_beside(Path(path))
    os.close(fd)
    return Path(tmp)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


_HELD: set[Path] = set()  # lock files this process holds


class FolderLocked(RuntimeError):
    """Another live process is writing the folder."""


@dataclass
class FolderLock:
    """`folder/.lock`: the pid and host of the one process that writes a folder (a training run, shards).

    A lock whose process is gone (same host, pid not running; or this process's own lock left by a call that
    raised) is taken over with a message; a live one is refused with a sentence naming it."""

    path: Path

    @classmethod
    def acquire(cls, out_dir: str | os.PathLike) -> FolderLock:
        path = (Path(out_dir) / LOCK).resolve()
        host = socket.gethostname()
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_umask())
            except FileExistsError:
                owner = _lock_owner(path)
                if owner is not None and not _lock_is_stale(path, owner, host):
                    raise FolderLocked(f"{out_dir} is being written by process {owner.get('pid')} on "
                                       f"{owner.get('host')} (since {owner.get('since')}); wait for it to end, or, "
                                       f"if no such process runs, delete {path}") from None
                print(f"{out_dir}: taking over the lock of process {(owner or {}).get('pid')}, which no longer runs",
                      file=sys.stderr)
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": host, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, fh)
            _HELD.add(path)
            return cls(path)

    def release(self) -> None:
        if self.path in _HELD:
            _HELD.discard(self.path)
            self.path.unlink(missing_ok=True)


def _lock_owner(path: Path) -> dict[str, Any] | None:
    """The lock's record; None when it is unreadable and old (a writer killed between creating and filling it)."""
    try:
        record = json.loads(path.read_text())
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        try:
            young = time.time() - path.stat().st_mtime < 5
        except OSError:
            return None
        return {"pid": "?", "host": "?", "since": "just now"} if young else None


def _lock_is_stale(path: Path, owner: Mapping[str, Any], host: str) -> bool:
    pid = owner.get("pid")
    if owner.get("host") != host or not isinstance(pid, int):
        return False
    if pid == os.getpid():  # this process's own lock, left by a call that raised
        return path not in _HELD
    return not _running(pid)
