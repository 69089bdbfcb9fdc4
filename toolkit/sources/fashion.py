"""UBC-Fashion adapter (Zablotskaia et al. 2019): 600 mp4 files, official 500/100 train/test lists.

Accepted layouts: ``ROOT/train/*.mp4`` + ``ROOT/test/*.mp4``, or all mp4 files in
one folder together with the official ``fashion_train.txt`` / ``fashion_test.txt``
lists (one video URL or file name per line) that assign the split.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.sources.base import SourceVideo
from toolkit.sources.card import DatasetCard


def _list_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(Path(line.split("/")[-1]).stem)
    return names


def discover(root: Path, card: DatasetCard) -> list[SourceVideo]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: UBC-Fashion source folder does not exist")
    lists = {split: root / f"fashion_{split}.txt" for split in ("train", "test")}
    listed = {split: _list_names(p) for split, p in lists.items() if p.is_file()}
    videos = []
    for p in sorted(root.rglob("*.mp4")):
        if p.name.startswith("."):
            continue
        stem = p.stem
        split = next((s for s, names in listed.items() if stem in names), None)
        if split is None and p.parent.name in ("train", "test"):
            split = p.parent.name
        if split is None and listed:
            continue  # not in the official lists
        videos.append(SourceVideo(video_id=stem, split=card.split_of(stem, split), path=p, root=root))
    if not videos:
        raise FileNotFoundError(f"{root}: no UBC-Fashion mp4 files found (expected train/*.mp4 and test/*.mp4, "
                                "or mp4 files with fashion_train.txt / fashion_test.txt)")
    return videos
