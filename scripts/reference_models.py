"""Run the authors' model code beside ours and print how far apart they are: the README's table
"Our models against the reference code".

Not part of the package and not a test. For each checkout of an author's repository given (a plain
copy of magic-research/magic-animate @d2bc3bc or ali-vilab/UniAnimate @643c963; the method is told
by its files), it

1. makes an environment of the authors' own (``OUT/venv-METHOD``, from
   ``scripts/reference_METHOD_requirements.txt``; MagicAnimate needs the old diffusers it was
   written for), unless ``--authors-python`` names one;
2. there, runs ``scripts/reference_METHOD.py authors OUT --checkout PATH``: the authors' modules at
   reduced width with random weights, their state dicts saved as the release lays its files out,
   fixed inputs and the authors' outputs;
3. here (this project's environment), runs ``scripts/reference_METHOD.py ours OUT``: the saved
   files through our converter, our modules on the same inputs, one row per comparison in
   ``OUT/METHOD_rows.json``;
4. prints every row with its tolerance and exits 1 if any row is above it.

  PYTHONPATH=. .venv/bin/python scripts/reference_models.py /tmp/magic-animate /tmp/UniAnimate --out /tmp/ref
  PYTHONPATH=. .venv/bin/python scripts/reference_models.py /tmp/UniAnimate --markdown   # README table rows

A checkout is a copy of the repository at the pinned commit, e.g.
``git clone https://github.com/ali-vilab/UniAnimate && git -C UniAnimate checkout 643c963``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED = {"magicanimate": ("magic-research/magic-animate", "d2bc3bc"),
          "unianimate": ("ali-vilab/UniAnimate", "643c963")}
# a file only that method's repository has
MARKERS = {"magicanimate": "magicanimate/models/unet_controlnet.py",
           "unianimate": "tools/modules/unet/unet_unianimate.py"}


def method_of(checkout: Path) -> str:
    """Which author's repository `checkout` is, from the files it holds."""
    for method, marker in MARKERS.items():
        if (checkout / marker).is_file():
            return method
    raise SystemExit(f"{checkout}: neither a MagicAnimate nor a UniAnimate checkout (no "
                     f"{' or '.join(MARKERS.values())})")


def checkout_commit(checkout: Path) -> str | None:
    """The checkout's git commit, when it is a git work tree."""
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def authors_python(method: str, out: Path) -> Path:
    """The authors' environment for `method` under `out`, made from the requirements file on first use."""
    env = out / f"venv-{method}"
    python = env / "bin" / "python"
    done = env / ".installed"
    requirements = ROOT / "scripts" / f"reference_{method}_requirements.txt"
    if done.is_file() and done.read_text() == requirements.read_text():
        return python
    print(f"{method}: making the authors' environment {env} from {requirements.name}", flush=True)
    venv.create(env, with_pip=True, clear=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    done.write_text(requirements.read_text())
    return python


def run_method(method: str, checkout: Path, out: Path, python: Path | None) -> list[dict]:
    """Both phases for one method; the rows it wrote."""
    script = ROOT / "scripts" / f"reference_{method}.py"
    python = python or authors_python(method, out)
    print(f"{method}: the authors' modules ({checkout}) in {python}", flush=True)
    subprocess.run([str(python), str(script), "authors", str(out), "--checkout", str(checkout)], check=True)
    print(f"{method}: ours in {sys.executable}", flush=True)
    subprocess.run([sys.executable, str(script), "ours", str(out)], check=True, cwd=ROOT,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads((out / f"{method}_rows.json").read_text())


def table(rows: dict[str, list[dict]], commits: dict[str, str], markdown: bool) -> str:
    """The rows as plain text or as the README's Markdown table."""
    lines = []
    if markdown:
        lines += ["| model | comparison | max abs difference | tolerance |", "| --- | --- | --- | --- |"]
    for method, method_rows in rows.items():
        repo, pinned = PINNED[method]
        name = f"{repo} @{commits.get(method) or pinned}"
        for row in method_rows:
            diff, tol = row["max_abs_diff"], row["tolerance"]
            mark = "" if diff <= tol else "  ABOVE TOLERANCE"
            if markdown:
                dtype = row.get("dtype", "float32")
                lines.append(f"| {name} | {row['comparison']} ({dtype}) | {diff:.1e} | {tol:.0e} |")
            else:
                lines.append(f"{method:13s} {row.get('dtype', 'float32'):8s} {row['comparison'][:72]:72s} "
                             f"{diff:9.2e} <= {tol:.0e}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("checkouts", nargs="+", type=Path, help="copies of the authors' repositories")
    parser.add_argument("--out", type=Path, default=Path("/tmp/reference-models"),
                        help="working folder: environments, weights, outputs, rows (default %(default)s)")
    parser.add_argument("--authors-python", type=Path, action="append", default=[], metavar="METHOD=PYTHON",
                        help="use this interpreter for METHOD's authors' side instead of making one")
    parser.add_argument("--markdown", action="store_true", help="print the rows as the README's Markdown table")
    args = parser.parse_args(argv)
    given = {}
    for item in map(str, args.authors_python):
        method, _, python = item.partition("=")
        if method not in PINNED or not python:
            parser.error(f"--authors-python takes METHOD=PYTHON with METHOD one of {sorted(PINNED)}, got {item!r}")
        given[method] = Path(python)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, commits = {}, {}
    for checkout in args.checkouts:
        checkout = checkout.resolve()
        method = method_of(checkout)
        commit = checkout_commit(checkout)
        if commit and not commit.startswith(PINNED[method][1]):
            print(f"warning: {checkout} is at {commit[:7]}, not the pinned {PINNED[method][1]}", flush=True)
        commits[method] = commit[:7] if commit else None
        rows[method] = run_method(method, checkout, args.out, given.get(method))
    print(table(rows, commits, args.markdown))
    above = [r for method_rows in rows.values() for r in method_rows if r["max_abs_diff"] > r["tolerance"]]
    if above:
        print(f"{len(above)} of {sum(map(len, rows.values()))} rows above tolerance", file=sys.stderr)
    return 1 if above else 0


if __name__ == "__main__":
    raise SystemExit(main())
