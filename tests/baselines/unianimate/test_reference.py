"""Our UniAnimate model and sampler against golden outputs of the authors' released code.

The fixture (tests/baselines/unianimate/fixtures/unianimate_authors.npz, ~290 kB) was written by
scripts/reference_unianimate.py from ali-vilab/UniAnimate @643c963 run in its own environment: their
UNetSD_UniAnimate at reduced widths (dim 32, mult (1, 2), head dim 16, concat_dim 8), their DDIM loops
(DiffusionDDIM, DiffusionDDIMLong) and window schedule, on fixed inputs. Their weights are not stored: every
parameter was set from `param_values` (a platform-independent formula of its name) and the fixture keeps the
state dict's names, shapes and checksums, so the test rebuilds the release-layout .pth, converts it the way
`toolkit weights convert` does, and runs our model and sampler on the same inputs. No authors' code is needed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
FIXTURE = Path(__file__).parent / "fixtures" / "unianimate_authors.npz"


def _script():
    spec = importlib.util.spec_from_file_location("reference_unianimate", ROOT / "scripts/reference_unianimate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_unianimate", module)
    spec.loader.exec_module(module)
    return module


ref = _script()


@pytest.fixture(scope="module")
def data() -> dict:
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def model(data, tmp_path_factory):
    """The authors' reduced UNet, rebuilt in the release's layout, through our converter and loader."""
    directory = tmp_path_factory.mktemp("ua")
    shapes = json.loads(str(data["keys"]))
    torch.save({k: torch.from_numpy(ref.param_values(k, tuple(v))) for k, v in shapes.items()},
               directory / "unianimate_authors.pth")
    return ref.load_authors_model(directory, data["zero_y"])


@pytest.fixture(scope="module")
def double(model):
    return copy.deepcopy(model).double()


def test_weights_are_the_authors(data):
    """The formula gives back the weights the authors' side used (their checksums), every tensor."""
    checksums = json.loads(str(data["checksums"]))
    shapes = json.loads(str(data["keys"]))
    assert len(shapes) == len(checksums) == 742
    for name, shape in shapes.items():
        assert float(np.abs(ref.param_values(name, tuple(shape)).astype(np.float64)).sum()) == pytest.approx(
            checksums[name], rel=1e-12), name


def _check(data: dict, ours: dict, f64: bool = False) -> None:
    """Each of `ours` within the script's tolerance of the authors' array of the same name."""
    for key, value in ours.items():
        theirs = data[f"{key}_f64" if f64 else key]
        if "windows" in key:
            assert json.loads(str(theirs)) == value, key
            continue
        tolerance = ref.TOLERANCE_F64 if f64 else ref.TOLERANCE_LOOP if key.startswith("loop") else ref.TOLERANCE
        diff = float(np.abs(np.asarray(theirs, np.float64) - np.asarray(value, np.float64)).max())
        assert diff <= tolerance, f"{key}: max abs diff {diff:.3g} > {tolerance:g}"


def test_unet_each_release_condition_set(data, model):
    """{image, local_image, dwpose}, {image, randomref, dwpose} and the unconditional call."""
    _check(data, ref.our_results(model, data, ("unet_local_image", "unet_randomref", "unet_uncond")))


def test_noise_priors_and_windows(data, model):
    """UniAnimate_infer: seed 11, offset noise, then q_sample at t=949; UniAnimate_infer_long: seed 7, q_sample
    at t=939, then the offset noise; the long config's windows for 11 (reduced), 56, 57 and 100 frames."""
    _check(data, ref.our_results(model, data, ("prior_short_local_image", "prior_long_randomref", "long_windows",
                                               "windows_56", "windows_57", "windows_100")))


def test_unet_float64(data, model, double):
    """In float64 the UNet agrees to float64 rounding: a timestep embedding formed another way (diffusers'
    exp(-ln 10000 i / half)) leaves 2e-7 here."""
    _check(data, ref.our_results(double, data, ("unet_randomref",)), f64=True)


def test_short_loop_randomref(data, model, double):
    """The released DDIM loop (ddim_timesteps=4: t = 751, 501, 251, 1) with guidance, from the noise prior; in
    float64 to 1e-10 (diffusers' float32 schedule instead of the release's float64 one leaves 3e-6)."""
    _check(data, ref.our_results(model, data, ("loop_short_randomref",)))
    _check(data, ref.our_results(double, data, ("loop_short_randomref",)), f64=True)


def test_other_loops(data, model, double):
    """The other key set's loop and the long config's windowed loop, in float32 and float64."""
    keys = ("loop_short_local_image", "loop_long_randomref")
    _check(data, ref.our_results(model, data, keys))
    _check(data, ref.our_results(double, data, keys), f64=True)


def test_published_run_takes_the_release_config_by_length_and_squashes_as_pil():
    """'auto': UniAnimate_infer while every 2nd pose gives at most 32 frames, else the long config; the
    reference and poses are resized to the config's size ignoring the aspect, bilinear as PIL."""
    from PIL import Image

    from baselines.unianimate import method

    m = object.__new__(method.UniAnimateMethod)
    m.release = dict(method.RELEASE_DEFAULTS)
    assert [m.release_for(n) for n in (1, 63, 64, 65, 300)] == [method.SHORT] * 3 + [method.LONG] * 2
    m.release["config"] = method.LONG
    assert m.release_for(10) == method.LONG
    image = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    squashed = method._squash(image, (24, 16))
    assert squashed.shape == (24, 16, 3)
    assert np.array_equal(squashed, np.asarray(Image.fromarray(image).resize((16, 24), Image.BILINEAR)))
