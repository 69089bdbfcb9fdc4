"""Leaderboard tables: the newest run of every method, one table per dataset x split x profile version.

A table holds numbers exactly as stored (no re-computation): each cell is a stored
aggregate with its status. The best value of each column is marked among the
competing methods; sanity rows (methods that see the ground truth, such as
``gt-oracle``) are shown but never marked best, since they are perfect by construction.
Rows are ranked by the table's primary metric (:func:`primary_metric`: the first of
the profile's preference list that every competing method has), sanity rows last.
Runs scored under different versions of a profile land in different tables, because
their numbers are not comparable.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from toolkit.harness.protocols import HIGHER_IS_BETTER, higher_is_better
from toolkit.harness.store import latest_runs, load_provenance

REGION_SUFFIXES = ("_fg", "_bg")
RECOMMENDED_PROFILE = "standard"   # listed first in a report
METRIC_LABELS = {"l1": "L1", "psnr": "PSNR", "psnr_legacy": "PSNR (legacy)", "ssim": "SSIM", "lpips": "LPIPS",
                 "fid": "FID", "fid_vid": "FID-VID", "fvd": "FVD"}
# The metric a table is ranked by: the first of these that every competing method has a value for (else the
# first that any has). The standard profile ranks by the person region, where whole-frame scores hide most
# (copying the reference keeps the background right); perceptual LPIPS before SSIM before PSNR.
PRIMARY_PREFERENCE = {
    "standard": ("lpips_fg", "ssim_fg", "lpips", "ssim", "psnr_fg", "psnr", "l1"),
    "disco": ("lpips", "ssim", "psnr", "l1"),
}
DEFAULT_PRIMARY_PREFERENCE = ("lpips", "ssim", "psnr", "l1")


@dataclass(frozen=True)
class Cell:
    """One stored aggregate: its value, status (ok, unavailable, missing) and why it is unavailable."""

    value: float
    status: str = "ok"
    note: str | None = None
    best: bool = False
    weights_artifact: str | None = None    # the weights whose absence made the cell unavailable

    @property
    def ok(self) -> bool:
        return self.status == "ok" and math.isfinite(self.value)


@dataclass
class LeaderboardTable:
    """Aggregates of the newest run per method for one dataset, split, profile and profile version."""

    dataset: str
    split: str
    profile: str
    profile_version: str
    methods: list[str]
    metrics: list[str]
    cells: dict[tuple[str, str], Cell]
    provenance: dict[str, dict[str, Any]]          # method -> provenance of its run
    sanity: set[str] = field(default_factory=set)
    primary: str | None = None                     # the metric the rows are ranked by
    ranks: dict[str, int] = field(default_factory=dict)   # competing method -> rank (ties share one)

    @property
    def slug(self) -> str:
        """A file-name-safe key, e.g. 'synthetic-test-standard-v1.0'."""
        raw = f"{self.dataset}-{self.split}-{self.profile}-v{self.profile_version}"
        return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)

    @property
    def title(self) -> str:
        first = next(iter(self.provenance.values()), {})
        return first.get("profile_title", self.profile)

    @property
    def whole_frame_metrics(self) -> list[str]:
        return [m for m in self.metrics if not is_region_metric(m)]

    @property
    def region_metrics(self) -> list[str]:
        return [m for m in self.metrics if is_region_metric(m)]

    @property
    def run_ids(self) -> dict[str, str]:
        return {m: p["run_id"] for m, p in self.provenance.items()}

    @property
    def definitions(self) -> dict[str, str]:
        """metric -> its definition in this profile (from the runs' provenance), in metric order."""
        out: dict[str, str] = {}
        for prov in self.provenance.values():
            for k, v in (prov.get("definitions") or {}).items():
                out.setdefault(k, v)
        return {k: out[k] for k in metric_order(out)}

    def cell(self, method: str, metric: str) -> Cell:
        return self.cells.get((method, metric), Cell(float("nan"), "missing"))

    def unavailable(self) -> dict[str, str]:
        """metric -> note, for every metric unavailable in at least one run of this table."""
        out: dict[str, str] = {}
        for (_, metric), c in sorted(self.cells.items()):
            if c.status == "unavailable":
                out.setdefault(metric, c.note or "unavailable")
        return out

    def unavailable_weights(self) -> dict[str, str]:
        """metric -> the weights artifact (as stored in the results) that made it unavailable."""
        out: dict[str, str] = {}
        for (_, metric), c in sorted(self.cells.items()):
            if c.status == "unavailable" and c.weights_artifact:
                out.setdefault(metric, c.weights_artifact)
        return out

    @property
    def ranking_text(self) -> str:
        """How the rows are ordered, for the report."""
        prefs = PRIMARY_PREFERENCE.get(self.profile, DEFAULT_PRIMARY_PREFERENCE)
        rule = f"the first of {', '.join(prefs)} with a value for every competing method"
        if self.primary is None:
            return f"Not ranked: no competing method has a value for any of {', '.join(prefs)}."
        return f"Ranked by {self.primary} {arrow(self.primary)} ({metric_label(self.primary)}), {rule}."


def is_region_metric(metric: str) -> bool:
    return metric.endswith(REGION_SUFFIXES)


def base_metric(metric: str) -> str:
    return metric.removesuffix("_fg").removesuffix("_bg")


def arrow(metric: str) -> str:
    """'↑' when higher is better, '↓' otherwise."""
    return "↑" if higher_is_better(metric) else "↓"


def metric_label(metric: str) -> str:
    """Human label: 'PSNR', 'SSIM (person)', 'L1 (background)'."""
    region = {"_fg": " (person)", "_bg": " (background)"}
    for suffix, text in region.items():
        if metric.endswith(suffix):
            return METRIC_LABELS.get(base_metric(metric), base_metric(metric)) + text
    return METRIC_LABELS.get(metric, metric)


def metric_order(metrics: Iterable[str]) -> list[str]:
    """Whole-frame metrics in the canonical order, then each region pair (_fg, _bg) in the same order."""
    canon = list(HIGHER_IS_BETTER)
    ms = set(metrics)

    def key(m: str) -> tuple[int, int, int, str]:
        b = base_metric(m)
        rank = canon.index(b) if b in canon else len(canon)
        region = 0 if not is_region_metric(m) else 1
        side = 0 if m.endswith("_fg") else 1 if m.endswith("_bg") else 0
        return region, rank, side, m

    return sorted(ms, key=key)


def format_value(value: float, metric: str | None = None) -> str:
    """Compact, fixed rules: 'n/a' for NaN, PSNR (dB) with 2 decimals, else scientific below 0.01,
    2 decimals from 100, otherwise 4."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if metric is not None and base_metric(metric) in ("psnr", "psnr_legacy"):
        return f"{value:.2f}"
    if value != 0 and abs(value) < 1e-2:
        return f"{value:.2e}"
    if abs(value) >= 100:
        return f"{value:.2f}"
    return f"{value:.4f}"


def best_methods(values: dict[str, float], higher: bool, rel_tol: float = 1e-9) -> set[str]:
    """The methods holding the best finite value (ties all count); empty if none is finite."""
    finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return set()
    target = max(finite.values()) if higher else min(finite.values())
    return {k for k, v in finite.items() if math.isclose(v, target, rel_tol=rel_tol, abs_tol=1e-12)}


def weights_fix(artifact: str | None) -> str | None:
    """How to put a weights artifact in place (:func:`toolkit.weights.fix_commands`), or None when unknown."""
    if not artifact:
        return None
    from toolkit import weights

    try:
        return weights.fix_commands(artifact)
    except weights.UnknownArtifact:
        return None


@functools.lru_cache(maxsize=None)
def method_links(method: str) -> tuple[str, str]:
    """(paper URL, code URL) of a registered method, from its class attributes; ('', '') when there are none.

    Stored names that are not plain plug-in names (``predictions:DIR``, ``pkg.module:Class``) are not looked up:
    nothing is imported on the strength of a name read from a results store.
    """
    if ":" in method:
        return "", ""
    from toolkit.package import method_package

    try:
        cls = method_package(method).method_class()
    except Exception:  # not registered here, or broken: the report still renders, without links
        return "", ""

    def url(value: object) -> str:
        text = value if isinstance(value, str) else ""
        return text if text.startswith(("https://", "http://")) else ""

    return url(getattr(cls, "paper", "")), url(getattr(cls, "code", ""))


def primary_metric(profile: str, metrics: Iterable[str], cells: dict[tuple[str, str], Cell],
                   competing: list[str]) -> str | None:
    """The metric a table is ranked by (see PRIMARY_PREFERENCE), or None when no preferred metric has a value."""
    prefs = [k for k in PRIMARY_PREFERENCE.get(profile, DEFAULT_PRIMARY_PREFERENCE) if k in set(metrics)]

    def ok(m: str, k: str) -> bool:
        return (m, k) in cells and cells[(m, k)].ok

    for k in prefs:
        if competing and all(ok(m, k) for m in competing):
            return k
    for k in prefs:
        if any(ok(m, k) for m in competing):
            return k
    return None


def rank_methods(values: dict[str, float], higher: bool, rel_tol: float = 1e-9) -> dict[str, int]:
    """Competition ranks (1, 1, 3, ...) of the finite values, best first; equal values share a rank."""
    finite = sorted(((v, k) for k, v in values.items() if v is not None and math.isfinite(v)),
                    key=lambda vk: (-vk[0] if higher else vk[0], vk[1]))
    ranks: dict[str, int] = {}
    for i, (v, k) in enumerate(finite):
        prev = finite[i - 1][0] if i else None
        tied = prev is not None and math.isclose(v, prev, rel_tol=rel_tol, abs_tol=1e-12)
        ranks[k] = ranks[finite[i - 1][1]] if tied else i + 1
    return ranks


def sanity_methods(methods: Iterable[str]) -> set[str]:
    """Registered methods that are given the ground truth (perfect by construction)."""
    from toolkit.harness.registry import method_class, method_names

    registered = set(method_names())
    return {name for name in methods if name in registered and method_class(name).uses_ground_truth}


def _split_list(values: str | Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = values.split(",")
    out = [v.strip() for v in values if v and v.strip()]
    return out or None


def build_tables(results: str | Path, datasets: str | Iterable[str] | None = None,
                 profiles: str | Iterable[str] | None = None, split: str | None = None) -> list[LeaderboardTable]:
    """One table per (dataset, split, profile, profile_version) from the newest run of each method.

    Tables are ordered by dataset and split, the recommended profile first, then by profile name and version.
    """
    results = Path(results)
    if not (results / "runs").is_dir():
        raise FileNotFoundError(f"{results}: no results store here (no runs/ folder); "
                                "run `toolkit eval ... --results DIR` first")
    df = latest_runs(results)
    if df.empty:
        raise FileNotFoundError(f"{results}/runs: no stored runs; run `toolkit eval` first")
    wanted_ds, wanted_pr = _split_list(datasets), _split_list(profiles)
    if wanted_ds:
        df = df[df.dataset.isin(wanted_ds)]
    if wanted_pr:
        df = df[df.profile.isin(wanted_pr)]
    if split:
        df = df[df.split == split]
    if df.empty:
        have = latest_runs(results)[["dataset", "split", "profile"]].drop_duplicates()
        listing = ", ".join(f"{r.dataset}/{r.split}/{r.profile}" for r in have.itertuples())
        raise ValueError(f"{results}: no runs for dataset={wanted_ds or 'any'} profile={wanted_pr or 'any'} "
                         f"split={split or 'any'}; stored: {listing}")
    tables = []
    keys = ["dataset", "split", "profile", "profile_version"]
    groups = sorted(df.groupby(keys), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != RECOMMENDED_PROFILE,
                                                      kv[0][2], kv[0][3]))
    for (dataset, sp, profile, version), group in groups:
        cells: dict[tuple[str, str], Cell] = {}
        for r in group.itertuples():
            note = r.note if isinstance(r.note, str) else None
            artifact = getattr(r, "weights_artifact", None)     # absent in stores written before the column
            artifact = artifact if isinstance(artifact, str) and artifact else None
            cells[(r.method, r.metric)] = Cell(float(r.value), str(r.status), note, weights_artifact=artifact)
        methods = sorted(group.method.unique())
        sanity = sanity_methods(methods)
        metrics = metric_order(group.metric.unique())
        for metric in metrics:
            higher = higher_is_better(metric)
            competing = {m: cells[(m, metric)].value for m in methods
                         if m not in sanity and (m, metric) in cells and cells[(m, metric)].ok}
            for m in best_methods(competing, higher):
                cells[(m, metric)] = dataclasses.replace(cells[(m, metric)], best=True)
        competitors = [m for m in methods if m not in sanity]
        primary = primary_metric(profile, metrics, cells, competitors)
        ranks = {} if primary is None else rank_methods(
            {m: cells[(m, primary)].value for m in competitors if (m, primary) in cells and cells[(m, primary)].ok},
            higher_is_better(primary))
        # ranked rows first (best first, ties by name), then competitors without the primary value, then sanity rows
        methods = (sorted(ranks, key=lambda m: (ranks[m], m)) + [m for m in competitors if m not in ranks]
                   + [m for m in methods if m in sanity])
        provenance = {m: {"run_id": run_id, **load_provenance(results, run_id)}
                      for m, run_id in group.groupby("method").run_id.first().items()}
        tables.append(LeaderboardTable(dataset=dataset, split=sp, profile=profile, profile_version=version,
                                       methods=methods, metrics=metrics, cells=cells, provenance=provenance,
                                       sanity=sanity, primary=primary, ranks=ranks))
    return tables


def load_run_rows(results: str | Path, run_ids: Iterable[str], level: str) -> pd.DataFrame:
    """Rows of one level ('video' or 'frame') of the given runs only."""
    runs = Path(results) / "runs"
    frames = []
    for run_id in run_ids:
        path = runs / f"{run_id}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: run listed by the store but its rows are missing")
        frames.append(pq.read_table(path, filters=[("level", "=", level)]).to_pandas())
    if not frames:
        return pd.DataFrame(columns=["run_id", "method", "metric", "video_id", "frame_index", "value"])
    return pd.concat(frames, ignore_index=True)


def _agree(values: list[Any]) -> bool:
    return all(v == values[0] for v in values[1:])


def _fmt_list(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "–"
    return "–" if value in (None, "") else str(value)


def _clips_text(clips: dict[str, Any]) -> str:
    """'fvd: 96 generated / 96 real samples (sliding 16-frame clips)' per distribution metric."""
    parts = []
    for metric, d in sorted((clips or {}).items()):
        if not isinstance(d, dict):
            continue
        text = f"{metric}: {d.get('num_pred', '?')} generated / {d.get('num_target', '?')} real samples"
        if isinstance(d.get("clips"), str):
            length = f" {d['clip_length']}-frame" if d.get("clip_length") else ""
            text += f" ({d['clips']}{length} clips)"
        parts.append(text)
    return "; ".join(parts) or "none (no distribution metric computed)"


def _date_range(dates: list[str]) -> str:
    dates = sorted(set(dates))
    if not dates:
        return "?"
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def _options_text(prov: dict) -> str:
    """The options a run's method was built with (--checkpoint, --method-option, ...), as KEY=VALUE."""
    options = prov.get("method_options")
    if options is None:
        return "-" if prov.get("method_class") is None else "not recorded"
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "defaults"


def provenance_lines(table: LeaderboardTable) -> list[tuple[str, str]]:
    """(label, text) pairs for the provenance under a table; per-method values where runs differ."""
    provs = [(m, table.provenance.get(m, {})) for m in table.methods]

    def field_text(label: str, getter) -> tuple[str, str]:
        vals = [getter(p) for _, p in provs]
        if _agree(vals):
            return label, vals[0]
        return label, "; ".join(f"{m}: {v}" for (m, _), v in zip(provs, vals))

    def weights_text(p: dict) -> str:
        sha = {k: v for k, v in (p.get("weights_sha256") or {}).items() if v}
        return ", ".join(f"{k} {v[:12]}…" for k, v in sorted(sha.items())) or "none loaded"

    def videos_text(p: dict) -> str:
        n, total = p.get("n_videos", "?"), p.get("n_videos_in_split", "?")
        return f"{n} of {total}" + ("" if n == total else " (partial)")

    first = provs[0][1] if provs else {}
    lines = [
        ("profile", f"{table.profile} v{table.profile_version} — {first.get('profile_title', '')}".rstrip(" —")),
        field_text("frame size", lambda p: _fmt_list(p.get("frame_size"))),
        field_text("videos scored", videos_text),
        field_text("frames scored", lambda p: f"{p.get('n_frames', '?')} ({p.get('frames_scored', '?')})"),
        field_text("clips", lambda p: _clips_text(p.get("clips", {}))),
        field_text("region source", lambda p: _fmt_list(p.get("region_source"))),
        field_text("weights sha256", weights_text),
        field_text("codec", lambda p: _fmt_list(p.get("codec"))),
        field_text("method options", _options_text),
        field_text("toolkit", lambda p: f"{p.get('toolkit_version', '?')} @ {p.get('toolkit_commit', '?')}"),
        ("date", _date_range([str(p.get("created", "?")) for _, p in provs])),
        ("runs", "; ".join(f"{m}: {p.get('run_id', '?')}" for m, p in provs)),
    ]
    return lines


def per_video_values(rows: pd.DataFrame, method: str, metric: str) -> np.ndarray:
    """Finite per-video means of one method and metric from 'video'-level rows."""
    sel = rows[(rows.method == method) & (rows.metric == metric)].value.to_numpy(dtype=np.float64)
    return sel[np.isfinite(sel)]
