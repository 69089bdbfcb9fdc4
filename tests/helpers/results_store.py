"""A results store with exactly known aggregates, written through the store's API, for the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.harness.protocols import higher_is_better
from toolkit.harness.store import write_run

LPIPS_NOTE = "unavailable (weights: lpips-alexnet-backbone missing)"
FVD_NOTE = "unavailable (weights: fvd-i3d-400 missing)"
NOTES = {"lpips": (LPIPS_NOTE, "lpips-alexnet-backbone"), "fvd": (FVD_NOTE, "fvd-i3d-400")}
# method -> metric -> aggregate; None = unavailable. alpha wins l1, beta wins psnr, they tie on ssim (the primary
# metric: ranks 1, 1), gamma is never best (rank 3), gt-oracle is perfect everywhere but is a sanity row, fvd
# exists for alpha and gamma only.
AGGREGATES = {
    "alpha": {"l1": 0.1, "psnr": 20.0, "ssim": 0.8, "lpips": None, "fvd": 120.0, "l1_fg": 0.3, "l1_bg": 0.05},
    "beta": {"l1": 0.2, "psnr": 25.0, "ssim": 0.8, "lpips": None, "fvd": None, "l1_fg": 0.25, "l1_bg": 0.06},
    "gamma": {"l1": 0.3, "psnr": 18.0, "ssim": 0.7, "lpips": None, "fvd": 150.0, "l1_fg": 0.35, "l1_bg": 0.07},
    "gt-oracle": {"l1": 0.0, "psnr": 100.0, "ssim": 1.0, "lpips": None, "fvd": 0.0, "l1_fg": 0.0, "l1_bg": 0.0},
}


def _rows(run_id: str, method: str, dataset: str, profile: str, version: str) -> list[dict]:
    base = {"run_id": run_id, "method": method, "dataset": dataset, "split": "test", "profile": profile,
            "profile_version": version}
    rows = []
    rng = np.random.default_rng(len(method))
    for metric, value in AGGREGATES[method].items():
        hib = higher_is_better(metric)
        if value is None:
            note, artifact = NOTES[metric]
            rows.append({**base, "level": "aggregate", "video_id": None, "frame_index": None, "metric": metric,
                         "value": float("nan"), "higher_is_better": hib, "status": "unavailable", "note": note,
                         "weights_artifact": artifact})
            continue
        rows.append({**base, "level": "aggregate", "video_id": None, "frame_index": None, "metric": metric,
                     "value": value, "higher_is_better": hib, "status": "ok", "note": None})
        if metric == "fvd":
            continue
        for v in ("v1", "v2"):
            per_video = value * (1 + rng.uniform(-0.1, 0.1))
            rows.append({**base, "level": "video", "video_id": v, "frame_index": None, "metric": metric,
                         "value": per_video, "higher_is_better": hib, "status": "ok", "note": None})
            for t in range(6):
                rows.append({**base, "level": "frame", "video_id": v, "frame_index": t, "metric": metric,
                             "value": per_video * (1 + 0.02 * t), "higher_is_better": hib, "status": "ok",
                             "note": None})
    return rows


def make_store(root: Path, dataset: str = "toyset", profiles=(("standard", "1.0"),), methods=tuple(AGGREGATES),
               day: int = 1) -> Path:
    """A results store with exactly known aggregates (see AGGREGATES) written through the store's API."""
    for p_i, (profile, version) in enumerate(profiles):
        for m_i, method in enumerate(AGGREGATES):
            if method not in methods:
                continue
            run_id = f"202501{day:02d}T00000{p_i}{m_i}-{method}-{dataset}-test-{profile}-{version}"
            prov = {"run_id": run_id, "method": method, "dataset": dataset, "split": "test", "profile": profile,
                    "profile_version": version, "profile_title": f"{profile} title",
                    "definitions": {"l1": "mean absolute error", "psnr": "per-frame PSNR"},
                    "frame_size": ["48x64"], "n_videos": 2, "n_videos_in_split": 2, "n_frames": 12,
                    "frames_scored": "skip-reference",
                    "clips": {"fvd": {"num_pred": 7, "num_target": 7, "clips": "sampled", "clip_length": 16}},
                    "codec": ["in-memory uint8 (lossless)"], "region_source": ["mask"],
                    "weights_sha256": {"fvd": "ab" * 32}, "toolkit_version": "0.1.0",
                    "toolkit_commit": "c0ffee123456", "created": f"2025-01-{day:02d}T00:00:0{m_i}+00:00",
                    "shards": str(root / "no-such-shards"),
                    "method_options": {"steps": 5, "seed": 3} if method == "beta" else {}}
            write_run(root, run_id, _rows(run_id, method, dataset, profile, version), prov)
    return root
