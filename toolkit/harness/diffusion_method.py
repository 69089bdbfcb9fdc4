"""What the diffusion reference models' methods share, so each `method.py` holds only what is its own.

A trained run folder (or ``--checkpoint published``, which each method loads itself) read once; the
sampling settings from the run's ``[sampling]`` table with the ``--method-option`` values over them; the
size the model was trained at; frames generated chunk by chunk and resized back to the video's size; and
the provenance both record (the checkpoint, its weights' sha256, the sampling settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator

import cv2
import numpy as np
import torch

from toolkit.harness.method import Conditions, Method, MethodUnavailable, Option
from toolkit.models.pretrained import PretrainedModel, weights_sha256
from toolkit.models.run_folder import PUBLISHED, load_run

#: The options every diffusion method takes (each adds its own).
SAMPLING_OPTIONS: dict[str, Option] = {
    "steps": Option(int, "sampling steps (default: the run's [sampling] steps)"),
    "guidance": Option(float, "classifier-free guidance scale"),
    "seed": Option(int, "sampling seed"),
    "window": Option(int, "frames per window"),
    "overlap": Option(int, "frames shared by neighbouring windows"),
}


def size_multiple(codec_downsample: int, unet_levels: int) -> int:
    """The multiple every side of a generated frame must be: the codec's downsampling times the UNet's
    `unet_levels - 1` halvings."""
    return codec_downsample * 2 ** (unet_levels - 1)


class DiffusionMethod(Method):
    """Base of the methods that sample a trained diffusion model (see the module doc).

    A subclass sets `model_class` and `train_hint` (how to get a checkpoint), calls `load_run_model` and
    `sampling_table` in its constructor, then `set_size`, and implements `generate_chunks`.
    """

    model_class: ClassVar[type[PretrainedModel]]
    train_hint: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = SAMPLING_OPTIONS

    run_config: dict[str, Any]
    weights: Path | None          # the run's model folder; None for the published release
    size: tuple[int, int]
    multiple: int

    def load_run_model(self, checkpoint: str | Path | None, device: str) -> PretrainedModel | None:
        """The trained model of the run folder `checkpoint` on `device` (eval mode), with `run_config` and
        `weights` set; None for ``published``, whose release the subclass loads. No checkpoint: MethodUnavailable
        saying how to get one."""
        if checkpoint is None:
            raise MethodUnavailable(f"{self.name} needs a trained model: {self.train_hint}")
        self.checkpoint = Path(checkpoint)
        if str(checkpoint) == PUBLISHED:
            self.weights = None
            return None
        self.run_config, self.weights = load_run(checkpoint, self.name)
        return self.model_class.from_pretrained(self.weights).to(device).eval()

    def sampling_table(self, **given: Any) -> dict[str, Any]:
        """The run's ``[sampling]`` table with the given settings that are not None over it; those are kept as
        `overrides`."""
        self.overrides = {k: v for k, v in given.items() if v is not None}
        return {**self.run_config.get("sampling", {}), **self.overrides}

    def set_size(self, codec: torch.nn.Module, model: PretrainedModel) -> None:
        """The trained size (``[data] size``) and the multiple a generated size must be (codec x UNet levels)."""
        size = self.run_config.get("data", {}).get("size", 64)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.multiple = size_multiple(codec.downsample, len(model.config.block_out_channels))

    def generate(self, cond: Conditions) -> np.ndarray:
        return np.concatenate(list(self.generate_chunks(cond)))

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        raise NotImplementedError

    @staticmethod
    def to_chw(images: np.ndarray) -> torch.Tensor:
        """(..., H, W, 3) uint8 -> (..., 3, H, W), what the pipelines take."""
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(images, -1, -3)))

    @staticmethod
    def at_video_size(frames: np.ndarray, cond: Conditions) -> np.ndarray:
        """Generated frames resized (bicubic) to the video's size."""
        return np.stack([cv2.resize(f, (cond.width, cond.height), interpolation=cv2.INTER_CUBIC) for f in frames])

    def config(self) -> dict[str, Any]:
        checkpoint = PUBLISHED if self.weights is None else str(self.checkpoint.resolve())
        sampling = self.sampling  # type: ignore[attr-defined]
        return {"checkpoint": checkpoint, "model_size": list(self.size),
                "sampling": {k: getattr(sampling, k) for k in sampling.__dataclass_fields__}}

    def own_sha256(self) -> str:
        """sha256 of the run's model weights (`weights_sha256` of its model folder)."""
        assert self.weights is not None
        return weights_sha256(self.weights)
