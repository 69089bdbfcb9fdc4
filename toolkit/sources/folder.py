"""Any folder of videos or frame folders.

Video files (mp4, mov, avi, mkv, webm, m4v, gif) and folders of images become
videos; a folder named ``train``, ``test`` or ``val`` on the way sets the split
(otherwise the card's default). Ids are the relative paths with ``/`` -> ``__``.
Symbolic links are followed, each real folder once (a link loop ends there).
"""

from __future__ import annotations

from pathlib import Path

from toolkit.sources.base import SourceVideo
from toolkit.sources.card import DatasetCard
from toolkit.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

SPLIT_FOLDERS = ("train", "test", "val", "validation")


def _has_images(d: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir() if p.is_file())


def discover(root: Path, card: DatasetCard) -> list[SourceVideo]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: source folder does not exist")
    found: list[tuple[Path, Path]] = []  # (video path, id path)
    seen: set[Path] = set()  # real folders already walked: a symlink loop or a second link is followed once

    def walk(d: Path) -> None:
        real = d.resolve()
        if real in seen:
            return
        seen.add(real)
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
                found.append((p, p.with_suffix("")))
            elif p.is_dir() and (p / "images").is_dir() and _has_images(p / "images"):
                found.append((p / "images", p))
            elif p.is_dir() and _has_images(p):
                found.append((p, p))
            elif p.is_dir():
                walk(p)

    walk(root)
    videos = []
    for path, id_path in found:
        rel = id_path.relative_to(root)
        split = next((("val" if part == "validation" else part) for part in rel.parts[:-1]
                      if part in SPLIT_FOLDERS), None)
        vid_id = "__".join(rel.parts)
        videos.append(SourceVideo(video_id=vid_id, split=card.split_of(vid_id, split), path=path, root=root,
                                  fps=card.fps if path.is_dir() else None))
    if not videos:
        raise FileNotFoundError(f"{root}: no videos or frame folders found")
    ids = [v.video_id for v in videos]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"{root}: several sources map to the same video id: {sorted(dup)[:5]}")
    return videos
