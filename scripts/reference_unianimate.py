"""Check baselines/unianimate against the authors' released code (ali-vilab/UniAnimate), side by side.

Not part of the package and not a test: it makes the model card's table "ours against the release". The
published weights (5.7 GB) and a GPU are not needed: the authors' ``UNetSD_UniAnimate`` is built from their
checkout at reduced widths, every parameter is set from a fixed, platform-independent formula (many of their
layers start at zero, which would make the comparison trivial), and its state dict is saved as the release
lays it out (a flat dict in a ``torch.save`` .pth). Our side converts that .pth through the converter that
``toolkit weights convert unianimate-16f-32f`` runs and evaluates our model and sampler on the same inputs.

  # 1. the authors' environment: their modules from their checkout, nothing from this project
  python3.11 -m venv /tmp/venv-ua && /tmp/venv-ua/bin/pip install -r scripts/reference_unianimate_requirements.txt
  /tmp/venv-ua/bin/python scripts/reference_unianimate.py authors OUT --checkout /tmp/ua-checkout
  # 2. this toolkit's environment: our model and sampler on the same weights and inputs -> OUT/unianimate_rows.json
  PYTHONPATH=. .venv/bin/python scripts/reference_unianimate.py ours OUT
  # 3. (optional) the small golden fixture for tests/baselines/unianimate/test_reference.py
  PYTHONPATH=. .venv/bin/python scripts/reference_unianimate.py fixture OUT

What runs of theirs: ``tools/modules/unet/unet_unianimate.py`` (the UNet, with their ``util.py``),
``tools/modules/diffusions/diffusion_ddim.py`` (``DiffusionDDIM.ddim_sample_loop`` and
``DiffusionDDIMLong.ddim_sample_loop`` with its window schedule) over their ``schedules.py``. Their package
``__init__`` files import everything (datasets, CLIP, autoencoder), so the four packages on the import path
are registered empty and only these files are imported from the checkout, unmodified. Two shims, both
stated here: ``xformers`` (not installable for CPU with a current torch) provides
``xformers.ops.memory_efficient_attention`` as the attention it computes, softmax(q k^T / sqrt(d)) v in
float32 (their ``BasicTransformerBlock`` hard-codes the xformers class; there is no non-xformers switch), and
``open_clip`` is an empty module (``util.py`` imports it at the top but the UNet never uses it).

What of theirs is re-stated here, because it lives in the inference entrance that needs CUDA, pynvml and
the data files: the noise prior (tools/inferences/inference_unianimate_entrance.py: noise, plus 0.1 x
per-frame offset noise, then ``diffusion.q_sample(ref_latent, 949, noise)``; the long entrance: q_sample at
939 first, the offset noise after) and the model inputs (``local_image``: the reference in [0, 1] repeated
over frames; ``dwpose``: the reference pose as frame 0 before the driving poses; ``randomref``: the
reference latent repeated over frames; ``image``: the CLIP embedding as (B, 1, D)). The release draws the
start noise from torch's global CPU generator and the offset noise on the GPU; here both come from the CPU
generator seeded with the config's seed (11 short, 7 long), which is what our sampler's generator draws.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
import zlib
from pathlib import Path

# The reduced UNet: the release's structure (ResBlocks with temporal convs, spatial and temporal transformers,
# a temporal transformer after conv_in, attention at every level but the lowest, the middle block) at width 32.
# context_dim stays 1024 because the release hard-codes 1024 in its decoder's cross-attention.
DIM, MULT, HEAD_DIM, NUM_HEADS, RES_BLOCKS, CONCAT_DIM = 32, (1, 2), 16, 8, 2, 8
CONTEXT_DIM, NUM_TOKENS, TEXT_TOKENS = 1024, 2, 3
LATENT = (6, 4)                       # latent (h, w); poses and images at 8x: 48 x 32
PIXELS = (LATENT[0] * 8, LATENT[1] * 8)
FRAMES, LONG_FRAMES = 4, 11           # frames of the UNet / short-loop inputs, of the long loop
CONTEXT_SIZE, CONTEXT_OVERLAP = 4, 1  # the long loop's windows at reduced size (release: 32, 8)
DDIM_STEPS = 4                        # ddim_timesteps: t = 751, 501, 251, 1 (3 or 9 would start at 999: NaN)
GUIDE = 2.5
T_UNET = 500
SHORT = {"config": "UniAnimate_infer", "seed": 11, "prior_t": 949, "offset": "before"}
LONG = {"config": "UniAnimate_infer_long", "seed": 7, "prior_t": 939, "offset": "after"}
WINDOW_FRAMES = (56, 57, 100)         # the release's window schedule: context 32, stride 1, overlap 8
TOLERANCE = 1e-5
# float32 loops: one UNet call differs from theirs by float32 rounding (~3e-6); guidance 2.5 and the steps
# amplify it (the float64 rows below show the loops themselves agree to ~1e-13)
TOLERANCE_LOOP = 5e-5
# The same UNet call and loops again with both models and all inputs in float64 (the timestep embedding is
# float32 on both sides, as in the release): what is left is float64 rounding.
F64_ROWS = ("unet_randomref", "loop_short_local_image", "loop_short_randomref", "loop_long_randomref")
TOLERANCE_F64 = 1e-10
VIDEO_COMPOSITIONS = ["image", "local_image", "dwpose", "randomref", "randomref_pose"]
KEY_SETS = {"local_image": ["image", "local_image", "dwpose"], "randomref": ["image", "randomref", "dwpose"]}


def param_values(name: str, shape: tuple[int, ...]):
    """Deterministic values for one parameter, the same on any machine and numpy version (splitmix64 of the
    element index, seeded by the name's CRC32): weights uniform in +-1/sqrt(fan_in), 1-D weights (norms)
    1 +- 0.2, biases +- 0.1. Returns a float32 numpy array."""
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64(zlib.crc32(name.encode())) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = (x >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2 - 1
    if len(shape) >= 2:
        values = u / np.sqrt(np.prod(shape[1:]))
    elif name.endswith("weight"):
        values = 1 + 0.2 * u
    else:
        values = 0.1 * u
    return values.reshape(shape).astype(np.float32)


def _inputs():
    """The fixed inputs (float32 numpy), from a seeded CPU generator."""
    import torch

    g = torch.Generator().manual_seed(1234)
    h, w = LATENT
    ref_latent = torch.randn(1, 4, h, w, generator=g)
    return {
        "x": torch.randn(1, 4, FRAMES, h, w, generator=g).numpy(),
        "reference_latent": ref_latent.numpy(),
        "reference": torch.rand(1, 3, *PIXELS, generator=g).numpy(),
        "reference_pose": torch.rand(1, 3, *PIXELS, generator=g).numpy(),
        "poses": torch.rand(1, 3, LONG_FRAMES, *PIXELS, generator=g).numpy(),
        "image": torch.randn(1, CONTEXT_DIM, generator=g).numpy(),
        "zero_y": torch.randn(1, TEXT_TOKENS, CONTEXT_DIM, generator=g).numpy(),
    }


# ---------------------------------------------------------------------------------------------- authors' side

def _install_shims() -> None:
    """xformers.ops.memory_efficient_attention as the exact attention it computes; an empty open_clip."""
    import torch

    def memory_efficient_attention(q, k, v, attn_bias=None, op=None):
        if attn_bias is not None:
            raise NotImplementedError("the shim covers attn_bias=None, the only call the UNet makes")
        dtype = torch.promote_types(q.dtype, torch.float32)  # half inputs in float32, float64 stays float64
        scores = torch.matmul(q.to(dtype), k.to(dtype).transpose(-1, -2)) * q.shape[-1] ** -0.5
        return torch.matmul(scores.softmax(dim=-1), v.to(dtype)).to(q.dtype)

    xformers = types.ModuleType("xformers")
    ops = types.ModuleType("xformers.ops")
    ops.memory_efficient_attention = memory_efficient_attention
    xformers.ops = ops
    sys.modules.update({"xformers": xformers, "xformers.ops": ops, "open_clip": types.ModuleType("open_clip")})


def _import_authors(checkout: Path):
    """Their UNet and diffusion modules from the checkout, without running their package __init__ files."""
    import importlib

    sys.path.insert(0, str(checkout))
    _install_shims()
    for package in ("tools", "tools.modules", "tools.modules.unet", "tools.modules.diffusions"):
        module = types.ModuleType(package)
        module.__path__ = [str(checkout / package.replace(".", "/"))]
        sys.modules[package] = module
    unet = importlib.import_module("tools.modules.unet.unet_unianimate")
    ddim = importlib.import_module("tools.modules.diffusions.diffusion_ddim")
    return unet, ddim


def _authors_diffusion(ddim, long: bool):
    """Their DiffusionDDIM / DiffusionDDIMLong with UniAnimate_infer(_long).yaml's Diffusion table."""
    cls = ddim.DiffusionDDIMLong if long else ddim.DiffusionDDIM
    return cls(schedule="linear_sd", schedule_param={"num_timesteps": 1000, "init_beta": 0.00085,
                                                     "last_beta": 0.0120, "zero_terminal_snr": True},
               mean_type="v", loss_type="mse", var_type="fixed_small", rescale_timesteps=False,
               noise_strength=0.1)


def _windows_of(ddim, n_frames: int) -> list[list[int]]:
    """The windows their DiffusionDDIMLong.p_mean_variance denoises for n_frames at the long config's context
    (32, stride 1, overlap 8), read off a recording model: frame i of xt holds the value i."""
    import torch

    seen: list[list[int]] = []

    def model(x, t, **kwargs):
        seen.append([int(round(v)) for v in x[0, 0, :, 0, 0].tolist()])
        return torch.zeros_like(x)

    xt = torch.arange(n_frames, dtype=torch.float64).view(1, 1, n_frames, 1, 1).repeat(1, 4, 1, 1, 1)
    kwargs = [{"dwpose": torch.zeros(1, 3, n_frames + 1, 1, 1)}, {}]
    diffusion = _authors_diffusion(ddim, long=True)
    diffusion.p_mean_variance(xt, torch.tensor([500]), model, kwargs, guide_scale=GUIDE, context_size=32,
                              context_stride=1, context_overlap=8)
    return seen[::2]  # conditional and unconditional calls see the same window


def authors(out: Path, checkout: Path) -> None:
    import numpy as np
    import torch
    from easydict import EasyDict

    unet_mod, ddim = _import_authors(checkout)
    torch.set_grad_enabled(False)
    inputs = _inputs()
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    cfg = EasyDict(video_compositions=VIDEO_COMPOSITIONS, resolution=[PIXELS[1], PIXELS[0]])
    model = unet_mod.UNetSD_UniAnimate(
        config=cfg, in_dim=4, dim=DIM, y_dim=CONTEXT_DIM, context_dim=CONTEXT_DIM, out_dim=4, dim_mult=list(MULT),
        num_heads=NUM_HEADS, head_dim=HEAD_DIM, num_res_blocks=RES_BLOCKS, attn_scales=[1.0], dropout=0.1,
        temporal_attention=True, num_tokens=NUM_TOKENS, temporal_attn_times=1, use_checkpoint=True,
        use_fps_condition=False, use_sim_mask=False, concat_dim=CONCAT_DIM, zero_y=t["zero_y"])
    state = model.state_dict()
    for name, tensor in state.items():
        tensor.copy_(torch.from_numpy(param_values(name, tuple(tensor.shape))))
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), out / "unianimate_authors.pth")
    results = _authors_results(model, ddim, {k: torch.from_numpy(v) for k, v in inputs.items()})
    model.double()
    model.zero_y = model.zero_y.double()
    # their sinusoidal_embedding returns float32 whatever the model's dtype (fine under their fp16 autocast):
    # cast it to the model's dtype on the way into time_embed, as diffusers' embedding does
    model.time_embed.register_forward_pre_hook(lambda module, args: tuple(a.double() for a in args))
    doubled = {k: torch.from_numpy(v).double() for k, v in inputs.items()}
    results.update({f"{k}_f64": v for k, v in _authors_results(model, ddim, doubled).items() if k in F64_ROWS})
    results["long_windows"] = np.array(json.dumps(_windows_of_small(ddim)))
    for n_frames in WINDOW_FRAMES:
        results[f"windows_{n_frames}"] = np.array(json.dumps(_windows_of(ddim, n_frames)))
    checksums = {name: float(tensor.double().abs().sum()) for name, tensor in state.items()}
    np.savez(out / "unianimate_authors.npz", **inputs, **results,
             keys=np.array(json.dumps({k: list(v.shape) for k, v in state.items()})),
             checksums=np.array(json.dumps(checksums)), torch_version=np.array(torch.__version__))
    print(f"wrote {out / 'unianimate_authors.npz'} and {out / 'unianimate_authors.pth'} ({len(state)} tensors)")


def _authors_results(model, ddim, t: dict) -> dict:
    """Their UNet calls, noise priors and DDIM loops on the inputs `t` (in the inputs' dtype)."""
    import torch

    f = FRAMES
    local_image = t["reference"][:, :, None].repeat(1, 1, f, 1, 1)
    dwpose = torch.cat([t["reference_pose"][:, :, None], t["poses"][:, :, :f]], dim=2)
    randomref = t["reference_latent"][:, :, None].repeat(1, 1, f, 1, 1)
    full = {"image": t["image"][:, None], "local_image": local_image, "dwpose": dwpose, "randomref": randomref}
    results: dict = {}
    step = torch.tensor([T_UNET])
    for key_set, keys in KEY_SETS.items():
        results[f"unet_{key_set}"] = model(t["x"], step, **{k: full[k] for k in keys}).numpy()
    results["unet_uncond"] = model(t["x"], step, y=None, local_image=None, image=None, randomref=None,
                                   dwpose=None).numpy()

    def noise_prior(mode: dict, n: int) -> torch.Tensor:
        # the entrances' lines: global CPU generator reseeded per video, noise, offset noise, q_sample
        diffusion = _authors_diffusion(ddim, long=mode is LONG)
        torch.manual_seed(mode["seed"])
        ref = t["reference_latent"][:, :, None].repeat(1, 1, n, 1, 1)
        noise = torch.randn([1, 4, n, *LATENT]).to(ref.dtype)
        if mode["offset"] == "before":
            noise = noise + 0.1 * torch.randn(1, 4, n, 1, 1).to(ref.dtype)
            return diffusion.q_sample(ref.clone(), mode["prior_t"], noise=noise)
        noise = diffusion.q_sample(ref.clone(), mode["prior_t"], noise=noise)
        return noise + 0.1 * torch.randn(1, 4, n, 1, 1).to(ref.dtype)

    for key_set, keys in KEY_SETS.items():
        xt = noise_prior(SHORT, f)
        results[f"prior_short_{key_set}"] = xt.numpy()
        kwargs = [{k: full[k] for k in keys}, {k: None for k in keys}]
        results[f"loop_short_{key_set}"] = _authors_diffusion(ddim, long=False).ddim_sample_loop(
            noise=xt, model=model, model_kwargs=kwargs, guide_scale=GUIDE, ddim_timesteps=DDIM_STEPS,
            eta=0.0).numpy()
    n = LONG_FRAMES
    xt = noise_prior(LONG, n)
    results["prior_long_randomref"] = xt.numpy()
    long_full = {"image": t["image"][:, None], "randomref": t["reference_latent"][:, :, None].repeat(1, 1, n, 1, 1),
                 "dwpose": torch.cat([t["reference_pose"][:, :, None], t["poses"]], dim=2)}
    kwargs = [dict(long_full), {k: None for k in long_full}]
    results["loop_long_randomref"] = _authors_diffusion(ddim, long=True).ddim_sample_loop(
        noise=xt, context_size=CONTEXT_SIZE, context_stride=1, context_overlap=CONTEXT_OVERLAP, model=model,
        model_kwargs=kwargs, guide_scale=GUIDE, ddim_timesteps=DDIM_STEPS, eta=0.0, context_batch_size=1).numpy()
    return results


def _windows_of_small(ddim) -> list[list[int]]:
    """The windows of the reduced long loop (LONG_FRAMES frames, context CONTEXT_SIZE, overlap CONTEXT_OVERLAP)."""
    import torch

    seen: list[list[int]] = []

    def model(x, t, **kwargs):
        seen.append([int(round(v)) for v in x[0, 0, :, 0, 0].tolist()])
        return torch.zeros_like(x)

    n = LONG_FRAMES
    xt = torch.arange(n, dtype=torch.float64).view(1, 1, n, 1, 1).repeat(1, 4, 1, 1, 1)
    _authors_diffusion(ddim, long=True).p_mean_variance(
        xt, torch.tensor([500]), model, [{"dwpose": torch.zeros(1, 3, n + 1, 1, 1)}, {}], guide_scale=GUIDE,
        context_size=CONTEXT_SIZE, context_stride=1, context_overlap=CONTEXT_OVERLAP)
    return seen[::2]


# ------------------------------------------------------------------------------------------------- our side

def reduced_config():
    """Our UniAnimateConfig for the authors' reduced UNet above."""
    from baselines.unianimate.model import UniAnimateConfig

    return UniAnimateConfig(
        latent_channels=4, sample_size=LATENT, block_out_channels=tuple(DIM * m for m in MULT),
        layers_per_block=RES_BLOCKS, attention_head_dim=HEAD_DIM,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        norm_num_groups=32, cross_attention_dim=CONTEXT_DIM, concat_dim=CONCAT_DIM, pose_downsample=8,
        pose_channels=(4 * CONCAT_DIM, 4 * CONCAT_DIM), reference_channels=(4 * CONCAT_DIM, 4 * CONCAT_DIM),
        adapter_heads=2, adapter_layers=1, adapter_dropout=0.05, num_tokens=NUM_TOKENS, image_embed_dim=CONTEXT_DIM,
        text_tokens=TEXT_TOKENS, learned_text_context=False, local_image=True)


def our_results(model, data: dict, keys: tuple[str, ...] | None = None) -> dict:
    """Our model and sampler on the authors' inputs: the arrays named `keys` (default: all of COMPARISONS)."""
    import numpy as np
    import torch

    from baselines.unianimate.pipeline import (
        RELEASE_COMMON, SamplingConfig, UniAnimatePipeline, make_sampler, release_sampling, window_starts)

    keys = tuple(COMPARISONS) if keys is None else keys
    dtype = next(model.parameters()).dtype
    t = {k: torch.from_numpy(np.asarray(data[k])).to(dtype) for k in
         ("x", "reference_latent", "reference", "reference_pose", "poses", "image")}
    full = {"reference_latent": t["reference_latent"], "reference_pose": t["reference_pose"],
            "image_embeds": t["image"], "local_image": t["reference"]}

    def pipeline(config: str, key_set: str) -> UniAnimatePipeline:
        values = {**RELEASE_COMMON, **release_sampling(config, key_set), "steps": DDIM_STEPS, "precision": "fp32"}
        if config == LONG["config"]:
            values.update(window=CONTEXT_SIZE, overlap=CONTEXT_OVERLAP)
        return UniAnimatePipeline(model, None, SamplingConfig.from_dict(values))

    out: dict = {}
    with torch.no_grad():
        for key in keys:
            kind, _, rest = key.partition("_")
            if key == "unet_uncond":
                out[key] = model(t["x"], torch.tensor([T_UNET]), None, None, None, None, local_image=None).numpy()
            elif kind == "unet":
                cond = UniAnimatePipeline(model, None, SamplingConfig(conditions=rest)).model_conditions(full)
                out[key] = model(t["x"], torch.tensor([T_UNET]), t["poses"][:, :, :FRAMES], **cond).numpy()
            elif kind in ("prior", "loop"):
                mode, _, key_set = rest.partition("_")
                pipe = pipeline((SHORT if mode == "short" else LONG)["config"], key_set)
                s, n = pipe.sampling, FRAMES if mode == "short" else LONG_FRAMES
                generator = torch.Generator().manual_seed(s.seed)
                if kind == "prior":
                    out[key] = pipe.start_latents(make_sampler(s, s.steps, "cpu"), t["reference_latent"], n,
                                                  generator).numpy()
                else:
                    out[key] = pipe._denoise(t["poses"][:, :, :n], full, None, generator, s.steps, s.guidance,
                                             windowed=mode == "long").numpy()
            elif key == "long_windows":
                out[key] = [list(range(a, a + CONTEXT_SIZE))
                            for a in window_starts(LONG_FRAMES, CONTEXT_SIZE, CONTEXT_OVERLAP)]
            elif kind == "windows":
                out[key] = [list(range(a, a + 32)) for a in window_starts(int(rest), 32, 8)]
    return out


COMPARISONS = {
    "unet_local_image": "UNet, conditional {image, local_image, dwpose} (UniAnimate_infer key set 1)",
    "unet_randomref": "UNet, conditional {image, randomref, dwpose} (key set 2)",
    "unet_uncond": "UNet, unconditional (every condition None)",
    "prior_short_local_image": "noise prior, UniAnimate_infer (seed 11, offset before q_sample at t=949)",
    "loop_short_local_image": (f"DDIM loop, UniAnimate_infer, {{image, local_image, dwpose}}, "
                               f"ddim_timesteps={DDIM_STEPS}"),
    "loop_short_randomref": f"DDIM loop, UniAnimate_infer, {{image, randomref, dwpose}}, ddim_timesteps={DDIM_STEPS}",
    "prior_long_randomref": "noise prior, UniAnimate_infer_long (seed 7, q_sample at t=939, offset after)",
    "loop_long_randomref": (f"DDIM loop, UniAnimate_infer_long, {LONG_FRAMES} frames in windows of {CONTEXT_SIZE} "
                            f"overlapping {CONTEXT_OVERLAP}, ddim_timesteps={DDIM_STEPS}"),
    "long_windows": f"window schedule, {LONG_FRAMES} frames, context {CONTEXT_SIZE}, overlap {CONTEXT_OVERLAP}",
    **{f"windows_{n}": f"window schedule, {n} frames, context 32, overlap 8" for n in WINDOW_FRAMES},
}


def compare(theirs: dict, ours: dict) -> list[dict]:
    """One row per comparison: the largest absolute difference (frame indices for the window schedules: 0 when
    every window is the same list of frames, else inf)."""
    import numpy as np

    rows = []
    for key, label in COMPARISONS.items():
        a, b = theirs[key], ours[key]
        if "windows" in key:
            diff = 0.0 if json.loads(str(a)) == b else float("inf")
        else:
            diff = float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())
        tolerance = 0.0 if "windows" in key else TOLERANCE_LOOP if key.startswith("loop") else TOLERANCE
        rows.append({"comparison": label, "max_abs_diff": diff, "tolerance": tolerance, "dtype": "float32"})
    for key in F64_ROWS:
        diff = float(np.abs(theirs[f"{key}_f64"] - ours[f"{key}_f64"]).max())
        rows.append({"comparison": COMPARISONS[key], "max_abs_diff": diff,
                     "tolerance": TOLERANCE_F64, "dtype": "float64"})
    return rows


def load_authors_model(directory: Path, zero_y):
    """The authors' .pth through our conversion, as `toolkit weights convert` runs it, then `load_converted`."""
    import torch

    from baselines.unianimate import convert

    converted = convert.convert_published_file(directory / "unianimate_authors.pth", directory / "converted",
                                               reduced_config())
    return convert.load_converted(converted, torch.from_numpy(zero_y)).eval()


def ours(out: Path) -> list[dict]:
    import numpy as np

    data = dict(np.load(out / "unianimate_authors.npz"))
    model = load_authors_model(out, data["zero_y"])
    results = our_results(model, data)
    results.update({f"{k}_f64": v for k, v in our_results(model.double(), data, F64_ROWS).items()})
    rows = compare(data, results)
    (out / "unianimate_rows.json").write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        print(f"{row['max_abs_diff']:10.3g}  <= {row['tolerance']:<6g} {row['dtype']}  {row['comparison']}")
    return rows


FIXTURE_KEYS = ("x", "reference_latent", "reference", "reference_pose", "poses", "image", "zero_y", "keys",
                "checksums", *COMPARISONS, *(f"{k}_f64" for k in F64_ROWS))


def fixture(out: Path, destination: Path | None = None) -> Path:
    """The golden fixture: the inputs, the authors' outputs, their state dict's names, shapes and checksums
    (the weights themselves come back from `param_values`), compressed."""
    import numpy as np

    data = np.load(out / "unianimate_authors.npz")
    destination = destination or Path(__file__).resolve().parents[1] / "tests/baselines/unianimate/fixtures/unianimate_authors.npz"
    destination.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(destination, **{k: data[k] for k in FIXTURE_KEYS}, torch_version=data["torch_version"])
    print(f"wrote {destination} ({destination.stat().st_size / 1e3:.0f} kB)")
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    a = sub.add_parser("authors", help="run the authors' modules (in their environment)")
    a.add_argument("out", type=Path)
    a.add_argument("--checkout", type=Path, required=True, help="a checkout of ali-vilab/UniAnimate")
    o = sub.add_parser("ours", help="run ours on the same weights and inputs -> OUT/unianimate_rows.json")
    o.add_argument("out", type=Path)
    fx = sub.add_parser("fixture", help="write tests/baselines/unianimate/fixtures/unianimate_authors.npz from OUT")
    fx.add_argument("out", type=Path)
    fx.add_argument("--to", type=Path, default=None)
    args = parser.parse_args()
    if args.phase == "authors":
        authors(args.out, args.checkout.resolve())
    elif args.phase == "ours":
        ours(args.out)
    else:
        fixture(args.out, args.to)


if __name__ == "__main__":
    main()
