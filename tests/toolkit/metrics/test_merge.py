"""Distribution metrics split across processes: `state()` of one instance `merge`d into another gives the same
distance and details as one instance that saw everything (what `eval --executor ray` relies on).

The networks are replaced by cheap feature functions: what is tested is the accumulation, not the features.
"""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.metrics import features
from toolkit.metrics.features import FID, FVD


def cheap_frame_features(model, frames, profile="standard", batch_size=50):
    x = frames.reshape(len(frames), -1, 3).astype(np.float64)
    return np.concatenate([x.mean(1), x.std(1)], axis=1)


def cheap_clip_features(model, video, starts, batch_size=4):
    if len(video) < 16:
        return np.zeros((0, 6))
    starts = [0] if starts is None else starts
    return np.stack([cheap_frame_features(None, video[s:s + 16]).mean(0) for s in starts])


@pytest.fixture(autouse=True)
def cheap_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features.weights, "file_sha256", lambda name: "stand-in")
    monkeypatch.setattr(features.inception_fid, "load_fid_inception", lambda device: None)
    monkeypatch.setattr(features.i3d, "load_i3d", lambda device: None)
    monkeypatch.setattr(features, "fid_features", cheap_frame_features)
    monkeypatch.setattr(features, "fvd_features", cheap_clip_features)


@pytest.mark.parametrize("make, per_video", [(lambda: FID("standard"), False),
                                             (lambda: FVD("standard", clips_per_video=2), True)])
def test_merged_states_equal_one_pass(make, per_video: bool) -> None:
    rng = np.random.default_rng(0)
    pred = [rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8) for _ in range(4)]
    target = [rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8) for _ in range(4)]
    pred[3] = pred[3][:10]    # too short for a 16-frame clip: counted as skipped on both paths
    whole, one, parts = make(), make(), make()
    for k in range(4):
        args = ({"pred": [pred[k]], "target": [target[k]], "video_ids": [f"v{k}"]} if per_video else
                {"pred": pred[k], "target": target[k]})
        whole.update(**args)
        one.reset()           # a fresh accumulation per video, as a Ray worker keeps it, merged in order
        one.update(**args)
        parts.merge(one.state())
    a, b = whole.compute(), parts.compute()
    assert a.num_pred == b.num_pred == (70 if not per_video else 6)
    assert a.value == b.value and a.details == b.details
    if per_video:
        assert b.details["videos"] == {"pred": 4, "target": 4}
        assert b.details["skipped_short_videos"] == {"pred": 1, "target": 0}
