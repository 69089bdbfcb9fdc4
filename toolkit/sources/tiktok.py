"""TikTok dataset adapter (Jafarian & Park, CVPR 2021): one folder per video.

Layout: ``ROOT/<video_id>/images/*.png`` with optional ``masks/`` and
``densepose/`` folders whose files are named like the frames. The release's
DensePose PNGs hold raw IUV values in the channel order (R, G, B) = (V, U, I)
(HDNet_TikTok issue #26); the card's ``options.densepose_order`` says so. The synthetic
dataset uses the same layout and adds ``keypoints.npy`` (exact ground truth).
"""

from __future__ import annotations

from pathlib import Path

from toolkit.sources.base import SourceVideo
from toolkit.sources.card import DatasetCard


def discover(root: Path, card: DatasetCard) -> list[SourceVideo]:
    """Every ``<id>/images`` folder under root, in id order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: TikTok source folder does not exist")
    videos = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and (p / "images").is_dir()
                    and not p.name.endswith(".tmp") and not p.name.startswith(".")):
        videos.append(SourceVideo(
            video_id=d.name,
            split=card.split_of(d.name),
            path=d / "images",
            root=root,
            fps=card.fps,
            masks=d / "masks" if (d / "masks").is_dir() else None,
            densepose=d / "densepose" if (d / "densepose").is_dir() and card.options.get("densepose", True) else None,
            keypoints=d / "keypoints.npy" if (d / "keypoints.npy").is_file() else None,
            densepose_order=card.options.get("densepose_order", "IUV"),
        ))
    if not videos:
        raise FileNotFoundError(f"{root}: no TikTok-layout videos found (expected <video_id>/images/*.png folders)")
    return videos
