"""One measurement line for benchmarks/RESULTS.md: what, ours, the reference it is compared with, the ratio.

Every benchmark calls `record` next to the line it prints; when BENCH_RESULTS names a file (set by
`benchmarks/report.py`, which `make bench` runs), the measurement is appended to it as one JSON line, and the
report writes the table with the machine it ran on. Without BENCH_RESULTS, `record` does nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def record(what: str, ours: str, reference: str, ratio: float | None, target: str = "") -> None:
    """Append one measurement: `ours` and `reference` with their units, `ratio` ours against the reference
    (above 1: ours is better, whichever way the unit runs), and the target it is held to, if any."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    line = {"benchmark": Path(sys.argv[0]).stem, "what": what, "ours": ours, "reference": reference,
            "ratio": ratio, "target": target}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
