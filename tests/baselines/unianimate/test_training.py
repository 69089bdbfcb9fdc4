"""Training UniAnimate with the shared loop, then sampling the run: the tiny path, and OpenCLIP conditioning."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.unianimate.method import UniAnimateMethod
from baselines.unianimate.model import UniAnimateModel
from baselines.unianimate.pipeline import make_sampler
from baselines.unianimate.recipe import UniAnimateRecipe
from tests.helpers.builders import make_shards
from tests.helpers.fake_hub import FakeHub
from toolkit.conditions import colour_batch
from toolkit.harness.method import Conditions
from toolkit.models import openclip
from toolkit.shards.reader import Shards
from toolkit.train.loop import train
from toolkit.train.recipe import check_data

TINY = Path(__file__).resolve().parents[3] / "baselines" / "unianimate" / "configs" / "tiny.toml"
OPENCLIP = "openclip-vit-h-14-laion2b"


def micro_config(**tables) -> dict:
    """The tiny config on 32-pixel clips of 3 frames, two steps of one clip."""
    cfg = tomllib.loads(TINY.read_text())
    cfg["data"] = {"size": 32, "n_frames": 3, "stride": 1, "samples_per_video": 2, "pose_draw_scale": 2}
    cfg["train"].update(batch_size=1, steps=2, num_workers=0, checkpoint_every=1000, lr_warmup_steps=0)
    cfg["sampling"] = {"steps": 2, "window": 3, "overlap": 1}
    for name, values in tables.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shards(tmp_path_factory.mktemp("ua"), n_videos=2, n_frames=6, h=24, w=24, test_ids=("00002",))


def conditions(shards: Path, n: int = 4) -> Conditions:
    s = Shards(shards)
    vid = s.videos.video_id[0]
    kp = s.keypoints(vid)
    return Conditions(video_id=vid, n_frames=n, height=24, width=24, fps=25.0, reference=s.frames(vid, [0])[0],
                      reference_keypoints=kp[0], keypoints=kp[:n])


def test_tiny_run_trains_and_animates(shards, tmp_path, monkeypatch):
    from toolkit.cli import main
    from toolkit.video import read_video

    parsed = []

    class Counting(UniAnimateRecipe):
        def parse_config(self, config):
            parsed.append(1)
            return super().parse_config(config)

    summary = train(Counting(), micro_config(), shards, tmp_path / "run", progress=False)
    assert summary["step"] == 2 and len(parsed) == 1  # the config is parsed once, for the whole run
    # run.json holds the config resolved: defaults the micro config leaves out are written, and it parses back
    stored = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert "p_condition" not in micro_config()["objective"] and stored["objective"]["p_condition"] == 0.5
    assert stored["sampling"]["timesteps"] == "trailing" and stored["train"]["steps"] == 2
    assert UniAnimateRecipe().parse_config(stored).to_dict() == UniAnimateRecipe().parse_config(micro_config()).to_dict()
    method = UniAnimateMethod(checkpoint=tmp_path / "run")
    assert method.openclip is None
    hub = FakeHub.of_folder("someone/ua-tiny", tmp_path / "run" / "model")  # the run's model, as pushed
    try:
        hub.use(monkeypatch, tmp_path / "hf-cache")
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        for source in (tmp_path / "run" / "model", "someone/ua-tiny"):
            loaded = UniAnimateModel.from_pretrained(source).state_dict()
            assert all(torch.equal(loaded[k], v) for k, v in method.pipeline.model.state_dict().items()), source
    finally:
        hub.close()
    files = [(path, auth) for _, path, auth in hub.requests if "/resolve/" in path]
    assert files and all(auth == "Bearer hf_test_token" for _, auth in files)  # HF_TOKEN is sent
    # poses are sampled as thin as the run was trained on them ([data] pose_draw_scale)
    assert method.pose_style == {"draw_scale": 2}
    # the tiny config's [scheduler] (x0 prediction) is what sampling steps with, as training regressed it
    assert make_sampler(method.sampling, 2, "cpu").config.prediction_type == "sample"
    recipe = UniAnimateRecipe()
    model, needs = recipe.build(micro_config()).model_and_needs()
    dataset = recipe.build_dataset(shards, recipe.parse_config(micro_config()))
    assert dataset.pose_style == {"draw_scale": 2}
    batch = colour_batch(torch.utils.data.default_collate([dataset[0]]))
    estimate, clean = recipe.clean_estimate(model, batch, 500, torch.Generator().manual_seed(0), needs)
    assert estimate.shape == clean.shape == (1, 48, 3, 8, 8)
    out = method.generate(conditions(shards))
    assert out.shape == (4, 24, 24, 3) and out.dtype == np.uint8
    ids = list(Shards(shards).videos.video_id)
    video = tmp_path / "out.mp4"
    assert main(["animate", "--method", "unianimate", "--checkpoint", str(tmp_path / "run"), "--shards", str(shards),
                 "--reference", ids[0], "--pose", ids[1], "--frames", "4", "--no-align", "--out", str(video)]) == 0
    assert read_video(video).shape == (4, 24, 24, 3)


@pytest.mark.parametrize("scale", [0, 2.0, "4"])
def test_pose_draw_scale_must_be_a_positive_integer(scale):
    with pytest.raises(ValueError, match=r"\[data\] pose_draw_scale must be an integer >= 1"):
        check_data(micro_config(data={"pose_draw_scale": scale}))  # what load_config checks [data] with


@pytest.fixture
def clip_state(tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """A stand-in OpenCLIP (ViT-H-14's head widths, text 64 wide, embeddings of 32) in a temporary registry."""
    from tests.helpers.standin import install, use_home

    use_home(monkeypatch, tmp_path / "home")
    state = openclip_state_for_tiny()
    install(monkeypatch, OPENCLIP, state, tmp_path / "files")
    return state


def openclip_state_for_tiny() -> dict[str, torch.Tensor]:
    from tests.helpers.standin import openclip_state

    return openclip_state(text_width=64, vision_width=80, embed_dim=32)


OPENCLIP_MODEL = {"cross_attention_dim": 64, "text_tokens": 77, "learned_text_context": False, "image_embed_dim": 32}


def test_openclip_table_sets_the_text_context_and_feeds_reference_embeddings(shards, tmp_path, clip_state):
    cfg = micro_config(model=OPENCLIP_MODEL, openclip={"weights": OPENCLIP})
    recipe = UniAnimateRecipe()
    model, needs = recipe.build(cfg).model_and_needs()
    assert torch.equal(model.text_context, openclip.text_context(clip_state))

    loader = torch.utils.data.DataLoader(recipe.build_dataset(shards, recipe.parse_config(cfg)), batch_size=2)
    batch = colour_batch(next(iter(loader)))
    ref = batch["reference"][1].permute(1, 2, 0).numpy()
    expected = openclip.image_embedding(clip_state, openclip.preprocess(ref))
    torch.testing.assert_close(needs.openclip.embed_images(batch["reference"])[1:], expected, rtol=0, atol=1e-5)

    # the embeddings reach the image projection: its first layer gets a gradient (zero without them)
    cfg["objective"] = {**cfg["objective"], "p_all_zero": 0.0, "p_condition": 0.0}
    needs = recipe.build(cfg).needs
    recipe.loss(model, batch, torch.Generator().manual_seed(0), needs).backward()
    assert model.image_proj[0].weight.grad.abs().sum() > 0

    summary = train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False)
    assert summary["step"] == 2
    method = UniAnimateMethod(checkpoint=tmp_path / "run")
    assert method.openclip is not None
    assert torch.equal(method.pipeline.model.text_context, openclip.text_context(clip_state))  # kept in the weights
    sha = method.checkpoint_sha256()
    assert sha.startswith("model=") and f"{OPENCLIP}=" in sha
    first = method.generate(conditions(shards))
    method.openclip.state = {**method.openclip.state, "visual.proj": -method.openclip.state["visual.proj"]}
    assert not np.array_equal(first, method.generate(conditions(shards)))  # sampling uses the embedding


def test_openclip_errors_come_before_training(shards, tmp_path, monkeypatch):
    from tests.helpers.standin import use_home

    with pytest.raises(ValueError, match=r"\[openclip\] takes one key"):
        UniAnimateRecipe().build(micro_config(openclip={"weight": OPENCLIP}))
    with pytest.raises(ValueError, match="unknown weights artifact"):
        UniAnimateRecipe().build(micro_config(openclip={"weights": "clip-nope"}))
    use_home(monkeypatch, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"toolkit weights fetch {OPENCLIP}"):
        train(UniAnimateRecipe(), micro_config(model=OPENCLIP_MODEL, openclip={"weights": OPENCLIP}), shards,
              tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_openclip_sizes_must_match_the_model(clip_state):
    with pytest.raises(ValueError, match="image_embed_dim = 16"):
        UniAnimateRecipe().build(micro_config(model={**OPENCLIP_MODEL, "image_embed_dim": 16},
                                                    openclip={"weights": OPENCLIP}))
    with pytest.raises(ValueError, match="OpenCLIP's \"\" context is 77 x 64"):
        UniAnimateRecipe().build(micro_config(model={**OPENCLIP_MODEL, "text_tokens": 8},
                                                    openclip={"weights": OPENCLIP}))


def test_the_paper_config_conditions_on_openclip():
    cfg = UniAnimateRecipe().load_config("paper")
    assert cfg["openclip"] == {"weights": OPENCLIP}
    assert "openclip" not in UniAnimateRecipe().load_config("tiny")


def write_converted_release(model) -> Path:
    """What `toolkit weights convert unianimate-16f-32f` writes, for `model`'s config and weights (no text context)."""
    import json

    from safetensors.torch import save_file

    from baselines.unianimate import convert
    from toolkit import weights

    out = weights.converted_dir(convert.PUBLISHED_ARTIFACT)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "text_context"},
              out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(model.config.to_dict()))
    return out


def test_init_published_fine_tunes_the_converted_release(shards, tmp_path, clip_state):
    import json

    from baselines.unianimate.model import UniAnimateConfig, UniAnimateModel

    cfg = micro_config(model=OPENCLIP_MODEL, openclip={"weights": OPENCLIP})
    torch.manual_seed(7)
    release = UniAnimateModel(UniAnimateConfig.from_dict(cfg["model"]))
    write_converted_release(release)
    recipe = UniAnimateRecipe()
    model, needs = recipe.build(cfg).model_and_needs()
    provenance = recipe.load_published(model, needs)
    assert provenance.startswith("unianimate-16f-32f converted=")
    theirs = release.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.state_dict().items() if k != "text_context")
    assert torch.equal(model.text_context, openclip.text_context(clip_state))

    summary = train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False, init="published")
    assert summary["step"] == 2
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["init"] == "published" and run["init_sha256"] == provenance

    with pytest.raises(ValueError, match="train it with --config paper"):
        train(UniAnimateRecipe(), micro_config(model={**OPENCLIP_MODEL, "num_tokens": 3},
                                               openclip={"weights": OPENCLIP}),
              shards, tmp_path / "other", progress=False, init="published")
    with pytest.raises(ValueError, match=r"keep the paper config's \[openclip\] table"):
        train(UniAnimateRecipe(), micro_config(model=OPENCLIP_MODEL), shards, tmp_path / "other", progress=False,
              init="published")
    assert not (tmp_path / "other").exists()


def test_init_published_without_the_release_names_the_fix(shards, tmp_path, clip_state):
    cfg = micro_config(model=OPENCLIP_MODEL, openclip={"weights": OPENCLIP})
    with pytest.raises(FileNotFoundError, match="toolkit weights fetch unianimate-16f-32f"):
        train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False, init="published")
    assert not (tmp_path / "run").exists()


def read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_validation_scores_the_ema_weights_as_toolkit_eval_does(shards, tmp_path, capsys):
    """... and `toolkit eval --method-option steps=2` samples as validate_steps = 2 does, recorded in provenance."""
    import json

    import pandas as pd

    from toolkit.cli import main

    cfg = micro_config()
    cfg["sampling"]["steps"] = 1  # the run's default; validation and the eval below sample 2 steps
    cfg["train"].update(validate_every=1, validate_videos=1, validate_steps=2)
    train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False)
    lines = read_jsonl(tmp_path / "run" / "validation.jsonl")
    assert [line["step"] for line in lines] == [1, 2]
    assert lines[0]["videos"] == ["00002"] and lines[0]["split"] == "test"
    assert lines[0]["l1"] != lines[1]["l1"]  # the weights moved between the two
    results = tmp_path / "results"
    assert main(["eval", "--method", "unianimate", "--checkpoint", str(tmp_path / "run"), "--shards", str(shards),
                 "--method-option", "steps=2", "--results", str(results), "--no-save-predictions", "--quiet"]) == 0
    prov = json.loads(next((results / "provenance").glob("*.json")).read_text())
    assert prov["method_options"] == {"checkpoint": str(tmp_path / "run"), "device": "cpu", "steps": 2}
    assert prov["method_config"]["sampling"]["steps"] == 2
    rows = pd.read_parquet(results / "runs")
    aggregate = rows[rows.level == "aggregate"].set_index("metric").value
    for metric in ("l1", "psnr", "ssim", "l1_fg", "psnr_fg", "ssim_fg", "l1_bg"):
        assert lines[-1][metric] == aggregate[metric], metric
    assert "lpips" not in lines[-1]  # network metrics are left to toolkit eval

    capsys.readouterr()
    assert main(["info", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert "method=unianimate" in text and "step 2 of 2 saved" in text
    assert "validation on 1 test video(s) (00002)" in text
    assert f"{lines[-1]['l1_fg']:.4g}" in text.splitlines()[-1]
    assert main(["info", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["validation"] == lines

    # a killed run resumed at step 1 writes the same validations (bar the seconds)
    train(UniAnimateRecipe(), cfg, shards, tmp_path / "resumed", progress=False, max_steps=1)
    with open(tmp_path / "resumed" / "validation.jsonl", "a") as log:
        log.write('{"step": 2, "l1": 0.5}\n{"step": 3, "l1"')  # lines past the checkpoint, one cut short
    train(UniAnimateRecipe(), cfg, shards, tmp_path / "resumed", progress=False, resume=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "resumed" / "validation.jsonl")) == strip(lines)


def test_validation_settings_are_checked_before_anything_is_written(shards, tmp_path):
    cfg = micro_config()
    cfg["train"].update(validate_every=1, validate_split="val")
    with pytest.raises(ValueError, match="validate_split = 'val'.*no prepared videos in that split"):
        train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False)
    cfg["train"].update(validate_split="test", validate_videos=0)
    with pytest.raises(ValueError, match="validate_videos = 0 is outside"):
        train(UniAnimateRecipe(), cfg, shards, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_validation_in_a_two_process_run(shards, tmp_path):
    """With 2 CPU processes (gloo) the main one validates while the other waits at the barrier (whose timeout the
    loop raises for validation), and the run finishes with a validation at each step."""
    import os
    import subprocess
    import sys

    from tests.helpers.toml_text import toml_text

    root = Path(__file__).resolve().parents[3]
    cfg = micro_config()
    cfg["train"].update(validate_every=1, validate_videos=1, validate_steps=2, batch_size=1)
    config = tmp_path / "micro.toml"
    config.write_text(toml_text(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "toolkit", "train", "--method", "unianimate", "--config", str(config), "--shards", str(shards),
           "--out", str(tmp_path / "two"), "--quiet"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = read_jsonl(tmp_path / "two" / "validation.jsonl")
    assert [line["step"] for line in lines] == [1, 2] and all(line["l1"] > 0 for line in lines)


def test_a_wrong_typed_config_key_is_one_line_naming_file_table_key_and_type(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("concat_dim = 48", 'concat_dim = "48"'))
    with pytest.raises(ValueError) as info:
        UniAnimateRecipe().load_config(str(bad))
    assert str(info.value) == f"{bad}: [model] concat_dim = '48': expected int, got str"
    bad.write_text(TINY.read_text().replace("guidance = 2.0", "guidance = [2.0]"))
    with pytest.raises(ValueError, match=r"\[sampling\] guidance = \[2.0\]: expected float, got list$"):
        UniAnimateRecipe().load_config(str(bad))
