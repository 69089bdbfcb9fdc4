"""`unianimate` in the harness and in `toolkit animate`: a trained checkpoint folder, or the release -> frames.

The checkpoint folder is what `toolkit train --method unianimate --out DIR` writes:
``DIR/run.json`` (the resolved config) and ``DIR/model/`` (the EMA weights). ``--checkpoint
published`` runs UniAnimate's released UNet (converted once by `toolkit weights convert
unianimate-16f-32f`) at the paper config's settings (configs/paper.toml: 30 DDIM steps as the
released loop takes them, 31 evaluations; guidance 2.5; the noise prior at t = 949 with offset
noise 0.1; SD 2.1's VAE), conditioned as the release is on OpenCLIP ViT-H-14
(:mod:`toolkit.models.openclip`): the "" text context, and each video's reference embedding
computed from the reference frame as given (resized to 224 x 224), with an unconditional branch
that has no conditions. A checkpoint trained with an ``[openclip]`` table embeds each reference
the same way (its "" context is in its weights). The method renders the driving poses with the same builder training used
(:mod:`toolkit.conditions`) at the model's size, samples, and scales the frames back to the
evaluation size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch

from baselines.unianimate import convert
from baselines.unianimate.model import CONFIG_DIR, UniAnimateModel
from baselines.unianimate.pipeline import SamplingConfig, UniAnimatePipeline
from baselines.unianimate.recipe import load_openclip
from toolkit import conditions, weights
from toolkit.harness.method import Conditions, Method, MethodUnavailable
from toolkit.io import sha256_file
from toolkit.models.codec import build_codec
from toolkit.models.openclip import OpenCLIPConditioner
from toolkit.train.checkpoint import PUBLISHED, load_run, paper_run_config

# The released model learnt its unconditional branch with every condition's features dropped inside the
# network (UniAnimate's misc_dropout), not from zeroed inputs as our objective does: sample it that way.
PUBLISHED_SAMPLING = {"uncond": "none"}


class UniAnimateMethod(Method):
    name = "unianimate"
    description = "UniAnimate-style video diffusion (one UNet, reference as frame 0, pose concatenation), ours"
    paper = "https://arxiv.org/abs/2406.01188"
    code = "https://github.com/ali-vilab/UniAnimate"

    def __init__(self, checkpoint: str | Path | None = None, long: str | None = None, steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, device: str = "cpu",
                 first_frame: bool = False):
        if checkpoint is None:
            raise MethodUnavailable("unianimate needs a trained model: run `make train-tiny` (or `toolkit train "
                                    "--method unianimate ...`) and pass --checkpoint runs/ua-tiny, or "
                                    "--checkpoint published for the released weights")
        self.checkpoint = Path(checkpoint)
        self.openclip: OpenCLIPConditioner | None = None
        if str(checkpoint) == PUBLISHED:
            self.run_config, self.weights = paper_run_config(CONFIG_DIR / "paper.toml"), None
            self.run_config["sampling"] = {**self.run_config.get("sampling", {}), **PUBLISHED_SAMPLING}
            converted = convert.converted_published_dir()
            self.openclip = OpenCLIPConditioner.from_file(weights.path(convert.OPENCLIP_ARTIFACT), device)
            model = convert.load_converted(converted, self.openclip.empty_text_context()).to(device).eval()
        else:
            self.run_config, model_dir = load_run(checkpoint, "unianimate")
            self.weights = model_dir / "model.safetensors"
            model = UniAnimateModel.from_pretrained(model_dir).to(device).eval()
            self.openclip = load_openclip(self.run_config, device)  # a model trained on OpenCLIP embeddings
        sampling = dict(self.run_config.get("sampling", {}))
        overrides = {"long": long, "steps": steps, "guidance": guidance, "seed": seed}
        sampling.update({k: v for k, v in overrides.items() if v is not None})
        self.sampling = SamplingConfig.from_dict(sampling)
        codec = build_codec(self.run_config.get("codec", {})).to(device)
        self.pipeline = UniAnimatePipeline(model, codec, self.sampling)
        size = self.run_config.get("data", {}).get("size", 64)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.first_frame = first_frame
        self.multiple = codec.downsample * 2 ** (len(model.config.block_out_channels) - 1)

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """The size frames are generated at: the trained area with the video's aspect, in multiples the UNet takes."""
        return conditions.generation_size(self.size, self.multiple, height, width)

    def generate(self, cond: Conditions) -> np.ndarray:
        return np.concatenate(list(self.generate_chunks(cond)))

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        h, w = self.model_size(cond.height, cond.width)
        reference = conditions.fit_image(cond.reference, (h, w))
        to_chw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))  # noqa: E731
        embeds = None if self.openclip is None else self.openclip.embed_image(cond.reference)
        chunks = self.pipeline.iter_frames(to_chw(reference), to_chw(cond.reference_pose_render(h, w)),
                                           to_chw(cond.pose_renders(h, w)),
                                           first_frame=to_chw(reference) if self.first_frame else None,
                                           image_embeds=embeds)
        for chunk in chunks:
            yield np.stack([cv2.resize(f, (cond.width, cond.height), interpolation=cv2.INTER_CUBIC) for f in chunk])

    def config(self) -> dict[str, Any]:
        checkpoint = PUBLISHED if self.weights is None else str(self.checkpoint.resolve())
        return {"checkpoint": checkpoint, "model_size": list(self.size),
                "sampling": {k: getattr(self.sampling, k) for k in self.sampling.__dataclass_fields__},
                "first_frame": self.first_frame}

    def checkpoint_sha256(self) -> str:
        if self.weights is None:
            return convert.published_sha256(self.run_config["codec"]["weights"])
        own = sha256_file(self.weights)
        used = [self.run_config.get(table, {}).get("weights") for table in ("openclip", "codec")]
        used = [name for name in used if name]  # registry files the samples also depend on
        return ";".join([f"model={own}", *(f"{n}={weights.file_sha256(n)}" for n in used)]) if used else own
