"""The one metric base (toolkit/metrics/base.py): a state merged from parts equals the state of one pass (what
`eval --executor ray` relies on), the harness builds every metric from one table, and the scorer names no metric.

Network metrics run on stand-in weights (tests/standin.py) imported into a temporary cache.
"""

from __future__ import annotations

import ast
import copy
import inspect
from typing import Any, Callable

import numpy as np
import pytest

from tests.helpers import standin
from toolkit.harness import remote, scoring
from toolkit.harness.protocols import HIGHER_IS_BETTER, available_protocols, load_protocol
from toolkit.metrics import FID, LPIPS, L1, METRICS, Metric, PixelMetrics, Video
from toolkit.metrics.features import FVD


def _frames(n: int, seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _same(a: Any, b: Any) -> bool:
    """Exact equality of states: dicts key by key, lists item by item, arrays bit for bit."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return type(a) is type(b) and a == b


def _check_parts(make: Callable[[], Metric], update: Callable[[Metric, int], None], n: int) -> None:
    """n updates in one instance == one fresh instance per update, states merged in order (the Ray executor's
    way); for n = 2 that is one pass against two halves merged. Float sums are added in the same order on both
    paths, so the states are equal bit for bit."""
    whole = make()
    for k in range(n):
        update(whole, k)
    parts = make()
    for k in range(n):
        one = make()
        update(one, k)
        parts.merge(one.state())
    assert _same(parts.state(), whole.state())
    a, b = whole.compute(), parts.compute()
    assert _same(a, b) if not hasattr(a, "value") else (a.value == b.value and _same(a.to_dict(), b.to_dict()))


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        standin.use_home(mp, tmp_path_factory.mktemp("home"))
        work = tmp_path_factory.mktemp("standins")
        standin.install(mp, "lpips-alexnet-backbone", standin.alexnet_backbone(), work)
        standin.install(mp, "fid-inception-pytorch", standin.fid_inception_state(), work)
        yield


@pytest.mark.parametrize("make", [lambda: PixelMetrics("standard"), lambda: L1("standard")])
def test_pixel_state_merged_from_parts_equals_one_pass(make) -> None:
    pred, target = _frames(6, 1), _frames(6, 2)
    mask = np.zeros((6, 32, 32), bool)
    mask[:, 8:24, 4:20] = True
    mask[3] = False                      # an empty region: NaN, not counted, on both paths
    _check_parts(make, lambda m, k: m.update(pred[3 * k:3 * k + 3], target[3 * k:3 * k + 3], mask[3 * k:3 * k + 3]), 2)
    _check_parts(make, lambda m, k: m.update(pred[2 * k:2 * k + 2], target[2 * k:2 * k + 2], mask[2 * k:2 * k + 2]), 3)


def _fresh(metric: Metric) -> Callable[[], Metric]:
    """New empty instances sharing `metric`'s network (loading it again for each would take most of the test)."""
    def make() -> Metric:
        out = copy.copy(metric)
        out.reset()
        return out
    return make


def test_network_states_merged_from_parts_equal_one_pass(standins) -> None:
    pred, target = _frames(4, 3), _frames(4, 4)
    fid, lpips = _fresh(FID("standard")), _fresh(LPIPS("standard"))
    _check_parts(fid, lambda m, k: m.update(pred[k:k + 1], target[k:k + 1]), 2)
    _check_parts(lpips, lambda m, k: m.update(pred[2 * k:2 * k + 2], target[2 * k:2 * k + 2]), 2)
    region = np.zeros((32, 32), bool)
    region[4:20, 8:28] = True
    _check_parts(lpips, lambda m, k: m.update(pred[k:k + 1], target[k:k + 1], region[None]), 3)
    with pytest.raises(ValueError, match="expected"):
        lpips().merge(PixelMetrics().state())


def test_a_state_is_a_copy_and_reset_empties_it() -> None:
    metric = PixelMetrics("disco")
    metric.update(_frames(2, 5), _frames(2, 6))
    state = metric.state()
    metric.reset()
    assert metric.state() == {"totals": {}, "counts": {}, "frames": 0}
    assert state["frames"] == 2 and set(state["totals"]) == {"l1", "psnr", "psnr_legacy", "ssim"}
    other = PixelMetrics("disco")
    other.merge(state)
    other.merge(state)
    assert other.frames == 4 and other.counts["l1"] == 4


def test_every_card_metric_has_one_class_on_the_base() -> None:
    assert set(METRICS) == set(HIGHER_IS_BETTER)
    assert all(issubclass(METRICS.get(n), Metric) and METRICS.get(n).name for n in METRICS)
    for name in available_protocols():
        card = load_protocol(name)
        built = scoring.pixel_only(card)
        assert list(built.metrics) == ["pixel"] and built.unavailable == {}
        pred = _frames(3, 7)
        values = built.update_video(Video("v", pred, pred))
        assert set(values) == {m for m in card.metrics if METRICS.get(m) is PixelMetrics}
    fvd = METRICS.get("fvd")
    assert fvd is FVD and fvd.needs_weights and not PixelMetrics.needs_weights


def _string_constants(tree: ast.AST) -> set[str]:
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_scorer_and_the_ray_merge_name_no_metric() -> None:
    """No per-metric case in score_video, ProtocolMetrics or the Ray task and merge: every metric goes through the
    base's update_video / state / merge."""
    names = set(METRICS) | {METRICS.get(n).name for n in METRICS}
    names |= {f"{n}_{part}" for n in names for part in ("fg", "bg")}
    for obj in (scoring.score_video, scoring.ProtocolMetrics, scoring.pixel_only, remote.score_remote,
                remote.score_on_ray):
        found = _string_constants(ast.parse(inspect.getsource(obj))) & names
        assert not found, (obj.__name__, found)
