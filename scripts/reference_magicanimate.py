"""Run MagicAnimate's own code and ours on the same reduced-width weights and inputs, and compare.

Not part of the package and not a test: it makes the model card's table "magicanimate against the
authors' code" (baselines/magicanimate/README.md) and the golden fixture of
tests/baselines/magicanimate/test_reference.py. The authors' code (magic-research/magic-animate
@d2bc3bc) is imported from a checkout and runs unchanged, with two shims that touch no arithmetic:
``Tensor.cuda`` returns the tensor itself (the pipeline hard-codes ``.cuda()`` for the reference
latent; everything runs on the CPU in float32), and the pipeline's prompt encoding returns a fixed
"" embedding (no CLIP tokenizer files can be fetched here; the text encoder is not MagicAnimate's).

  # 1. an environment with the authors' pins (scripts/reference_magicanimate_requirements.txt)
  python scripts/reference_magicanimate.py authors OUT --checkout PATH/TO/magic-animate
  # 2. this toolkit's environment: our conversion path and model on the same files -> OUT/magicanimate_rows.json
  PYTHONPATH=. .venv/bin/python scripts/reference_magicanimate.py ours OUT
  # 3. the golden fixture (this toolkit's environment, after 1)
  PYTHONPATH=. .venv/bin/python scripts/reference_magicanimate.py fixture OUT

Weights are stand-ins: every tensor is drawn from its own CPU generator seeded by the file's seed and
the tensor's name (`standin`), so a test can regenerate them bit for bit from the names alone. The
temporal file is written as the release's is, a ``torch.save`` pickle of the 3D UNet's state dict, and
is loaded on both sides through the loaders (theirs: demo/animate.py's lines, executed from the
checkout; ours: `convert_published_file`), also for five other key layouts.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

# Reduced widths of SD 1.5's layout: 4 levels are needed, since the authors' appearance encoder prunes
# up_blocks[3].attentions[2] by index; 32 groups, since AnimateDiff's motion-module GroupNorm has 32.
SIZES = dict(block_out_channels=(32, 32, 64, 64), layers_per_block=2, norm_num_groups=32, cross_attention_dim=16,
             heads=2, motion_heads=2, motion_max_len=24, controlnet_embedding=(8, 16, 16, 32))
DOWN_2D = ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
UP_2D = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3
LATENT, IMAGE, TOKENS, FRAMES, VIDEO = 8, 64, 8, 16, 32   # latent side, image side, text tokens, window, video
TIMESTEP = 601
GUIDANCE, STEPS, SEED = 7.5, 2, 1
WINDOW_LENGTHS = (16, 40, 57)
# file -> seed of its stand-in tensors; "sd15" is the 2D UNet the 3D UNet starts from (from_pretrained_2d)
SEEDS = {"sd15": 11, "temporal_attention": 12, "appearance_encoder": 13, "densepose_controlnet": 14}
# key layouts of temporal_attention.ckpt the loaders are compared on: name -> how each key of the 3D UNet is written
LAYOUTS = ("plain", "module.", "unet.", "module.unet.", "motion-only", "unet.motion-only", "plain+extra")
AUTHORS_NPZ = "magicanimate_authors.npz"
ROWS_JSON = "magicanimate_rows.json"
FIXTURE = "magicanimate_reference.npz"
TOLERANCE = 1e-5
# Both sides run every model comparison twice. float64 shows the computations are the same (differences at
# float64 rounding); float32 is what one runs, and on these random networks float32 rounding alone (ours in float32
# vs ours in float64) reaches ~4e-4, and the release's float16 copy of the bank turns a 1e-7 difference into one
# float16 step, so its float32 rows get the tolerance FLOAT32_TOLERANCE times the largest |value| (at least 1).
DTYPES = ("float64", "float32")
FLOAT32_TOLERANCE = 1e-3
FLOAT64_TOLERANCE = 1e-9


def standin(names_shapes: dict[str, tuple[int, ...]], seed: int) -> dict:
    """A stand-in tensor for every name: N(0, 1/fan_in) matrices, 1 + N(0, 0.1) norm scales, N(0, 0.1) biases.

    Each tensor has its own generator (seed and crc32 of the name), so the same name gives the same
    tensor whatever else the file holds. AnimateDiff's second position table equals the first (the
    released tables are equal sinusoids; ours keeps one).
    """
    import torch

    out = {}
    for name, shape in names_shapes.items():
        key = name.replace(".attention_blocks.1.pos_encoder.", ".attention_blocks.0.pos_encoder.")
        g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        x = torch.randn(tuple(shape), generator=g)
        if name.endswith(".pe"):
            out[name] = x
        elif len(shape) >= 2:
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            out[name] = x / fan_in ** 0.5
        elif name.endswith("weight"):
            out[name] = 1 + 0.1 * x
        else:
            out[name] = 0.1 * x
    return out


def layout(state: dict, name: str, motion: set[str]) -> dict:
    """The 3D UNet's state dict written in one of LAYOUTS."""
    import torch

    if name == "plain":
        return dict(state)
    if name in ("module.", "unet.", "module.unet."):
        return {name + k: v for k, v in state.items()}
    if name == "motion-only":
        return {k: v for k, v in state.items() if k in motion}
    if name == "unet.motion-only":
        return {"unet." + k: v for k, v in state.items() if k in motion}
    if name == "plain+extra":   # a key the UNet lacks: the release then loads the motion modules only
        return {**state, "extra.running_step": torch.zeros(1)}
    raise ValueError(name)


def inputs() -> dict:
    """Fixed inputs of every comparison (numpy), from one generator."""
    import numpy as np

    rng = np.random.default_rng(20261207)
    return {
        "latents": rng.standard_normal((2, 4, FRAMES, LATENT, LATENT)).astype(np.float32),
        "reference_latent": rng.standard_normal((1, 4, LATENT, LATENT)).astype(np.float32),
        "text": rng.standard_normal((1, TOKENS, SIZES["cross_attention_dim"])).astype(np.float32),
        "densepose": rng.integers(0, 256, (VIDEO, IMAGE, IMAGE, 3), dtype=np.uint8),
        "source_image": rng.integers(0, 256, (IMAGE, IMAGE, 3), dtype=np.uint8),
        "timestep": np.array(TIMESTEP, dtype=np.int64),
    }


# ----------------------------------------------------------------------------------------------- authors' side
def _unet2d_config() -> dict:
    s = SIZES
    return dict(sample_size=LATENT, in_channels=4, out_channels=4, down_block_types=list(DOWN_2D),
                up_block_types=list(UP_2D), block_out_channels=list(s["block_out_channels"]),
                layers_per_block=s["layers_per_block"], norm_num_groups=s["norm_num_groups"],
                cross_attention_dim=s["cross_attention_dim"], attention_head_dim=s["heads"])


def _unet_additional_kwargs() -> dict:
    """configs/inference/inference.yaml's unet_additional_kwargs at reduced heads."""
    return dict(unet_use_cross_frame_attention=False, unet_use_temporal_attention=False, use_motion_module=True,
                motion_module_resolutions=[1, 2, 4, 8], motion_module_mid_block=False,
                motion_module_decoder_only=False, motion_module_type="Vanilla",
                motion_module_kwargs=dict(num_attention_heads=SIZES["motion_heads"], num_transformer_block=1,
                                          attention_block_types=["Temporal_Self", "Temporal_Self"],
                                          temporal_position_encoding=True,
                                          temporal_position_encoding_max_len=SIZES["motion_max_len"],
                                          temporal_attention_dim_div=1))


def _release_loader(checkout: Path):
    """demo/animate.py's temporal_attention.ckpt loading (from `torch.load` to `del`), compiled from the checkout."""
    lines = (checkout / "demo" / "animate.py").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if "motion_module_state_dict = torch.load(" in l)
    end = next(i for i in range(start, len(lines)) if "del motion_module_state_dict" in lines[i])
    block = lines[start:end + 1]
    indent = len(block[0]) - len(block[0].lstrip())
    source = "\n".join(l[indent:] for l in block).replace("self.pipeline.unet", "unet")
    return compile(source, str(checkout / "demo" / "animate.py"), "exec")


def _release_padding(checkout: Path):
    """demo/animate.py's edge padding of the driving video to a multiple of L, compiled from the checkout."""
    lines = (checkout / "demo" / "animate.py").read_text().splitlines()
    i = next(i for i, l in enumerate(lines) if "if control.shape[0] % self.L > 0:" in l)
    block = lines[i:i + 2]
    indent = len(block[0]) - len(block[0].lstrip())
    return compile("\n".join(l[indent:] for l in block), str(checkout / "demo" / "animate.py"), "exec")


def authors(out: Path, checkout: Path) -> None:
    """Build the authors' modules at reduced widths, write the release-layout files, their outputs -> OUT."""
    import numpy as np
    import torch
    from collections import OrderedDict

    checkout = checkout.resolve()
    sys.path.insert(0, str(checkout))
    torch.Tensor.cuda = lambda self, *a, **k: self   # shim: the pipeline's hard-coded .cuda(); CPU float32 here
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from magicanimate.models.appearance_encoder import AppearanceEncoderModel
    from magicanimate.models.controlnet import ControlNetModel
    from magicanimate.models.mutual_self_attention import ReferenceAttentionControl
    from magicanimate.models.unet_controlnet import UNet3DConditionModel
    from magicanimate.pipelines.context import get_context_scheduler
    from magicanimate.pipelines.pipeline_animation import AnimationPipeline

    torch.set_grad_enabled(False)
    out.mkdir(parents=True, exist_ok=True)
    files = out / "files"
    x = inputs()
    result: dict[str, np.ndarray] = {f"input_{k}": v for k, v in x.items()}

    # the 2D UNet the 3D one is inflated from (SD 1.5's place), as a diffusers folder from_pretrained_2d reads
    cfg2d = _unet2d_config()
    sd = UNet2DConditionModel(**cfg2d)
    sd.load_state_dict(standin({k: tuple(v.shape) for k, v in sd.state_dict().items()}, SEEDS["sd15"]))
    (files / "sd15" / "unet").mkdir(parents=True, exist_ok=True)
    sd.save_pretrained(files / "sd15" / "unet", safe_serialization=False)
    config_file = files / "sd15" / "unet" / "config.json"   # SD 1.5's config.json has only these keys
    config_file.write_text(json.dumps({"_class_name": "UNet2DConditionModel", "act_fn": "silu", "center_input_sample":
                                       False, "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0,
                                       "mid_block_scale_factor": 1, "norm_eps": 1e-05, **cfg2d}))
    save_file(sd.state_dict(), files / "sd15" / "unet" / "diffusion_pytorch_model.safetensors")
    kwargs3d = _unet_additional_kwargs()

    dtypes = {"dtype": torch.float32}   # what the builders below cast to: set per run

    def unet3d():
        return UNet3DConditionModel.from_pretrained_2d(str(files / "sd15"), subfolder="unet",
                                                       unet_additional_kwargs=kwargs3d).eval()

    # temporal_attention.ckpt: the whole 3D UNet (fine-tuned spatial layers and motion modules), torch.save'd
    template = unet3d()
    shapes3d = {k: tuple(v.shape) for k, v in template.state_dict().items()}
    temporal = standin(shapes3d, SEEDS["temporal_attention"])
    motion = {k for k in temporal if "motion_modules" in k}
    (files / "temporal_attention").mkdir(parents=True, exist_ok=True)
    torch.save(OrderedDict(temporal), files / "temporal_attention" / "temporal_attention.ckpt")
    loader = _release_loader(checkout)

    def load_temporal(unet, path: Path):
        scope = {"torch": torch, "OrderedDict": OrderedDict, "motion_module": str(path), "func_args": {},
                 "unet": unet}
        exec(loader, scope)
        return unet.to(dtypes["dtype"])

    # the release's other two files: diffusers folders in safetensors
    ae = AppearanceEncoderModel(**cfg2d)
    ae.load_state_dict(standin({k: tuple(v.shape) for k, v in ae.state_dict().items()}, SEEDS["appearance_encoder"]))
    ae.save_pretrained(files / "appearance_encoder", safe_serialization=True)
    cn = ControlNetModel(in_channels=4, down_block_types=list(DOWN_2D),
                         block_out_channels=list(SIZES["block_out_channels"]),
                         layers_per_block=SIZES["layers_per_block"], norm_num_groups=SIZES["norm_num_groups"],
                         cross_attention_dim=SIZES["cross_attention_dim"], attention_head_dim=SIZES["heads"],
                         conditioning_embedding_out_channels=list(SIZES["controlnet_embedding"]))
    cn.load_state_dict(standin({k: tuple(v.shape) for k, v in cn.state_dict().items()}, SEEDS["densepose_controlnet"]))
    cn.save_pretrained(files / "densepose_controlnet", safe_serialization=True)
    (files / "names.json").write_text(json.dumps({
        "temporal_attention": {k: list(v) for k, v in shapes3d.items()},
        "appearance_encoder": {k: list(v.shape) for k, v in ae.state_dict().items()},
        "densepose_controlnet": {k: list(v.shape) for k, v in cn.state_dict().items()},
        "sd15": {k: list(v.shape) for k, v in sd.state_dict().items()}}))

    def encoder():
        return AppearanceEncoderModel.from_pretrained(str(files), subfolder="appearance_encoder").eval().to(
            dtypes["dtype"])

    def controlnet():
        return ControlNetModel.from_pretrained(str(files / "densepose_controlnet")).eval().to(dtypes["dtype"])

    # each temporal-file key layout through the release's loader: the loaded UNet state
    for name in LAYOUTS:
        path = out / "layouts" / f"{name}.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(OrderedDict(layout(temporal, name, motion)), path)
        loaded = load_temporal(unet3d(), path).state_dict()
        result[f"layout_{name}"] = np.stack([loaded[k].double().sum().numpy() for k in sorted(shapes3d)])
    result["layout_keys"] = np.array(sorted(shapes3d))

    def run(dtype: torch.dtype) -> dict:
        """Every model comparison's outputs with the authors' modules in `dtype`."""
        result: dict[str, np.ndarray] = {}
        dtypes["dtype"] = dtype
        t = torch.tensor(TIMESTEP)
        text = torch.from_numpy(x["text"]).to(dtype)
        text2 = text.expand(2, -1, -1).contiguous()
        lat = torch.from_numpy(x["latents"]).to(dtype)
        ref = torch.from_numpy(x["reference_latent"]).to(dtype)
        dp = torch.from_numpy(x["densepose"][:FRAMES]).to(dtype).div(255).permute(0, 3, 1, 2)

        # (b) the DensePose ControlNet, per frame (the pipeline's call: latents (b f), cond text, scale 1)
        down, mid = controlnet()(lat[1].transpose(0, 1), t, encoder_hidden_states=text.expand(FRAMES, -1, -1),
                                 controlnet_cond=dp, conditioning_scale=1.0, return_dict=False)
        for i, d in enumerate(down):
            result[f"controlnet_down_{i}"] = d.numpy()
        result["controlnet_mid"] = mid.numpy()

        # (c) the 3D UNet with motion modules, batch 2 x 16 frames, with the ControlNet residuals (b c f h w)
        unet = load_temporal(unet3d(), files / "temporal_attention" / "temporal_attention.ckpt")
        res = [d.unsqueeze(0).transpose(1, 2).repeat(2, 1, 1, 1, 1) for d in down]
        res_mid = mid.unsqueeze(0).transpose(1, 2).repeat(2, 1, 1, 1, 1)
        result["unet"] = unet(lat, t, encoder_hidden_states=text2, down_block_additional_residuals=res,
                              mid_block_additional_residual=res_mid, return_dict=False)[0].numpy()
        result["unet_plain"] = unet(lat, t, encoder_hidden_states=text2, return_dict=False)[0].numpy()

        # (a) appearance encoder -> bank -> the denoiser reading it: [uncond, cond] as in one pipeline window
        ae = encoder()
        writer = ReferenceAttentionControl(ae, do_classifier_free_guidance=True, mode="write", batch_size=1)
        reader = ReferenceAttentionControl(unet, do_classifier_free_guidance=True, mode="read", batch_size=1)
        ae(ref.repeat(2, 1, 1, 1), t, encoder_hidden_states=text2, return_dict=False)
        for mname, module in ae.named_modules():
            if getattr(module, "bank", None):
                result[f"bank_{mname}"] = module.bank[0][1:].numpy()
        reader.update(writer)
        result["reference"] = unet(lat, t, encoder_hidden_states=text2, return_dict=False)[0].numpy()
        reader.clear()
        writer.clear()

        # (d) the pipeline: 2 DDIM steps of 32 frames in 16-frame windows, guidance 7.5; every scheduler step recorded
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 8, 8, 8],
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                            layers_per_block=1, norm_num_groups=4, sample_size=IMAGE)
        vae.load_state_dict(standin({k: tuple(v.shape) for k, v in vae.state_dict().items()}, 15))
        save_file(vae.state_dict(), files / "vae.safetensors")
        (files / "vae_config.json").write_text(json.dumps(dict(vae.config)))
        text_encoder = CLIPTextModel(CLIPTextConfig(  # a placeholder the pipeline holds; the shim below encodes ""
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=100,
            max_position_embeddings=TOKENS))
        scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear")
        pipe = AnimationPipeline(vae=vae.eval().to(dtype), text_encoder=text_encoder, tokenizer=None,
                                 unet=load_temporal(unet3d(), files / "temporal_attention" / "temporal_attention.ckpt"),
                                 controlnet=controlnet(), scheduler=scheduler)
        pipe._encode_prompt = lambda *a, **k: torch.cat([text, text])   # shim: "" for both halves, fixed embedding
        steps = []
        step = pipe.scheduler.step

        def recording_step(model_output, timestep, sample, **kw):
            o = step(model_output, timestep, sample, **kw)
            steps.append((int(timestep), model_output.clone(), sample.clone(), o.prev_sample.clone()))
            return o

        pipe.scheduler.step = recording_step
        pipe(prompt="", negative_prompt="", video_length=VIDEO, height=IMAGE, width=IMAGE, num_inference_steps=STEPS,
             guidance_scale=GUIDANCE, controlnet_condition=x["densepose"],
             generator=torch.Generator().manual_seed(SEED),
             appearance_encoder=encoder(), source_image=x["source_image"])
        for k, (tt, eps, before, after) in enumerate(steps):
            result[f"step{k}_timestep"] = np.array(tt)
            result[f"step{k}_latents"] = before.numpy()
            result[f"step{k}_guided"] = eps.numpy()
            result[f"step{k}_next"] = after.numpy()

        return result

    for dtype in DTYPES:
        result.update({f"{dtype}/{k}": v for k, v in run(getattr(torch, dtype)).items()})

    # (e) the window schedule (pipeline __call__ defaults) and demo/animate.py's padding
    uniform = get_context_scheduler("uniform")
    pad = _release_padding(checkout)
    for n in WINDOW_LENGTHS:
        scope = {"np": np, "control": np.arange(n).reshape(n, 1, 1, 1), "self": argparse.Namespace(L=16)}
        exec(pad, scope)
        padded = scope["control"].reshape(-1)
        result[f"padding_{n}"] = padded
        for m in sorted({n, len(padded)}):
            result[f"windows_{m}"] = np.array(list(uniform(0, STEPS, m, 16, 1, 4)))
    np.savez(out / AUTHORS_NPZ, **result)
    print(f"wrote {out / AUTHORS_NPZ} ({len(result)} arrays) and the release-layout files under {files}")


# ------------------------------------------------------------------------------------------------------ ours
def our_config():
    """Our MagicAnimateConfig of the same reduced widths."""
    from baselines.magicanimate.model import MagicAnimateConfig

    s = SIZES
    return MagicAnimateConfig(latent_channels=4, sample_size=LATENT, block_out_channels=s["block_out_channels"],
                              layers_per_block=s["layers_per_block"], down_block_types=DOWN_2D, up_block_types=UP_2D,
                              attention_heads=s["heads"], norm_num_groups=s["norm_num_groups"],
                              cross_attention_dim=s["cross_attention_dim"], text_tokens=TOKENS,
                              learned_text_context=False, motion_heads=s["motion_heads"],
                              motion_max_seq_length=s["motion_max_len"],
                              controlnet_embedding_channels=s["controlnet_embedding"])


def our_model(files: Path, text, config=None):
    """Our model from the release-layout files under `files`, through our conversion path."""
    import torch
    from safetensors.torch import load_file

    from baselines.magicanimate import convert

    config = config or our_config()
    converted = convert.convert_published_file(files / "temporal_attention" / "temporal_attention.ckpt",
                                               files / "converted", config)
    return convert.assemble(config, load_file(str(converted / "model.safetensors")),
                            load_file(str(files / "appearance_encoder" / "diffusion_pytorch_model.safetensors")),
                            load_file(str(files / "densepose_controlnet" / "diffusion_pytorch_model.safetensors")),
                            lambda: load_file(str(files / "sd15" / "unet" / "diffusion_pytorch_model.safetensors")),
                            torch.as_tensor(text)).eval()


def our_outputs(model, x: dict, vae=None, dtype: str = "float32", steps: int = STEPS) -> dict:
    """Our outputs for every comparison, keyed as the authors' npz; `model` and `vae` are cast to `dtype`.
    Without `vae` the pipeline is not run; `steps` < STEPS stops it after that many of its STEPS steps."""
    import numpy as np
    import torch

    from baselines.magicanimate.pipeline import MagicAnimatePipeline, SamplingConfig, context_windows, pad_frames

    out: dict[str, np.ndarray] = {}
    dt = getattr(torch, dtype)
    model = model.to(dt)
    with torch.no_grad():
        t = torch.tensor([TIMESTEP])
        lat = torch.from_numpy(x["latents"]).to(dt)
        dp = torch.from_numpy(x["densepose"][:FRAMES]).to(dt).div(255).permute(0, 3, 1, 2)
        down, mid = model.control(lat[1:], t, dp[None])
        for i, d in enumerate(down):
            out[f"controlnet_down_{i}"] = d.numpy()
        out["controlnet_mid"] = mid.numpy()
        both = tuple(d.unflatten(0, (1, -1)).transpose(1, 2).repeat(2, 1, 1, 1, 1).transpose(1, 2).flatten(0, 1)
                     for d in down)
        mid2 = mid.unflatten(0, (1, -1)).transpose(1, 2).repeat(2, 1, 1, 1, 1).transpose(1, 2).flatten(0, 1)
        t2 = t.expand(2)
        out["unet"] = model.denoise(lat, t2, control=(both, mid2)).numpy()
        out["unet_plain"] = model.denoise(lat, t2).numpy()
        bank = model.encode_reference(torch.from_numpy(x["reference_latent"]).to(dt), t)
        for name, tokens in bank.items():
            out[f"bank_{name.removesuffix('.attn1')}"] = tokens.numpy()
        out["reference"] = model.denoise(lat, t2, bank, torch.tensor([False, True])).numpy()
        if vae is not None:
            pipe = MagicAnimatePipeline(model, vae.to(dt), SamplingConfig(steps=STEPS, guidance=GUIDANCE, seed=SEED))
            reference = torch.from_numpy(x["source_image"]).permute(2, 0, 1)
            densepose = torch.from_numpy(x["densepose"]).permute(0, 3, 1, 2)
            for k, (tt, latents, guided, nxt) in enumerate(pipe.trace(reference, densepose, dtype=dt)):
                out[f"step{k}_timestep"] = np.array(tt)
                out[f"step{k}_latents"], out[f"step{k}_guided"], out[f"step{k}_next"] = latents, guided, nxt
                if k + 1 == steps:
                    break
    for n in WINDOW_LENGTHS:
        padded = pad_frames(np.arange(n), 16)
        out[f"padding_{n}"] = padded
        for m in sorted({n, len(padded)}):
            out[f"windows_{m}"] = np.array(context_windows(m, 16, 4))
    return out


def _vae(files: Path):
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    from toolkit.models.codec import VAECodec

    cfg = {k: v for k, v in json.loads((files / "vae_config.json").read_text()).items() if not k.startswith("_")}
    vae = AutoencoderKL.from_config(cfg)
    vae.load_state_dict(load_file(str(files / "vae.safetensors")))
    return VAECodec(vae.eval(), scaling_factor=0.18215, sample=False)


COMPARISONS = {
    "(a) appearance encoder bank, 10 attention inputs": "bank_",
    "(a) denoiser reading the bank, [uncond, cond] x 16 frames": "reference",
    "(b) DensePose ControlNet, 12 down + mid residuals, 16 frames": "controlnet_",
    "(c) 3D UNet + motion modules, 2 x 16 frames, with ControlNet residuals": "unet",
    "(c) 3D UNet + motion modules, 2 x 16 frames, no residuals": "unet_plain",
    "(d) pipeline: initial latents (tiled noise), 32 frames": "step0_latents",
    "(d) pipeline step 1: guided noise, 3 windows averaged": "step0_guided",
    "(d) pipeline step 1: next latents": "step0_next",
    "(d) pipeline step 2 (last): latents out": "step1_next",
}


def rows(theirs: dict, mine: dict) -> list[dict]:
    """One row per comparison and dtype: the largest |difference| over its arrays (exact for the schedules)."""
    import numpy as np

    out = []
    for dtype in DTYPES:
        tolerance = FLOAT64_TOLERANCE if dtype == "float64" else FLOAT32_TOLERANCE
        for title, key in COMPARISONS.items():
            keys = [k for k in theirs if k.startswith(f"{dtype}/") and
                    (k == f"{dtype}/{key}" or (key.endswith("_") and k.startswith(f"{dtype}/{key}")))]
            if not keys or any(k not in mine for k in keys):
                raise KeyError(f"{title}: arrays {keys} missing on one side ({sorted(set(keys) - set(mine))})")
            diff = max(float(np.abs(np.asarray(mine[k], np.float64) - theirs[k]).max()) for k in keys)
            scale = max(1.0, max(float(np.abs(theirs[k]).max()) for k in keys))
            out.append({"comparison": title, "max_abs_diff": diff, "tolerance": tolerance * scale, "dtype": dtype})
    for n in WINDOW_LENGTHS:
        keys = [f"padding_{n}"] + [k for k in theirs if k.startswith("windows_") and int(k[8:]) in
                                   {n, len(theirs[f"padding_{n}"])}]
        same = all(np.array_equal(theirs[k], mine[k]) for k in keys)
        out.append({"comparison": f"(e) {n} frames: edge padding to {len(theirs[f'padding_{n}'])} and its windows "
                                  "(exact)", "max_abs_diff": 0.0 if same else 1.0, "tolerance": 0.0,
                    "dtype": "int64"})
    return out


def layout_rows(out: Path, theirs: dict) -> list[dict]:
    """The loaded UNet for each temporal-file layout: per tensor sum, ours (converted) vs the release's loader."""
    import numpy as np
    from safetensors.torch import load_file

    from baselines.magicanimate import convert

    config = our_config()
    sd15_file = out / "files" / "sd15" / "unet" / "diffusion_pytorch_model.safetensors"

    def sd15() -> dict:
        return load_file(str(sd15_file))

    names = [str(k) for k in theirs["layout_keys"]]
    out_rows = []
    for name in LAYOUTS:
        published = convert.load_published("temporal_attention", out / "layouts" / f"{name}.ckpt")
        report = convert.release_unet_state(published, config)[1]
        full = convert.unet_with_sd15(convert.convert_state_dict("temporal_attention", published, config), sd15, config)
        sums = []
        for key in names:
            ours = convert.map_name("temporal_attention", key)
            if ours is None:   # the second position table: equal to the first one, which we keep
                ours = convert.map_name("temporal_attention", key.replace(".attention_blocks.1.",
                                                                          ".attention_blocks.0."))
            sums.append(full[ours].double().sum().item())
        diff = float(np.abs(np.array(sums) - theirs[f"layout_{name}"]).max())
        out_rows.append({"comparison": f"(f) temporal_attention.ckpt, keys '{name}': loaded UNet, per-tensor sums "
                                       f"({len(report['ignored'])} keys ignored, as the release does)",
                         "max_abs_diff": diff, "tolerance": TOLERANCE, "dtype": "float32"})
    return out_rows


def ours(out: Path) -> None:
    """Our conversion path and model on the authors' files and inputs -> OUT/magicanimate_rows.json."""
    import numpy as np
    import torch

    torch.set_grad_enabled(False)
    theirs = dict(np.load(out / AUTHORS_NPZ))
    x = {k.removeprefix("input_"): v for k, v in theirs.items() if k.startswith("input_")}
    model, vae = our_model(out / "files", x["text"]), _vae(out / "files")
    mine = {}
    for dtype in DTYPES:
        mine.update({k if k.startswith(("padding_", "windows_")) else f"{dtype}/{k}": v
                     for k, v in our_outputs(model, x, vae, dtype).items()})
    result = rows(theirs, mine) + layout_rows(out, theirs)
    (out / ROWS_JSON).write_text(json.dumps(result, indent=1) + "\n")
    for r in result:
        ok = "ok " if r["max_abs_diff"] <= r["tolerance"] else "BAD"
        print(f"{ok} {r['max_abs_diff']:.3g} (tol {r['tolerance']:g}) {r['comparison']}")


# what the golden fixture keeps of the authors' float64 outputs (with the inputs and the files' tensor names)
FIXTURE_KEYS = ("unet", "unet_plain", "reference", "controlnet_mid", "step0_latents", "step0_guided")


def fixture(out: Path, to: Path) -> None:
    """The golden fixture: inputs, the authors' float64 outputs (FIXTURE_KEYS and the banks), the tensor names and
    shapes of each release-layout file and the VAE config; `standin` regenerates the weights from the names."""
    import numpy as np

    theirs = dict(np.load(out / AUTHORS_NPZ))
    keep = {k: v for k, v in theirs.items() if k.startswith("input_")}
    keep.update({k: v for k, v in theirs.items() if k.startswith("float64/") and
                 (k.removeprefix("float64/") in FIXTURE_KEYS or k.startswith("float64/bank_"))})
    keep.update({k: v for k, v in theirs.items() if k.startswith(("padding_", "windows_"))})
    keep["names_json"] = np.array((out / "files" / "names.json").read_text())
    keep["vae_config_json"] = np.array((out / "files" / "vae_config.json").read_text())
    to.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(to, **keep)
    print(f"wrote {to} ({to.stat().st_size / 1e6:.2f} MB, {len(keep)} arrays)")


def write_release_files(files: Path, names: dict, vae_config: dict) -> None:
    """The release-layout files of the comparison, regenerated from their tensor names (`standin`)."""
    import torch
    from safetensors.torch import save_file

    (files / "temporal_attention").mkdir(parents=True, exist_ok=True)
    torch.save(standin(names["temporal_attention"], SEEDS["temporal_attention"]),
               files / "temporal_attention" / "temporal_attention.ckpt")
    for file in ("appearance_encoder", "densepose_controlnet"):
        (files / file).mkdir(parents=True, exist_ok=True)
        save_file(standin(names[file], SEEDS[file]), files / file / "diffusion_pytorch_model.safetensors")
    (files / "sd15" / "unet").mkdir(parents=True, exist_ok=True)
    save_file(standin(names["sd15"], SEEDS["sd15"]), files / "sd15" / "unet" / "diffusion_pytorch_model.safetensors")
    from diffusers import AutoencoderKL

    cfg = {k: v for k, v in vae_config.items() if not k.startswith("_")}
    shapes = {k: tuple(v.shape) for k, v in AutoencoderKL.from_config(cfg).state_dict().items()}
    save_file(standin(shapes, 15), files / "vae.safetensors")
    (files / "vae_config.json").write_text(json.dumps(vae_config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="phase", required=True)
    p = sub.add_parser("authors", help="run the authors' code (their environment)")
    p.add_argument("out", type=Path)
    p.add_argument("--checkout", type=Path, required=True)
    p = sub.add_parser("ours", help="run our conversion and model on the same files")
    p.add_argument("out", type=Path)
    p = sub.add_parser("fixture", help="write the golden fixture of tests/baselines/magicanimate/test_reference.py")
    p.add_argument("out", type=Path)
    p.add_argument("--to", type=Path, default=Path("tests/baselines/magicanimate/fixtures") / FIXTURE)
    args = parser.parse_args()
    if args.phase == "authors":
        authors(args.out, args.checkout)
    elif args.phase == "ours":
        ours(args.out)
    else:
        fixture(args.out, args.to)


if __name__ == "__main__":
    main()
