"""`make bench`: run every benchmark in benchmarks/ and write benchmarks/RESULTS.md, one line per measurement.

Each benchmark runs as its own process with BENCH_RESULTS set (benchmarks/results.py appends its measurements
there); its normal output goes to the console as it runs. The measurements are kept, machine-readable, in
benchmarks/results.jsonl, each with the machine (cores, CPU, GPU or none), the date and the load average when
its benchmark started; RESULTS.md is written from that file. `--only NAME,...` reruns those benchmarks and
replaces their lines, keeping the others'. A benchmark that fails is named in the report with its exit
status, and the others still run.

Run: python benchmarks/report.py [--only prepare,loader] [--quick]
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_JSONL, RESULTS_MD = HERE / "results.jsonl", HERE / "RESULTS.md"
# In this order; the arguments make --quick runs (smaller workloads, the same comparisons).
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "prepare": ([], ["--repeat", "1"]),
    "loader": ([], ["--frames", "120", "--samples", "24"]),
    "decode": ([], []),
    "annotate": ([], ["--frames", "16"]),
    "metrics": ([], ["--pairs", "32", "--repeat", "1", "--lpips-pairs", "4"]),
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


def table(rows: list[dict]) -> list[str]:
    out = ["| what | ours | reference | ratio | target | machine |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        load = "" if r.get("load") is None else f", load {r['load']:.1f}"
        what = r["what"] + (" [--quick workload]" if r.get("quick") else "")
        cells = [what, r["ours"], r["reference"], ratio, r["target"] or "-",
                 f"{r['machine']} ({r['date']}{load})"]
        out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return out


def write_report(rows: list[dict], failed: list[str], out: Path) -> None:
    """RESULTS.md from the measurements, in the order of BENCHMARKS."""
    order = {name: k for k, name in enumerate(BENCHMARKS)}
    rows = sorted(rows, key=lambda r: order.get(r["benchmark"], len(order)))
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (benchmarks/report.py) from benchmarks/results.jsonl: one line per measurement. "
        "The machine column gives the cores, CPU and GPU (or none), the date and the load average when the "
        "benchmark started: on a shared machine other work runs alongside, so absolute figures are low and the "
        "ratios (both sides measured back to back on the same cores) are the comparable part. Ratios: the "
        "`target` column says which way each one is held; otherwise above 1 means ours is faster. How each "
        "figure is made: the docstring of the benchmark named by the first word of `what` (benchmarks/NAME.py).",
        "",
        *table(rows),
    ]
    if failed:
        lines += ["", "Benchmarks that did not finish in the last run: " + "; ".join(failed) + "."]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="smaller workloads (the same comparisons)")
    args = p.parse_args()
    names = list(BENCHMARKS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    where = machine()
    kept = []
    if args.only is not None and RESULTS_JSONL.exists():
        kept = [r for r in map(json.loads, RESULTS_JSONL.read_text().splitlines()) if r["benchmark"] not in names]
    rows: list[dict] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        for name in names:
            full, quick = BENCHMARKS[name]
            results = Path(tmp) / f"{name}.jsonl"
            env = {**os.environ, "BENCH_RESULTS": str(results),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
            stamp = {"machine": where, "date": dt.date.today().isoformat(), "load": os.getloadavg()[0],
                     "quick": args.quick}
            print(f"\n=== benchmarks/{name}.py", flush=True)
            code = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *(quick if args.quick else full)],
                                  cwd=ROOT, env=env).returncode
            if code:
                failed.append(f"{name}.py exited with status {code}")
            if results.exists():
                rows += [{**json.loads(line), **stamp} for line in results.read_text().splitlines()]
    all_rows = kept + rows
    RESULTS_JSONL.write_text("".join(json.dumps(r) + "\n" for r in all_rows), encoding="utf-8")
    write_report(all_rows, failed, RESULTS_MD)
    print(f"\n{len(rows)} measurement(s) from this run, {len(all_rows)} in {RESULTS_MD}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
