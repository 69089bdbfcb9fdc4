"""MediaPipe Holistic worker: raw landmarks for frames, in its own Python environment.

mediapipe 0.10.21 pins numpy<2 and protobuf<5, which the main environment cannot
satisfy, so :mod:`toolkit.annotate.pose_mediapipe` runs this file as a script with
the interpreter of a separate virtual environment (``scripts/make_mediapipe_env.sh``).
It imports only the standard library, numpy and mediapipe, never ``toolkit``.

Protocol over stdin/stdout, one long-lived process per backend instance. A message
is an 8-byte little-endian header length, a UTF-8 JSON header, an 8-byte payload
length and the payload (an ``.npy`` file's bytes, possibly empty):

* on start the worker sends ``{"ok": true, "protocol": 2, "mediapipe": ..., "numpy": ...,
  "models_sha256": ...}`` (a worker without "protocol" speaks version 1);
* request ``{"op": "run", "static_image_mode": bool}`` + frames (T, H, W, 3) uint8 RGB;
  reply ``{"ok": true}`` + raw landmarks (T, 543, 4) float32, or ``{"ok": false, "error": ...}``;
* protocol 2: the request may add ``"segmentation": true``; the reply is then
  ``{"ok": true, "sizes": [a, b]}`` and its payload the landmarks' ``.npy`` (a bytes)
  followed by the person segmentation's (b bytes): (T, H, W) uint8, Holistic's
  ``segmentation_mask`` (probability of person, [0, 1]) times 255, rounded; all 0 on a
  frame where no person was found. A request without the key gets the version 1 reply;
* request ``{"op": "quit"}`` or end of input: the worker exits.

Raw landmark rows: 33 pose, 21 left hand, 21 right hand, 468 face; columns x and y
normalised to [0, 1] of the frame width and height, visibility (pose only, else 0),
and 1 where that part was detected (0 rows where it was not).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
from typing import BinaryIO

import numpy as np

N_POSE, N_HAND, N_FACE = 33, 21, 468
POSE_ROWS = slice(0, N_POSE)
LEFT_HAND_ROWS = slice(N_POSE, N_POSE + N_HAND)
RIGHT_HAND_ROWS = slice(N_POSE + N_HAND, N_POSE + 2 * N_HAND)
FACE_ROWS = slice(N_POSE + 2 * N_HAND, N_POSE + 2 * N_HAND + N_FACE)
N_RAW = N_POSE + 2 * N_HAND + N_FACE
PROTOCOL = 2  # 2: the optional person segmentation

# The model files Holistic runs at model_complexity=1; all ship inside the wheel.
MODEL_FILES = (
    "modules/pose_detection/pose_detection.tflite",
    "modules/pose_landmark/pose_landmark_full.tflite",
    "modules/holistic_landmark/hand_recrop.tflite",
    "modules/hand_landmark/hand_landmark_full.tflite",
    "modules/face_landmark/face_landmark.tflite",
)


class ProtocolError(RuntimeError):
    """The other side sent something that is not a protocol message."""


def write_message(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    """Send one framed message and flush."""
    head = json.dumps(header).encode("utf-8")
    stream.write(struct.pack("<Q", len(head)) + head + struct.pack("<Q", len(payload)))
    if payload:
        stream.write(payload)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left:
        block = stream.read(left)
        if not block:
            raise EOFError(f"stream ended {left} bytes short of a {n}-byte block")
        chunks.append(block)
        left -= len(block)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> tuple[dict, bytes]:
    """Receive one framed message; EOFError at a clean end of stream."""
    first = stream.read(8)
    if not first:
        raise EOFError("end of stream")
    if len(first) < 8:
        first += _read_exact(stream, 8 - len(first))
    (n_head,) = struct.unpack("<Q", first)
    if n_head > 1 << 20:
        raise ProtocolError(f"header length {n_head} is not plausible")
    try:
        header = json.loads(_read_exact(stream, n_head).decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError(f"header is not JSON ({exc})") from None
    (n_payload,) = struct.unpack("<Q", _read_exact(stream, 8))
    return header, _read_exact(stream, n_payload) if n_payload else b""


def array_to_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def bytes_to_array(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def models_sha256() -> str:
    """sha256 over the Holistic model files inside the installed mediapipe wheel."""
    import mediapipe

    root = os.path.dirname(mediapipe.__file__)
    h = hashlib.sha256()
    for rel in MODEL_FILES:
        path = os.path.join(root, rel)
        if os.path.exists(path):
            h.update(rel.encode())
            with open(path, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


class HolisticRunner:
    """Run MediaPipe Holistic (model_complexity=1) over a clip and return raw landmarks, and on request the
    person segmentation.

    Tracking mode starts a fresh graph for every clip, so one clip's result never depends
    on the clip before it; still-image mode keeps its graphs (they hold no state between
    frames) and so skips the graph start-up, about 0.3 s, on every call. The segmentation
    comes out of the pose landmark model the landmarks already run, so it costs little; a
    graph is built with it only when asked, and the landmarks are the same either way.
    """

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        import mediapipe

        self._holistic_cls = mediapipe.solutions.holistic.Holistic
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self._still: dict[bool, object] = {}

    def _graph(self, static_image_mode: bool, segmentation: bool = False):
        return self._holistic_cls(
            static_image_mode=static_image_mode,
            model_complexity=1,
            smooth_landmarks=not static_image_mode,
            enable_segmentation=segmentation,
            smooth_segmentation=not static_image_mode,
            refine_face_landmarks=False,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def __call__(self, frames: np.ndarray, static_image_mode: bool = False) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> (T, 543, 4) float32."""
        return self.run(frames, static_image_mode)[0]

    def run(self, frames: np.ndarray, static_image_mode: bool = False,
            segmentation: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(T, H, W, 3) uint8 RGB -> raw landmarks (T, 543, 4) float32 and, when asked, the person
        segmentation (T, H, W) uint8 (probability times 255), else None."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        if static_image_mode:
            if segmentation not in self._still:
                self._still[segmentation] = self._graph(True, segmentation)
            return self._run(self._still[segmentation], frames, segmentation)
        with self._graph(False, segmentation) as holistic:
            return self._run(holistic, frames, segmentation)

    @staticmethod
    def _run(holistic, frames: np.ndarray, segmentation: bool) -> tuple[np.ndarray, np.ndarray | None]:
        out = np.zeros((len(frames), N_RAW, 4), dtype=np.float32)
        seg = np.zeros(frames.shape[:3], dtype=np.uint8) if segmentation else None
        for t, frame in enumerate(frames):
            result = holistic.process(np.ascontiguousarray(frame))
            if seg is not None and result.segmentation_mask is not None:
                seg[t] = np.rint(np.clip(result.segmentation_mask, 0.0, 1.0) * 255.0).astype(np.uint8)
            for rows, landmarks in (
                (POSE_ROWS, result.pose_landmarks),
                (LEFT_HAND_ROWS, result.left_hand_landmarks),
                (RIGHT_HAND_ROWS, result.right_hand_landmarks),
                (FACE_ROWS, result.face_landmarks),
            ):
                if landmarks is None:
                    continue
                points = landmarks.landmark
                n = rows.stop - rows.start
                if len(points) < n:
                    raise RuntimeError(f"mediapipe returned {len(points)} landmarks where {n} were expected")
                out[t, rows] = [(p.x, p.y, p.visibility, 1.0) for p in points[:n]]
        return out, seg

    def close(self) -> None:
        for graph in self._still.values():
            graph.close()
        self._still = {}


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until quit or end of input."""
    import mediapipe

    runner = HolisticRunner()
    write_message(out, {"ok": True, "protocol": PROTOCOL, "mediapipe": mediapipe.__version__,
                        "numpy": np.__version__, "models_sha256": models_sha256()})
    try:
        _answer(runner, inp, out)
    finally:
        runner.close()


def _answer(runner: HolisticRunner, inp: BinaryIO, out: BinaryIO) -> None:
    while True:
        try:
            header, payload = read_message(inp)
        except EOFError:
            return
        op = header.get("op")
        if op == "quit":
            return
        if op != "run":
            write_message(out, {"ok": False, "error": f"unknown op {op!r}"})
            continue
        segmentation = bool(header.get("segmentation"))
        try:
            raw, seg = runner.run(bytes_to_array(payload), static_image_mode=bool(header.get("static_image_mode")),
                                  segmentation=segmentation)
        except Exception as exc:  # report to the parent and keep serving
            write_message(out, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if not segmentation:
            write_message(out, {"ok": True}, array_to_bytes(raw))
            continue
        parts = [array_to_bytes(raw), array_to_bytes(seg)]
        write_message(out, {"ok": True, "sizes": [len(b) for b in parts]}, b"".join(parts))


def split_payload(header: dict, payload: bytes) -> list[np.ndarray]:
    """The arrays of a reply: one, or as many as its "sizes" list (protocol 2)."""
    sizes = header.get("sizes")
    if sizes is None:
        return [bytes_to_array(payload)]
    if sum(sizes) != len(payload):
        raise ProtocolError(f"reply sizes {sizes} do not add up to its {len(payload)}-byte payload")
    arrays, start = [], 0
    for n in sizes:
        arrays.append(bytes_to_array(payload[start:start + n]))
        start += n
    return arrays


def main() -> None:
    # Keep the protocol channel private: whatever mediapipe or its C++ logging prints
    # to stdout lands on stderr instead of corrupting the message stream.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, channel)


if __name__ == "__main__":
    main()
