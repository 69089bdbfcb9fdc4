"""A plain (non-editable) install works from any folder: the wheel carries the dataset and protocol cards and
published numbers, and the installed `toolkit` finds them without the source checkout.

The wheel is built from a copy of the working tree (nothing is written into the checkout) with the
environment's own setuptools (--no-build-isolation: no network), installed with --no-deps into a fresh venv,
which then sees this environment's packages (torch, pyarrow, ...) through a .pth line added after the install
-- but not the checkout's editable install, whose hook is not loaded that way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from toolkit.harness.protocols import load_protocol
from toolkit.sources.card import load_card

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

_IGNORE = shutil.ignore_patterns(".git", ".venv*", "data", "build", "dist", "reports", "results", "*.egg-info",
                                 "__pycache__", ".pytest_cache", "*.pyc", "tests", "benchmarks")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} exited {res.returncode}\n{res.stdout[-3000:]}\n" \
                                f"{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE, symlinks=True)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", tmp / "dist", src], cwd=tmp)
    wheels = list((tmp / "dist").glob("animation_toolkit-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed (no dependencies), then given sight of this environment's packages."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=env_dir.parent)
    python = env_dir / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=env_dir.parent)
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=env_dir).strip()
    # after the install, so pip never saw (or touched) this environment's editable install
    (Path(purelib) / "zz_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def _env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLKIT_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_carries_the_resources_and_no_top_level_datasets_or_eval(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    data = "animation_toolkit-0.1.0.data/data/share/animation-toolkit/"
    for rel in ["eval/paper_results.csv", *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("datasets/*.toml")),
                *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("eval/protocols/*.toml"))]:
        assert data + rel in names, rel
    assert not [n for n in names if n.split("/")[0] in ("datasets", "eval", "tests")]
    # every non-Python file inside the packages (configs, key lists) is in the wheel
    for package in ("toolkit", "baselines"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names, path


def test_installed_toolkit_prepares_and_evaluates_from_another_folder(venv, tmp_path):
    env, work = _env(venv), tmp_path / "elsewhere"
    work.mkdir()
    where = _run([venv / "bin" / "python", "-c", "import toolkit, toolkit.paths as p; "
                  "print(toolkit.__file__); print(p.resource_root()); print(p.checkout_root())"], cwd=work, env=env)
    package, resources, checkout = where.splitlines()
    assert Path(package).is_relative_to(venv) and Path(resources).is_relative_to(venv), where
    assert checkout == "None"

    # the default dataset's card, found by name; the test split only, small frames, from the generated source
    # this checkout already has (else generated here)
    raw = ROOT / "data" / "raw" / "synthetic"
    source = raw if (raw / "videos").is_dir() else work / "raw"
    _run(["toolkit", "prepare", "--dataset", "synthetic", "--source", source, "--out", work / "shards",
          "--split", "test", "--size", "64", "--workers", "2", "--quiet"], cwd=work, env=env, timeout=1200)
    manifest = json.loads((work / "shards" / "manifest.json").read_text())
    assert manifest["dataset"] == "synthetic" and manifest["recipe"]["sha256"] == load_card("synthetic").sha256

    # the protocol cards, found by name; results go to --results, or by default to ./eval/results
    out = _run(["toolkit", "eval", "--method", "reference-copy", "--shards", work / "shards", "--profile",
                "disco,standard", "--results", work / "results", "--quiet"], cwd=work, env=env)
    assert "reference-copy" in out
    provenance = [json.loads(p.read_text()) for p in sorted((work / "results" / "provenance").glob("*.json"))]
    assert sorted(p["profile"] for p in provenance) == ["disco", "standard"]
    for p in provenance:       # the installed cards are byte-identical to the checkout's
        assert p["profile_sha256"] == load_protocol(p["profile"]).sha256
    _run(["toolkit", "eval", "--method", "reference-copy", "--shards", work / "shards", "--quiet"], cwd=work,
         env=env)
    assert len(list((work / "eval" / "results" / "runs").glob("*.parquet"))) == 1

    # the published numbers, found for the report
    out = _run(["toolkit", "leaderboard", "--results", work / "results", "--out", work / "report", "--strips", "0",
                "--quiet"], cwd=work, env=env)
    assert "published row(s)" in out and " 0 published" not in out
    assert (work / "report" / "leaderboard.html").is_file()
