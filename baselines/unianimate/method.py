"""`unianimate` in the harness and in `toolkit animate`: a trained checkpoint folder, or the release -> frames.

The checkpoint folder is what `toolkit train --method unianimate --out DIR` writes:
``DIR/run.json`` (the resolved config) and ``DIR/model/`` (the EMA weights). ``--checkpoint
published`` runs UniAnimate's released UNet (converted once by `toolkit weights convert
unianimate-16f-32f`) as the release's inference configs do (pipeline.RELEASE_CONFIGS; the model card
lists what is matched and how it was checked): UniAnimate_infer (seed 11, noise prior at t = 949 after
0.1 offset noise, 768 x 512) while the video, taken every 2nd pose, has at most 32 frames, else
UniAnimate_infer_long (seed 7, prior at t = 939 then the offset noise, 1216 x 768, windows of 32
overlapping 8); the {image, randomref, dwpose} key set (or "local_image"); the reference and pose renders
squashed to that size with PIL's bilinear resize; 30 DDIM steps as the released loop takes them, guidance
2.5, an unconditional half with no conditions; on CUDA the model in fp16 under autocast. It is conditioned
as the release is on OpenCLIP ViT-H-14 (:mod:`toolkit.models.openclip`): the "" text context, and each
video's reference embedding computed from the reference frame as given (resized to 224 x 224). Each
generated frame is held for 2 output frames, and frames are scaled back to the evaluation size. A trained
checkpoint renders the driving poses with the same builder training used (:mod:`toolkit.conditions`) at
the model's size at the aspect nearest the video's (the video resized to it, the frames back), from every
pose; one trained with an ``[openclip]`` table embeds each reference the same way (its "" context is in
its weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image

from baselines.unianimate import convert
from baselines.unianimate.model import CONFIG_DIR, UniAnimateModel
from baselines.unianimate.openclip_table import load_openclip
from baselines.unianimate.pipeline import (
    LONG_MODES, PRECISION, RELEASE_CONFIGS, RELEASE_KEYS, SamplingConfig, UniAnimatePipeline, release_sampling)
from toolkit import conditions, weights
from toolkit.harness.diffusion_method import SAMPLING_OPTIONS, DiffusionMethod
from toolkit.harness.method import Conditions, Option
from toolkit.models.codec import build_codec
from toolkit.models.openclip import OpenCLIPConditioner
from toolkit.models.run_folder import paper_run_config

# How `--checkpoint published` runs unless told otherwise: as the release's inference configs do
# (pipeline.RELEASE_CONFIGS). "auto" picks UniAnimate_infer when the strided video has at most its 32 frames,
# else UniAnimate_infer_long (the short config would stop at 32 frames; the harness needs them all).
RELEASE_DEFAULTS = {"config": "auto", "keys": RELEASE_KEYS, "keep_aspect": False}
SHORT, LONG = "UniAnimate_infer", "UniAnimate_infer_long"


class UniAnimateMethod(DiffusionMethod):
    name = "unianimate"
    description = "UniAnimate-style video diffusion (one UNet, reference as frame 0, pose concatenation), ours"
    paper = "https://arxiv.org/abs/2406.01188"
    code = "https://github.com/ali-vilab/UniAnimate"
    model_class = UniAnimateModel
    train_hint = ("run `make train-tiny` (or `toolkit train --method unianimate ...`) and pass --checkpoint "
                  "runs/ua-tiny, or --checkpoint published for the released weights")
    options = {
        **SAMPLING_OPTIONS,
        "long": Option(str, "long-video mode: overlapping windows fused, or a chain of segments", LONG_MODES),
        "window": Option(int, "frames per window / chain segment"),
        "precision": Option(str, "model precision (fp16 takes effect on CUDA only)", PRECISION),
        "first_frame": Option(bool, "also give the reference as the first frame"),
        "release_config": Option(str, "--checkpoint published only: the release's inference config",
                                 ("auto", *RELEASE_CONFIGS)),
        "keys": Option(str, "--checkpoint published only: the release's condition key set", ("randomref",
                                                                                            "local_image")),
        "keep_aspect": Option(bool, "--checkpoint published only: the video's aspect at the trained area"),
    }

    def __init__(self, checkpoint: str | Path | None = None, long: str | None = None, steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, device: str = "cpu",
                 first_frame: bool = False, release_config: str | None = None, keys: str | None = None,
                 keep_aspect: bool | None = None, precision: str | None = None, window: int | None = None,
                 overlap: int | None = None):
        """`release_config` ("UniAnimate_infer", "UniAnimate_infer_long" or "auto"), `keys` ("randomref" or
        "local_image") and `keep_aspect` (generate at the trained area with the nearest aspect to the video's,
        resized to it and back, from every pose, instead of the release's squash to its size from every 2nd pose)
        apply to ``--checkpoint published`` only; their defaults are the release's (`RELEASE_DEFAULTS`). `precision`
        ("fp16" or "fp32") overrides the sampling's (the release: fp16, which takes effect on CUDA only)."""
        self.openclip: OpenCLIPConditioner | None = None
        self.release: dict[str, Any] | None = None
        model = self.load_run_model(checkpoint, device)
        if model is None:  # published
            self.run_config = paper_run_config(CONFIG_DIR / "paper.toml")
            given = {"config": release_config, "keys": keys, "keep_aspect": keep_aspect}
            self.release = {**RELEASE_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
            if self.release["config"] not in ("auto", *RELEASE_CONFIGS):
                raise ValueError(f"release_config must be 'auto' or one of {sorted(RELEASE_CONFIGS)}")
            for name in ((SHORT, LONG) if self.release["config"] == "auto" else (self.release["config"],)):
                release_sampling(name, self.release["keys"])  # an unknown or unrun key set fails here
            first = SHORT if self.release["config"] == "auto" else self.release["config"]
            self.run_config["sampling"] = {**self.run_config.get("sampling", {}),
                                           **release_sampling(first, self.release["keys"])}
            converted = convert.converted_published_dir()
            self.openclip = OpenCLIPConditioner.from_file(weights.path(convert.OPENCLIP_ARTIFACT), device)
            model = convert.load_converted(converted, self.openclip.empty_text_context()).to(device).eval()
        else:
            self.openclip = load_openclip(self.run_config, device)  # a model trained on OpenCLIP embeddings
        sampling = self.sampling_table(long=long, steps=steps, guidance=guidance, seed=seed, precision=precision,
                                       window=window, overlap=overlap)
        if self.run_config.get("scheduler"):  # the schedule the run trained with ([scheduler]) samples it too
            sampling["scheduler"] = {**self.run_config["scheduler"], **sampling.get("scheduler", {})}
        self.sampling = SamplingConfig.from_dict(sampling)
        if self.sampling.precision == "fp16" and torch.device(device).type == "cuda":
            model = model.half()  # the release: model.to(torch.float16), sampled under fp16 autocast
        codec = build_codec(self.run_config.get("codec", {})).to(device)
        self.pipeline = UniAnimatePipeline(model, codec, self.sampling)
        self.set_size(codec, model)
        # poses drawn as the model was trained on them ([data] pose_draw_scale; the release: 1)
        self.pose_style = {"draw_scale": self.run_config.get("data", {}).get("pose_draw_scale", 1)}
        self.first_frame = first_frame

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """The size frames are generated at: the trained area in multiples the UNet takes, nearest the video's
        aspect."""
        return conditions.generation_size(self.size, self.multiple, height, width)

    def at_model_size(self, cond: Conditions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reference, its pose render and the driving pose renders at `model_size`, each resized (poses
        placed) without a crop, so the frames resized back to the video's size sit on its pixels."""
        h, w = self.model_size(cond.height, cond.width)
        return (conditions.fit_image(cond.reference, (h, w), stretch=True),
                cond.reference_pose_render(h, w, stretch=True, **self.pose_style),
                cond.pose_renders(h, w, stretch=True, **self.pose_style))

    def release_for(self, n_frames: int) -> str:
        """The release config a published run of n_frames takes ("auto": the short one while it covers them)."""
        assert self.release is not None
        if self.release["config"] != "auto":
            return self.release["config"]
        interval = RELEASE_CONFIGS[SHORT]["frame_interval"]
        return SHORT if -(-n_frames // interval) <= RELEASE_CONFIGS[SHORT]["max_frames"] else LONG

    def generate_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        self.pipeline.progress = self.progress
        if self.release is not None:
            yield from self._release_chunks(cond)
            return
        reference, ref_pose, poses = self.at_model_size(cond)
        to_chw = self.to_chw
        embeds = None if self.openclip is None else self.openclip.embed_image(cond.reference)
        chunks = self.pipeline.iter_frames(to_chw(reference), to_chw(ref_pose), to_chw(poses),
                                           first_frame=to_chw(reference) if self.first_frame else None,
                                           image_embeds=embeds)
        for chunk in chunks:
            yield self.at_video_size(chunk, cond)

    def _release_chunks(self, cond: Conditions) -> Iterator[np.ndarray]:
        """The published run as the release's entrance: every `frame_interval`-th pose; the reference and the
        pose renders (drawn at the video's size) squashed to the config's size with PIL's bilinear resize (or,
        with keep_aspect, fitted at the trained area); each generated frame held for `frame_interval` frames."""
        assert self.release is not None
        name = self.release_for(cond.n_frames)
        release = RELEASE_CONFIGS[name]
        self.pipeline.sampling = self.sampling = SamplingConfig.from_dict(
            {**self.run_config.get("sampling", {}), **release_sampling(name, self.release["keys"]), **self.overrides})
        interval = 1 if self.release["keep_aspect"] else release["frame_interval"]
        keep = np.arange(0, cond.n_frames, interval)
        if self.release["keep_aspect"]:
            reference, ref_pose, poses = self.at_model_size(cond)
        else:
            h, w = self.size if name == SHORT else release["size"]
            reference, ref_pose = _squash(cond.reference, (h, w)), _squash(cond.reference_pose_render(), (h, w))
            poses = np.stack([_squash(conditions.pose_images(cond.keypoints[k:k + 1], (cond.height, cond.width),
                                                             (cond.height, cond.width))[0], (h, w)) for k in keep])
        to_chw = self.to_chw
        embeds = None if self.openclip is None else self.openclip.embed_image(cond.reference)
        chunks = self.pipeline.iter_frames(to_chw(reference), to_chw(ref_pose), to_chw(poses),
                                           first_frame=to_chw(reference) if self.first_frame else None,
                                           image_embeds=embeds)
        left = cond.n_frames
        for chunk in chunks:
            frames = np.repeat(chunk, interval, axis=0)[:left]
            left -= len(frames)
            yield self.at_video_size(frames, cond)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "first_frame": self.first_frame,
                **({"release": dict(self.release)} if self.release else {})}

    def checkpoint_sha256(self) -> str:
        if self.weights is None:
            return convert.published_sha256(self.run_config["codec"]["weights"])
        own = self.own_sha256()
        used = [self.run_config.get(table, {}).get("weights") for table in ("openclip", "codec")]
        used = [name for name in used if name]  # registry files the samples also depend on
        return ";".join([f"model={own}", *(f"{n}={weights.file_sha256(n)}" for n in used)]) if used else own


def _squash(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resized to size (h, w) ignoring the aspect, with PIL's bilinear filter (the release's
    utils/transforms.Resize)."""
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))
