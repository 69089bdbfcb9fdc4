"""The `densepose` backend: detectron2's DensePose R-CNN (R50-FPN), pasted into full-frame IUV images.

MagicAnimate's conditioning is DensePose's fine body-part segmentation, so this is
the annotator to reproduce it. detectron2 is not on PyPI and is optional; install
it and its DensePose project with::

    pip install 'git+https://github.com/facebookresearch/detectron2.git'
    pip install 'git+https://github.com/facebookresearch/detectron2@main#subdirectory=projects/DensePose'

Weights: the registry artifact ``densepose-r50-fpn`` (detectron2's model-zoo
``model_final_162be9.pkl``). That file is a plain pickle of numpy arrays, so it is
read with :func:`load_numpy_pickle`, an unpickler that only accepts numpy arrays
and plain containers (the same allow-list idea as ``torch.load(weights_only=True)``);
``.safetensors`` and ``.pth`` files (``torch.load(weights_only=True)``) work too.
The model config is built in code from DensePose's ``Base-DensePose-RCNN-FPN.yaml``
+ ``densepose_rcnn_R_50_FPN_s1x.yaml`` (the pip package ships no config files);
``config_file`` overrides it.

Predictor outputs become one IUV image per frame the way DensePose's
``ToChartResultConverter`` and results visualizers do it (:func:`paste_iuv`):
each box is truncated to integers (x, y, w, h); coarse and fine segmentation and
U, V are resized bilinearly (align_corners=False) to the box; the part index is
the argmax of the fine segmentation where the argmax of the coarse segmentation
is foreground; U and V are those of the chosen part, clipped to [0, 1] and scaled
by 255 (truncated, as DensePose's uint8 cast does). Boxes are pasted in
increasing score order and only their foreground pixels are written, so where
people overlap the more confident detection wins.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.annotate.backends import BackendUnavailable, check_frames
from toolkit.weights import Artifact

ARTIFACT = "densepose-r50-fpn"

#: The files this module reads, declared for the weights registry (entry point toolkit.artifacts).
ARTIFACTS = (
    Artifact(
        name="densepose-r50-fpn",
        filename="densepose/model_final_162be9.pkl",
        url="https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl",
        sha256="b8a7382001b16e453bad95ca9dbc68ae8f2b839b304cf90eaf5c27fbdb4dae91",
        size=255757821,
        license="Apache-2.0",
        used_by=("DensePose extraction",),
        description="Detectron2 model zoo densepose_rcnn_R_50_FPN_s1x. Hash and size agree across many "
        "public mirrors of this URL.",
        loader="detectron2 pickle (dict with 'model': numpy arrays); only detectron2's checkpointer reads it. "
        "torch.load(weights_only=True) cannot (numpy objects), and the toolkit does not unpickle it",
    ),
)
N_PARTS = 24
INSTALL = ("pip install 'git+https://github.com/facebookresearch/detectron2.git' && "
           "pip install 'git+https://github.com/facebookresearch/detectron2@main#subdirectory=projects/DensePose'")


def _box_xywh_int(box: np.ndarray) -> tuple[int, int, int, int]:
    """XYXY float box -> integer XYWH as DensePose does (convert, then truncate toward zero)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def chart_to_box(coarse: np.ndarray, fine: np.ndarray, u: np.ndarray, v: np.ndarray,
                 w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """One instance's (K, S, S) coarse, (25, S, S) fine / U / V -> labels (h, w) int64 and uv (2, h, w) float32."""
    import torch
    from torch.nn import functional as F

    w, h = max(int(w), 1), max(int(h), 1)

    def resize(a: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(a, dtype=np.float32))[None]
        return F.interpolate(t, (h, w), mode="bilinear", align_corners=False)[0]

    foreground = resize(coarse).argmax(dim=0) > 0
    labels = resize(fine).argmax(dim=0) * foreground.long()
    u_box, v_box = resize(u), resize(v)
    uv = torch.zeros((2, h, w), dtype=torch.float32)
    for part in range(1, u_box.shape[0]):
        sel = labels == part
        uv[0][sel] = u_box[part][sel]
        uv[1][sel] = v_box[part][sel]
    return labels.numpy(), uv.numpy()


def paste_iuv(boxes_xyxy: np.ndarray, coarse_segm: np.ndarray, fine_segm: np.ndarray, u: np.ndarray,
              v: np.ndarray, height: int, width: int, scores: np.ndarray | None = None) -> np.ndarray:
    """DensePose chart predictor outputs for N boxes -> one (height, width, 3) uint8 IUV image.

    Shapes: boxes (N, 4) XYXY in frame pixels, coarse (N, 2, S, S), fine / u / v (N, 25, S, S),
    scores (N,) (drawing order: ascending, so the most confident person wins overlaps;
    without scores, later boxes win). Channel 0 = part 0..24 (0 background), 1 = U, 2 = V in 0..255.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    for name, arr, channels in (("coarse_segm", coarse_segm, None), ("fine_segm", fine_segm, N_PARTS + 1),
                                ("u", u, N_PARTS + 1), ("v", v, N_PARTS + 1)):
        shape = np.shape(arr)
        if len(shape) != 4 or shape[0] != n or (channels and shape[1] != channels):
            want = f"({n}, {channels or 'K'}, S, S)"
            raise ValueError(f"densepose: {name} has shape {shape}, expected {want}")
    out = np.zeros((height, width, 3), dtype=np.uint8)
    order = np.arange(n) if scores is None else np.argsort(np.asarray(scores), kind="stable")
    for i in order:
        x, y, w, h = _box_xywh_int(boxes[i])
        if w <= 0 or h <= 0:
            continue
        labels, uv = chart_to_box(coarse_segm[i], fine_segm[i], u[i], v[i], w, h)
        iuv = np.empty((h, w, 3), dtype=np.uint8)
        iuv[..., 0] = labels
        iuv[..., 1:] = (np.clip(uv, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)
        # Clip the box to the frame, then write only its foreground pixels.
        fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if fx1 <= fx0 or fy1 <= fy0:
            continue
        part = iuv[fy0 - y:fy1 - y, fx0 - x:fx1 - x]
        mask = part[..., 0] > 0
        out[fy0:fy1, fx0:fx1][mask] = part[mask]
    return out


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (array buffers)
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core" if hasattr(np, "_core") else "numpy.core", 1)
        return getattr(importlib.import_module(module), name)


def load_numpy_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """Read a detectron2 model-zoo ``.pkl`` ({"model": {name: ndarray}, ...}) without running arbitrary code."""
    path = Path(path)
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a detectron2 weights pickle of numpy arrays ({exc})") from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: expected a dict of named arrays (optionally under 'model')")
    bad = [k for k, a in state.items() if not isinstance(a, np.ndarray)]
    if bad:
        raise ValueError(f"{path}: entries that are not arrays: {bad[:5]}")
    return state


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Weights file -> {name: torch.Tensor}; .pkl (numpy-only), .safetensors or .pth (weights_only)."""
    import torch

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return {k: torch.as_tensor(np.ascontiguousarray(a)) for k, a in load_numpy_pickle(path).items()}
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from toolkit import safe_pickle

    state = safe_pickle.load(path)  # UnsafeCheckpoint (a ValueError naming the file), never a raw UnpicklingError
    state = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict")
    return state


def build_config(config_file: str | Path | None = None, device: str = "cpu", min_score: float = 0.8):
    """detectron2 config of DensePose R-CNN R50-FPN (s1x), built in code unless a YAML file is given."""
    from detectron2.config import get_cfg
    from densepose import add_densepose_config

    cfg = get_cfg()
    add_densepose_config(cfg)
    if config_file is not None:
        cfg.merge_from_file(str(config_file))
    else:
        cfg.merge_from_list([
            "MODEL.META_ARCHITECTURE", "GeneralizedRCNN",
            "MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone",
            "MODEL.RESNETS.DEPTH", 50,
            "MODEL.RESNETS.OUT_FEATURES", ["res2", "res3", "res4", "res5"],
            "MODEL.FPN.IN_FEATURES", ["res2", "res3", "res4", "res5"],
            "MODEL.ANCHOR_GENERATOR.SIZES", [[32], [64], [128], [256], [512]],
            "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", [[0.5, 1.0, 2.0]],
            "MODEL.RPN.IN_FEATURES", ["p2", "p3", "p4", "p5", "p6"],
            "MODEL.RPN.PRE_NMS_TOPK_TEST", 1000,
            "MODEL.RPN.POST_NMS_TOPK_TEST", 1000,
            "MODEL.DENSEPOSE_ON", True,
            "MODEL.ROI_HEADS.NAME", "DensePoseROIHeads",
            "MODEL.ROI_HEADS.IN_FEATURES", ["p2", "p3", "p4", "p5"],
            "MODEL.ROI_HEADS.NUM_CLASSES", 1,
            "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead",
            "MODEL.ROI_BOX_HEAD.NUM_FC", 2,
            "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", 7,
            "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", 2,
            "MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlign",
            "MODEL.ROI_DENSEPOSE_HEAD.NAME", "DensePoseV1ConvXHead",
            "MODEL.ROI_DENSEPOSE_HEAD.POOLER_TYPE", "ROIAlign",
            "MODEL.ROI_DENSEPOSE_HEAD.NUM_COARSE_SEGM_CHANNELS", 2,
        ])
    cfg.MODEL.DEVICE = device
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(min_score)
    cfg.freeze()
    return cfg


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().float().cpu().numpy() if hasattr(t, "detach") else np.asarray(t, dtype=np.float32)


def status() -> tuple[bool, str]:
    """Available when detectron2 and its DensePose project import and the weights are cached."""
    for module in ("detectron2", "densepose"):
        if importlib.util.find_spec(module) is None:
            return False, f"{module} is not installed: {INSTALL}"
    from toolkit import weights

    if not weights.available(ARTIFACT):
        try:
            weights.path(ARTIFACT)
        except FileNotFoundError as exc:
            return False, str(exc)
    return True, "detectron2, DensePose and the R50-FPN weights found"


class Detectron2Densepose:
    """DensePose R-CNN R50-FPN as a DensePose backend (people scored >= min_score are drawn)."""

    name = "densepose"

    def __init__(self, weights_path: str | Path | None = None, config_file: str | Path | None = None,
                 device: str = "cpu", min_score: float = 0.8) -> None:
        missing = [m for m in ("detectron2", "densepose") if importlib.util.find_spec(m) is None]
        if missing:
            raise BackendUnavailable(f"densepose backend 'densepose' is unavailable: {' and '.join(missing)} "
                                     f"not installed; {INSTALL}")
        import detectron2
        import torch
        from detectron2.data import transforms
        from detectron2.modeling import build_model

        from toolkit import weights
        from toolkit.io import sha256_file

        if weights_path is None:
            try:
                weights_path = weights.path(ARTIFACT)
            except FileNotFoundError as exc:
                raise BackendUnavailable(f"densepose backend 'densepose' is unavailable: {exc}") from None
            self._sha = weights.file_sha256(ARTIFACT)
        else:
            weights_path = Path(weights_path)
            if not weights_path.is_file():
                raise BackendUnavailable(f"densepose backend 'densepose' is unavailable: {weights_path} does not exist")
            self._sha = sha256_file(weights_path)
        self.cfg = build_config(config_file, device, min_score)
        self.model = build_model(self.cfg).eval()
        state = load_state_dict(weights_path)
        result = self.model.load_state_dict(state, strict=False)
        missing_keys = [k for k in result.missing_keys if k not in ("pixel_mean", "pixel_std")]
        if missing_keys:
            raise ValueError(f"{weights_path}: weights do not fit DensePose R50-FPN; missing {missing_keys[:5]} "
                             f"({len(missing_keys)} in all)")
        self._resize = transforms.ResizeShortestEdge([self.cfg.INPUT.MIN_SIZE_TEST] * 2, self.cfg.INPUT.MAX_SIZE_TEST)
        self._torch = torch
        self._d2_version = detectron2.__version__

    def version(self) -> str:
        return f"densepose_rcnn_R_50_FPN_s1x sha256={self._sha[:12]} detectron2={self._d2_version}"

    def predict(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """Raw chart outputs for one RGB frame: boxes, scores, coarse_segm, fine_segm, u, v (numpy)."""
        torch = self._torch
        image = frame[..., ::-1] if self.cfg.INPUT.FORMAT == "BGR" else frame
        h, w = image.shape[:2]
        resized = self._resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype(np.float32).transpose(2, 0, 1))
        with torch.no_grad():
            instances = self.model([{"image": tensor, "height": h, "width": w}])[0]["instances"]
        out = {"boxes": _to_numpy(instances.pred_boxes.tensor), "scores": _to_numpy(instances.scores)}
        dp = instances.pred_densepose if instances.has("pred_densepose") and len(instances) else None
        for key in ("coarse_segm", "fine_segm", "u", "v"):
            out[key] = _to_numpy(getattr(dp, key)) if dp is not None else np.zeros((0, 1, 1, 1), np.float32)
        return out

    def __call__(self, frames: np.ndarray, ground_truth: dict | None = None) -> np.ndarray:
        frames = check_frames(frames, self.name)
        t, h, w = frames.shape[:3]
        out = np.zeros((t, h, w, 3), dtype=np.uint8)
        for i, frame in enumerate(frames):
            p = self.predict(frame)
            if len(p["boxes"]):
                out[i] = paste_iuv(p["boxes"], p["coarse_segm"], p["fine_segm"], p["u"], p["v"], h, w, p["scores"])
        return out
