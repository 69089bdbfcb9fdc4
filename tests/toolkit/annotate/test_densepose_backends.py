"""DensePose backends: predictor outputs pasted into IUV images, the numpy-only weights reader,
the ground-truth backend and the unavailable message."""

from __future__ import annotations

import importlib.util
import pickle

import cv2
import numpy as np
import pytest

from toolkit.annotate.backends import BackendUnavailable, get_densepose_backend
from toolkit.annotate.densepose_detectron2 import chart_to_box, load_numpy_pickle, load_state_dict, paste_iuv

S = 8  # predictor output resolution in these tests


def _instance(part_left: int, part_right: int, u_value: float, v_value: float, foreground_rows: slice = slice(None)):
    """One instance's chart outputs: coarse foreground on `foreground_rows`, fine part `part_left` on the left
    half and `part_right` on the right half, constant U and V for every part."""
    coarse = np.zeros((2, S, S), np.float32)
    coarse[0] = 1.0
    coarse[1, foreground_rows] = 2.0
    fine = np.zeros((25, S, S), np.float32)
    fine[0] = 0.5
    fine[part_left, :, : S // 2] = 3.0
    fine[part_right, :, S // 2:] = 3.0
    u = np.full((25, S, S), u_value, np.float32)
    v = np.full((25, S, S), v_value, np.float32)
    return coarse, fine, u, v


def _stack(*instances):
    return [np.stack(parts) for parts in zip(*instances)]


def test_single_box_is_pasted_with_parts_and_scaled_uv():
    coarse, fine, u, v = _stack(_instance(3, 7, 0.5, 1.2))
    iuv = paste_iuv(np.array([[10.7, 20.2, 50.9, 60.0]]), coarse, fine, u, v, height=80, width=70)
    assert iuv.shape == (80, 70, 3) and iuv.dtype == np.uint8
    # Box truncated like DensePose: x=10, y=20, w=int(40.2)=40, h=int(39.8)=39.
    inside = iuv[20:59, 10:50]
    assert (inside[..., 0] > 0).all()
    outside = iuv.copy()
    outside[20:59, 10:50] = 0
    assert not outside.any()
    assert (inside[:, :18, 0] == 3).all() and (inside[:, 22:, 0] == 7).all()
    assert (inside[..., 1] == 127).all()       # 0.5 * 255 truncated
    assert (inside[..., 2] == 255).all()       # 1.2 clipped to 1


def test_coarse_background_masks_fine_parts():
    coarse, fine, u, v = _stack(_instance(2, 2, 0.2, 0.4, foreground_rows=slice(0, S // 2)))
    iuv = paste_iuv(np.array([[0, 0, 40, 40]]), coarse, fine, u, v, 40, 40)
    assert (iuv[:18, :, 0] == 2).all() and (iuv[22:] == 0).all()


def test_labels_match_an_independent_bilinear_resize():
    rng = np.random.default_rng(0)
    coarse = rng.normal(size=(2, S, S)).astype(np.float32)
    fine = rng.normal(size=(25, S, S)).astype(np.float32)
    u = rng.uniform(size=(25, S, S)).astype(np.float32)
    v = rng.uniform(size=(25, S, S)).astype(np.float32)
    labels, uv = chart_to_box(coarse, fine, u, v, w=37, h=53)

    def up(a):  # OpenCV's bilinear resize samples pixel centres like align_corners=False
        return np.stack([cv2.resize(c, (37, 53), interpolation=cv2.INTER_LINEAR) for c in a])

    expected = up(fine).argmax(0) * (up(coarse).argmax(0) > 0)
    assert (labels == expected).mean() > 0.99
    sel = (labels == expected) & (labels > 0)
    rows, cols = np.nonzero(sel)
    np.testing.assert_allclose(uv[0][sel], up(u)[labels[sel], rows, cols], atol=1e-4)
    np.testing.assert_allclose(uv[1][sel], up(v)[labels[sel], rows, cols], atol=1e-4)


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_overlap_goes_to_the_higher_score_whatever_the_order(order):
    a = _instance(1, 1, 0.1, 0.1)     # scored 0.9
    b = _instance(9, 9, 0.9, 0.9)     # scored 0.6
    boxes = np.array([[0, 0, 40, 40], [20, 20, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6])
    instances = [a, b]
    coarse, fine, u, v = _stack(*(instances[i] for i in order))
    iuv = paste_iuv(boxes[order], coarse, fine, u, v, 64, 64, scores=scores[order])
    assert (iuv[20:40, 20:40, 0] == 1).all()     # overlap: the 0.9 person
    assert (iuv[45:60, 45:60, 0] == 9).all()     # the rest of the 0.6 person
    assert (iuv[5:15, 5:15, 0] == 1).all()


def test_background_of_a_later_box_does_not_erase_an_earlier_person():
    a = _instance(4, 4, 0.3, 0.3)
    b = _instance(6, 6, 0.3, 0.3, foreground_rows=slice(S // 2, S))   # top half of b is background
    coarse, fine, u, v = _stack(a, b)
    iuv = paste_iuv(np.array([[0, 0, 32, 32], [0, 0, 32, 32]]), coarse, fine, u, v, 32, 32, scores=[0.5, 0.9])
    assert (iuv[:14, :, 0] == 4).all() and (iuv[18:, :, 0] == 6).all()


def test_boxes_past_the_frame_edge_are_clipped():
    coarse, fine, u, v = _stack(_instance(5, 5, 0.5, 0.5), _instance(8, 8, 0.5, 0.5))
    iuv = paste_iuv(np.array([[-10, -5, 20, 25], [90, 90, 130, 130]]), coarse, fine, u, v, 100, 100)
    assert (iuv[:20, :20, 0] == 5).all() and (iuv[90:, 90:, 0] == 8).all()
    assert iuv[30:80, 30:80].max() == 0


def test_shapes_are_checked():
    coarse, fine, u, v = _stack(_instance(1, 2, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"fine_segm has shape \(1, 24, 8, 8\), expected \(1, 25, S, S\)"):
        paste_iuv(np.zeros((1, 4)), coarse, fine[:, :24], u, v, 10, 10)
    with pytest.raises(ValueError, match="coarse_segm"):
        paste_iuv(np.zeros((2, 4)), coarse, fine, u, v, 10, 10)


def test_numpy_only_pickle_reader(tmp_path):
    state = {"backbone.conv.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "head.bias": np.zeros(2)}
    good = tmp_path / "model_final.pkl"
    for protocol in (2, 3, 4, 5):
        good.write_bytes(pickle.dumps({"model": state, "__author__": "Detectron2 Model Zoo"}, protocol=protocol))
        loaded = load_numpy_pickle(good)
        assert set(loaded) == set(state)
        assert np.array_equal(loaded["backbone.conv.weight"], state["backbone.conv.weight"])
    tensors = load_state_dict(good)
    assert tensors["backbone.conv.weight"].shape == (2, 3)

    class Exploit:
        def __reduce__(self):
            return (eval, ("this must never run",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"model": {"w": Exploit()}}))
    with pytest.raises(ValueError, match=r"evil.pkl: not a detectron2 weights pickle.*builtins.eval"):
        load_numpy_pickle(bad)


def test_synthetic_densepose_returns_ground_truth():
    frames = np.zeros((2, 6, 5, 3), np.uint8)
    iuv = np.random.default_rng(0).integers(0, 25, (2, 6, 5, 3), dtype=np.uint8)
    for name in ("synthetic", "source"):
        assert np.array_equal(get_densepose_backend(name)(frames, {"iuv": iuv}), iuv)
    with pytest.raises(ValueError, match="--densepose synthetic needs a source that ships iuv"):
        get_densepose_backend("synthetic")(frames, {"keypoints": np.zeros((2, 133, 3))})
    bad = iuv.copy()
    bad[0, 0, 0, 0] = 30
    with pytest.raises(ValueError, match="exceeds 24"):
        get_densepose_backend("synthetic")(frames, {"iuv": bad})


def test_detectron2_unavailable_says_how_to_install():
    if importlib.util.find_spec("detectron2") is not None and importlib.util.find_spec("densepose") is not None:
        pytest.skip("detectron2 and DensePose are installed here")
    with pytest.raises(BackendUnavailable, match=r"'densepose' is unavailable.*pip install 'git\+https://github.com/"
                                                 r"facebookresearch/detectron2.git'.*subdirectory=projects/DensePose"):
        get_densepose_backend("densepose")
