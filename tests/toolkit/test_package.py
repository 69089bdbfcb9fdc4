"""A method is its folder plus one entry-point line: the package description (toolkit/package.py) and the weights
registry that joins every declared artifact (toolkit/weights.py)."""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path

import pytest

from toolkit import plugins, weights
from toolkit.package import describe, method_package, recipe_names

ROOT = Path(__file__).resolve().parents[2]


def _entry_points() -> dict[str, dict[str, str]]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["entry-points"]


def test_each_method_folder_is_named_by_exactly_one_entry_point_line() -> None:
    folders = sorted(p.name for p in (ROOT / "baselines").iterdir() if (p / "__init__.py").is_file())
    lines = [(group, value) for group, entries in _entry_points().items() for value in entries.values()]
    for folder in folders:
        naming = [(g, v) for g, v in lines if v.split(":")[0].split(".")[:2] == ["baselines", folder]]
        assert len(naming) == 1 and naming[0][0] == "toolkit.methods", (folder, naming)


def test_the_package_description_gives_method_recipe_artifacts_converters_and_configs() -> None:
    from baselines.unianimate.method import UniAnimateMethod
    from baselines.unianimate.recipe import UniAnimateRecipe

    package = method_package("unianimate")
    assert package.method_class() is UniAnimateMethod and package.recipe_class() is UniAnimateRecipe
    assert {a.name for a in package.artifacts} == {"openclip-vit-h-14-laion2b", "sd21-512-ema-pruned",
                                                    "unianimate-16f-32f"}
    converters = {a.name: a.convert for a in package.artifacts if a.convert}
    assert converters == {"unianimate-16f-32f": "baselines.unianimate.convert:convert_published_file"}
    assert sorted(p.stem for p in package.configs.glob("*.toml")) == ["paper", "tiny"]
    assert sorted(recipe_names()) == ["magicanimate", "unianimate"]
    bare = method_package("reference-copy")          # a Method class registered directly: a package of one
    assert bare.recipe_class() is None and bare.artifacts == () and describe(bare) is bare


def test_the_registry_holds_what_is_declared_and_declares_nothing_itself() -> None:
    tree = ast.parse((ROOT / "toolkit" / "weights.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Artifact"]
    declared = weights.declared()
    assert set(declared) == set(weights.ARTIFACTS)
    assert {"dwpose-yolox-l", "fvd-i3d-400", "sd15-unet", "unianimate-16f-32f"} <= set(declared)
    # who needs each: every artifact names a user, except the detector kept for provenance only
    assert [n for n, a in declared.items() if not a.used_by] == ["fvd-i3d-styleganv"]


def test_two_different_declarations_of_one_artifact_are_an_error_naming_both(monkeypatch) -> None:
    first = weights.ARTIFACTS["fvd-i3d-400"]
    twin = dataclasses.replace(first, url="https://example.org/other.pt")
    monkeypatch.setattr(weights, "_METHODS", plugins.Registry("method"))
    monkeypatch.setattr(weights, "_ARTIFACTS", plugins.Registry("artifacts", {"a": (first,), "b": (twin,)}))
    with pytest.raises(plugins.PluginError, match="fvd-i3d-400.*toolkit.artifacts a.*toolkit.artifacts b"):
        weights.declared()
    other = dataclasses.replace(first, name="mine")  # another name for the same file
    monkeypatch.setattr(weights, "_ARTIFACTS", plugins.Registry("artifacts", {"a": (first,), "b": (other,)}))
    with pytest.raises(plugins.PluginError, match="takes the file metrics/i3d_pretrained_400.pt"):
        weights.declared()


def test_a_method_without_a_recipe_is_refused_by_train_with_the_trainable_ones() -> None:
    from toolkit.cli.train import load_recipe

    with pytest.raises(plugins.PluginError, match="pose-warp.*no training recipe.*magicanimate, unianimate"):
        load_recipe("pose-warp")
