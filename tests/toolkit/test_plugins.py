"""toolkit.plugins.Registry: the one name -> thing table (backends, adapters, metrics, commands, methods)."""

from __future__ import annotations

import sys

import pytest

from toolkit.plugins import PluginError, Registry


def test_unknown_name_lists_the_known_ones_and_aliases():
    reg = Registry("colour", {"red": "colorsys:rgb_to_hsv", "blue": "colorsys:hsv_to_rgb"}, aliases={"rouge": "red"})
    assert reg.names() == ["red", "blue"] and list(reg) == ["red", "blue"]
    assert "red" in reg and "rouge" in reg and "green" not in reg
    with pytest.raises(PluginError, match=r"unknown colour 'green'; registered: blue, red, rouge"):
        reg.get("green")
    import colorsys
    assert reg.get("rouge") is colorsys.rgb_to_hsv


def test_a_broken_spec_is_an_error_naming_it():
    reg = Registry("thing", {"gone": "no_such_module_xyz:Thing", "typo": "colorsys:nope", "bare": "colorsys"})
    assert "gone" in reg          # registering imports nothing, so a broken entry is only found when used
    with pytest.raises(PluginError, match=r"thing 'gone' \(no_such_module_xyz:Thing\) failed to load: "
                                          r"ModuleNotFoundError.*no_such_module_xyz"):
        reg.get("gone")
    with pytest.raises(PluginError, match=r"thing 'typo' \(colorsys:nope\) failed to load: .*has no attribute 'nope'"):
        reg.get("typo")
    with pytest.raises(PluginError, match="thing 'bare'.*give package.module:Attribute"):
        reg.get("bare")


def test_nothing_is_imported_until_get(tmp_path, monkeypatch):
    (tmp_path / "lazy_plugin_xyz.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_plugin_xyz", raising=False)
    reg = Registry("thing", {"lazy": "lazy_plugin_xyz:VALUE", "direct": 7})
    assert reg.names() == ["lazy", "direct"] and "lazy" in reg
    assert "lazy_plugin_xyz" not in sys.modules
    assert reg.get("direct") == 7 and "lazy_plugin_xyz" not in sys.modules
    assert reg.get("lazy") == 42 and "lazy_plugin_xyz" in sys.modules


def test_entry_point_group_and_direct_specs(tmp_path, monkeypatch):
    (tmp_path / "ep_plugin_xyz.py").write_text("A = 'a'\nB = 'b'\n")
    dist = tmp_path / "ep_plugin_xyz-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-xyz\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[test.registry.xyz]\nzed = ep_plugin_xyz:A\nalpha = ep_plugin_xyz:B\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", {"own": "ep_plugin_xyz:A"}, group="test.registry.xyz", specs=True)
    assert reg.names() == ["own", "alpha", "zed"]
    assert reg.get("alpha") == "b" and reg.get("ep_plugin_xyz:B") == "b"
    with pytest.raises(PluginError, match=r"unknown widget 'nope'; registered: alpha, own, zed \(or give"):
        reg.get("nope")
    twice = Registry("widget", {"zed": "ep_plugin_xyz:B"}, group="test.registry.xyz")
    with pytest.raises(PluginError, match="widget 'zed' is registered twice in test.registry.xyz"):
        twice.get("zed")
