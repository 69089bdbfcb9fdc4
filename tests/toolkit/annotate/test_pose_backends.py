"""Pose backends: the registry, the ground-truth backend, DWPose's pre/post-processing and a
stand-in ONNX run, MMPose result conversion, and MediaPipe Holistic on the real fixture photos."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.annotate import backends
from toolkit.annotate import mediapipe_worker as mw
from toolkit.annotate import pose_dwpose as dw
from toolkit.annotate.backends import BackendUnavailable, get_pose_backend, pick_person
from toolkit.keypoints import FACE, INDEX, LEFT_HAND, N_KEYPOINTS, RIGHT_HAND

FIXTURES = Path(os.environ.get("TOOLKIT_FIXTURES", Path(__file__).resolve().parents[4] / "shared/fixtures/real"))


# ----------------------------------------------------------------------------- registry, ground truth

def test_unknown_backend_lists_the_names():
    with pytest.raises(ValueError, match="unknown pose backend 'openpose'.*dwpose.*mediapipe"):
        get_pose_backend("openpose")


def test_synthetic_returns_ground_truth_and_source_is_an_alias():
    frames = np.zeros((3, 8, 6, 3), np.uint8)
    kp = np.random.default_rng(0).uniform(0, 5, (3, N_KEYPOINTS, 3)).astype(np.float32)
    for name in ("synthetic", "source"):
        out = get_pose_backend(name)(frames, {"keypoints": kp})
        assert out.dtype == np.float32 and np.array_equal(out, kp) and out is not kp


def test_synthetic_without_keypoints_says_what_to_use():
    with pytest.raises(ValueError, match="--pose synthetic needs a source that ships keypoints.*--pose mediapipe"):
        get_pose_backend("synthetic")(np.zeros((1, 4, 4, 3), np.uint8), {"iuv": np.zeros((1, 4, 4, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"expected \(2, 133, 3\)"):
        get_pose_backend("synthetic")(np.zeros((2, 4, 4, 3), np.uint8), {"keypoints": np.zeros((3, 133, 3))})


def test_frames_are_validated():
    with pytest.raises(ValueError, match="synthetic: expected uint8"):
        get_pose_backend("synthetic")(np.zeros((1, 4, 4, 3), np.float32), {"keypoints": np.zeros((1, 133, 3))})


def test_backend_status_covers_every_backend():
    rows = backends.backend_status()
    names = {(r["kind"], r["name"]) for r in rows}
    expected = ({("pose", n) for n in backends.POSE_BACKENDS} | {("densepose", n) for n in backends.DENSEPOSE_BACKENDS}
                | {("mask", n) for n in backends.MASK_BACKENDS})
    assert names == expected
    for r in rows:
        assert set(r) == {"kind", "name", "available", "reason"} and r["reason"]
    assert all(r["available"] for r in rows if r["name"] == "synthetic")


def test_pick_person_prefers_the_largest():
    people = np.zeros((3, N_KEYPOINTS, 3), np.float32)
    people[0, :17] = [10, 10, 0.9]
    people[0, 16, :2] = [30, 60]          # 20 x 50 box
    people[1, :17] = [100, 100, 0.5]
    people[1, 16, :2] = [200, 300]        # 100 x 200 box: the largest
    people[2, :17] = [0, 0, 0.1]          # nothing confident
    people[2, 16] = [500, 500, 0.1]
    assert np.array_equal(pick_person(people), people[1])
    assert pick_person(np.zeros((0, N_KEYPOINTS, 3))).shape == (N_KEYPOINTS, 3)


# ----------------------------------------------------------------------------- DWPose processing

def test_letterbox_scales_to_fit_and_pads_with_114():
    img = np.full((320, 480, 3), 7, np.uint8)
    blob, r = dw.letterbox(img, (640, 640))
    assert blob.shape == (3, 640, 640) and blob.dtype == np.float32
    assert r == pytest.approx(640 / 480)
    nh = int(320 * r)
    assert (blob[:, :nh, :] == 7).all() and (blob[:, nh:, :] == 114).all()


def _yolox_raw(boxes_scores: list[tuple[tuple[float, float, float, float], float, float, int]],
               size=(640, 640)) -> np.ndarray:
    """A raw YOLOX output (1, A, 85) with the given (cx, cy, w, h), objectness, class score, class at
    stride-8 anchors chosen under each box centre; every other anchor has objectness 0."""
    grids, strides = dw.yolox_grids(size)
    raw = np.zeros((len(grids), 85), np.float32)
    used = set()
    for (cx, cy, w, h), obj, cls_score, cls in boxes_scores:
        gx, gy = int(cx // 8), int(cy // 8)
        i = gy * (size[1] // 8) + gx
        while i in used:
            i += 1
            gx += 1
        used.add(i)
        assert strides[i, 0] == 8 and tuple(grids[i]) == (gx, gy)
        raw[i, :4] = [cx / 8 - gx, cy / 8 - gy, np.log(w / 8), np.log(h / 8)]
        raw[i, 4] = obj
        raw[i, 5 + cls] = cls_score
    return raw[None]


def test_yolox_decode_recovers_a_known_box():
    raw = _yolox_raw([((300.0, 240.0, 100.0, 200.0), 0.8, 0.5, 0)])
    boxes, scores = dw.yolox_decode(raw)
    i = int(scores[:, 0].argmax())
    np.testing.assert_allclose(boxes[i], [250, 140, 350, 340], atol=1e-3)
    assert scores[i, 0] == pytest.approx(0.4)
    assert scores.shape == (8400, 80)
    with pytest.raises(ValueError, match="8400 anchors"):
        dw.yolox_decode(np.zeros((1, 100, 85)))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [200, 200, 300, 300], [0, 0, 100, 100]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.3], np.float32)
    assert dw.nms(boxes, scores, 0.45) == [1, 2]
    assert dw.nms(boxes, scores, 0.99) == [1, 0, 2]  # the exact duplicate (IoU 1) still goes


def test_person_boxes_thresholds_class_and_nms():
    raw = _yolox_raw([
        ((300.0, 240.0, 100.0, 200.0), 0.9, 0.9, 0),   # person, kept
        ((302.0, 242.0, 100.0, 200.0), 0.8, 0.8, 0),   # duplicate person, suppressed
        ((100.0, 100.0, 50.0, 50.0), 0.9, 0.9, 2),     # a car
        ((500.0, 400.0, 60.0, 120.0), 0.5, 0.5, 0),    # person scored 0.25 < 0.3
    ])
    boxes = dw.person_boxes(raw, ratio=0.5)
    np.testing.assert_allclose(boxes, [[500, 280, 700, 680]], atol=1e-2)


def test_affine_crop_round_trip():
    center, scale = dw.box_to_center_scale(np.array([100.0, 50.0, 180.0, 330.0]), aspect=288 / 384)
    np.testing.assert_allclose(center, [140, 190])
    assert scale[0] / scale[1] == pytest.approx(288 / 384)
    assert scale[1] == pytest.approx(280 * 1.25)
    m = dw.crop_matrix(center, scale, (288, 384))
    pts = np.array([[140.0, 190.0], [101.5, 60.25], [170.0, 300.0]])
    crop = pts @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(crop[0], [144, 192])
    np.testing.assert_allclose(dw.crop_to_frame(crop.astype(np.float32), center, scale, (288, 384)), pts, atol=1e-3)


def test_simcc_decode_of_one_hot_distributions():
    sx = np.zeros((2, 3, 576), np.float32)
    sy = np.zeros((2, 3, 768), np.float32)
    sx[0, 0, 100], sy[0, 0, 50] = 0.9, 0.7
    sx[1, 2, 575], sy[1, 2, 1] = 0.4, 0.6
    locs, scores = dw.simcc_decode(sx, sy)
    np.testing.assert_allclose(locs[0, 0], [50, 25])
    np.testing.assert_allclose(locs[1, 2], [287.5, 0.5])
    assert scores[0, 0] == pytest.approx(0.7) and scores[1, 2] == pytest.approx(0.4)
    assert (locs[0, 1] == -1).all() and scores[0, 1] == 0


def _save_onnx(graph, path: Path) -> Path:
    onnx = pytest.importorskip("onnx", reason="stand-in ONNX models are built with the onnx package")
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _standin_detector(path: Path, raw: np.ndarray) -> Path:
    """YOLOX-L's interface (images (1,3,640,640) -> output (1,8400,85)) returning `raw` whatever the image."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["raw", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "yolox_standin",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])],
        [numpy_helper.from_array(raw.astype(np.float32), "raw"), numpy_helper.from_array(np.float32(0), "zero")],
    )
    return _save_onnx(graph, path)


def _standin_pose(path: Path) -> Path:
    """DWPose's interface (input (1,3,384,288) -> simcc_x (1,133,576), simcc_y (1,133,768)): every keypoint's
    x (y) distribution is the column (row) maximum of the normalised red channel, each bin repeated twice,
    so a single bright pixel in the crop decodes to exactly its crop position."""
    from onnx import TensorProto, helper, numpy_helper

    def repeat2(src: str, n: int, out: str) -> list:
        return [
            helper.make_node("Unsqueeze", [src, "ax3"], [f"{out}_u"]),
            helper.make_node("Expand", [f"{out}_u", f"shape2_{n}"], [f"{out}_e"]),
            helper.make_node("Reshape", [f"{out}_e", f"flat_{n}"], [f"{out}_r"]),
            helper.make_node("Expand", [f"{out}_r", f"all_{n}"], [out]),
        ]

    nodes = [
        helper.make_node("Slice", ["input", "s0", "s1", "s_axes"], ["red"]),
        helper.make_node("ReduceMax", ["red"], ["colmax"], axes=[2], keepdims=0),
        helper.make_node("ReduceMax", ["red"], ["rowmax"], axes=[3], keepdims=0),
        *repeat2("colmax", 288, "simcc_x"),
        *repeat2("rowmax", 384, "simcc_y"),
    ]
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in [
        ("s0", [0]), ("s1", [1]), ("s_axes", [1]), ("ax3", [3]),
        ("shape2_288", [1, 1, 288, 2]), ("flat_288", [1, 1, 576]), ("all_288", [1, 133, 576]),
        ("shape2_384", [1, 1, 384, 2]), ("flat_384", [1, 1, 768]), ("all_384", [1, 133, 768]),
    ]]
    graph = helper.make_graph(
        nodes, "dwpose_standin",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
        [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
         helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])],
        consts,
    )
    return _save_onnx(graph, path)


@pytest.fixture
def weights_home(tmp_path, monkeypatch):
    from toolkit import weights

    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    return weights


def _import_standin(weights, monkeypatch, name: str, src: Path) -> None:
    from toolkit.io import sha256_file

    replaced = dataclasses.replace(weights.ARTIFACTS[name], sha256=sha256_file(src), size=src.stat().st_size)
    monkeypatch.setitem(weights.ARTIFACTS, name, replaced)
    weights.import_file(src, name)


def test_dwpose_end_to_end_with_standin_models(tmp_path, weights_home, monkeypatch):
    pytest.importorskip("onnxruntime")
    # A 640x480 frame letterboxes at ratio 1. The person box is 230.4 x 307.2 centred on (300, 240): padded
    # by 1.25 it is exactly 288 x 384, so the crop is a pure integer shift and decoding is exact.
    raw = _yolox_raw([((300.0, 240.0, 230.4, 307.2), 0.9, 0.95, 0), ((40.0, 40.0, 30.0, 30.0), 0.9, 0.9, 5)])
    _import_standin(weights_home, monkeypatch, "dwpose-yolox-l", _standin_detector(tmp_path / "yolox_l.onnx", raw))
    _import_standin(weights_home, monkeypatch, "dwpose-ll-ucoco-384", _standin_pose(tmp_path / "dw-ll_ucoco_384.onnx"))

    backend = get_pose_backend("dwpose", threads=1)
    frames = np.zeros((2, 480, 640, 3), np.uint8)
    frames[0, 200, 310] = 255
    frames[1, 260, 350] = 255
    kp = backend(frames)
    assert kp.shape == (2, N_KEYPOINTS, 3) and kp.dtype == np.float32
    np.testing.assert_allclose(kp[0, :, :2], np.tile([310, 200], (N_KEYPOINTS, 1)), atol=1e-3)
    np.testing.assert_allclose(kp[1, :, :2], np.tile([350, 260], (N_KEYPOINTS, 1)), atol=1e-3)
    assert (kp[..., 2] == 1.0).all()  # min of the two maxima (2.25) clipped to the schema's [0, 1]
    assert weights_home.file_sha256("dwpose-yolox-l")[:12] in backend.version()


def test_dwpose_without_weights_names_the_fix(weights_home):
    pytest.importorskip("onnxruntime")
    with pytest.raises(BackendUnavailable, match="'dwpose' is unavailable.*dwpose-yolox-l.*toolkit weights fetch"):
        get_pose_backend("dwpose")
    ok, reason = dw.status()
    assert not ok and "dwpose-yolox-l" in reason


# ----------------------------------------------------------------------------- MMPose conversion

class _Instances:
    def __init__(self, keypoints, keypoint_scores):
        self.keypoints, self.keypoint_scores = keypoints, keypoint_scores


class _Sample:
    def __init__(self, keypoints, keypoint_scores):
        self.pred_instances = _Instances(keypoints, keypoint_scores)


def test_mmpose_result_conversion():
    from toolkit.annotate.pose_mmpose import pose_sample_to_people

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (2, N_KEYPOINTS, 2)).astype(np.float32)
    scores = rng.uniform(-0.2, 1.3, (2, N_KEYPOINTS)).astype(np.float32)
    people = pose_sample_to_people(_Sample(xy, scores))
    assert people.shape == (2, N_KEYPOINTS, 3)
    present = scores > 0
    np.testing.assert_allclose(people[..., :2][present], xy[present])
    np.testing.assert_allclose(people[..., 2][present], np.clip(scores, 0, 1)[present])
    assert (people[~present] == 0).all()
    nobody = _Sample(np.zeros((0, N_KEYPOINTS, 2)), np.zeros((0, N_KEYPOINTS)))
    assert pose_sample_to_people(nobody).shape == (0, N_KEYPOINTS, 3)
    with pytest.raises(ValueError, match=r"\(N, 133, 2\) from a whole-body model, got \(1, 17, 2\)"):
        pose_sample_to_people(_Sample(np.zeros((1, 17, 2)), np.zeros((1, 17))))


def test_mmpose_unavailable_gives_install_instructions():
    if importlib.util.find_spec("mmpose") is not None:
        pytest.skip("mmpose is installed here")
    with pytest.raises(BackendUnavailable, match="mim install mmengine"):
        get_pose_backend("mmpose")


# ----------------------------------------------------------------------------- MediaPipe

def test_worker_protocol_round_trip():
    frames = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    buf = io.BytesIO()
    mw.write_message(buf, {"op": "run", "static_image_mode": True}, mw.array_to_bytes(frames))
    mw.write_message(buf, {"op": "quit"})
    buf.seek(0)
    header, payload = mw.read_message(buf)
    assert header == {"op": "run", "static_image_mode": True}
    assert np.array_equal(mw.bytes_to_array(payload), frames)
    assert mw.read_message(buf) == ({"op": "quit"}, b"")
    with pytest.raises(EOFError):
        mw.read_message(buf)


def test_holistic_mapping_on_constructed_landmarks():
    from toolkit.annotate.pose_mediapipe import FACE_68_FROM_MESH, holistic_to_wholebody

    raw = np.zeros((1, mw.N_RAW, 4), np.float32)
    pose = raw[0, mw.POSE_ROWS]
    pose[:, 0] = np.linspace(0.0, 0.32, 33)
    pose[:, 1] = 0.5
    pose[:, 2] = 0.8
    pose[:, 3] = 1
    pose[27, 2] = 0.1                                  # left ankle barely visible
    hand = raw[0, mw.LEFT_HAND_ROWS]                   # left hand found, right hand not
    hand[:, 0], hand[:, 1], hand[:, 3] = np.linspace(0.5, 0.7, 21), 0.25, 1
    face = raw[0, mw.FACE_ROWS]
    face[:, 0], face[:, 1], face[:, 3] = np.arange(468) / 1000, 0.1, 1

    kp = holistic_to_wholebody(raw, width=200, height=100)[0]
    assert kp.shape == (N_KEYPOINTS, 3)
    np.testing.assert_allclose(kp[INDEX["nose"]], [0, 50, 0.8], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["left_shoulder"]], [11 * 0.01 * 200, 50, 0.8], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["right_big_toe"]], [32 * 0.01 * 200, 50, 0.8], atol=1e-4)
    assert kp[INDEX["left_ankle"], 2] == pytest.approx(0.1)
    assert kp[INDEX["left_small_toe"], 2] == 0 and kp[INDEX["right_small_toe"], 2] == 0
    np.testing.assert_allclose(kp[LEFT_HAND][:, 0], np.linspace(100, 140, 21), atol=1e-3)
    assert (kp[LEFT_HAND][:, 2] == 1).all() and (kp[RIGHT_HAND] == 0).all()
    # Jaw point 3 is the midpoint of mesh points 132 and 58; the chin (8) is mesh point 152.
    assert FACE_68_FROM_MESH[3] == (132, 58)
    assert kp[FACE][3, 0] == pytest.approx((132 + 58) / 2 / 1000 * 200, abs=1e-3)
    assert kp[FACE][8, 0] == pytest.approx(152 / 1000 * 200, abs=1e-3)
    assert (kp[FACE][:, 2] == 1).all()


def test_mediapipe_with_a_python_lacking_mediapipe_is_unavailable(tmp_path):
    from toolkit.annotate.pose_mediapipe import MediapipePose

    with pytest.raises(BackendUnavailable, match="does not exist"):
        MediapipePose(python=tmp_path / "nope" / "python")
    if importlib.util.find_spec("mediapipe") is None:  # this interpreter cannot run the worker
        with pytest.raises(BackendUnavailable, match="did not start.*make_mediapipe_env.sh"):
            MediapipePose(python=sys.executable)


@pytest.fixture(scope="module")
def holistic():
    from toolkit.annotate.pose_mediapipe import MediapipePose, status

    ok, reason = status()
    if not ok:
        pytest.skip(f"mediapipe backend unavailable: {reason}")
    backend = MediapipePose(static_image_mode=True)
    yield backend
    backend.close()


def _fixture_images() -> list[Path]:
    if not FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {FIXTURES} (set TOOLKIT_FIXTURES)")
    files = sorted((FIXTURES / "unianimate/images").glob("*.jpg"))
    files += sorted((FIXTURES / "magicanimate/source").glob("*"))
    assert len(files) >= 5
    return files


def _foreground_box(img: np.ndarray) -> np.ndarray:
    """The non-background box of a plain-background (UBC-Fashion) photo, from its border colour."""
    border = np.concatenate([img[:5].reshape(-1, 3), img[-5:].reshape(-1, 3), img[:, :5].reshape(-1, 3)])
    diff = np.abs(img.astype(np.int16) - np.median(border, axis=0)).max(axis=2) > 40
    ys, xs = np.nonzero(diff)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def _mean_y(kp: np.ndarray, names: tuple[str, ...], thr: float = 0.5) -> float | None:
    ys = [kp[INDEX[n], 1] for n in names if kp[INDEX[n], 2] > thr]
    return float(np.mean(ys)) if ys else None


@pytest.mark.slow
def test_mediapipe_keypoints_land_on_the_body(holistic):
    from toolkit.video import read_image

    for path in _fixture_images():
        img = read_image(path)
        h, w = img.shape[:2]
        kp = holistic(img[None])[0]
        conf = kp[:, 2] > 0.5
        assert conf[:17].sum() >= 9, f"{path.name}: person not found"
        assert kp[FACE][:, 2].min() > 0, f"{path.name}: face not found"

        # Head above shoulders above hips above knees above ankles, where visible.
        chain = [_mean_y(kp, names) for names in (
            ("nose", "left_eye", "right_eye"), ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
            ("left_knee", "right_knee"), ("left_ankle", "right_ankle"))]
        seen = [y for y in chain if y is not None]
        assert len(seen) >= 2 and seen == sorted(seen), f"{path.name}: body order {chain}"

        # Every person in the fixtures faces the camera: their left is on the image right.
        assert kp[INDEX["left_shoulder"], 0] > kp[INDEX["right_shoulder"], 0], path.name
        assert kp[INDEX["left_eye"], 0] > kp[INDEX["right_eye"], 0], path.name
        face = kp[FACE]
        assert face[45, 0] > face[36, 0] and face[16, 0] > face[0, 0], f"{path.name}: face mirrored"
        assert face[:, 1].max() < _mean_y(kp, ("left_shoulder", "right_shoulder")), f"{path.name}: face below shoulders"
        nose = kp[INDEX["nose"], :2]
        assert face[:, 0].min() < nose[0] < face[:, 0].max() and face[:, 1].min() < nose[1] < face[:, 1].max()

        # A detected hand hangs from the wrist of the same side.
        shoulder_w = abs(kp[INDEX["left_shoulder"], 0] - kp[INDEX["right_shoulder"], 0])
        for group, side, other in ((LEFT_HAND, "left_wrist", "right_wrist"), (RIGHT_HAND, "right_wrist", "left_wrist")):
            root = kp[group][0]
            if root[2] > 0:
                d_same = np.linalg.norm(root[:2] - kp[INDEX[side], :2])
                d_other = np.linalg.norm(root[:2] - kp[INDEX[other], :2])
                assert d_same < 0.5 * shoulder_w and d_same < d_other, f"{path.name}: {side} hand"

        # Confident points lie on the person: inside the non-background box on plain backgrounds.
        # Elsewhere face and hand points lie inside the frame; body points may run a little past its
        # edge, because BlazePose extrapolates the joints of a person cut off by the frame (Mona Lisa's
        # elbows, the toes in IMG_20240514_104337) with confidence.
        pts = kp[conf, :2]
        if path.name.startswith("WOMEN"):
            x0, y0, x1, y1 = _foreground_box(img)
            margin = 0.03 * h
            assert (pts[:, 0] > x0 - margin).all() and (pts[:, 0] < x1 + margin).all(), path.name
            assert (pts[:, 1] > y0 - margin).all() and (pts[:, 1] < y1 + margin).all(), path.name
        parts = np.concatenate([kp[FACE], kp[LEFT_HAND], kp[RIGHT_HAND]])
        inner = parts[parts[:, 2] > 0, :2]
        assert ((inner >= -1) & (inner <= [w + 1, h + 1])).all(), f"{path.name}: face or hand outside the frame"
        body = kp[:23][conf[:23], :2]
        assert ((body >= [-0.15 * w, -0.15 * h]) & (body <= [1.15 * w, 1.15 * h])).all(), f"{path.name}: body"


@pytest.mark.slow
def test_mediapipe_tracks_a_clip():
    """A short clip (a fixture photo panned sideways) in tracking mode: the person is found in every frame
    and the keypoints follow the pan."""
    from toolkit.annotate.pose_mediapipe import MediapipePose, status
    from toolkit.video import read_image, resize

    ok, reason = status()
    if not ok:
        pytest.skip(f"mediapipe backend unavailable: {reason}")
    img = resize(read_image(_fixture_images()[1]), 376, 552)
    shifts = [0, 8, 16, 24, 24, 24, 24, 24]
    clip = np.stack([np.roll(img, s, axis=1) for s in shifts])
    clip[:, :, :24] = clip[0, 0, 0]  # background where the roll wrapped pixels around
    with MediapipePose() as backend:
        assert "static_image_mode=False" in backend.version()
        kp = backend(clip)
    assert kp.shape == (len(shifts), N_KEYPOINTS, 3)
    body = [INDEX[n] for n in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    assert (kp[:, body, 2] > 0.5).all()
    moved = kp[:, body, 0].mean(axis=1) - kp[0, body, 0].mean()
    # Landmark smoothing lags a moving person, then settles once the clip holds still.
    assert (np.diff(moved[:4]) > 0).all(), moved
    assert moved[-1] == pytest.approx(24, abs=3), moved
