"""TED-talks adapter (Siarohin et al. 2021, MRAA "TED384").

Two accepted layouts:

* preprocessed clips, as the authors' ``load_videos.py`` writes them:
  ``ROOT/train/<clip>.mp4`` and ``ROOT/test/<clip>.mp4`` (or ``<clip>/`` folders of
  PNG frames); the split is the folder.
* raw YouTube downloads plus the published metadata csv
  (``video_id,start,end,bbox,fps,width,height,partition``; ``video_id`` is
  ``<youtube id>#<start>#<end>``, ``bbox`` is ``left-top-right-bottom`` in the
  csv's ``width x height`` pixels, start/end are frame numbers at the csv's fps):
  ``ROOT/<youtube id>.mp4`` + ``ROOT/ted384-metadata.csv``. Each csv row becomes
  one clip: its frame range (matched by time) and its crop box rescaled to the
  downloaded video's size.
"""

from __future__ import annotations

import csv
from pathlib import Path

from toolkit import video as vid
from toolkit.sources.base import SourceVideo
from toolkit.sources.card import DatasetCard

METADATA_NAMES = ("ted384-metadata.csv", "ted-metadata.csv")
COLUMNS = ("video_id", "start", "end", "bbox", "fps", "width", "height", "partition")


def _from_metadata(root: Path, csv_path: Path, card: DatasetCard) -> list[SourceVideo]:
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}; expected {','.join(COLUMNS)}")
        rows = list(reader)
    videos = []
    for line, row in enumerate(rows, start=2):
        yt = row["video_id"].split("#")[0]
        src = root / f"{yt}.mp4"
        if not src.is_file():
            continue  # not downloaded; reported by the expected counts of `toolkit verify`
        parts = row["video_id"].split("#")
        start, end = int(row["start"]), int(row["end"])
        if start == end == 0 and len(parts) == 3:  # ranges carried inside the id
            start, end = int(parts[1]), int(parts[2])
        try:
            left, top, right, bottom = (int(x) for x in row["bbox"].split("-"))
            csv_fps, csv_w, csv_h = float(row["fps"]), int(row["width"]), int(row["height"])
        except ValueError:
            raise ValueError(f"{csv_path}:{line}: bad bbox/fps/size {row['bbox']!r}") from None
        info = vid.video_info(src)
        sx, sy = info.width / csv_w, info.height / csv_h
        # start/end count frames at the csv's fps; keep the native frames inside that time window
        first = int(-(-start * info.fps // csv_fps))
        last = int(-(-end * info.fps // csv_fps))
        clip_id = row["video_id"].replace("#", "_")
        videos.append(SourceVideo(
            video_id=clip_id, split=card.split_of(clip_id, row["partition"]), path=src, root=root,
            crop=(round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)),
            frame_range=(first, last),
        ))
    return videos


def discover(root: Path, card: DatasetCard) -> list[SourceVideo]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: TED source folder does not exist")
    csv_path = next((root / n for n in METADATA_NAMES if (root / n).is_file()), None)
    if csv_path is not None and not (root / "train").is_dir():
        videos = _from_metadata(root, csv_path, card)
    else:
        videos = []
        for split in ("train", "test"):
            d = root / split
            if not d.is_dir():
                continue
            for p in sorted(d.iterdir()):
                if p.name.startswith("."):
                    continue
                if (p.is_file() and p.suffix.lower() in vid.VIDEO_EXTENSIONS) or (p.is_dir() and vid.list_frame_files(p)):
                    clip_id = p.stem if p.is_file() else p.name
                    clip_id = clip_id.replace("#", "_")
                    videos.append(SourceVideo(video_id=clip_id, split=card.split_of(clip_id, split), path=p,
                                              root=root, fps=card.fps if p.is_dir() else None))
    if not videos:
        raise FileNotFoundError(f"{root}: no TED clips found (expected train/ and test/ folders of clips, "
                                f"or <youtube id>.mp4 files with {METADATA_NAMES[0]})")
    return videos
