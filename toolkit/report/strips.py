"""Qualitative strips: side-by-side animated grids (reference | driving pose | ground truth | each method).

For a few test videos, the first ``max_frames`` frames of each method come from the
folder the leaderboard names for it: the predictions `toolkit eval` stored with the
run (learned methods included), or the folder a ``predictions:NAME`` run scored. A
method with no such folder is run again on the harness's inputs (reference = frame
0, the driving keypoints and IUV, the frame count) when it is a registered method
that needs no checkpoint; otherwise its column says why it is not shown and how to
get it. Each strip is written as MP4 (x264), GIF and a still contact sheet (PNG: a
few time steps, one per row), with tiles of ``TILE_HEIGHT`` pixels (large enough to
judge artifacts), plus a small JPEG preview of the still that the HTML report
embeds (the full-size files are linked), and one small browser-playable MP4 per
column (and an error map |generated - ground truth| per method) for the HTML
report's synchronised players, in ``<video_id>-players/``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image

from toolkit.harness.method import Conditions
from toolkit.harness.registry import get_method, method_class, method_names
from toolkit.harness.scoring import conditions_for
from toolkit.io import atomic_write_bytes
from toolkit.paths import safe_filename
from toolkit.shards.reader import Shards
from toolkit.video import encode_image, read_video, write_video

HEADER = 24          # px: column labels
GUTTER = 46          # px: frame index at the left
GAP = 4              # px between tiles
BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
TILE_HEIGHT = 384    # px: default tile height (never more than the frames' own height)
PREVIEW_WIDTH = 960  # px: the embedded preview of the still is at most this wide
PLAYER_HEIGHT = 256  # px: the players' videos are at most this high (the page shows them smaller)
ERROR_GAIN = 4       # error maps show mean |generated - ground truth| over RGB times this, clipped to 255


@dataclass
class PlayerColumn:
    """One column of the HTML report's players: a browser-playable video, or why there is none."""

    label: str
    kind: str                      # "input" (reference, driving, ground truth) or "method"
    video: Path | None
    error: Path | None = None      # |generated - ground truth| video (methods only)
    note: str = ""
    source: str = ""               # where a method's frames came from: "stored", "predictions", "regenerated"


@dataclass
class Strip:
    """One written strip: its files, its columns, and anything that could not be shown."""

    dataset: str
    video_id: str
    columns: list[str]
    n_frames: int
    mp4: Path
    gif: Path
    png: Path
    notes: list[str] = field(default_factory=list)
    preview: Path | None = None    # small JPEG of the still, for embedding
    tile_height: int = 0
    players: list[PlayerColumn] = field(default_factory=list)
    fps: float = 24.0


def _tile_size(height: int, width: int, tile_height: int) -> tuple[int, int]:
    h = int(tile_height) - int(tile_height) % 2
    w = int(round(width * h / height))
    return h, w + (w % 2)


def _fit(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def _placeholder(n: int, h: int, w: int, text: str) -> np.ndarray:
    tile = np.full((h, w, 3), 235, np.uint8)
    _put_text(tile, text, (6, h // 2), 0.4, (120, 120, 120))
    return np.repeat(tile[None], n, axis=0)


def _put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour=INK) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def _fit_label(text: str, width: int, scale: float = 0.45) -> str:
    """The label, shortened with '..' until it fits the tile (OpenCV's font has no ellipsis glyph)."""
    def fits(t: str) -> bool:
        return cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] <= width - 6

    if fits(text):
        return text
    while len(text) > 1 and not fits(text + ".."):
        text = text[:-1]
    return text + ".."


def compose(columns: list[tuple[str, np.ndarray]], frame_labels: list[str]) -> np.ndarray:
    """Grid frames (T, H, W, 3): a label row, then one tile per column, the frame index in a left gutter."""
    n, h, w = columns[0][1].shape[:3]
    width = GUTTER + len(columns) * (w + GAP) - GAP
    width += width % 2
    height = HEADER + h
    height += height % 2
    base = np.full((height, width, 3), BACKGROUND, np.uint8)
    for c, (label, _) in enumerate(columns):
        x0 = GUTTER + c * (w + GAP)
        _put_text(base, _fit_label(label, w), (x0 + 3, HEADER - 8), 0.45)
    out = np.repeat(base[None], n, axis=0)
    for t in range(n):
        for c, (_, frames) in enumerate(columns):
            x0 = GUTTER + c * (w + GAP)
            out[t, HEADER:HEADER + h, x0:x0 + w] = frames[t]
        _put_text(out[t], frame_labels[t], (4, HEADER + 16), 0.4, (110, 110, 110))
    return out


def contact_sheet(columns: list[tuple[str, np.ndarray]], n_rows: int = 4) -> np.ndarray:
    """A still: the label row once, then `n_rows` evenly spaced time steps, one per row."""
    n = columns[0][1].shape[0]
    steps = sorted(set(np.linspace(0, n - 1, min(n_rows, n)).round().astype(int).tolist()))
    grids = compose([(label, frames[steps]) for label, frames in columns], [f"t={t}" for t in steps])
    rows = [grids[0]] + [g[HEADER:] for g in grids[1:]]
    spacer = np.full((GAP, grids.shape[2], 3), BACKGROUND, np.uint8)
    parts = []
    for i, r in enumerate(rows):
        parts += ([spacer] if i else []) + [r]
    return np.concatenate(parts, axis=0)


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """Animated GIF bytes (adaptive palette per frame, looping)."""
    images = [Image.fromarray(f).convert("P", palette=Image.Palette.ADAPTIVE, colors=255) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, int(round(1000 / max(fps, 1e-3)))), optimize=False, disposal=1)
    return buf.getvalue()


class NotStored(LookupError):
    """A method's column cannot be shown: no stored predictions and it cannot be regenerated; says how to fix."""


def _method_frames(name: str, shards: Shards, video_id: str, gt: np.ndarray, cond: Conditions,
                   predictions: str | None, missing: str | None = None) -> np.ndarray:
    """A method's frames for the strip: from its predictions folder when it has one, else regenerated."""
    if predictions or name.startswith("predictions:"):
        from toolkit.harness.predictions import find_predictions

        if not predictions or not Path(predictions).is_dir():
            raise FileNotFoundError(f"predictions folder {predictions!r} of run {name} is not on this machine")
        row = shards.video(video_id)
        found, problems = find_predictions(predictions, {video_id: (int(row.n_frames), int(row.width),
                                                                    int(row.height))}, exact_size=False)
        if video_id not in found:
            raise FileNotFoundError("; ".join(problems) or f"no prediction for {video_id}")
        hit = found[video_id]
        if hit.path.is_file():   # decode only the frames shown
            pred = read_video(hit.path, range(min(len(gt), int(row.n_frames))))
        else:
            pred = hit.load()[: len(gt)]
        if pred.shape[1:3] != gt.shape[1:3]:
            pred = _fit(pred, gt.shape[1], gt.shape[2])
        return pred
    if missing:
        raise NotStored(missing)
    if ":" not in name and name not in method_names():  # a run's --name label: nothing to regenerate it from
        raise NotStored(f"{name} is a run label, not a registered method, and no stored predictions were given "
                        "for it; rerun its `toolkit eval` (predictions are saved by default)")
    method = get_method(name)
    pred = np.asarray(method.generate(cond))
    if pred.shape != gt.shape or pred.dtype != np.uint8:
        raise ValueError(f"returned {pred.shape} {pred.dtype}, expected {gt.shape} uint8")
    return pred


def error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Frames of mean |pred - gt| over RGB, times ERROR_GAIN, clipped, in the inferno colour map (black: equal)."""
    diff = np.abs(pred.astype(np.int16) - gt.astype(np.int16)).mean(axis=-1) * ERROR_GAIN
    grey = np.clip(diff, 0, 255).astype(np.uint8)
    return np.stack([cv2.cvtColor(cv2.applyColorMap(g, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB) for g in grey])


def _write_players(folder: Path, columns: list[tuple[str, np.ndarray]], gt: np.ndarray,
                   methods: dict[str, tuple[np.ndarray | None, str, str]], fps: float) -> list[PlayerColumn]:
    """One small yuv420p MP4 per column (and an error map per shown method), for the HTML report's players."""
    h = min(PLAYER_HEIGHT, columns[0][1].shape[1])
    ph, pw = _tile_size(columns[0][1].shape[1], columns[0][1].shape[2], h)
    players = []
    for i, (label, frames) in enumerate(columns):
        stem = f"{i:02d}-{safe_filename(label)}"
        if label not in methods:
            players.append(PlayerColumn(label, "input", write_video(folder / f"{stem}.mp4", _fit(frames, ph, pw),
                                                                    fps=fps, crf=20)))
            continue
        raw, source, note = methods[label]
        if raw is None:
            players.append(PlayerColumn(label, "method", None, note=note))
            continue
        video = write_video(folder / f"{stem}.mp4", _fit(raw, ph, pw), fps=fps, crf=20)
        error = write_video(folder / f"{stem}-error.mp4", _fit(error_map(raw, gt), ph, pw), fps=fps, crf=20)
        players.append(PlayerColumn(label, "method", video, error, note, source))
    return players


def make_strip(shards: Shards, video_id: str, methods: list[str], out_dir: Path, dataset: str,
               max_frames: int = 48, tile_height: int = TILE_HEIGHT,
               predictions: dict[str, str] | None = None, missing: dict[str, str] | None = None) -> Strip:
    """Show the methods on one video: write `<video_id>.mp4`, `.gif`, `.png` and `<video_id>-players/` into out_dir.

    `predictions` maps a method to the folder its frames are read from; `missing` maps a method that has none
    and cannot be regenerated to the reason, shown in place of its column."""
    registered = set(method_names())
    predictions, missing = predictions or {}, missing or {}
    needs_gt = any(method_class(m).uses_ground_truth for m in methods
                   if m in registered and m not in predictions and m not in missing)
    gt, cond = conditions_for(shards, video_id, max_frames, needs_gt)
    n, height, width = gt.shape[:3]
    th, tw = _tile_size(height, width, min(tile_height, height))
    notes: list[str] = []
    if cond.keypoints is not None:
        # drawn at tile size, so the strokes keep their width instead of being shrunk
        pose = cond.pose_renders(th, tw)
        pose_label = "driving pose"
    elif cond.iuv is not None:
        pose, pose_label = cond.densepose_renders(), "driving DensePose"
        notes.append("no keypoints in the shards: the driving column shows the DensePose render")
    else:
        pose, pose_label = np.zeros_like(gt), "no driving signal"
        notes.append("the shards have neither keypoints nor IUV")
    columns = [("reference", np.repeat(gt[:1], n, axis=0)), (pose_label, pose), ("ground truth", gt)]
    shown: dict[str, tuple[np.ndarray | None, str, str]] = {}
    for name in methods:
        source = ("predictions" if name.startswith("predictions:") else "stored") if predictions.get(name) \
            else "regenerated"
        try:
            frames = _method_frames(name, shards, video_id, gt, cond, predictions.get(name), missing.get(name))
            shown[name] = (frames, source, "")
            if source == "regenerated":
                notes.append(f"{name}: regenerated from its registered method (the run has no stored predictions)")
        except NotStored as exc:
            notes.append(f"{name}: not shown ({exc})")
            frames, shown[name] = None, (None, "", str(exc))
        except Exception as exc:  # one failing method must not sink the report; it is named in the notes
            notes.append(f"{name}: not shown ({type(exc).__name__}: {exc})")
            frames, shown[name] = None, (None, "", f"{type(exc).__name__}: {exc}")
        columns.append((name, _fit(frames, th, tw) if frames is not None else _placeholder(n, th, tw, "not shown")))
    columns = [(label, f if f.shape[1:3] == (th, tw) else _fit(f, th, tw)) for label, f in columns]
    grid = compose(columns, [f"{t}" for t in range(n)])
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_filename(video_id)
    fps = float(cond.fps) or 24.0
    players = _write_players(out_dir / f"{stem}-players", [(label, f) for label, f in columns], gt, shown, fps)
    mp4 = write_video(out_dir / f"{stem}.mp4", grid, fps=fps, crf=20)
    gif = atomic_write_bytes(out_dir / f"{stem}.gif", encode_gif(grid, float(cond.fps) or 24.0))
    sheet = contact_sheet(columns)
    png = atomic_write_bytes(out_dir / f"{stem}.png", encode_image(sheet))
    preview = atomic_write_bytes(out_dir / f"{stem}-preview.jpg", encode_image(_shrink(sheet, PREVIEW_WIDTH), "jpeg",
                                                                                quality=85))
    return Strip(dataset=dataset, video_id=video_id, columns=[c for c, _ in columns], n_frames=n, mp4=mp4, gif=gif,
                 png=png, notes=notes, preview=preview, tile_height=th, players=players, fps=fps)


def _shrink(image: np.ndarray, max_width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= max_width:
        return image
    return cv2.resize(image, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)


def make_strips(shards_path: str | Path, methods: list[str], out_dir: str | Path, n_videos: int = 3,
                split: str = "test", max_frames: int = 48, tile_height: int = TILE_HEIGHT,
                predictions: dict[str, str] | None = None, missing: dict[str, str] | None = None,
                on_strip: Callable[[Strip], None] | None = None) -> list[Strip]:
    """Strips for the first `n_videos` videos of a split; methods in the given order (see make_strip for
    `predictions` and `missing`). `on_strip` is called after each one (a progress bar)."""
    shards = Shards(shards_path)
    dataset = shards.manifest.get("dataset", shards.root.name)
    ids = shards.video_ids(split)[:max(0, n_videos)]
    strips = []
    for vid in ids:
        strips.append(make_strip(shards, vid, methods, Path(out_dir), dataset, max_frames, tile_height, predictions,
                                 missing))
        if on_strip is not None:
            on_strip(strips[-1])
    return strips
