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

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "magicanimate_reference.npz"


def _script():
    spec = importlib.util.spec_from_file_location("reference_magicanimate", ROOT / "scripts" / "reference_magicanimate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R = _script()


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[dict, Path]:
    data = dict(np.load(FIXTURE))
    files = tmp_path_factory.mktemp("release")
    R.write_release_files(files, json.loads(str(data["names_json"])), json.loads(str(data["vae_config_json"])))
    return data, files


def _ours(golden: tuple[dict, Path], with_pipeline: bool = True, **options) -> tuple[dict, dict]:
    data, files = golden
    x = {k.removeprefix("input_"): v for k, v in data.items() if k.startswith("input_")}
    config = dataclasses.replace(R.our_config(), **options)
    with torch.no_grad():
        model = R.our_model(files, x["text"], config)
        vae = R._vae(files) if with_pipeline else None
        return data, R.our_outputs(model, x, vae, "float64")


def _max_diff(data: dict, ours: dict, key: str) -> float:
    return float(np.abs(ours[key] - data[f"float64/{key}"]).max())


def test_equals_the_authors_code_at_float64(golden):
    data, ours = _ours(golden)
    keys = [k.removeprefix("float64/") for k in data if k.startswith("float64/")]
    assert {"unet", "unet_plain", "reference", "controlnet_mid", "step0_guided", "step1_next"} <= set(keys)
    assert sum(k.startswith("bank_") for k in keys) == 10
    for key in keys:
        assert _max_diff(data, ours, key) < 1e-9, key
    for key in [k for k in data if k.startswith(("padding_", "windows_"))]:
        np.testing.assert_array_equal(ours[key], data[key], err_msg=key)


def test_the_other_norm_axes_do_not(golden):
    """diffusers' UNetMotionModel's norm axes (ResNets per frame, motion modules pooled) fail the comparison."""
    data, ours = _ours(golden, with_pipeline=False, video_norm="diffusers")
    assert _max_diff(data, ours, "unet_plain") > 1e-2
    assert _max_diff(data, ours, "controlnet_mid") < 1e-9   # the ControlNet is per frame either way


def test_reading_the_bank_in_full_precision_does_not(golden):
    """The release copies the bank to float16 before the denoiser reads it; ours does too by default."""
    data, ours = _ours(golden, with_pipeline=False, reference_bank_dtype="model")
    assert _max_diff(data, ours, "reference") > 1e-5
    assert _max_diff(data, ours, "unet_plain") < 1e-9
