"""Our MagicAnimate model against the golden outputs of the authors' code (magic-research/magic-animate @d2bc3bc).

The fixture (``scripts/reference_magicanimate.py fixture``) holds the inputs, the authors' float64
outputs at reduced widths and the tensor names of the release-layout files; the weights are
regenerated from the names (``standin``, one seeded generator per tensor), written as the release's
files and loaded through our conversion path. No authors' code is needed here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).parent / "fixtures" / "magicanimate_reference.npz"


def _script():
    path = ROOT / "scripts" / "reference_magicanimate.py"
    spec = importlib.util.spec_from_file_location("reference_magicanimate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R = _script()


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[dict, dict, object, object]:
    """The fixture's arrays and inputs, our model from the regenerated release files (float64), and the VAE."""
    data = dict(np.load(FIXTURE))
    files = tmp_path_factory.mktemp("release")
    R.write_release_files(files, json.loads(str(data["names_json"])), json.loads(str(data["vae_config_json"])))
    x = {k.removeprefix("input_"): v for k, v in data.items() if k.startswith("input_")}
    return data, x, R.our_model(files, x["text"]).double(), R._vae(files)


def _max_diff(data: dict, ours: dict, key: str) -> float:
    return float(np.abs(ours[key] - data[f"float64/{key}"]).max())


def _variant(model, **options):
    """The same weights in a model with other options."""
    from baselines.magicanimate.model import MagicAnimateModel

    config = dataclasses.replace(model.config, **options)
    return MagicAnimateModel.assigned(config, {k: v.clone() for k, v in model.state_dict().items()}).eval()


@torch.no_grad()
def test_equals_the_authors_code_at_float64(golden):
    data, x, model, vae = golden
    ours = R.our_outputs(model, x, vae, "float64", steps=1)
    keys = [k.removeprefix("float64/") for k in data if k.startswith("float64/")]
    assert {"unet", "unet_plain", "reference", "controlnet_mid", "step0_latents", "step0_guided"} <= set(keys)
    assert sum(k.startswith("bank_") for k in keys) == 10
    for key in keys:
        assert _max_diff(data, ours, key) < 1e-9, key
    for key in [k for k in data if k.startswith(("padding_", "windows_"))]:
        np.testing.assert_array_equal(ours[key], data[key], err_msg=key)


@torch.no_grad()
def test_the_other_norm_axes_do_not(golden):
    """diffusers' UNetMotionModel's norm axes (ResNets per frame, motion modules pooled) fail the comparison."""
    data, x, model, _ = golden
    latents, t = torch.from_numpy(x["latents"]).double(), torch.tensor([R.TIMESTEP, R.TIMESTEP])
    out = _variant(model, video_norm="diffusers").double().denoise(latents, t).numpy()
    assert np.abs(out - data["float64/unet_plain"]).max() > 1e-2


@torch.no_grad()
def test_reading_the_bank_in_full_precision_does_not(golden):
    """The release copies the bank to float16 before the denoiser reads it; ours does too by default."""
    data, x, model, _ = golden
    latents, t = torch.from_numpy(x["latents"]).double(), torch.tensor([R.TIMESTEP, R.TIMESTEP])
    full = _variant(model, reference_bank_dtype="model").double()
    bank = full.encode_reference(torch.from_numpy(x["reference_latent"]).double(), t[:1])
    out = full.denoise(latents, t, bank, torch.tensor([False, True])).numpy()
    assert np.abs(out - data["float64/reference"]).max() > 1e-5
