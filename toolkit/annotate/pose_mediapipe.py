"""The `mediapipe` pose backend: MediaPipe Holistic mapped into the 133-point schema.

MediaPipe ships its Holistic models inside the wheel, so this is the pose
estimator that works offline on real videos. mediapipe 0.10.21 needs numpy<2,
so unless mediapipe imports in this process, Holistic runs in a worker process
(:mod:`toolkit.annotate.mediapipe_worker`) started with the interpreter from
``$TOOLKIT_MEDIAPIPE_PYTHON`` or ``<repo>/.venv-mediapipe/bin/python``, made by
``scripts/make_mediapipe_env.sh``. Only ``model_complexity=1`` is used: the lite
and heavy pose models are downloaded at run time, which fails offline.

Mapping into COCO-WholeBody (DWPose order), checked on the real fixture photos:

* body 17: the BlazePose landmarks of the same name; score = BlazePose visibility.
  BlazePose and COCO both name sides from the person's point of view (the left
  shoulder is on the image right for a person facing the camera). BlazePose hips
  sit slightly higher and wider than COCO's; no correction is applied.
* feet: big toe = BlazePose foot_index, heel = heel; BlazePose has no small toe,
  so both small toes have score 0.
* hands: Holistic's 21 hand landmarks are in the COCO-WholeBody hand order
  (wrist, then thumb, index, middle, ring, pinky from base to tip). Holistic's
  ``left_hand_landmarks`` is the person's left hand (its root coincides with the
  pose's left wrist on the fixtures). Score 1 when the hand is detected.
* face: 68 iBUG/dlib points from the 468-point mesh through ``FACE_68_FROM_MESH``;
  score 1 when the face is detected.

Points a frame lacks (part not detected) have score 0 and x = y = 0.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from toolkit.annotate import mediapipe_worker as mw
from toolkit.annotate.backends import BackendUnavailable, check_frames
from toolkit.keypoints import FACE, INDEX, LEFT_HAND, N_KEYPOINTS, RIGHT_HAND
from toolkit.paths import mediapipe_env_python

ENV_VAR = "TOOLKIT_MEDIAPIPE_PYTHON"
MAKE_ENV = "`make mediapipe-env` (or `bash scripts/make_mediapipe_env.sh`)"

# COCO body name -> BlazePose 33 landmark index.
BODY_FROM_BLAZEPOSE = {
    "nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
    "left_big_toe": 31, "left_heel": 29, "right_big_toe": 32, "right_heel": 30,
}

# iBUG-68 (dlib / 300-W order, the order of COCO-WholeBody's face points) -> indices of the
# 468-point MediaPipe face mesh; two indices mean the midpoint of the two. The correspondence
# is the one published by Peizhi Yan, "Mediapipe_2_Dlib_Landmarks" (github.com/PeizhiYan/
# Mediapipe_2_Dlib_Landmarks, mediapipe2dlib/mp2dlib.py, 2024). Groups follow dlib: jaw 0-16
# from the person's right to left, right brow 17-21, left brow 22-26, nose bridge 27-30,
# nostrils 31-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67.
FACE_68_FROM_MESH: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    (168, 6), (197, 195), (5,), (4,),
    (75,), (97,), (2,), (326,), (305,),
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    (61,), (39,), (37,), (0,), (267,), (269,), (291,),
    (321,), (314,), (17,), (84,), (91,),
    (78,), (82,), (13,), (312,), (308,),
    (317,), (14,), (87,),
)
assert len(FACE_68_FROM_MESH) == 68


def holistic_to_wholebody(raw: np.ndarray, width: int, height: int) -> np.ndarray:
    """Raw Holistic landmarks (T, 543, 4) -> (T, 133, 3) keypoints in pixels of a width x height frame."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 3 or raw.shape[1:] != (mw.N_RAW, 4):
        raise ValueError(f"expected raw Holistic landmarks of shape (T, {mw.N_RAW}, 4), got {raw.shape}")
    scale = np.array([width, height], dtype=np.float32)
    out = np.zeros((len(raw), N_KEYPOINTS, 3), dtype=np.float32)

    pose = raw[:, mw.POSE_ROWS]
    for name, src in BODY_FROM_BLAZEPOSE.items():
        dst = INDEX[name]
        out[:, dst, :2] = pose[:, src, :2] * scale
        out[:, dst, 2] = np.clip(pose[:, src, 2], 0.0, 1.0) * pose[:, src, 3]

    for rows, group in ((mw.LEFT_HAND_ROWS, LEFT_HAND), (mw.RIGHT_HAND_ROWS, RIGHT_HAND)):
        hand = raw[:, rows]
        out[:, group, :2] = hand[..., :2] * scale
        out[:, group, 2] = hand[..., 3]

    face = raw[:, mw.FACE_ROWS]
    pairs = np.array([idx if len(idx) == 2 else idx * 2 for idx in FACE_68_FROM_MESH])
    out[:, FACE, :2] = face[:, pairs, :2].mean(axis=2) * scale
    out[:, FACE, 2] = face[:, pairs[:, 0], 3]

    out[out[..., 2] <= 0] = 0.0
    return out


def find_python() -> Path | None:
    """The mediapipe environment's interpreter: $TOOLKIT_MEDIAPIPE_PYTHON, else <repo>/.venv-mediapipe."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    default = mediapipe_env_python()
    return default if default is not None and default.exists() else None


def _in_process() -> bool:
    return importlib.util.find_spec("mediapipe") is not None


def status() -> tuple[bool, str]:
    """Available when mediapipe imports here or its separate environment's interpreter exists."""
    if _in_process():
        return True, "mediapipe importable in this process"
    python = find_python()
    if python is None:
        return False, (f"no mediapipe environment: run {MAKE_ENV}, which creates .venv-mediapipe, "
                       f"or set {ENV_VAR} to a python that has mediapipe==0.10.21")
    if not python.exists():
        return False, f"{ENV_VAR}={python} does not exist: run {MAKE_ENV} or fix the variable"
    return True, f"worker interpreter {python}"


class MediapipePose:
    """MediaPipe Holistic (model_complexity=1) as a pose backend.

    Each call is one clip. ``static_image_mode=False`` (the default, for videos) tracks from
    frame to frame with landmark smoothing, starting a fresh tracker for every call so a
    result never depends on the previous call; ``True`` detects on every frame
    independently (reference photos; faster for one-frame calls). `run` also returns the
    person segmentation of the same pass (the `mediapipe` mask backend uses it); `kind`
    names the backend asked for in the errors when the worker cannot start.
    """

    name = "mediapipe"

    def __init__(self, static_image_mode: bool = False, python: str | os.PathLike | None = None,
                 kind: str = "pose") -> None:
        self.static_image_mode = bool(static_image_mode)
        self._kind = kind
        self._proc: subprocess.Popen | None = None
        self._runner: mw.HolisticRunner | None = None
        if python is None and _in_process():
            import mediapipe

            self._runner = mw.HolisticRunner()
            self._info = {"protocol": mw.PROTOCOL, "mediapipe": mediapipe.__version__, "numpy": np.__version__,
                          "models_sha256": mw.models_sha256()}
            return
        self._python = Path(python) if python is not None else find_python()
        if self._python is None or not self._python.exists():
            reason = status()[1] if python is None else f"{self._python} does not exist"
            raise BackendUnavailable(f"{self._kind} backend 'mediapipe' is unavailable: {reason}")
        self._start()

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1")
        env.pop("PYTHONPATH", None)
        try:
            self._proc = subprocess.Popen(
                [str(self._python), "-u", mw.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, env=env,
            )
        except OSError as exc:
            raise BackendUnavailable(f"{self._kind} backend 'mediapipe' is unavailable: cannot start "
                                     f"{self._python} ({exc.strerror}); run {MAKE_ENV}") from None
        try:
            self._info, _ = mw.read_message(self._proc.stdout)
        except (EOFError, mw.ProtocolError) as exc:
            tail = self._stderr_tail()
            self.close()
            raise BackendUnavailable(
                f"{self._kind} backend 'mediapipe' is unavailable: the worker ({self._python}) did not start "
                f"({exc}); does that environment have mediapipe==0.10.21? run {MAKE_ENV}. Worker said: {tail}"
            ) from None

    def _stderr_tail(self, n: int = 1500) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return text[-n:]

    def version(self) -> str:
        where = "in-process" if self._runner is not None else f"worker {self._python}"
        return (f"holistic model_complexity=1 static_image_mode={self.static_image_mode} "
                f"mediapipe={self._info.get('mediapipe')} numpy={self._info.get('numpy')} "
                f"models_sha256={str(self._info.get('models_sha256'))[:12]} ({where})")

    def raw(self, frames: np.ndarray) -> np.ndarray:
        """Raw Holistic landmarks (T, 543, 4) for frames (T, H, W, 3) uint8 RGB."""
        return self.run(frames)[0]

    def run(self, frames: np.ndarray, segmentation: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw Holistic landmarks (T, 543, 4) for frames (T, H, W, 3) uint8 RGB and, with `segmentation`, the
        person segmentation of the same pass: (T, H, W) uint8, probability of person times 255."""
        frames = check_frames(frames, self.name)
        if self._runner is not None:
            return self._runner.run(frames, static_image_mode=self.static_image_mode, segmentation=segmentation)
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"mediapipe worker is not running; worker said: {self._stderr_tail()}")
        if segmentation and self._info.get("protocol", 1) < 2:
            raise RuntimeError(f"the mediapipe worker speaks protocol {self._info.get('protocol', 1)}; the "
                               "segmentation needs protocol 2 (a worker from this toolkit version)")
        request = {"op": "run", "static_image_mode": self.static_image_mode}
        if segmentation:
            request["segmentation"] = True
        try:
            mw.write_message(self._proc.stdin, request, mw.array_to_bytes(frames))
            header, payload = mw.read_message(self._proc.stdout)
            if not header.get("ok"):
                raise RuntimeError(f"mediapipe worker failed: {header.get('error')}")
            arrays = mw.split_payload(header, payload)
        except (BrokenPipeError, EOFError, mw.ProtocolError) as exc:
            raise RuntimeError(f"mediapipe worker died ({exc}); worker said: {self._stderr_tail()}") from None
        raw = arrays[0]
        if raw.shape != (len(frames), mw.N_RAW, 4):
            raise RuntimeError(f"mediapipe worker returned shape {raw.shape} for {len(frames)} frames")
        if not segmentation:
            return raw, None
        seg = arrays[1] if len(arrays) > 1 else None
        if seg is None or seg.shape != frames.shape[:3] or seg.dtype != np.uint8:
            got = None if seg is None else f"{seg.shape} {seg.dtype}"
            raise RuntimeError(f"mediapipe worker returned segmentation {got} for frames {frames.shape}")
        return raw, seg

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        height, width = frames.shape[1:3]
        return holistic_to_wholebody(self.raw(frames), width, height)

    def close(self) -> None:
        """Stop the worker process (also done at garbage collection)."""
        if self._runner is not None:
            self._runner.close()
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                mw.write_message(proc.stdin, {"op": "quit"})
                proc.stdin.close()
                proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass

    def __enter__(self) -> "MediapipePose":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
