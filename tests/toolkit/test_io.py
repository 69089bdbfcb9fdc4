"""Atomic writers: files appear whole, with the permissions the user's umask gives any other file."""

from __future__ import annotations

import os
import stat

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toolkit.io import atomic_write_bytes, atomic_write_json, temp_path_for


@pytest.fixture
def umask():
    """Set a umask for one test, restoring the previous one after."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert mode(atomic_write_bytes(tmp_path / "a.bin", b"x")) == expected
    assert mode(atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})) == expected
    # writers that need a path (pyarrow, matplotlib, the weights cache) get a temporary file with the same mode
    tmp = temp_path_for(tmp_path / "c.parquet")
    pq.write_table(pa.table({"x": [1, 2]}), tmp)
    os.replace(tmp, tmp_path / "c.parquet")
    assert mode(tmp_path / "c.parquet") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "c.parquet", "sub"]


def test_atomic_write_replaces_whole_file(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "f.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
