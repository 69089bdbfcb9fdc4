"""`magicanimate` in the harness and in `toolkit animate`: a trained run folder, or the release -> frames.

The run folder is what `toolkit train --method magicanimate --stage 2 --out DIR` writes
(a stage-1 run works too: its motion modules are still the identity, so it animates frame by
frame). ``--checkpoint published`` runs MagicAnimate's released weights from the weights registry
(`convert.from_published`) at the paper config's settings (configs/paper.toml). The method renders
the driving DensePose with the builder training used (:mod:`toolkit.conditions`), samples with
window fusion, and scales the frames back to the evaluation size. It needs IUV maps in the shards
(prepared with DensePose). How frames are sized follows ``[sampling] frame_fit``: "squash" (the
release: reference and DensePose resized to the model's square size, aspect ignored) or "aspect"
(the model's area at the nearest aspect its sizes allow, the video resized to it and the frames
back). On CUDA the release's ``precision`` casts model and codec to float16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from baselines.magicanimate import convert
from baselines.magicanimate.model import CONFIG_DIR, MagicAnimateModel
from baselines.magicanimate.pipeline import MagicAnimatePipeline, SamplingConfig
from toolkit import conditions
from toolkit.harness.diffusion_method import SAMPLING_OPTIONS, DiffusionMethod
from toolkit.harness.method import Conditions, MethodUnavailable, Option
from toolkit.models.codec import build_codec
from toolkit.models.run_folder import paper_run_config


class MagicAnimateMethod(DiffusionMethod):
    name = "magicanimate"
    description = ("MagicAnimate-style diffusion (appearance encoder, DensePose ControlNet, motion modules, "
                   "window fusion), ours")
    paper = "https://arxiv.org/abs/2311.16498"
    code = "https://github.com/magic-research/magic-animate"
    model_class = MagicAnimateModel
    train_hint = ("run `make train-tiny` (or `toolkit train --method magicanimate --stage 1/2 ...`) and pass "
                  "--checkpoint runs/ma-tiny, or --checkpoint published for the released weights")
    options = {**SAMPLING_OPTIONS, "window": Option(int, "frames per fused window")}

    def __init__(self, checkpoint: str | Path | None = None, steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, device: str = "cpu",
                 window: int | None = None, overlap: int | None = None):
        model = self.load_run_model(checkpoint, device)
        if model is None:  # published
            self.run_config = paper_run_config(CONFIG_DIR / "paper.toml")
            model = convert.from_published().to(device).eval()
        self.sampling = SamplingConfig.from_dict(self.sampling_table(steps=steps, guidance=guidance, seed=seed,
                                                                     window=window, overlap=overlap))
        codec = build_codec(self.run_config.get("codec", {})).to(device)
        self.pipeline = MagicAnimatePipeline(model, codec, self.sampling, self.run_config.get("scheduler", {}))
        model.to(self.pipeline.run_dtype())
        codec.to(self.pipeline.run_dtype())
        self.set_size(codec, model)

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        if cond.iuv is None:
            raise MethodUnavailable(f"{cond.video_id}: magicanimate is driven by DensePose, and the shards have no "
                                    "IUV maps (prepare them with a DensePose backend)")
        self.pipeline.progress = self.progress
        to_chw = self.to_chw
        if self.sampling.frame_fit == "squash":
            h, w = self.size
            reference = np.asarray(Image.fromarray(cond.reference).resize((w, h)))  # PIL's bicubic, as the release
        else:
            h, w = conditions.generation_size(self.size, self.multiple, cond.height, cond.width)
            reference = conditions.fit_image(cond.reference, (h, w), stretch=True)
        renders = cond.densepose_renders(h, w, stretch=True)
        for chunk in self.pipeline.iter_frames(to_chw(reference), to_chw(renders)):
            yield self.at_video_size(chunk, cond)

    def config(self) -> dict[str, Any]:
        base = super().config()
        return {"checkpoint": base["checkpoint"], "model_size": base["model_size"],
                "dtype": str(self.pipeline.run_dtype()).removeprefix("torch."),
                "stage": self.run_config.get("stage"), "sampling": base["sampling"]}

    def checkpoint_sha256(self) -> str:
        return convert.published_sha256() if self.weights is None else self.own_sha256()
