"""UniAnimate-style pose alignment (toolkit.annotate.align)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.annotate.align import SEGMENTS, align_pose_sequence, fit_alignment
from toolkit.keypoints import FACE, FEET, INDEX, LEFT_HAND, RIGHT_HAND

BODY_XY = {
    "nose": (250, 160), "left_eye": (262, 150), "right_eye": (238, 150), "left_ear": (276, 158),
    "right_ear": (224, 158), "left_shoulder": (305, 250), "right_shoulder": (195, 252),
    "left_elbow": (330, 352), "right_elbow": (171, 351), "left_wrist": (342, 446), "right_wrist": (160, 448),
    "left_hip": (283, 450), "right_hip": (218, 451), "left_knee": (290, 601), "right_knee": (211, 601),
    "left_ankle": (295, 731), "right_ankle": (205, 732),
}


def person(rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    """A full (133, 3) pose: body, feet near the ankles, hands near the wrists, face around the nose."""
    kp = np.zeros((133, 3), np.float64)
    for name, xy in BODY_XY.items():
        kp[INDEX[name], :2] = xy
    for k, side in zip(range(FEET.start, FEET.stop), ["left"] * 3 + ["right"] * 3, strict=True):
        kp[k, :2] = kp[INDEX[f"{side}_ankle"], :2] + rng.uniform(-12, 12, 2) + (0, 15)
    for hand, wrist in ((LEFT_HAND, "left_wrist"), (RIGHT_HAND, "right_wrist")):
        kp[hand, :2] = kp[INDEX[wrist], :2] + rng.uniform(-20, 20, (21, 2)) + (0, 20)
    kp[FACE, :2] = kp[INDEX["nose"], :2] + rng.uniform(-20, 20, (68, 2))
    kp[:, :2] += rng.normal(0, jitter, (133, 2))
    kp[:, 2] = rng.uniform(0.4, 1.0, 133)
    return kp


def sequence(n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = person(rng)
    frames = []
    for t in range(n):
        frame = base.copy()
        frame[:, :2] += rng.normal(0, 6, (133, 2)) + (3 * t, -2 * t)
        frame[:, 2] = rng.uniform(0.4, 1.0, 133)
        frames.append(frame)
    return np.stack(frames)


def length(kp: np.ndarray, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(kp[..., INDEX[a], :2] - kp[..., INDEX[b], :2], axis=-1)


def neck(kp: np.ndarray) -> np.ndarray:
    return (kp[..., INDEX["left_shoulder"], :2] + kp[..., INDEX["right_shoulder"], :2]) / 2


def test_aligning_to_own_first_frame_is_identity():
    seq = sequence()
    out = align_pose_sequence(seq, seq[0])
    assert out.dtype == np.float32 and out.shape == seq.shape
    assert np.abs(out - seq).max() < 1e-4


def test_reference_scaled_about_a_point_scales_the_sequence():
    seq = sequence()
    s, centre = 1.37, np.array([40.0, 500.0])
    ref = seq[0].copy()
    ref[:, :2] = centre + s * (ref[:, :2] - centre)
    params = fit_alignment(ref, seq[0])
    assert params.x_ratio == pytest.approx(s) and params.y_ratio == pytest.approx(s)
    assert all(r == pytest.approx(1.0) for r in params.segment_ratios.values())
    out = align_pose_sequence(seq, ref)
    expected = centre + s * (seq[..., :2] - centre)
    assert np.abs(out[..., :2] - expected).max() < 1e-3
    for a, b in (("left_shoulder", "left_elbow"), ("right_knee", "right_ankle"), ("nose", "left_eye")):
        assert np.allclose(length(out, a, b), s * length(seq, a, b), rtol=1e-5)
    assert np.allclose(neck(out[0]), neck(ref), atol=1e-3)
    assert np.array_equal(out[..., 2], seq[..., 2].astype(np.float32))


def test_longer_reference_arms_lengthen_only_the_arms():
    seq = sequence()
    ref = seq[0].copy()
    # Right upper arm 1.3x as long: the elbow moves out along the arm, the forearm and hand follow.
    shoulder, elbow = ref[INDEX["right_shoulder"], :2], ref[INDEX["right_elbow"], :2]
    shift = (elbow - shoulder) * 0.3
    for k in [INDEX["right_elbow"], INDEX["right_wrist"], *range(RIGHT_HAND.start, RIGHT_HAND.stop)]:
        ref[k, :2] += shift
    params = fit_alignment(ref, seq[0])
    assert params.segment_ratios["right_upper_arm"] == pytest.approx(1.3)
    assert all(v == pytest.approx(1.0) for k, v in params.segment_ratios.items() if k != "right_upper_arm")
    out = align_pose_sequence(seq, ref)
    assert np.allclose(length(out, "right_shoulder", "right_elbow"), 1.3 * length(seq, "right_shoulder", "right_elbow"))
    assert np.allclose(length(out, "right_elbow", "right_wrist"), length(seq, "right_elbow", "right_wrist"), atol=1e-3)
    moved = [INDEX["right_elbow"], INDEX["right_wrist"], *range(RIGHT_HAND.start, RIGHT_HAND.stop)]
    still = np.setdiff1d(np.arange(133), moved)
    assert np.abs(out[:, still, :2] - seq[:, still, :2]).max() < 1e-3
    # The hand keeps its shape relative to the wrist.
    rel_in = seq[:, RIGHT_HAND, :2] - seq[:, [INDEX["right_wrist"]], :2]
    rel_out = out[:, RIGHT_HAND, :2] - out[:, [INDEX["right_wrist"]], :2]
    assert np.abs(rel_in - rel_out).max() < 1e-3


def test_missing_points_stay_missing_and_skip_their_segments():
    seq = sequence()
    ref = seq[0].copy()
    ref[:, :2] = ref[:, :2] * 1.2 + 10
    seq[2, INDEX["left_elbow"]] = 0.0
    seq[3, LEFT_HAND] = 0.0
    seq[4, INDEX["left_knee"], 2] = 0.0
    out = align_pose_sequence(seq, ref)
    assert (out[2, INDEX["left_elbow"]] == 0).all()
    assert (out[3, LEFT_HAND] == 0).all()
    assert (out[4, INDEX["left_knee"]] == 0).all()
    assert np.isfinite(out).all()
    valid = seq[..., 2] > 0
    assert (out[..., 2][valid] > 0).all()


def test_reference_missing_a_segment_keeps_ratio_one():
    seq = sequence()
    ref = seq[0].copy()
    ref[INDEX["left_ear"]] = 0.0
    params = fit_alignment(ref, seq[0])
    assert params.segment_ratios["left_ear"] == 1.0


def test_anisotropic_reference_uses_x_and_y_ratios():
    seq = sequence()
    ref = seq[0].copy()
    c = neck(ref)
    ref[:, 0] = c[0] + 1.5 * (ref[:, 0] - c[0])  # wider, same height
    params = fit_alignment(ref, seq[0])
    assert params.x_ratio == pytest.approx(1.5) and params.y_ratio == pytest.approx(1.0)
    out = align_pose_sequence(seq, ref)
    # Per-segment ratios then match every rescaled segment to the reference's length.
    for _, parent, child, _ in SEGMENTS:
        if parent < 133:
            got = np.linalg.norm(out[0, child, :2] - out[0, parent, :2])
            want = np.linalg.norm(ref[child, :2] - ref[parent, :2])
            assert got == pytest.approx(want, rel=1e-4)
    assert np.allclose(neck(out[0]), neck(ref), atol=1e-3)


def _openpose18_reference_alignment(seq18: np.ndarray, ref18: np.ndarray) -> np.ndarray:
    """The script's procedure on OpenPose-18 joints, written out joint by joint (body only)."""
    chain = {  # segment (parent, child) -> joints shifted with the child
        (1, 0): [0, 14, 15, 16, 17], (1, 2): [2, 3, 4], (1, 5): [5, 6, 7], (2, 3): [3, 4], (3, 4): [4],
        (5, 6): [6, 7], (6, 7): [7], (0, 14): [14, 16], (0, 15): [15, 17], (14, 16): [16], (15, 17): [17],
        (8, 9): [9, 10], (9, 10): [10], (11, 12): [12, 13], (12, 13): [13],
    }
    first = seq18[0]
    xr = (ref18[5, 0] - ref18[2, 0]) / (first[5, 0] - first[2, 0])
    yr = ((ref18[8, 1] + ref18[11, 1]) / 2 - (ref18[2, 1] + ref18[5, 1]) / 2) / (
        (first[8, 1] + first[11, 1]) / 2 - (first[2, 1] + first[5, 1]) / 2)
    scaled = seq18 * (xr, yr)
    ratios = {seg: np.linalg.norm(ref18[seg[1]] - ref18[seg[0]]) / np.linalg.norm(scaled[0, seg[1]] - scaled[0, seg[0]])
              for seg in chain}
    out = scaled.copy()
    for t in range(len(seq18)):
        for (p, c), moved in chain.items():
            delta = (scaled[t, c] - scaled[t, p]) * (ratios[(p, c)] - 1)
            out[t, moved] += delta
    return out + (ref18[1] - out[0, 1])


def test_matches_the_scripts_procedure_on_the_body():
    from toolkit.keypoints import to_openpose18

    seq = sequence(seed=3)
    rng = np.random.default_rng(7)
    ref = person(rng, jitter=8.0)
    ref[:, :2] = ref[:, :2] * (0.8, 1.1) + (30, -20)
    out = align_pose_sequence(seq, ref)
    ours = to_openpose18(out)[..., :2]
    theirs = _openpose18_reference_alignment(to_openpose18(seq)[..., :2].astype(np.float64),
                                             to_openpose18(ref)[..., :2].astype(np.float64))
    assert np.abs(ours - theirs).max() < 1e-3


def test_bad_inputs_raise_clear_errors():
    seq = sequence()
    ref = seq[0].copy()
    ref[INDEX["left_shoulder"]] = 0.0
    with pytest.raises(ValueError, match="reference has no pair of shoulders"):
        align_pose_sequence(seq, ref)
    side = seq[0].copy()
    side[INDEX["left_shoulder"], 0] = side[INDEX["right_shoulder"], 0]
    with pytest.raises(ValueError, match="shoulder width"):
        align_pose_sequence(seq, side)
    with pytest.raises(ValueError, match=r"\(133, 3\)"):
        align_pose_sequence(seq[:, :17], seq[0])
    with pytest.raises(ValueError, match="anchor"):
        align_pose_sequence(seq, seq[0], anchor=10)


def test_unianimate_aligned_frame_needs_no_further_alignment(real_fixtures):
    """UniAnimate already aligned its saved first frame to ref_pose: fitting again finds ratios near 1, no offset."""
    from tests.helpers.pose_from_render import recover_keypoints_from_render
    from toolkit.video import read_image

    folder = real_fixtures / "unianimate" / "dwpose_render" / "IMG_20240514_104337"
    if not (folder / "ref_pose.jpg").is_file():
        pytest.skip(f"{folder} has no ref_pose.jpg")
    ref = recover_keypoints_from_render(read_image(folder / "ref_pose.jpg"))
    first = recover_keypoints_from_render(read_image(folder / "0000.jpg"))
    params = fit_alignment(ref, first)
    assert params.x_ratio == pytest.approx(1.0, abs=0.02) and params.y_ratio == pytest.approx(1.0, abs=0.02)
    body = {k: v for k, v in params.segment_ratios.items() if not k.endswith(("_eye", "_ear"))}
    assert all(0.9 <= v <= 1.1 for v in body.values()), body
    assert np.hypot(*params.offset) < 2.0
