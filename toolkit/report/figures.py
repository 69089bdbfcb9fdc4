"""Leaderboard figures (matplotlib, Agg): per-metric bars with per-video spread, per-frame curves, a radar.

Figures show the competing methods only: sanity rows such as ``gt-oracle`` are
perfect by construction and would squash every axis. Each function writes one PNG
atomically and returns a :class:`FigureFile` (or None when there is nothing to draw,
e.g. every metric unavailable), whose caption says how to read it.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from toolkit.harness.protocols import FRAME_METRICS, higher_is_better  # noqa: E402
from toolkit.io import temp_path_for  # noqa: E402
from toolkit.report.tables import LeaderboardTable, arrow, per_video_values  # noqa: E402

# Colours of the methods this project ships or expects; any other method gets one derived from its name.
NAMED_COLOURS = {"reference-copy": "#8C8C8C", "pose-warp": "#4C72B0", "gt-oracle": "#55A868",
                 "unianimate": "#DD8452", "magicanimate": "#C44E52", "animate-anyone": "#8172B3",
                 "champ": "#937860", "disco": "#DA8BC3"}
DPI = 110
RADAR_MIN_METHODS = 3


@dataclass(frozen=True)
class FigureFile:
    """A written figure: its file, what it shows (bars, curves, radar) and a caption saying how to read it."""

    path: Path
    kind: str
    caption: str


def method_colour(method: str) -> str:
    """The method's colour, the same in every figure of every report: a fixed one for the names in
    NAMED_COLOURS, else a hue derived from the sha256 of the name (independent of the other methods shown)."""
    if method in NAMED_COLOURS:
        return NAMED_COLOURS[method]
    digest = hashlib.sha256(method.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    lightness = 0.40 + 0.14 * digest[2] / 255.0
    saturation = 0.50 + 0.25 * digest[3] / 255.0
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"


def method_colours(methods: list[str]) -> dict[str, str]:
    """method -> its colour (:func:`method_colour`)."""
    return {m: method_colour(m) for m in set(methods)}


def normalise_scores(values: dict[str, float], higher: bool) -> dict[str, float]:
    """Min-max normalise one metric across methods to [0, 1] with 1 = best (direction applied).

    When every method has the same value all get 1.0; non-finite values are left out.
    """
    finite = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
    if not finite:
        return {}
    lo, hi = min(finite.values()), max(finite.values())
    if math.isclose(lo, hi, rel_tol=1e-12, abs_tol=1e-15):
        return {k: 1.0 for k in finite}
    return {k: ((v - lo) if higher else (hi - v)) / (hi - lo) for k, v in finite.items()}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)


def _competing(table: LeaderboardTable) -> list[str]:
    return [m for m in table.methods if m not in table.sanity]


def _plottable(table: LeaderboardTable, methods: list[str]) -> list[str]:
    return [k for k in table.metrics if any(table.cell(m, k).ok for m in methods)]


def bar_chart(table: LeaderboardTable, video_rows: pd.DataFrame, path: Path,
              colours: dict[str, str]) -> FigureFile | None:
    """One panel per metric: bar = stored aggregate, dots = per-video means, line = their min-max range."""
    methods = _competing(table)
    metrics = _plottable(table, methods)
    if not methods or not metrics:
        return None
    ncols = len(metrics) if len(metrics) <= 5 else 5
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(3.1 * ncols, 2.5 * nrows + 0.3))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    rng = np.random.default_rng(0)
    x = np.arange(len(methods))
    for ax, metric in zip(axes, metrics):
        agg = [table.cell(m, metric).value if table.cell(m, metric).ok else np.nan for m in methods]
        ax.bar(x, agg, color=[colours[m] for m in methods], width=0.62, alpha=0.85, zorder=2)
        for i, m in enumerate(methods):
            vals = per_video_values(video_rows, m, metric) if not video_rows.empty else np.array([])
            if vals.size:
                jitter = rng.uniform(-0.16, 0.16, vals.size)
                ax.vlines(i, vals.min(), vals.max(), color="#333333", linewidth=1.0, zorder=3)
                ax.scatter(i + jitter, vals, s=11, color="white", edgecolor="#222222", linewidth=0.7, zorder=4)
            if not np.isfinite(agg[i]):
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, color="#888888")
        ax.set_title(f"{metric} {arrow(metric)}", fontsize=10)
        ax.set_xticks(x, methods, rotation=25, ha="right", fontsize=8)
        _style(ax)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    fig.tight_layout()
    _save(fig, path)
    return FigureFile(path, "bars", "Bars: the stored aggregate of each method. Dots: per-video means; the vertical "
                      "line spans their range. ↑ higher is better, ↓ lower is better. Distribution metrics (FID, "
                      "FID-VID, FVD) have no per-video values. Sanity rows are not drawn.")


def frame_curves(table: LeaderboardTable, frame_rows: pd.DataFrame, path: Path,
                 colours: dict[str, str]) -> FigureFile | None:
    """One panel per frame metric: mean over videos at each frame index, band = 25-75% of videos."""
    methods = _competing(table)
    if frame_rows.empty or not methods:
        return None
    # frame 0 is the reference, an input: profiles that score it would pin every curve's scale to its 100 dB / 0 error
    rows = frame_rows[frame_rows.method.isin(methods) & frame_rows.metric.isin(FRAME_METRICS)
                      & (frame_rows.frame_index > 0)]
    rows = rows[np.isfinite(rows.value.to_numpy(dtype=np.float64))]
    metrics = [m for m in table.metrics if m in set(rows.metric)]
    if not metrics:
        return None
    ncols = 2 if len(metrics) == 4 else min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 2.7 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics):
        for m in methods:
            sel = rows[(rows.method == m) & (rows.metric == metric)]
            if sel.empty:
                continue
            g = sel.groupby("frame_index").value
            stats = pd.DataFrame({"mean": g.mean(), "q25": g.quantile(0.25), "q75": g.quantile(0.75)})
            ax.plot(stats.index, stats["mean"], color=colours[m], linewidth=1.6, label=m)
            ax.fill_between(stats.index, stats["q25"], stats["q75"], color=colours[m], alpha=0.15, linewidth=0)
        ax.set_title(f"{metric} {arrow(metric)} per frame", fontsize=10)
        ax.set_xlabel("frame index", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    _save(fig, path)
    return FigureFile(path, "curves", "Per-frame metrics over time: line = mean over test videos at each frame index, "
                      "band = 25th-75th percentile across videos; frame 0 (the reference, an input) is left out. "
                      "A curve that worsens with the frame index shows "
                      "drift away from the reference.")


def radar(table: LeaderboardTable, path: Path, colours: dict[str, str]) -> FigureFile | None:
    """Every metric with a value for each competing method, min-max normalised so that outer = better.

    Drawn only for at least RADAR_MIN_METHODS competing methods (with two, min-max normalisation puts one
    method at 1 and the other at 0 on every axis: a picture of the ranks, nothing more) and 3 such metrics."""
    methods = _competing(table)
    metrics = [k for k in table.metrics if methods and all(table.cell(m, k).ok for m in methods)]
    if len(methods) < RADAR_MIN_METHODS or len(metrics) < 3:
        return None
    scores = {k: normalise_scores({m: table.cell(m, k).value for m in methods}, higher_is_better(k))
              for k in metrics}
    angles = np.linspace(0, 2 * np.pi, len(metrics), endpoint=False)
    fig = Figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    closed = np.append(angles, angles[0])
    for m in methods:
        vals = [scores[k][m] for k in metrics]
        vals.append(vals[0])
        ax.plot(closed, vals, color=colours[m], linewidth=1.8, label=m)
        ax.fill(closed, vals, color=colours[m], alpha=0.10)
    labels = [f"{k} {arrow(k)}" for k in metrics]
    ax.set_xticks(angles, labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["", "0.5", "", "1"], fontsize=7, color="#888888")
    ax.grid(color="#dddddd")
    ax.spines["polar"].set_color("#cccccc")
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.12), frameon=False, fontsize=8)
    _save(fig, path)
    return FigureFile(path, "radar", "Radar: each axis is one metric, min-max normalised across the methods shown "
                      "(direction applied), so outer = better: 1 = best of these methods, 0 = worst. It ranks "
                      "methods within this table only; it says nothing about absolute quality.")
