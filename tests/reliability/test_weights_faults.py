"""Weights that are not what they claim (issue: reliability): no pickle is trusted on first use, and a metric whose
file does not load is `unavailable` with the reason, never a crashed run."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from tests.helpers.builders import make_shards
from toolkit import weights
from toolkit.harness.runner import evaluate
from toolkit.safe_pickle import UnsafeCheckpoint, unsafe_globals


class Payload:
    """Unpickling this would run a shell command; the tests only ever write it."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_crafted_pickle_is_refused_and_never_pinned(home, tmp_path, protocol):
    bad = tmp_path / "resnet-50-kinetics.pth"
    bad.write_bytes(pickle.dumps(Payload(), protocol=protocol))
    assert any(g.endswith(".system") for g in unsafe_globals(bad))
    with pytest.raises(weights.WeightsUnreadable) as err:
        weights.import_file(bad, "fidvid-r3d50-kinetics")
    message = str(err.value)
    assert "system" in message and "weights_only=False" not in message
    assert "fidvid-r3d50-kinetics" not in weights.pins()
    assert not weights.cache_path("fidvid-r3d50-kinetics").exists()


def test_tensors_of_another_architecture_are_refused(home, tmp_path):
    wrong = tmp_path / "i3d_pretrained_400.pt"
    torch.save({"conv.weight": torch.zeros(2, 3)}, wrong)
    with pytest.raises(weights.WeightsUnreadable, match="does not fit InceptionI3D"):
        weights.import_file(wrong, "fvd-i3d-400")
    assert "fvd-i3d-400" not in weights.pins()


def test_the_right_architecture_is_accepted_and_pinned(home, tmp_path):
    from toolkit.metrics.networks.i3d import InceptionI3D

    good = tmp_path / "i3d_pretrained_400.pt"
    torch.save(InceptionI3D().state_dict(), good)
    weights.import_file(good, "fvd-i3d-400")
    assert weights.pins()["fvd-i3d-400"]["sha256"] == weights.sha256_of(good)


def test_a_safetensors_artifact_must_parse_as_safetensors(home, tmp_path):
    from safetensors.torch import save_file

    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(weights.WeightsUnreadable, match="sd15-text-encoder"):
        weights.import_file(fake, "sd15-text-encoder")
    save_file({"w": torch.zeros(2)}, str(fake))
    weights.import_file(fake, "sd15-text-encoder")
    assert "sd15-text-encoder" in weights.pins()


def test_a_metric_whose_cached_file_does_not_load_is_unavailable_with_the_reason(home, tmp_path):
    bad = tmp_path / "resnet-50-kinetics.pth"
    bad.write_bytes(pickle.dumps(Payload(), protocol=2))
    weights.import_file(bad, "fidvid-r3d50-kinetics", verify=False)  # put there by hand, unchecked
    shards = make_shards(tmp_path, n_videos=2, n_frames=6, h=36, w=24, test_ids=("00002",))
    report = evaluate(shards, method="reference-copy", split="test", profile="standard", write=False,
                      progress=False)
    note = str(report.notes["fid_vid"])
    assert note.startswith("unavailable") and "system" in note and "weights_only=False" not in note
    assert report.aggregate["l1"] >= 0


def test_unsafe_checkpoint_errors_name_the_file(tmp_path):
    from toolkit.safe_pickle import load

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a pickle at all")
    with pytest.raises(UnsafeCheckpoint, match="junk.pt"):
        load(junk)


def test_densepose_weights_that_smuggle_code_are_a_clear_error(tmp_path):
    from toolkit.annotate.densepose_detectron2 import load_state_dict

    bad = tmp_path / "model_final_162be9.pth"
    bad.write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(UnsafeCheckpoint, match="model_final_162be9.pth") as err:
        load_state_dict(bad)
    assert "weights_only=False" not in str(err.value)


def test_lightning_metadata_loads_inert_only_where_the_artifact_allows_it(home, tmp_path):
    """SD 2.1's checkpoint carries a Lightning callback class and numpy scalars beside its tensors: refused by
    default, loaded weights-only with them as inert placeholders under sd21-512-ema-pruned's allow-list, and a
    payload beside them is still refused."""
    from tests.helpers.standin import save_lightning_checkpoint
    from toolkit import safe_pickle

    path = tmp_path / "v2-1_512-ema-pruned.ckpt"
    save_lightning_checkpoint({"first_stage_model.x": torch.arange(3.0)}, path)
    assert any(g.startswith("pytorch_lightning.") for g in unsafe_globals(path))
    with pytest.raises(UnsafeCheckpoint, match="pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"):
        safe_pickle.load(path)
    allow = weights.get("sd21-512-ema-pruned").allow_globals
    loaded = safe_pickle.load(path, allow)
    assert torch.equal(loaded["state_dict"]["first_stage_model.x"], torch.arange(3.0))
    assert list(loaded["callbacks"]) == [safe_pickle.Opaque]
    assert isinstance(loaded["callbacks"][safe_pickle.Opaque]["best_model_score"], safe_pickle.Opaque)
    assert isinstance(loaded["global_step"], safe_pickle.Opaque)
    weights.import_file(path, "sd21-512-ema-pruned")           # first use: the scan accepts it, then it is pinned
    assert weights.pins()["sd21-512-ema-pruned"]["sha256"] == weights.sha256_of(path)
    bad = tmp_path / "with_payload.ckpt"
    torch.save({"state_dict": {}, "extra": Payload()}, bad)
    with pytest.raises(UnsafeCheckpoint, match="system"):
        safe_pickle.load(bad, allow)
