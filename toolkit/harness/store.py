"""The results store: append-only Parquet, one file per evaluation run, plus its provenance JSON.

Layout: ``RESULTS/provenance/<run_id>.json`` and ``RESULTS/runs/<run_id>.parquet`` (rows at
three levels: ``aggregate``, ``video``, ``frame``), so ``pandas.read_parquet("RESULTS/runs")``
reads every run at once. A run's Parquet file is
written last and atomically, so an interrupted evaluation leaves no rows at all.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit.io import atomic_write_json, temp_path_for
from toolkit.paths import safe_filename

ROWS_SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("method", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("profile", pa.string(), nullable=False),
    pa.field("profile_version", pa.string(), nullable=False),
    pa.field("level", pa.string(), nullable=False),          # aggregate | video | frame
    pa.field("video_id", pa.string()),
    pa.field("frame_index", pa.int32()),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("value", pa.float64()),                         # NaN where unavailable
    pa.field("higher_is_better", pa.bool_(), nullable=False),
    pa.field("status", pa.string(), nullable=False),         # ok | unavailable
    pa.field("note", pa.string()),                           # e.g. "unavailable (weights: fvd-i3d-400 missing)"
    pa.field("weights_artifact", pa.string()),               # e.g. "fvd-i3d-400": the registered weights whose
                                                             # absence (or mismatch) made the row unavailable
])


class Note(str):
    """A row note (text) that may also name the weights artifact behind it.

    The harness passes notes as they are; :func:`write_run` stores the artifact in the
    ``weights_artifact`` column, so nothing downstream has to parse it back out of the text.
    """

    weights_artifact: str | None

    def __new__(cls, text: str, weights_artifact: str | None = None) -> "Note":
        note = super().__new__(cls, text)
        note.weights_artifact = weights_artifact
        return note


def _with_artifact(row: dict[str, Any]) -> dict[str, Any]:
    if row.get("weights_artifact") is None and getattr(row.get("note"), "weights_artifact", None):
        return {**row, "weights_artifact": row["note"].weights_artifact, "note": str(row["note"])}
    return row


def write_run(results: str | Path, run_id: str, rows: list[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Append one run to the store; refuses to overwrite an existing run."""
    if safe_filename(run_id) != run_id:
        raise ValueError(f"run id {run_id!r} is not a safe file name (toolkit.paths.safe_filename)")
    runs = Path(results) / "runs"
    target = runs / f"{run_id}.parquet"
    if target.exists():
        raise FileExistsError(f"{target}: run already stored (the store is append-only)")
    atomic_write_json(Path(results) / "provenance" / f"{run_id}.json", provenance)
    table = pa.Table.from_pylist([_with_artifact(r) for r in rows], schema=ROWS_SCHEMA)
    tmp = temp_path_for(target)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)
    return target


def load_results(results: str | Path, level: str | None = "aggregate") -> pd.DataFrame:
    """All stored rows (of one level), with each run's creation time; empty frame if none."""
    runs = Path(results) / "runs"
    files = sorted(runs.glob("*.parquet"))
    if not files:
        return pd.DataFrame(columns=ROWS_SCHEMA.names + ["created"])
    filters = [("level", "=", level)] if level else None
    frames = []
    for f in files:
        try:
            df = pq.read_table(f, filters=filters).to_pandas()
            df["created"] = load_provenance(results, f.stem).get("created", "")
        except (pa.ArrowException, OSError, ValueError) as exc:  # one damaged run never hides the others
            warnings.warn(f"results store: run {f.stem} skipped: {exc}", stacklevel=2)
            continue
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=ROWS_SCHEMA.names + ["created"])
    return pd.concat(frames, ignore_index=True)


def load_provenance(results: str | Path, run_id: str) -> dict[str, Any]:
    """A run's provenance record ({} if there is none); ValueError naming the file if it is not a JSON object."""
    p = Path(results) / "provenance" / f"{run_id}.json"
    if not p.exists():
        return {}
    try:
        record = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{p}: a provenance record is a JSON object, this holds a {type(record).__name__}")
    return record


def latest_runs(results: str | Path) -> pd.DataFrame:
    """Aggregate rows of the newest run per (method, dataset, split, profile)."""
    df = load_results(results, "aggregate")
    if df.empty:
        return df
    newest = df.sort_values(["created", "run_id"]).groupby(["method", "dataset", "split", "profile"]).run_id.last()
    return df[df.run_id.isin(set(newest))].reset_index(drop=True)
