"""Methods as plug-ins: registered by entry point or named as package.module:Class, and the baselines' floor."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.builders import make_shards
from toolkit import plugins
from toolkit.harness.registry import get_method, method_class, method_names
from toolkit.harness.runner import evaluate
from toolkit.harness.store import load_provenance

USER_METHOD = '''
import numpy as np
from toolkit.harness.method import Method


class Flipped(Method):
    name = "flipped"
    description = "the reference, mirrored"

    def __init__(self, checkpoint=None):
        self.checkpoint = checkpoint

    def generate(self, cond):
        return np.repeat(cond.reference[None, :, ::-1], cond.n_frames, axis=0).copy()

    def config(self):
        return {"mirror": True, "checkpoint": str(self.checkpoint)}
'''


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("methods"), n_videos=2, n_frames=6, h=48, w=32,
                       test_ids=("00002",))


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A user's package on the path (not installed, not registered), as someone's own project would be."""
    root = tmp_path / "userpkgs"
    (root / "mymethods").mkdir(parents=True)
    (root / "mymethods" / "__init__.py").write_text("")
    (root / "mymethods" / "flip.py").write_text(textwrap.dedent(USER_METHOD))
    monkeypatch.syspath_prepend(str(root))
    for module in [m for m in sys.modules if m == "mymethods" or m.startswith("mymethods.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path / "empty_cache"))
    return root


def test_builtin_methods_are_entry_points():
    assert {"reference-copy", "gt-oracle", "pose-warp"} <= set(method_names())
    assert method_class("pose-warp").__module__.startswith("baselines.pose_warp")
    with pytest.raises(plugins.PluginError, match="unknown method 'nope'.*registered: .*pose-warp"):
        get_method("nope")


def test_a_users_method_runs_by_spec_without_editing_the_toolkit(user_package, shards, tmp_path):
    rep = evaluate(shards, method="mymethods.flip:Flipped", results=tmp_path, progress=False,
                   name="flip-test", tags=["mine", "v1"], method_options={"checkpoint": "ckpt"})
    prov = load_provenance(tmp_path, rep.run_id)
    assert prov["method"] == "flip-test" and prov["tags"] == ["mine", "v1"]
    assert prov["method_class"] == "mymethods.flip:Flipped"
    assert prov["method_config"] == {"mirror": True, "checkpoint": "ckpt"}
    assert rep.aggregate["l1"] > 0


def test_a_users_method_registered_as_an_entry_point(user_package, shards, tmp_path):
    """An installed distribution declaring `toolkit.methods` makes the name work everywhere, CLI included."""
    dist = user_package / "mymethods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mymethods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[toolkit.methods]\nflipped = mymethods.flip:Flipped\n")
    assert "flipped" in method_names()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(user_package), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "toolkit", "eval", "--method", "flipped", "--shards", str(shards),
                          "--results", str(tmp_path / "res"), "--quiet", "--name", "flipped-cli"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "flipped-cli" in out.stdout


def test_a_broken_plugin_is_an_error_that_names_it(user_package):
    (user_package / "mymethods" / "broken.py").write_text("import nonexistent_package_xyz\n")
    dist = user_package / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[toolkit.methods]\nbroken = mymethods.broken:Nope\n")
    with pytest.raises(plugins.PluginError, match="'broken'.*failed to load.*nonexistent_package_xyz"):
        method_class("broken")
    with pytest.raises(plugins.PluginError, match="has no attribute 'Nope'"):
        method_class("mymethods.flip:Nope")
    with pytest.raises(plugins.PluginError, match="not a toolkit Method"):
        method_class("os.path:join")


def test_pose_warp_beats_reference_copy_on_the_person(default_shards, tmp_path):
    """On the default dataset pose-warp must follow the pose: clearly better SSIM inside the person region."""
    scores = {m: evaluate(default_shards, method=m, profile="standard", results=tmp_path, progress=False,
                          write=False).aggregate for m in ("reference-copy", "pose-warp")}
    assert scores["pose-warp"]["ssim_fg"] > scores["reference-copy"]["ssim_fg"] + 0.1, scores
    assert scores["pose-warp"]["l1_fg"] < scores["reference-copy"]["l1_fg"], scores
