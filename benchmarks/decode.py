"""Decode time of the fixture videos with decord (whichever distribution is installed) vs PyAV.

Depends only on decord, av, numpy and benchmarks/results.py, so the same script can run in an environment with
decord 0.6.0 and in ours with decord2 (which installs the same `decord` module):

    .venv/bin/python benchmarks/decode.py
    /path/to/other/venv/bin/python benchmarks/decode.py

Prints per-video best-of-N seconds for a full decode and whether decord's frames equal PyAV's.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from results import record


def fixtures() -> Path:
    here = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("TOOLKIT_FIXTURES", here.parent / "shared" / "fixtures" / "real"))


def decode_decord(path: Path) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def decode_pyav(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def best_of(fn, path: Path, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(path)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    dists = [d for d in ("decord2", "decord") if _has(d)]
    print(f"python {sys.version.split()[0]}, decord from: {', '.join(f'{d} {metadata.version(d)}' for d in dists)}")
    for name in ("running.mp4", "dancing2.mp4"):
        path = fixtures() / "magicanimate" / "densepose" / name
        if not path.exists():
            print(f"{path}: missing (set TOOLKIT_FIXTURES)")
            continue
        t_dec, a = best_of(decode_decord, path, 5)
        t_av, b = best_of(decode_pyav, path, 5)
        same = a.shape == b.shape and np.array_equal(a, b)
        print(f"{name:14s} {a.shape[0]:4d} frames {a.shape[2]}x{a.shape[1]}  decord {t_dec:.3f} s  "
              f"PyAV {t_av:.3f} s  pixel-identical: {same}")
        record(f"decode: {name} ({a.shape[0]} frames {a.shape[2]}x{a.shape[1]}), full decode, "
               f"decord ({'/'.join(dists)}) vs PyAV, pixel-identical: {same}", f"{a.shape[0] / t_dec:.0f} frames/s",
               f"{b.shape[0] / t_av:.0f} frames/s (PyAV)", t_av / t_dec)


def _has(dist: str) -> bool:
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
