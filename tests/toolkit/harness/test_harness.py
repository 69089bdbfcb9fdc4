"""The harness: built-in methods, predictions validation, the results store, unavailable metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.builders import make_shards
from toolkit.cli import main as cli
from toolkit.harness.method import Conditions, Method
from toolkit.harness.registry import get_method, method_names
from toolkit.harness.predictions import PredictionsInvalid
from toolkit.harness.runner import evaluate
from toolkit.harness.store import latest_runs, load_provenance, load_results
from toolkit.shards.reader import Shards
from toolkit.video import write_image, write_video


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("harness"), n_videos=3, n_frames=12, h=64, w=48,
                       test_ids=("00002", "00003"))


@pytest.fixture(autouse=True)
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "empty_cache"))


def test_gt_oracle_is_perfect_under_both_profiles(shards, tmp_path):
    for profile in ("disco", "standard"):
        rep = evaluate(shards, method="gt-oracle", profile=profile, results=tmp_path, progress=False)
        a = rep.aggregate
        assert a["l1"] == 0 and a["psnr"] == 100 and a["ssim"] == pytest.approx(1.0)
        if profile == "disco":
            assert a["psnr_legacy"] == 100
        else:
            assert a["l1_fg"] == 0 and a["ssim_bg"] == pytest.approx(1.0)


def test_reference_copy_is_not_perfect_and_frames_counted_per_protocol(shards, tmp_path):
    disco = evaluate(shards, method="reference-copy", profile="disco", results=tmp_path, progress=False)
    std = evaluate(shards, method="reference-copy", profile="standard", results=tmp_path, progress=False)
    assert disco.aggregate["l1"] > 0 and disco.aggregate["psnr"] < 100
    assert disco.provenance["n_frames"] == 24      # every frame, the reference included
    assert std.provenance["n_frames"] == 22        # the reference frame is an input, not scored
    assert std.provenance["region_source"] == ["mask"]
    rows = load_results(tmp_path, level=None)
    std_rows = rows[rows.run_id == std.run_id]
    assert set(std_rows.level) == {"aggregate", "video", "frame"}
    frame_l1 = std_rows[(std_rows.level == "frame") & (std_rows.metric == "l1")]
    assert len(frame_l1) == 22 and frame_l1.value.mean() == pytest.approx(std.aggregate["l1"])


def test_missing_weights_are_reported_not_dropped(shards, tmp_path):
    rep = evaluate(shards, method="reference-copy", profile="standard", results=tmp_path, progress=False)
    for m, artifact in (("lpips", "lpips-alexnet-backbone"), ("fid", "fid-inception-pytorch"),
                        ("fvd", "fvd-i3d-400"), ("fid_vid", "fidvid-r3d50-kinetics")):
        assert rep.notes[m] == f"unavailable (weights: {artifact} missing)"
        assert np.isnan(rep.aggregate[m])
    rows = load_results(tmp_path)
    un = rows[(rows.run_id == rep.run_id) & (rows.status == "unavailable")]
    assert set(un.metric) == {"lpips", "fid", "fvd", "fid_vid"}
    assert un.note.str.startswith("unavailable (weights:").all()


def test_rerun_gives_identical_numbers_and_provenance_is_complete(shards, tmp_path):
    a = evaluate(shards, method="pose-warp", profile="standard", results=tmp_path, progress=False)
    b = evaluate(shards, method="pose-warp", profile="standard", results=tmp_path, progress=False)
    assert a.run_id != b.run_id
    assert a.aggregate.keys() == b.aggregate.keys()
    for k in a.aggregate:
        assert a.aggregate[k] == b.aggregate[k] or (np.isnan(a.aggregate[k]) and np.isnan(b.aggregate[k]))
    prov = load_provenance(tmp_path, a.run_id)
    for key in ("profile", "profile_version", "frame_size", "n_frames", "n_videos", "codec", "weights_sha256",
                "toolkit_commit", "shards_manifest_sha256", "definitions"):
        assert key in prov
    assert prov["frame_size"] == ["48x64"]
    assert len(latest_runs(tmp_path)) == len(a.aggregate)


def test_interrupted_evaluation_leaves_no_rows(shards, tmp_path, monkeypatch):
    class Boom(Method):
        name = "boom"
        calls = 0

        def generate(self, cond: Conditions) -> np.ndarray:
            Boom.calls += 1
            if Boom.calls == 2:
                raise KeyboardInterrupt
            return np.repeat(cond.reference[None], cond.n_frames, axis=0)

    with pytest.raises(KeyboardInterrupt):
        evaluate(shards, method=Boom(), results=tmp_path, progress=False)
    assert not list((tmp_path / "runs").glob("*.parquet")) if (tmp_path / "runs").exists() else True
    assert load_results(tmp_path).empty
    assert not (tmp_path / "runs").exists()
    assert list((tmp_path / "predictions").iterdir()) == []  # the partial predictions folder is gone too


def test_method_output_is_checked(shards, tmp_path):
    class Wrong(Method):
        name = "wrong"

        def generate(self, cond):
            return np.zeros((cond.n_frames - 1, cond.height, cond.width, 3), np.uint8)

    with pytest.raises(ValueError, match="wrong returned"):
        evaluate(shards, method=Wrong(), results=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        get_method("nope")
    assert {"reference-copy", "gt-oracle", "pose-warp"} <= set(method_names())


def _files(root: Path) -> dict[str, int]:
    """Every path under root with its modification time, to show a call changed nothing."""
    return {str(f): f.stat().st_mtime_ns for f in sorted(root.rglob("*"))}


def test_a_method_instance_is_scored_in_memory_from_a_training_loop(shards, tmp_path, monkeypatch):
    """What a training loop calls between steps: the model in training wrapped as a Method instance, scored
    with write=False on chosen videos; the scores follow the live weights and no file is written anywhere."""
    import torch

    from tests.helpers.batch_frames import batch_frames

    class Recoloured(Method):  # the model being trained: a 1x1 convolution of the reference image
        name = "recoloured"

        def __init__(self, model: torch.nn.Module) -> None:
            self.model = model

        def generate(self, cond: Conditions) -> np.ndarray:
            x = torch.from_numpy(cond.reference).permute(2, 0, 1)[None].float() / 255
            with torch.no_grad():
                frame = batch_frames(self.model(x)[None])[0]
            return np.repeat(frame, cond.n_frames, axis=0)

    model = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():  # starts as the identity: it generates what reference-copy does
        model.weight.copy_(torch.eye(3)[..., None, None])
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    monkeypatch.chdir(tmp_path)
    shard_files = _files(shards)
    copy = evaluate(shards, method=get_method("reference-copy"), write=False, video_ids=["00003"],
                    results=tmp_path / "results", progress=False)
    scores = []
    for _ in range(2):
        rep = evaluate(shards, method=Recoloured(model), write=False, video_ids=["00003"],
                       results=tmp_path / "results", progress=False)
        assert rep.path is None and rep.provenance["n_videos"] == 1 and rep.provenance["method"] == "recoloured"
        scores.append(rep.aggregate)
        loss = model(torch.rand(1, 3, 8, 8)).mean()  # one training step: darker outputs
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for metric in ("l1", "psnr", "ssim", "l1_fg", "ssim_bg"):
        assert scores[0][metric] == copy.aggregate[metric], metric
    assert scores[1]["l1"] > scores[0]["l1"]  # the second call scored the trained weights
    assert list(tmp_path.iterdir()) == [] and _files(shards) == shard_files


def _write_predictions(shards, root, ids, transform=lambda f: f):
    s = Shards(shards)
    for vid_id in ids:
        for i, frame in enumerate(s.frames(vid_id)):
            write_image(root / vid_id / f"{i:04d}.png", transform(frame))


def test_predictions_are_validated_all_at_once(shards, tmp_path):
    preds = tmp_path / "preds"
    _write_predictions(shards, preds, ["00002"])
    (preds / "00002" / "0011.png").unlink()                               # frame count
    write_image(preds / "stray" / "0000.png", np.zeros((8, 8, 3), np.uint8))  # extra video
    with pytest.raises(PredictionsInvalid) as err:
        evaluate(shards, predictions=preds, results=tmp_path, progress=False)
    text = str(err.value)
    assert "00002: 11 frames, the ground truth has 12" in text
    assert "extra prediction" in text and "stray" in text
    assert "00003: missing prediction" in text
    assert "nothing was scored" in text
    assert not (tmp_path / "runs").exists()


def test_predictions_size_and_unreadable_files(shards, tmp_path):
    preds = tmp_path / "preds"
    _write_predictions(shards, preds, ["00002", "00003"])
    write_image(preds / "00002" / "0003.png", np.zeros((10, 10, 3), np.uint8))
    (preds / "00003" / "0005.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(PredictionsInvalid) as err:
        evaluate(shards, predictions=preds, results=tmp_path, progress=False)
    assert "0003.png: 10x10, the ground truth is 48x64" in str(err.value)
    assert "0005.png: unreadable image" in str(err.value)


def test_predictions_score_like_the_method_and_partial_records_coverage(shards, tmp_path):
    preds = tmp_path / "preds"
    _write_predictions(shards, preds, ["00002", "00003"])
    rep = evaluate(shards, predictions=preds, profile="disco", results=tmp_path, progress=False)
    assert rep.aggregate["psnr"] == 100 and rep.provenance["codec"] == ["png frames"]
    s = Shards(shards)
    write_video(tmp_path / "mp4s" / "00002.mp4", s.frames("00002"), fps=24)
    part = evaluate(shards, predictions=tmp_path / "mp4s", profile="disco", results=tmp_path, progress=False,
                    allow_partial=True)
    assert part.provenance["n_videos"] == 1 and part.provenance["n_videos_in_split"] == 2
    assert part.provenance["codec"] == ["mp4 video"]
    assert 5 < part.aggregate["psnr"] < 100  # lossy h264 round trip of noise frames


def test_cli_eval_prints_a_table(shards, tmp_path, capsys):
    code = cli(["eval", "--method", "reference-copy,gt-oracle", "--profile", "disco,disco-tm,standard",
                "--shards", str(shards), "--results", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "gt-oracle" in out and "psnr_legacy ↑" in out and "l1 ↓" in out
    assert "[standard] lpips: unavailable (weights: lpips-alexnet-backbone missing)" in out
    assert "[disco-tm] fvd: unavailable (weights: fvd-i3d-400 missing)" in out
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 6
    df = pd.read_parquet(tmp_path / "runs")
    assert set(df.method) == {"reference-copy", "gt-oracle"}
    assert set(df.profile) == {"disco", "disco-tm", "standard"}


def test_disco_tm_shares_disco_pixel_metrics_and_frames(shards, tmp_path):
    disco = evaluate(shards, method="reference-copy", profile="disco", results=tmp_path, progress=False)
    tm = evaluate(shards, method="reference-copy", profile="disco-tm", results=tmp_path, progress=False)
    for metric in ("l1", "psnr", "psnr_legacy", "ssim"):
        assert tm.aggregate[metric] == disco.aggregate[metric], metric
    assert tm.provenance["n_frames"] == disco.provenance["n_frames"] == 24
    assert tm.provenance["profile"] == "disco-tm" and tm.provenance["profile_version"] == "1.0"
    assert "l1_fg" not in tm.aggregate  # whole frames, as disco


@pytest.mark.slow
def test_every_metric_available_with_standin_weights(tmp_path, monkeypatch):
    """With stand-in networks of the right architectures in the cache, no metric is unavailable and the
    oracle scores zero distance; the results record the stand-ins' sha256."""
    from tests.helpers import standin

    shards = make_shards(tmp_path, n_videos=2, n_frames=18, h=48, w=48, test_ids=("00001", "00002"))

    standin.use_home(monkeypatch, tmp_path / "home")
    work = tmp_path / "work"
    work.mkdir()
    standin.install(monkeypatch, "lpips-alexnet-backbone", standin.alexnet_backbone(), work)
    standin.install(monkeypatch, "lpips-vgg16-backbone", standin.vgg16_backbone(), work)
    standin.install(monkeypatch, "fid-inception-pytorch", standin.fid_inception_state(), work)
    standin.install(monkeypatch, "fidvid-r3d50-kinetics", standin.resnet3d_checkpoint(), work, legacy=True)
    i3d_file = standin.install(monkeypatch, "fvd-i3d-400", standin.i3d_state(), work)
    oracle = evaluate(shards, method="gt-oracle", profile="disco", results=tmp_path, progress=False)
    assert oracle.notes == {}
    assert oracle.aggregate["lpips"] == pytest.approx(0, abs=1e-6)
    for m in ("fid", "fid_vid", "fvd"):
        assert abs(oracle.aggregate[m]) < 1e-3, m
    copy = evaluate(shards, method="reference-copy", profile="standard", results=tmp_path, progress=False)
    assert copy.notes == {}
    assert copy.aggregate["lpips"] > 0 and copy.aggregate["fid"] > 0
    assert np.isfinite(copy.aggregate["lpips_fg"]) and np.isfinite(copy.aggregate["fvd"])
    sha = load_provenance(tmp_path, copy.run_id)["weights_sha256"]
    assert sha["fvd"] == standin.sha256(i3d_file)
    assert load_provenance(tmp_path, copy.run_id)["clips"]["fvd"]["clips_per_video"] == 16


def test_a_wrong_weights_file_is_never_used(shards, tmp_path, monkeypatch):
    from toolkit import weights

    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    bad = weights.cache_path("lpips-alexnet-backbone")
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not the alexnet weights")
    rep = evaluate(shards, method="reference-copy", profile="standard", results=tmp_path, progress=False)
    assert rep.notes["lpips"].startswith("unavailable (weights:") and "lpips-alexnet-backbone" in rep.notes["lpips"]
    assert np.isnan(rep.aggregate["lpips"])


@pytest.mark.slow
def test_each_disco_profile_takes_fid_vid_and_fvd_from_one_clip_path(tmp_path, monkeypatch):
    """disco scores stride-1 16-frame windows for both (DisCo's frame-folder path), disco-tm one sample per video
    for both (its mp4 path); on videos where the two paths give different values, each profile's values are
    those of its own path."""
    from tests.helpers import standin
    from toolkit.harness.scoring import conditions_for
    from toolkit.metrics import features

    shards = make_shards(tmp_path, n_videos=2, n_frames=19, h=32, w=32, test_ids=("00001", "00002"))
    standin.use_home(monkeypatch, tmp_path / "home")
    standin.install(monkeypatch, "fidvid-r3d50-kinetics", standin.resnet3d_checkpoint(), tmp_path / "w", legacy=True)
    standin.install(monkeypatch, "fvd-i3d-400", standin.i3d_state(), tmp_path / "w")
    gts = [conditions_for(Shards(shards), v)[0] for v in ("00001", "00002")]
    preds = [np.repeat(gt[:1], len(gt), axis=0) for gt in gts]   # reference-copy: the first frame repeated
    expected = {
        "disco": {"fid_vid": features.fid_vid(preds, gts, clips="sliding"),
                  "fvd": features.fvd(preds, gts, "disco", clips="sliding")},
        "disco-tm": {"fid_vid": features.fid_vid(preds, gts, clips="segments"),
                     "fvd": features.fvd(preds, gts, "disco", clips="whole")},
    }
    for profile, samples, clips in (("disco", 8, ("sliding", "sliding")), ("disco-tm", 2, ("segments", "whole"))):
        rep = evaluate(shards, method="reference-copy", profile=profile, results=tmp_path, progress=False)
        for metric, clip in zip(("fid_vid", "fvd"), clips):
            details = rep.provenance["clips"][metric]
            assert details["clips"] == clip and details["num_pred"] == details["num_target"] == samples, metric
            assert rep.aggregate[metric] == pytest.approx(expected[profile][metric].value, rel=1e-9), metric
    for metric in ("fid_vid", "fvd"):  # the constructed case: the two paths disagree
        a, b = expected["disco"][metric].value, expected["disco-tm"][metric].value
        assert abs(a - b) > 0.05 * max(a, b), metric
