"""Training MagicAnimate in two stages with the shared loop: what each stage changes, --stage/--init, the method."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from baselines.magicanimate.method import MagicAnimateMethod
from baselines.magicanimate.model import MagicAnimateModel
from baselines.magicanimate.recipe import MagicAnimateRecipe
from tests.helpers.builders import make_shards
from tests.helpers.magicanimate_standin import MICRO, nudged
from tests.helpers.toml_text import toml_text
from toolkit.harness.method import Conditions
from toolkit.models.pretrained import read_state
from toolkit.train.loop import train
from toolkit.train.recipe import select_stage

TINY = Path(__file__).resolve().parents[3] / "baselines" / "magicanimate" / "configs" / "tiny.toml"


def micro_config() -> dict:
    """The tiny config's tables with MICRO's sizes, 16-pixel images and two steps per stage."""
    cfg = tomllib.loads(TINY.read_text())
    cfg["model"] = MICRO.to_dict()
    cfg["codec"] = {"kind": "pixel", "factor": 2}
    cfg["data"] = {"size": 16, "reference": "random"}
    cfg["train"].update(num_workers=0, checkpoint_every=1000, lr_warmup_steps=0, lr=1e-2)
    cfg["stages"]["1"]["train"] = {"batch_size": 2, "steps": 2}
    cfg["stages"]["2"]["data"] = {"n_frames": 3, "stride": 1, "samples_per_video": 2}
    cfg["stages"]["2"]["train"] = {"batch_size": 1, "steps": 2}
    return cfg


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shards(tmp_path_factory.mktemp("ma"), n_videos=2, n_frames=8, h=24, w=24, test_ids=("00002",))


@pytest.fixture(scope="module")
def stages(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    cfg = micro_config()
    torch.manual_seed(0)
    train(MagicAnimateRecipe(), cfg, shards, root / "s1", progress=False, method="magicanimate", stage=1)
    train(MagicAnimateRecipe(), cfg, shards, root / "s2", progress=False, method="magicanimate", stage=2,
          init=root / "s1")
    return root / "s1", root / "s2"


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    assert before.keys() == after.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_stage_1_trains_all_but_the_motion_modules(stages):
    s1, _ = stages
    torch.manual_seed(0)
    start = MagicAnimateModel(MICRO)
    motion = start.motion_parameter_names()
    after = load_file(s1 / "checkpoint" / "model.safetensors")
    moved = changed(start.state_dict(), after)
    assert not moved & motion
    assert {k.split(".")[0] for k in moved} == {"unet", "appearance_encoder", "controlnet", "text_context"}
    assert not moved & set(start.unused_encoder_parameters())


def test_stage_2_changes_only_motion_module_weights(stages):
    s1, s2 = stages
    before = read_state(s1 / "model")    # what --init loads: stage 1's EMA weights
    after = load_file(s2 / "checkpoint" / "model.safetensors")
    moved = changed(before, after)
    motion = MagicAnimateModel(MICRO).motion_parameter_names()
    assert moved and moved <= motion
    assert changed(before, read_state(s2 / "model")) <= motion


def test_stage_selection_and_its_errors():
    cfg = micro_config()
    s2 = select_stage(cfg, 2, "magicanimate", init=Path("x"))
    assert s2["stage"] == 2 and s2["data"]["n_frames"] == 3 and s2["data"]["size"] == 16 and "stages" not in s2
    with pytest.raises(ValueError, match="pass --stage"):
        select_stage(cfg, None, "magicanimate")
    with pytest.raises(ValueError, match="no stage 3"):
        select_stage(cfg, 3, "magicanimate")
    with pytest.raises(ValueError, match="pass --init"):
        select_stage(cfg, 2, "magicanimate")
    with pytest.raises(ValueError, match="one stage"):
        select_stage({"model": {}}, 1, "unianimate")


def test_joint_training_mixes_in_image_items_that_reconstruct_themselves(shards, tmp_path):
    cfg = micro_config()
    cfg["stages"]["1"]["joint"] = {"image_prob": 0.5}
    recipe = MagicAnimateRecipe()
    stage1 = select_stage(cfg, 1, "magicanimate")
    recipe.build(stage1)
    mixed = recipe.build_dataset(shards, recipe.parse_config(stage1))
    flags = [mixed.is_image(i) for i in range(len(mixed))]
    assert 0.25 < np.mean(flags) < 0.75, np.mean(flags)
    for i in range(len(mixed)):
        item = mixed[i]
        if flags[i]:
            assert torch.equal(item["reference"], item["frames"][0])
            assert torch.equal(item["reference_densepose_labels"], item["densepose_labels"][0])
    mixed.set_epoch(1)
    assert [mixed.is_image(i) for i in range(len(mixed))] != flags
    stage1["joint"] = {"image_prob": 1.0}
    everything = recipe.build_dataset(shards, recipe.parse_config(stage1))
    assert all(torch.equal(everything[i]["reference"], everything[i]["frames"][0]) for i in range(len(everything)))
    stage1["joint"] = {}
    assert not hasattr(recipe.build_dataset(shards, recipe.parse_config(stage1)), "is_image")
    with pytest.raises(ValueError, match="stage 1 only"):
        MagicAnimateRecipe().build(select_stage({**cfg, "joint": {"image_prob": 0.3}}, 2, "magicanimate",
                                                      init=Path("x")))
    with pytest.raises(ValueError, match=r"unknown \[joint\] keys"):
        recipe.build_dataset(shards, recipe.parse_config({**stage1, "joint": {"image_probability": 0.3}}))
    summary = train(MagicAnimateRecipe(), cfg, shards, tmp_path / "joint", progress=False, method="magicanimate",
                    stage=1)
    assert summary["step"] == 2


def test_stage_2_joint_training_steps_on_images_frame_pairs_or_clips(stages, shards, tmp_path):
    """The paper's stage-2 mixing: each item carries its clip, an image item (its own reference) and a single
    frame with another reference; per step r ~ U(0, 1) picks image items (r <= tau_1), frames (<= tau_2) or clips."""
    from toolkit.conditions import colour_batch

    from baselines.magicanimate.recipe import ClipsWithImages, JointConfig, select_kind

    cfg = micro_config()
    cfg["stages"]["2"]["joint"] = {"tau_1": 0.3, "tau_2": 0.6}
    recipe = MagicAnimateRecipe()
    stage2 = select_stage(cfg, 2, "magicanimate", init=Path("x"))
    recipe.build(stage2)
    data = recipe.build_dataset(shards, recipe.parse_config(stage2))
    clips_only = recipe.build_dataset(shards, recipe.parse_config({**stage2, "joint": {}}))
    assert isinstance(data, ClipsWithImages) and len(data) == len(clips_only)
    batch = colour_batch(torch.utils.data.default_collate([data[0], data[1]]))
    assert batch["frames"].shape[1] == 3 and batch["self_frames"].shape[1] == 1 and batch["pair_frames"].shape[1] == 1
    assert torch.equal(batch["self_reference"], batch["self_frames"][:, 0])                       # i = ref
    assert batch["self_densepose"].shape == batch["pair_densepose"].shape == (2, 1, 3, 16, 16)
    marked = {f"{prefix}{key}": torch.full((1,), float(i)) for i, prefix in enumerate(("", "self_", "pair_"))
              for key in ("frames", "densepose", "reference")}
    joint = JointConfig(tau_1=0.3, tau_2=0.6)
    picked = []
    for seed in range(600):
        chosen = select_kind(marked, joint, torch.Generator().manual_seed(seed))
        assert sorted(chosen) == ["densepose", "frames", "reference"]
        assert len({float(v) for v in chosen.values()}) == 1                  # one kind's tensors, all of them
        picked.append(("clip", "self", "pair")[int(chosen["frames"])])
    share = {k: picked.count(k) / len(picked) for k in ("self", "pair", "clip")}
    assert abs(share["self"] - 0.3) < 0.06 and abs(share["pair"] - 0.3) < 0.06 and abs(share["clip"] - 0.4) < 0.06
    # and it trains, motion modules only
    train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s2", progress=False, method="magicanimate", stage=2,
          init=stages[0])
    moved = changed(read_state(stages[0] / "model"),
                    load_file(tmp_path / "s2" / "checkpoint" / "model.safetensors"))
    assert moved and moved <= MagicAnimateModel(MICRO).motion_parameter_names()


@pytest.mark.parametrize("stage, table, message", [
    (1, {"tau_1": 0.1, "tau_2": 0.2}, "stage 1 mixes with image_prob"),
    (2, {"tau_1": 0.5, "tau_2": 0.2}, "must not exceed"),
    (2, {"tau_2": 1.5}, r"tau_2 must lie in \[0, 1\]"),
    (2, {"image_prob": 0.2}, "stage 1 only")])
def test_joint_thresholds_belong_to_their_stage(stage, table, message):
    cfg = micro_config()
    cfg["stages"][str(stage)]["joint"] = table
    with pytest.raises(ValueError, match=message):
        MagicAnimateRecipe().build(select_stage(cfg, stage, "magicanimate", init=Path("x")))


@pytest.mark.slow
def test_stage_2_shards_with_fsdp_on_two_processes_as_ddp_does(stages, shards, tmp_path):
    """Stage 2 trains the motion modules, which every sample uses, so FSDP may shard it even with the reference
    dropped for some samples; stage 1 with p_uncond > 0 is refused before anything is written."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}

    cfg = micro_config()  # stage 2: one clip per process and step
    config = tmp_path / "micro.toml"
    config.write_text(toml_text(cfg))

    def launch(out: Path, mode: str, stage: int, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
               "-m", "toolkit", "train", "--method", "magicanimate", "--config", str(config), "--stage", str(stage),
               "--shards", str(shards), "--out", str(out), "--distributed", mode, "--quiet", *extra]
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)

    runs = {}
    for mode in ("ddp", "fsdp"):
        done = launch(tmp_path / mode, mode, 2, "--init", str(stages[0]))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        runs[mode] = tmp_path / mode
    a, b = ([json.loads(line)["loss"] for line in (runs[m] / "loss.jsonl").read_text().splitlines()]
            for m in ("ddp", "fsdp"))
    assert len(a) == len(b) == 2 and max(abs(x - y) for x, y in zip(a, b)) < 1e-5, (a, b)
    ddp, fsdp = (read_state(runs[m] / "model") for m in ("ddp", "fsdp"))
    assert max((ddp[k] - fsdp[k]).abs().max().item() for k in ddp) < 1e-5
    assert changed(read_state(stages[0] / "model"), fsdp) <= MagicAnimateModel(
        MICRO).motion_parameter_names()
    refused = launch(tmp_path / "s1", "fsdp", 1)
    assert refused.returncode != 0 and "stage 2, motion modules only, may use fsdp" in refused.stderr
    assert not (tmp_path / "s1").exists()


def test_a_stage_1_run_does_not_resume_as_stage_2(stages, shards):
    s1, _ = stages
    with pytest.raises(ValueError, match="config"):
        train(MagicAnimateRecipe(), micro_config(), shards, s1, resume=True, progress=False, method="magicanimate",
              stage=2, init=s1)


def test_fsdp_is_refused_while_the_reference_drops_out(shards, tmp_path):
    """A process whose samples all drop the reference gives the encoder no gradient: FSDP would stop mid-run."""
    with pytest.raises(ValueError, match='p_uncond = 0.1 trains with distributed = "ddp" only'):
        train(MagicAnimateRecipe(), micro_config(), shards, tmp_path / "run", progress=False, method="magicanimate",
              stage=1, train_overrides={"distributed": "fsdp"})
    assert not (tmp_path / "run").exists()
    no_dropout = micro_config()
    no_dropout["objective"]["p_uncond"] = 0.0
    recipe = MagicAnimateRecipe()
    recipe.check_fsdp(recipe.parse_config(select_stage(no_dropout, 1, "magicanimate")))


def test_init_must_match_the_model(stages, shards, tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights there"):
        train(MagicAnimateRecipe(), micro_config(), shards, tmp_path / "a", progress=False, method="magicanimate",
              stage=2, init=tmp_path / "nothing")
    other = micro_config()
    other["model"]["block_out_channels"] = [16, 16]
    with pytest.raises(ValueError, match="do not match the model"):
        train(MagicAnimateRecipe(), other, shards, tmp_path / "b", progress=False, method="magicanimate",
              stage=2, init=stages[0])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_trained_run_animates_from_densepose(stages, shards):
    from toolkit.shards.reader import Shards

    method = MagicAnimateMethod(stages[1], steps=2)
    assert method.config()["stage"] == 2
    s = Shards(shards)
    frames = s.frames("00002", [0, 1, 2, 3])
    iuv = s.iuv("00002", [0, 1, 2, 3])
    cond = Conditions(video_id="00002", n_frames=4, height=frames.shape[1], width=frames.shape[2], fps=25.0,
                      reference=frames[0], reference_keypoints=None, keypoints=None, iuv=iuv, reference_iuv=iuv[0])
    out = method.generate(cond)
    assert out.shape == frames.shape and out.dtype == np.uint8
    with pytest.raises(Exception, match="DensePose"):
        method.generate(Conditions(video_id="v", n_frames=4, height=24, width=24, fps=25.0, reference=frames[0],
                                   reference_keypoints=None, keypoints=None))


def test_toolkit_animate_drives_it_with_the_driving_videos_densepose(stages, shards, tmp_path):
    from toolkit.cli import main
    from toolkit.video import read_video

    out = tmp_path / "out.mp4"
    code = main(["animate", "--method", "baselines.magicanimate.method:MagicAnimateMethod", "--checkpoint",
                 str(stages[1]), "--shards", str(shards), "--reference", "00001", "--pose", "00002", "--frames", "5",
                 "--method-option", "steps=2", "--no-align", "--out", str(out)])
    assert code == 0 and read_video(out).shape[:3] == (5, 24, 24)


def sd15_standin(config=MICRO, seed: int = 5) -> dict[str, torch.Tensor]:
    """A random SD 1.5-layout UNet (diffusers' UNet2DConditionModel, every tensor) at the config's sizes."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=config.sample_size, in_channels=config.latent_channels, out_channels=config.latent_channels,
        down_block_types=config.down_block_types, up_block_types=config.up_block_types,
        attention_head_dim=config.attention_heads, block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
        cross_attention_dim=config.cross_attention_dim)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return {k: v.contiguous() for k, v in unet.state_dict().items()}


@pytest.fixture
def sd15(tmp_path, monkeypatch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Stand-in SD 1.5 UNet and text encoder in a temporary registry; returns the UNet's tensors and the "" context."""
    from safetensors.torch import save_file

    from tests.helpers.standin import clip_text_state, pin, use_home
    from toolkit import weights
    from toolkit.models.clip_text import empty_prompt_embedding

    use_home(monkeypatch, tmp_path / "home")
    unet = sd15_standin()
    files = {"sd15-unet": tmp_path / "files" / "diffusion_pytorch_model.safetensors",
             "sd15-text-encoder": tmp_path / "files" / "model.safetensors"}
    files["sd15-unet"].parent.mkdir()
    save_file(unet, files["sd15-unet"])
    save_file(clip_text_state(MICRO.cross_attention_dim, MICRO.text_tokens), files["sd15-text-encoder"])
    for name, src in files.items():
        pin(monkeypatch, name, src)
        weights.import_file(src, name)
    return unet, empty_prompt_embedding(files["sd15-text-encoder"], MICRO.text_tokens)


PRETRAINED = {"unet": "sd15-unet", "text_encoder": "sd15-text-encoder"}


def test_stage_1_starts_from_sd15(sd15, shards, tmp_path):
    unet, context = sd15
    cfg = micro_config()
    cfg["stages"]["1"]["pretrained"] = PRETRAINED
    model = MagicAnimateRecipe().build(select_stage(cfg, 1, "magicanimate")).model
    state = model.state_dict()
    spatial = {k for k in state if k.startswith("unet.") and ".motion_modules." not in k}
    assert spatial and all(torch.equal(state[k], unet[k.removeprefix("unet.")]) for k in spatial)
    encoder = [k for k in state if k.startswith("appearance_encoder.")]
    assert encoder and all(torch.equal(state[k], unet[k.removeprefix("appearance_encoder.")]) for k in encoder)
    copied = [k for k in state if k.startswith(("controlnet.down_blocks.", "controlnet.mid_block.",
                                                "controlnet.conv_in.", "controlnet.time_embedding."))]
    assert copied and all(torch.equal(state[k], unet[k.removeprefix("controlnet.")]) for k in copied)
    zero_convs = [k for k in state if k.startswith(("controlnet.controlnet_down_blocks.",
                                                    "controlnet.controlnet_mid_block."))]
    assert zero_convs and all(int(torch.count_nonzero(state[k])) == 0 for k in zero_convs)
    assert all(int(torch.count_nonzero(m.proj_out.weight)) == 0 for _, m in model.motion_modules())
    assert torch.equal(model.text_context.detach(), context)
    # and the loop trains from there
    summary = train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s1", progress=False, method="magicanimate",
                    stage=1)
    assert summary["step"] == 2


def test_pretrained_errors_come_before_anything_is_written(shards, tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from tests.helpers.standin import pin, use_home
    from toolkit import weights

    cfg = micro_config()
    cfg["stages"]["1"]["pretrained"] = {"unets": "sd15-unet"}
    with pytest.raises(ValueError, match=r"unknown \[pretrained\] keys"):
        MagicAnimateRecipe().build(select_stage(cfg, 1, "magicanimate"))
    cfg["stages"]["1"]["pretrained"] = {"unet": "sd15-nope"}
    with pytest.raises(ValueError, match="unknown weights artifact"):
        MagicAnimateRecipe().build(select_stage(cfg, 1, "magicanimate"))
    with pytest.raises(ValueError, match=r"\[stages.1.pretrained\]"):
        MagicAnimateRecipe().build(select_stage({**micro_config(), "pretrained": PRETRAINED}, 2,
                                                      "magicanimate", init=Path("x")))
    use_home(monkeypatch, tmp_path / "home")
    cfg["stages"]["1"]["pretrained"] = PRETRAINED
    with pytest.raises(FileNotFoundError, match="toolkit weights fetch sd15-unet"):
        train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s1", progress=False, method="magicanimate", stage=1)
    assert not (tmp_path / "s1").exists()
    wrong = {k: v for k, v in sd15_standin().items() if not k.startswith("mid_block.")}  # not this layout
    src = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file(wrong, src)
    pin(monkeypatch, "sd15-unet", src)
    weights.import_file(src, "sd15-unet")
    with pytest.raises(ValueError, match=r"not a UNet of this config's SD 1.5 layout; lacks \['mid_block"):
        train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s1", progress=False, method="magicanimate", stage=1)
    assert not (tmp_path / "s1").exists()


def test_the_paper_config_follows_the_papers_stages():
    """Stage 1 from SD 1.5 training the appearance encoder and ControlNet only; stage 2 from AnimateDiff's motion
    modules. The tiny config trains the denoiser's spatial layers in stage 1 (its denoiser starts random)."""
    cfg = MagicAnimateRecipe().load_config("paper")
    stage1, stage2 = select_stage(cfg, 1, "magicanimate"), select_stage(cfg, 2, "magicanimate", init=Path("x"))
    assert stage1["pretrained"] == PRETRAINED and stage1["trainable"] == {"denoiser_spatial": False}
    assert stage2["pretrained"] == {"motion_modules": "animatediff-mm-sd-v15"} and "trainable" not in stage2
    tiny = select_stage(MagicAnimateRecipe().load_config("tiny"), 1, "magicanimate")
    assert tiny["trainable"] == {"denoiser_spatial": True}


@pytest.mark.parametrize("denoiser_spatial", [False, True])
def test_stage_1_trains_the_denoisers_spatial_layers_only_when_asked(denoiser_spatial):
    cfg = micro_config()
    cfg["stages"]["1"]["trainable"] = {"denoiser_spatial": denoiser_spatial}
    recipe = MagicAnimateRecipe()
    model, needs = recipe.build(select_stage(cfg, 1, "magicanimate")).model_and_needs()
    chosen = {id(p) for p in recipe.trainable_parameters(model, needs)}
    trained = {n for n, p in model.named_parameters() if id(p) in chosen}
    spatial = {n for n, _ in model.named_parameters() if n.startswith("unet.")} - model.motion_parameter_names()
    assert {n.split(".")[0] for n in trained} >= {"appearance_encoder", "controlnet", "text_context"}
    assert not trained & model.motion_parameter_names()
    assert (trained & spatial == spatial) if denoiser_spatial else not trained & spatial
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trained


def test_trainable_and_pretrained_tables_belong_to_their_stage():
    with pytest.raises(ValueError, match=r"\[stages.1.trainable\]"):
        MagicAnimateRecipe().build(select_stage({**micro_config(), "trainable": {"denoiser_spatial": True}},
                                                      2, "magicanimate", init=Path("x")))
    cfg = micro_config()
    cfg["stages"]["1"]["trainable"] = {"denoiser_spatial": 1}
    with pytest.raises(ValueError, match="true or false"):
        MagicAnimateRecipe().build(select_stage(cfg, 1, "magicanimate"))
    with pytest.raises(ValueError, match=r"\[stages.2.pretrained\]"):
        MagicAnimateRecipe().build(select_stage(
            {**micro_config(), "pretrained": {"motion_modules": "animatediff-mm-sd-v15"}}, 1, "magicanimate"))


def animatediff_standin(monkeypatch, tmp_path: Path, seed: int = 9, drop: str | None = None,
                        extra: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """A motion-module file in AnimateDiff's layout (mm_sd_v15.ckpt: one flat dict in AnimateDiff's names, two
    sinusoid tables per module) for MICRO, imported into a fresh registry as animatediff-mm-sd-v15 (`drop`: a
    tensor left out; `extra`: tensors added). Returns the motion modules it holds, in our names."""
    from baselines.magicanimate.convert import model_shapes, motion_keys
    from tests.helpers.standin import pin, use_home
    from tests.helpers.magicanimate_standin import release
    from toolkit import weights

    use_home(monkeypatch, tmp_path / "home")
    source = nudged(seed)
    tensors = release(source, motion_only=True)["temporal_attention"]
    tensors.pop(drop or "", None)
    tensors.update(extra or {})
    src = tmp_path / "files" / "mm_sd_v15.ckpt"
    src.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tensors, src)
    pin(monkeypatch, "animatediff-mm-sd-v15", src)
    weights.import_file(src, "animatediff-mm-sd-v15")
    keys = motion_keys(model_shapes(MICRO))
    return {k: v for k, v in source.state_dict().items() if k in keys}


MOTION = {"motion_modules": "animatediff-mm-sd-v15"}


def test_stage_2_starts_the_motion_modules_from_animatediff(stages, shards, tmp_path, monkeypatch):
    import json

    from toolkit import weights

    s1, _ = stages
    animatediff = animatediff_standin(monkeypatch, tmp_path)
    cfg = micro_config()
    cfg["stages"]["2"]["pretrained"] = MOTION
    stage1 = read_state(s1 / "model")
    assert all(int(torch.count_nonzero(v)) == 0 for k, v in stage1.items() if ".motion_modules." in k
               and ".proj_out." in k)
    train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s2", progress=False, method="magicanimate", stage=2,
          init=s1, max_steps=1, train_overrides={"lr": 1e-6})
    after = load_file(tmp_path / "s2" / "checkpoint" / "model.safetensors")
    assert all(torch.allclose(after[k], v, atol=1e-4) for k, v in animatediff.items())   # one tiny step from there
    run = json.loads((tmp_path / "s2" / "run.json").read_text())
    assert run["after_init"] == f"animatediff-mm-sd-v15={weights.file_sha256('animatediff-mm-sd-v15')}"
    assert all(torch.equal(after[k], v) for k, v in stage1.items() if k not in animatediff)  # the rest: stage 1


def test_a_missing_or_foreign_motion_module_file_stops_before_anything_is_written(stages, shards, tmp_path,
                                                                                   monkeypatch):
    from tests.helpers.standin import use_home

    s1, _ = stages
    cfg = micro_config()
    cfg["stages"]["2"]["pretrained"] = MOTION
    use_home(monkeypatch, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="toolkit weights fetch animatediff-mm-sd-v15"):
        train(MagicAnimateRecipe(), cfg, shards, tmp_path / "a", progress=False, method="magicanimate", stage=2,
              init=s1)
    lacking = "down_blocks.0.motion_modules.0.temporal_transformer.proj_out.weight"
    animatediff_standin(monkeypatch, tmp_path / "lacking", drop=lacking)
    with pytest.raises(ValueError, match="not AnimateDiff motion modules.*proj_out.weight"):
        train(MagicAnimateRecipe(), cfg, shards, tmp_path / "b", progress=False, method="magicanimate", stage=2,
              init=s1)
    mid = {"mid_block.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(32, 32)}  # v2's layout
    animatediff_standin(monkeypatch, tmp_path / "v2", extra=mid)
    with pytest.raises(ValueError, match="mid_block.motion_modules"):
        train(MagicAnimateRecipe(), cfg, shards, tmp_path / "c", progress=False, method="magicanimate", stage=2,
              init=s1)
    assert not any((tmp_path / d).exists() for d in "abc")


def test_init_published_keeps_the_releases_motion_modules():
    from toolkit.models.run_folder import PUBLISHED

    cfg = micro_config()
    cfg["stages"]["2"]["pretrained"] = MOTION
    recipe = MagicAnimateRecipe()
    model, needs = recipe.build(select_stage(cfg, 2, "magicanimate", init=Path(PUBLISHED))).model_and_needs()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="release's motion modules are kept"):
        recipe.after_init(model, needs, PUBLISHED)
    assert not changed(before, model.state_dict())


def test_the_registry_check_takes_animatediff_v1s_layout_only():
    """The first-use check of animatediff-mm-sd-v15 on AnimateDiff's names and shapes for the paper layout (the
    motion modules of MagicAnimate's published key table, meta tensors): accepted; one tensor short, refused."""
    from baselines.magicanimate.convert import read_published_keys
    from baselines.magicanimate.recipe import check_motion_module_file

    table = {k: s for k, s in read_published_keys()["temporal_attention"].items() if ".motion_modules." in k}
    assert len({k.split(".temporal_transformer.")[0] for k in table}) == 20
    file = {k: torch.empty(s, device="meta") for k, s in table.items()}
    check_motion_module_file(file, "mm_sd_v15.ckpt")
    del file["up_blocks.3.motion_modules.2.temporal_transformer.proj_out.bias"]
    with pytest.raises(ValueError, match="mm_sd_v15.ckpt: not AnimateDiff motion modules"):
        check_motion_module_file(file, "mm_sd_v15.ckpt")


def test_the_paper_layout_takes_sd15s_unet_as_published():
    """SD 1.5's UNet (its published config.json: 320/640/1280/1280, 2 layers, 8 heads, context 768), built on the
    meta device, fills every entry the paper config takes from it, with the right shapes."""
    from diffusers import UNet2DConditionModel

    from baselines.magicanimate.convert import from_sd15_unet
    from baselines.magicanimate.model import MagicAnimateConfig

    with torch.device("meta"):
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, attention_head_dim=8,
            block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, norm_num_groups=32,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    state = from_sd15_unet(unet.state_dict(), MagicAnimateConfig.named("paper"))
    assert len(state) > 1600 and all(k.startswith(("unet.", "appearance_encoder.", "controlnet.")) for k in state)


def test_init_published_fine_tunes_the_release(shards, tmp_path, monkeypatch):
    """`--init published` on a stand-in release of the micro layout: stage 2 starts from exactly the released
    model (what `from_published` loads) and trains its motion modules."""
    import json

    from baselines.magicanimate import convert
    from tests.helpers.magicanimate_standin import install_release, nudged
    from toolkit.cli import main as cli

    monkeypatch.setattr(convert.MagicAnimateConfig, "named", classmethod(lambda cls, name: MICRO))
    install_release(monkeypatch, tmp_path, nudged(seed=4))
    assert cli(["weights", "convert", "magicanimate-temporal-attention"]) == 0
    cfg = micro_config()
    recipe = MagicAnimateRecipe()
    stage2 = select_stage(cfg, 2, "magicanimate", init=Path("published"))
    model, needs = recipe.build(stage2).model_and_needs()
    provenance = recipe.load_published(model, needs)
    released = convert.from_published(MICRO).state_dict()
    assert all(torch.equal(v, released[k]) for k, v in model.state_dict().items())
    assert "magicanimate-temporal-attention=" in provenance

    train(MagicAnimateRecipe(), cfg, shards, tmp_path / "s2", progress=False, method="magicanimate", stage=2,
          init="published")
    run = json.loads((tmp_path / "s2" / "run.json").read_text())
    assert run["init"] == "published" and run["init_sha256"] == provenance
    after = load_file(tmp_path / "s2" / "checkpoint" / "model.safetensors")
    assert changed(released, after) <= MagicAnimateModel(MICRO).motion_parameter_names()
