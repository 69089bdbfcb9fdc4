"""`make bench`: run every benchmark in benchmarks/ and write benchmarks/RESULTS.md, one line per measurement.

Each benchmark runs as its own process with BENCH_RESULTS set (benchmarks/results.py appends its measurements
there); its normal output goes to the console as it runs. A benchmark that fails is named in the report with
its exit status, and the others still run. The machine (cores, CPU, GPU or none, load average before and
after) is written with the figures, since every ratio is only true of the machine it was measured on.

Run: python benchmarks/report.py [--only prepare,loader] [--out benchmarks/RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# In this order; the arguments make --quick runs (smaller workloads, the same comparisons).
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "prepare": ([], ["--repeat", "1"]),
    "loader": ([], ["--frames", "120", "--samples", "24"]),
    "decode": ([], []),
    "annotate": ([], ["--frames", "16"]),
    "metrics": ([], ["--pairs", "32", "--repeat", "1"]),
    "temporal": ([], ["--quick"]),
    "train_tiny": ([], ["--steps", "4", "--frames", "8", "--sample-steps", "10"]),
    "long_video": ([], []),
}


def machine() -> str:
    """Cores, CPU model and GPU (or none), in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except ImportError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {gpu}"


def table(rows: list[dict], where: str) -> list[str]:
    out = ["| what | ours | reference | ratio | target | machine |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        cells = [r["what"], r["ours"], r["reference"], ratio, r["target"] or "-", where]
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--quick", action="store_true", help="smaller workloads (the same comparisons)")
    args = p.parse_args()
    names = list(BENCHMARKS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    where = machine()
    load_before = os.getloadavg()[0]
    rows: list[dict] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        for name in names:
            full, quick = BENCHMARKS[name]
            results = Path(tmp) / f"{name}.jsonl"
            env = {**os.environ, "BENCH_RESULTS": str(results),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            print(f"\n=== benchmarks/{name}.py", flush=True)
            code = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)],
                                  cwd=ROOT, env=env).returncode
            if code:
                failed.append(f"{name}.py exited with status {code}")
            if results.exists():
                rows += [json.loads(line) for line in results.read_text().splitlines()]
    minutes = (time.perf_counter() - started) / 60
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (benchmarks/report.py{' --quick' if args.quick else ''}) on "
        f"{dt.date.today().isoformat()}, {minutes:.0f} minutes. Machine: {where}; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (a shared machine: other work ran alongside, "
        "so absolute figures are low and ratios are the comparable part). Ratios: the `target` column says "
        "which way each one is held; otherwise above 1 means ours is faster. How each figure is made: the "
        "docstring of the benchmark named in the first word of `what` (benchmarks/NAME.py).",
        "",
        *table(rows, where),
    ]
    if failed:
        lines += ["", "Benchmarks that did not finish: " + "; ".join(failed) + "."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\n{len(rows)} measurement(s) written to {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
