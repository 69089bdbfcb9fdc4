"""`magicanimate` in the harness and in `toolkit animate`: a trained run folder, or the release -> frames.

The run folder is what `toolkit train --method magicanimate --stage 2 --out DIR` writes
(a stage-1 run works too: its motion modules are still the identity, so it animates frame by
frame). ``--checkpoint published`` runs MagicAnimate's released weights from the weights registry
(`convert.from_published`) at the paper config's settings (configs/paper.toml). The method renders
the driving DensePose with the builder training used (:mod:`toolkit.conditions`), samples with
window fusion, and scales the frames back to the evaluation size. It needs IUV maps in the shards
(prepared with DensePose). How frames are sized follows ``[sampling] frame_fit``: "squash" (the
release: reference and DensePose resized to the model's square size, aspect ignored) or "aspect"
(the model's area at the video's aspect, centre-cropped). On CUDA the release's ``precision``
casts model and codec to float16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
from PIL import Image

from baselines.magicanimate import convert
from baselines.magicanimate.model import CONFIG_DIR, MagicAnimateModel
from baselines.magicanimate.pipeline import MagicAnimatePipeline, SamplingConfig
from toolkit import conditions
from toolkit.harness.method import Conditions, Method, MethodUnavailable, Option
from toolkit.models.pretrained import weights_sha256
from toolkit.models.codec import build_codec
from toolkit.models.run_folder import PUBLISHED, load_run, paper_run_config


class MagicAnimateMethod(Method):
    name = "magicanimate"
    description = ("MagicAnimate-style diffusion (appearance encoder, DensePose ControlNet, motion modules, "
                   "window fusion), ours")
    paper = "https://arxiv.org/abs/2311.16498"
    code = "https://github.com/magic-research/magic-animate"
    options = {
        "steps": Option(int, "sampling steps (default: the run's [sampling] steps)"),
        "guidance": Option(float, "classifier-free guidance scale"),
        "seed": Option(int, "sampling seed"),
        "window": Option(int, "frames per fused window"),
        "overlap": Option(int, "frames shared by neighbouring windows"),
    }

    def __init__(self, checkpoint: str | Path | None = None, steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, device: str = "cpu",
                 window: int | None = None, overlap: int | None = None):
        if checkpoint is None:
            raise MethodUnavailable("magicanimate needs a trained model: run `make train-tiny` (or `toolkit train "
                                    "--method magicanimate --stage 1/2 ...`) and pass --checkpoint runs/ma-tiny, "
                                    "or --checkpoint published for the released weights")
        self.checkpoint = Path(checkpoint)
        if str(checkpoint) == PUBLISHED:
            self.run_config, self.weights = paper_run_config(CONFIG_DIR / "paper.toml"), None
            model = convert.from_published().to(device).eval()
        else:
            self.run_config, model_dir = load_run(checkpoint, "magicanimate")
            self.weights = model_dir
            model = MagicAnimateModel.from_pretrained(model_dir).to(device).eval()
        sampling = dict(self.run_config.get("sampling", {}))
        given = {"steps": steps, "guidance": guidance, "seed": seed, "window": window, "overlap": overlap}
        sampling.update({k: v for k, v in given.items() if v is not None})
        self.sampling = SamplingConfig.from_dict(sampling)
        codec = build_codec(self.run_config.get("codec", {})).to(device)
        self.pipeline = MagicAnimatePipeline(model, codec, self.sampling, self.run_config.get("scheduler", {}))
        model.to(self.pipeline.run_dtype())
        codec.to(self.pipeline.run_dtype())
        size = self.run_config.get("data", {}).get("size", 64)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.multiple = codec.downsample * 2 ** (len(model.config.block_out_channels) - 1)

    def generate(self, cond: Conditions) -> np.ndarray:
        return np.concatenate(list(self.generate_chunks(cond)))

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        if cond.iuv is None:
            raise MethodUnavailable(f"{cond.video_id}: magicanimate is driven by DensePose, and the shards have no "
                                    "IUV maps (prepare them with a DensePose backend)")
        self.pipeline.progress = self.progress
        to_chw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))  # noqa: E731
        if self.sampling.frame_fit == "squash":
            h, w = self.size
            reference = np.asarray(Image.fromarray(cond.reference).resize((w, h)))  # PIL's bicubic, as the release
            renders = conditions.densepose_images(cond.iuv, (h, w), stretch=True)
        else:
            h, w = conditions.generation_size(self.size, self.multiple, cond.height, cond.width)
            reference = conditions.fit_image(cond.reference, (h, w))
            renders = cond.densepose_renders(h, w)
        for chunk in self.pipeline.iter_frames(to_chw(reference), to_chw(renders)):
            yield np.stack([cv2.resize(f, (cond.width, cond.height), interpolation=cv2.INTER_CUBIC) for f in chunk])

    def config(self) -> dict[str, Any]:
        checkpoint = PUBLISHED if self.weights is None else str(self.checkpoint.resolve())
        return {"checkpoint": checkpoint, "model_size": list(self.size),
                "dtype": str(self.pipeline.run_dtype()).removeprefix("torch."),
                "stage": self.run_config.get("stage"),
                "sampling": {k: getattr(self.sampling, k) for k in self.sampling.__dataclass_fields__}}

    def checkpoint_sha256(self) -> str:
        if self.weights is None:
            return convert.published_sha256()
        return weights_sha256(self.weights)
