"""The shard format: column names, Arrow types and layout constants, in one place.

A prepared dataset is a folder::

    manifest.json                    schema version, toolkit version, recipe (the dataset card), options,
                                     annotation backends, per-file sha256, counts
    videos.parquet                   one row per source video (also the failed ones)
    frames/<split>/<video_id>.parquet  one row per frame, sorted by frame index
    .state/                          per-video records that make `prepare` resumable

Every frames file is one video (a shard), so a finished video is never rewritten
and an interrupted run resumes at the next video. Row groups hold ROW_GROUP_FRAMES
frames, so a 16-frame clip at stride 4 (61 frames) touches one or two row groups.
"""

from __future__ import annotations

import pyarrow as pa

from toolkit.keypoints import N_KEYPOINTS

SCHEMA_VERSION = 2  # 2: the `parts` and `pose_labels` columns
ROW_GROUP_FRAMES = 64
KEYPOINT_VALUES = N_KEYPOINTS * 3  # x, y, score per point, flattened: reshape(-1, 133, 3)

FRAMES_SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("frame_index", pa.int32(), nullable=False),      # 0..n_frames-1 in the stored sequence
    pa.field("source_frame", pa.int32(), nullable=False),     # index of the frame in the source video/folder
    pa.field("timestamp", pa.float64(), nullable=False),      # seconds: the source frame's presentation time
    pa.field("split", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("image", pa.binary(), nullable=False),           # encoded RGB frame
    pa.field("image_format", pa.string(), nullable=False),    # png | jpeg | webp
    pa.field("keypoints", pa.list_(pa.float32(), KEYPOINT_VALUES)),  # 133 x (x, y, score), pixels; null: no pose
    pa.field("person_box", pa.list_(pa.float32(), 4)),        # x0, y0, x1, y1 pixels; null: no person found
    pa.field("iuv", pa.binary()),                             # PNG, channels (I, U, V); null: no DensePose
    pa.field("mask", pa.binary()),                            # PNG, 0 background / 255 person; null: none
    pa.field("parts", pa.binary()),                           # iuv's I alone: zstd of the raw (height, width)
                                                              # uint8 plane (video.encode_plane); null: no DensePose
    pa.field("pose_labels", pa.binary()),                     # label canvas of the keypoints' pose render at the
                                                              # stored size in STORED_POSE_STYLE (video.encode_plane,
                                                              # conditions.pose_palette colours it); null: no pose
], metadata={"toolkit.schema_version": str(SCHEMA_VERSION)})

VIDEOS_SCHEMA = pa.schema([
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),           # dataset name
    pa.field("source_path", pa.string(), nullable=False),      # relative to the source root
    pa.field("source_sha256", pa.string()),                    # of the video file, or of the frame files in order
    pa.field("source_fps", pa.float64()),
    pa.field("fps", pa.float64()),                             # of the stored frames
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("n_frames", pa.int32()),
    pa.field("image_format", pa.string()),
    pa.field("has_keypoints", pa.bool_()),
    pa.field("has_iuv", pa.bool_()),
    pa.field("has_mask", pa.bool_()),
    pa.field("frames_file", pa.string()),                      # relative to the shard folder; null if failed
    pa.field("frames_sha256", pa.string()),
    pa.field("status", pa.string(), nullable=False),           # ok | failed
    pa.field("failure_reason", pa.string()),
])

# The pose render style `pose_labels` holds (UniAnimate's colours, hands, no face, drawn at the stored size: what
# the reference models take); the keyword options of toolkit.conditions.pose_labels.
STORED_POSE_STYLE = {"style": "unianimate", "hands": True, "face": False, "draw_scale": 1}

# Columns a reader can project; the big ones are only read when asked for.
ANNOTATION_COLUMNS = ("keypoints", "person_box", "iuv", "parts", "pose_labels", "mask")
IMAGE_FORMATS = ("png", "jpeg", "webp")


def frames_file(split: str, video_id: str) -> str:
    """Relative path of a video's frames shard."""
    return f"frames/{split}/{video_id}.parquet"
