"""Protocol cards: a card with a `base` takes every key it does not set from it; clip paths per profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.harness import protocols
from toolkit.harness.protocols import available_protocols, load_protocol


def test_the_two_disco_cards_differ_only_in_their_clip_path() -> None:
    disco, tm = load_protocol("disco"), load_protocol("disco-tm")
    assert "disco-tm" in available_protocols()
    assert (disco.fid_vid_clips, disco.fvd_clips) == ("sliding", "sliding")   # gen_eval.sh: frame folders
    assert (tm.fid_vid_clips, tm.fvd_clips) == ("segments", "whole")          # gen_eval_tm.sh: one file each
    assert tm.base == disco.base == "disco" and not tm.uses_regions
    assert (tm.frames, tm.metrics) == (disco.frames, disco.metrics)
    for metric in ("l1", "psnr", "psnr_legacy", "ssim", "lpips", "fid"):
        assert tm.definitions[metric] == disco.definitions[metric]
    for metric in ("fid_vid", "fvd"):
        assert tm.definitions[metric] != disco.definitions[metric]
    assert tm.raw["reference"]["script"].startswith("gen_eval_tm.sh")
    assert disco.raw["reference"]["script"].startswith("gen_eval.sh")
    assert "changes" not in tm.raw and tm.sha256 != disco.sha256
    standard = load_protocol("standard")
    assert standard.base == "standard" and standard.fid_vid_clips == "segments" and standard.fvd_clips == ""


def _cards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cards: dict[str, str]) -> None:
    for name, text in cards.items():
        (tmp_path / f"{name}.toml").write_text(text)
    monkeypatch.setattr(protocols, "protocols_dir", lambda: tmp_path)


BASE = 'name = "disco"\nversion = "1"\nframes = "all"\nmetrics = ["l1"]\n[definitions]\nl1 = "a"\n'


def test_a_derived_card_overrides_keys_and_definitions_one_by_one(tmp_path, monkeypatch) -> None:
    _cards(tmp_path, monkeypatch, {
        "disco": BASE,
        "mine": 'name = "mine"\nversion = "2"\nbase = "disco"\nmetrics = ["l1", "psnr"]\n[definitions]\npsnr = "b"\n',
    })
    mine = load_protocol("mine")
    assert (mine.version, mine.base, mine.frames, mine.metrics) == ("2", "disco", "all", ("l1", "psnr"))
    assert mine.definitions == {"l1": "a", "psnr": "b"}
    (tmp_path / "disco.toml").write_text(BASE.replace('"a"', '"c"'))
    assert load_protocol("mine").sha256 != mine.sha256   # the base's file is part of the card's hash


def test_card_errors_name_the_file(tmp_path, monkeypatch) -> None:
    _cards(tmp_path, monkeypatch, {
        "disco": BASE,
        "orphan": 'name = "orphan"\nversion = "1"\nbase = "gone"\n',
        "loop": 'name = "loop"\nversion = "1"\nbase = "loop2"\n',
        "loop2": 'name = "loop2"\nversion = "1"\nbase = "loop"\n',
        "own": BASE.replace('"disco"', '"own"'),
        "broken": 'name = "broken\n',
    })
    with pytest.raises(ValueError, match=r"unknown profile 'gone' \(base of orphan\)"):
        load_protocol("orphan")
    with pytest.raises(ValueError, match="loop2?.toml: base 'loop2?' leads back to itself"):
        load_protocol("loop")
    with pytest.raises(ValueError, match=r"own.toml: base must lead to one of disco, standard"):
        load_protocol("own")
    with pytest.raises(ValueError, match="broken.toml: not a readable TOML card"):
        load_protocol("broken")
