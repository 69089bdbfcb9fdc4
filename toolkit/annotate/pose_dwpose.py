"""The `dwpose` pose backend: DWPose's ONNX pair (YOLOX-L person detector + DWPose-L) on onnxruntime.

This is the annotator MagicAnimate-style and UniAnimate pipelines use to draw their
pose conditioning. The constants follow DWPose's ONNX inference code
(IDEA-Research/DWPose, ControlNet-v1-1-nightly/annotator/dwpose/onnxdet.py and
onnxpose.py) and mmpose's top-down pipeline:

* detector: letterbox into 640x640 (scale to fit, top-left aligned, padding value
  114), YOLOX decoding over strides 8/16/32 (centre = (offset + grid) * stride,
  size = exp(log size) * stride), score = objectness * class score, NMS at IoU 0.45
  over boxes scored above 0.1, then persons (class 0) scored above 0.3. When no
  person is found the whole frame is used as the box, as DWPose does.
* pose: each box becomes centre and scale (size * 1.25), widened to the model's
  288x384 aspect, cropped by an affine warp (bilinear), normalised with the
  ImageNet mean (123.675, 116.28, 103.53) and std (58.395, 57.12, 57.375);
  SimCC decoding takes the argmax of simcc_x and simcc_y divided by the split
  ratio 2.0, the score is the smaller of the two maxima (a point whose score is
  not positive is absent), and the inverse warp maps points back to the frame.

Both models receive the frames in RGB order, as DWPose's annotator and
UniAnimate's scripts feed them (YOLOX-L was trained on BGR images; the seeds do not
swap channels and neither does this backend, so keypoints match theirs). Scores are
clipped to [0, 1] for the schema. Of several people, :func:`pick_person` keeps
the largest.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from toolkit.annotate.backends import BackendUnavailable, check_frames, pick_person
from toolkit.keypoints import N_KEYPOINTS
from toolkit.weights import Artifact

DETECTOR_ARTIFACT = "dwpose-yolox-l"
POSE_ARTIFACT = "dwpose-ll-ucoco-384"

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="dwpose-yolox-l",
        filename="dwpose/yolox_l.onnx",
        url="https://huggingface.co/yzd-v/DWPose/resolve/main/yolox_l.onnx",
        sha256="7860ae79de6c89a3c1eb72ae9a2756c0ccfbe04b7791bb5880afabd97855a411",
        size=216746733,
        license="Apache-2.0",
        used_by=("DWPose pose extraction",),
        description="YOLOX-L person detector used by DWPose (ONNX), from the HF repo yzd-v/DWPose.",
        loader="onnxruntime.InferenceSession",
    ),
    Artifact(
        name="dwpose-ll-ucoco-384",
        filename="dwpose/dw-ll_ucoco_384.onnx",
        url="https://huggingface.co/yzd-v/DWPose/resolve/main/dw-ll_ucoco_384.onnx",
        sha256="724f4ff2439ed61afb86fb8a1951ec39c6220682803b4a8bd4f598cd913b1843",
        size=134399116,
        license="Apache-2.0",
        used_by=("DWPose pose extraction",),
        description="DWPose-L whole-body (133 keypoints, COCO-WholeBody) pose estimator at 384x288 (ONNX).",
        loader="onnxruntime.InferenceSession",
    ),
)

DETECTOR_SIZE = (640, 640)  # (height, width)
PAD_VALUE = 114
STRIDES = (8, 16, 32)
NMS_IOU = 0.45
SCORE_THRESHOLD = 0.1
PERSON_THRESHOLD = 0.3
BOX_PADDING = 1.25
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
SIMCC_SPLIT_RATIO = 2.0


def letterbox(image: np.ndarray, size: tuple[int, int] = DETECTOR_SIZE) -> tuple[np.ndarray, float]:
    """Scale an (H, W, 3) image to fit `size` (h, w), pad with 114 at the bottom/right.

    Returns the (3, h, w) float32 detector input and the scale factor r (letterbox = r * image).
    """
    h, w = image.shape[:2]
    r = min(size[0] / h, size[1] / w)
    nh, nw = int(h * r), int(w * r)
    out = np.full((size[0], size[1], 3), PAD_VALUE, dtype=np.uint8)
    out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32), r


def yolox_grids(size: tuple[int, int] = DETECTOR_SIZE,
                strides: tuple[int, ...] = STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor grid cells (A, 2) as (x, y) and their strides (A, 1), in YOLOX's output order."""
    grids, steps = [], []
    for stride in strides:
        hs, ws = size[0] // stride, size[1] // stride
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), axis=2).reshape(-1, 2))
        steps.append(np.full((hs * ws, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


def yolox_decode(output: np.ndarray, size: tuple[int, int] = DETECTOR_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX output (A, 5 + C) or (1, A, 5 + C) -> boxes (A, 4) x0 y0 x1 y1 in letterbox pixels, scores (A, C)."""
    pred = np.asarray(output, dtype=np.float32)
    if pred.ndim == 3:
        pred = pred[0]
    grids, strides = yolox_grids(size)
    if pred.ndim != 2 or pred.shape[0] != len(grids) or pred.shape[1] < 6:
        raise ValueError(f"YOLOX output of shape {np.shape(output)} does not match {len(grids)} anchors "
                         f"for a {size[1]}x{size[0]} input")
    xy = (pred[:, :2] + grids) * strides
    wh = np.exp(pred[:, 2:4]) * strides
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)
    scores = pred[:, 4:5] * pred[:, 5:]
    return boxes, scores


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> list[int]:
    """Greedy non-maximum suppression; indices of kept boxes, best first (areas use the +1 pixel convention)."""
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = iw * ih
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return keep


def person_boxes(output: np.ndarray, ratio: float, size: tuple[int, int] = DETECTOR_SIZE) -> np.ndarray:
    """Person boxes (N, 4) in frame pixels from a raw YOLOX output, best first."""
    boxes, scores = yolox_decode(output, size)
    boxes = boxes / ratio
    person = scores[:, 0]
    ok = person > SCORE_THRESHOLD
    if not ok.any():
        return np.zeros((0, 4), dtype=np.float32)
    boxes, person = boxes[ok], person[ok]
    keep = [i for i in nms(boxes, person, NMS_IOU) if person[i] > PERSON_THRESHOLD]
    return boxes[keep].astype(np.float32).reshape(-1, 4)


def box_to_center_scale(box: np.ndarray, aspect: float, padding: float = BOX_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """x0 y0 x1 y1 -> centre (2,) and scale (w, h) padded and widened to `aspect` = w / h."""
    box = np.asarray(box, dtype=np.float32)
    center = (box[:2] + box[2:]) / 2
    w, h = (box[2:] - box[:2]) * padding
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    return center, np.array([w, h], dtype=np.float32)


def crop_matrix(center: np.ndarray, scale: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix taking the box (centre, scale) onto an out_size (w, h) crop, no rotation."""
    s = out_size[0] / float(scale[0])
    return np.array([[s, 0.0, out_size[0] / 2 - s * center[0]],
                     [0.0, s, out_size[1] / 2 - s * center[1]]], dtype=np.float64)


def crop_to_frame(points: np.ndarray, center: np.ndarray, scale: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Map (..., 2) crop coordinates back to frame pixels (the inverse of crop_matrix)."""
    size = np.array(out_size, dtype=np.float32)
    return points / size * scale + center - scale / 2


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray,
                 split_ratio: float = SIMCC_SPLIT_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """SimCC (N, K, Wx), (N, K, Wy) -> crop coordinates (N, K, 2) and scores (N, K).

    Location = argmax / split_ratio; score = min(max_x, max_y); points with score <= 0 get -1.
    """
    sx, sy = np.asarray(simcc_x, dtype=np.float32), np.asarray(simcc_y, dtype=np.float32)
    locs = np.stack([sx.argmax(-1), sy.argmax(-1)], axis=-1).astype(np.float32) / split_ratio
    scores = np.minimum(sx.max(-1), sy.max(-1))
    locs[scores <= 0] = -1
    return locs, scores


class DWPose:
    """DWPose (YOLOX-L + DWPose-L 384x288, ONNX) as a pose backend.

    Weights come from the registry (`dwpose-yolox-l`, `dwpose-ll-ucoco-384`) unless
    explicit paths are given. `providers` are onnxruntime execution providers.
    """

    name = "dwpose"

    def __init__(self, detector_path: str | Path | None = None, pose_path: str | Path | None = None,
                 providers: list[str] | None = None, threads: int | None = None) -> None:
        if importlib.util.find_spec("onnxruntime") is None:
            raise BackendUnavailable("pose backend 'dwpose' is unavailable: onnxruntime is not installed; "
                                     "pip install 'animation-toolkit[dwpose]' (or pip install onnxruntime)")
        import onnxruntime as ort

        from toolkit import weights

        paths, self._sha = [], []
        for given, artifact in ((detector_path, DETECTOR_ARTIFACT), (pose_path, POSE_ARTIFACT)):
            if given is None:
                try:
                    paths.append(weights.path(artifact))
                except FileNotFoundError as exc:
                    raise BackendUnavailable(f"pose backend 'dwpose' is unavailable: {exc}") from None
                self._sha.append(weights.file_sha256(artifact))
            else:
                given = Path(given)
                if not given.is_file():
                    raise BackendUnavailable(f"pose backend 'dwpose' is unavailable: {given} does not exist")
                from toolkit.io import sha256_file

                paths.append(given)
                self._sha.append(sha256_file(given))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = providers or ["CPUExecutionProvider"]
        try:
            self.detector = ort.InferenceSession(str(paths[0]), options, providers=providers)
            self.pose = ort.InferenceSession(str(paths[1]), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own error types for bad files
            raise ValueError(f"dwpose: cannot load ONNX models {paths[0]} / {paths[1]}: {exc}") from None
        self._ort_version = ort.__version__
        self.detector_size = self._input_hw(self.detector, DETECTOR_SIZE)
        h, w = self._input_hw(self.pose, (384, 288))
        self.pose_size = (w, h)  # (w, h) as the affine crop expects
        self._pose_outputs = self._output_names(self.pose, ("simcc_x", "simcc_y"))

    @staticmethod
    def _input_hw(session, default: tuple[int, int]) -> tuple[int, int]:
        shape = session.get_inputs()[0].shape
        if len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
            return int(shape[2]), int(shape[3])
        return default

    @staticmethod
    def _output_names(session, wanted: tuple[str, ...]) -> list[str]:
        names = [o.name for o in session.get_outputs()]
        if all(n in names for n in wanted):
            return list(wanted)
        if len(names) < len(wanted):
            raise ValueError(f"dwpose: pose model has outputs {names}, expected {list(wanted)}")
        return names[: len(wanted)]

    def version(self) -> str:
        return (f"yolox-l sha256={self._sha[0][:12]} dw-ll-ucoco-384 sha256={self._sha[1][:12]} "
                f"onnxruntime={self._ort_version}")

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Person boxes (N, 4) x0 y0 x1 y1 in frame pixels, best first."""
        blob, ratio = letterbox(frame, self.detector_size)
        out = self.detector.run(None, {self.detector.get_inputs()[0].name: blob[None]})[0]
        return person_boxes(out, ratio, self.detector_size)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Keypoints (N, 133, 3) for each box; score 0 (and x = y = 0) where a point is absent."""
        w, h = self.pose_size
        people = []
        for box in boxes:
            center, scale = box_to_center_scale(box, aspect=w / h)
            crop = cv2.warpAffine(frame, crop_matrix(center, scale, (w, h)), (w, h), flags=cv2.INTER_LINEAR)
            blob = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
            simcc_x, simcc_y = self.pose.run(self._pose_outputs, {self.pose.get_inputs()[0].name: blob})
            locs, scores = simcc_decode(simcc_x, simcc_y)
            kp = np.zeros((N_KEYPOINTS, 3), dtype=np.float32)
            if locs.shape[1] != N_KEYPOINTS:
                raise ValueError(f"dwpose: pose model returned {locs.shape[1]} keypoints, expected {N_KEYPOINTS}")
            present = scores[0] > 0
            kp[:, :2] = crop_to_frame(locs[0], center, scale, (w, h))
            kp[:, 2] = np.clip(scores[0], 0.0, 1.0)
            kp[~present] = 0.0
            people.append(kp)
        return np.stack(people) if people else np.zeros((0, N_KEYPOINTS, 3), dtype=np.float32)

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        out = np.zeros((len(frames), N_KEYPOINTS, 3), dtype=np.float32)
        for t, frame in enumerate(frames):
            boxes = self.detect(frame)
            if len(boxes) == 0:
                boxes = np.array([[0, 0, frame.shape[1], frame.shape[0]]], dtype=np.float32)
            out[t] = pick_person(self.estimate(frame, boxes))
        return out


def status() -> tuple[bool, str]:
    """Available when onnxruntime imports and both ONNX files are in the weights cache."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed: pip install 'animation-toolkit[dwpose]'"
    from toolkit import weights

    missing = [a for a in (DETECTOR_ARTIFACT, POSE_ARTIFACT) if not weights.available(a)]
    if missing:
        try:
            weights.path(missing[0])
        except FileNotFoundError as exc:
            return False, str(exc)
    return True, "onnxruntime and both DWPose ONNX files found"
