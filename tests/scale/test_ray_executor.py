"""`--executor ray` for prepare and eval, on a local Ray cluster of 2 CPUs started once for this module.

The Ray executor must write the same shards and score the same results as the local executor, and a video
whose task raises or whose worker process dies is recorded as failed while the run goes on and stays
resumable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (the dev extra has it)")

from tests.helpers.paths import ROOT  # noqa: E402
from toolkit.cli import main as cli  # noqa: E402
from toolkit.harness.runner import evaluate  # noqa: E402
from toolkit.prepare import PrepareOptions, prepare  # noqa: E402
from toolkit.shards.reader import Shards  # noqa: E402
from toolkit.sources import load_card  # noqa: E402
from toolkit.video import write_video  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A 2-CPU Ray cluster on this machine whose workers import this checkout and carry tests/scale/faults.py."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    patch = os.environ.get("RAY_TQDM_PATCH_PRINT")
    os.environ["RAY_TQDM_PATCH_PRINT"] = "0"   # leave builtins.print alone for the tests that run after these
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
                          "worker_process_setup_hook": "tests.scale.faults.install"})
    yield
    ray.shutdown()
    if patch is None:
        os.environ.pop("RAY_TQDM_PATCH_PRINT")
    else:
        os.environ["RAY_TQDM_PATCH_PRINT"] = patch


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_shards_are_byte_identical_to_the_local_executors(tmp_path: Path) -> None:
    card = load_card("synthetic")
    source = ROOT / "data" / "raw" / "synthetic"   # generated here by the first prepare if absent
    # the test split (6 videos) at 128 px: every column and file kind of the full prepare, a twentieth of the work
    options = PrepareOptions(size=128, pose="synthetic", densepose="synthetic", splits=("test",))
    local = prepare(card, source, tmp_path / "local", options, workers=2, progress=False)
    remote = prepare(card, source, tmp_path / "ray", options, progress=False, executor="ray")
    assert not local.failed and not remote.failed and len(remote.records) == 6
    a, b = files(tmp_path / "local"), files(tmp_path / "ray")
    assert sorted(a) == sorted(b)
    assert sum(name.startswith("frames/") for name in a) == 6
    for name in a:  # frames files, videos.parquet, manifest.json and every per-video record
        assert a[name] == b[name], name
    assert ray.is_initialized()  # the cluster the caller started is left running


def clip(path: Path, seed: int, n: int = 6) -> Path:
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), fps=10)


def test_a_failing_task_or_a_dying_worker_is_recorded_and_the_run_resumes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for k, name in enumerate(("a", "b", "crash", "raise")):
        clip(src / f"{name}.mp4", k)
    (src / "crash.crash").touch()     # the worker preparing crash.mp4 exits (tests/scale/faults.py)
    (src / "raise.raise").touch()     # the task preparing raise.mp4 raises KeyError
    out = tmp_path / "shards"
    options = PrepareOptions(size=32)
    report = prepare("folder", src, out, options, progress=False, executor="ray")
    by_id = {r["video_id"]: r for r in report.records}
    assert by_id["a"]["status"] == by_id["b"]["status"] == "ok"
    assert by_id["crash"]["status"] == "failed" and "worker" in by_id["crash"]["failure_reason"]
    assert by_id["crash"]["failure_reason"].startswith("WorkerCrashedError")
    assert by_id["raise"]["failure_reason"] == "KeyError: 'injected fault for raise'"
    table = Shards(out).videos.set_index("video_id")
    assert table.loc["crash", "status"] == "failed" and table.loc["a", "status"] == "ok"
    assert table.loc["raise", "failure_reason"] == "KeyError: 'injected fault for raise'"

    (src / "crash.crash").unlink()
    (src / "raise.raise").unlink()
    again = prepare("folder", src, out, options, progress=False, executor="ray")
    assert again.skipped == 2 and sorted(r["video_id"] for r in again.records) == ["crash", "raise"]
    assert not again.failed
    assert set(Shards(out).videos.status) == {"ok"}
    local = prepare("folder", src, tmp_path / "local", options, progress=False)
    assert files(out / "frames") == files(tmp_path / "local" / "frames")


def test_eval_results_equal_the_local_executors(default_shards: Path, tmp_path: Path) -> None:
    runs = {}
    for executor in ("local", "ray"):
        runs[executor] = evaluate(default_shards, method="pose-warp", profile="standard", results=tmp_path,
                                  progress=False, write=False, executor=executor)
    local, remote = runs["local"], runs["ray"]
    assert local.aggregate.keys() == remote.aggregate.keys()
    for metric, value in local.aggregate.items():
        assert value == remote.aggregate[metric] or (np.isnan(value) and np.isnan(remote.aggregate[metric])), metric
    assert local.notes == remote.notes
    drop = ["run_id"]
    a = pd.DataFrame(local.rows).drop(columns=drop)
    b = pd.DataFrame(remote.rows).drop(columns=drop)
    assert len(a) > 6 * 48 and a.level.eq("frame").any()
    pd.testing.assert_frame_equal(a, b)
    for key in ("n_videos", "n_frames", "frame_size", "region_source", "unavailable"):
        assert local.provenance[key] == remote.provenance[key], key


def test_the_message_names_the_extra_when_ray_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` now raises ImportError
    out = tmp_path / "shards"
    code = cli(["prepare", "--dataset", "folder", "--source", str(tmp_path), "--out", str(out),
                "--executor", "ray", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and ".[ray]" in err and "not installed" in err
    assert not out.exists()
    with pytest.raises(RuntimeError, match=r"\.\[ray\]"):
        evaluate(tmp_path, method="pose-warp", executor="ray")


def test_bad_executor_arguments_are_refused_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "shards"
    base = ["prepare", "--dataset", "folder", "--source", str(tmp_path), "--out", str(out)]
    assert cli([*base, "--ray-address", "auto"]) == 1
    assert "--ray-address is for --executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli([*base, "--executor", "threads"])
    assert "invalid choice" in capsys.readouterr().err
    assert not out.exists()


def test_eval_workers_only_size_a_local_ray_cluster(default_shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--workers sets the CPUs of a local Ray cluster"):
        evaluate(default_shards, method="pose-warp", executor="local", workers=2, write=False)
