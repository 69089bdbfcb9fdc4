"""Which features of this installation cannot run for lack of weights: the registry's `used_by` entries matched
against what is installed (protocol cards, annotation backends, method plug-ins).

It sits on the harness floor because it reads the protocols and the method registry; the weights registry
(`toolkit.weights`, the base floor) stays mechanism only and names none of them.
"""

from __future__ import annotations

import re

from toolkit import weights
from toolkit.annotate import backends
from toolkit.harness.protocols import available_protocols, load_protocol
from toolkit.harness.registry import method_names

# What a `used_by` entry names: a metric under a profile ("FID (disco)"), an annotation backend, or a method.
_METRIC_LABELS = {"FID": "fid", "FID-VID": "fid_vid", "FVD": "fvd", "LPIPS": "lpips"}
_BACKEND_FEATURES = {"DWPose pose extraction": ("pose", "dwpose"), "DensePose extraction": ("densepose", "densepose")}


def _plain(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def feature_exists(feature: str) -> bool:
    """Whether a `used_by` entry is something this installation has: a metric its protocol card lists, an
    annotation backend, or a registered method plug-in (name compared without case and punctuation, so
    "UniAnimate" is the plug-in `unianimate`). Release-only entries (e.g. "MagicAnimate" before a method of
    that name is registered) are not."""
    metric = re.fullmatch(r"(\S+) \(([\w-]+)\)", feature)
    if metric and metric.group(1) in _METRIC_LABELS:
        profile = metric.group(2)
        return profile in available_protocols() and _METRIC_LABELS[metric.group(1)] in load_protocol(profile).metrics
    if feature in _BACKEND_FEATURES:
        kind, name = _BACKEND_FEATURES[feature]
        return name in (backends.POSE_BACKENDS if kind == "pose" else backends.DENSEPOSE_BACKENDS)
    return _plain(feature) in {_plain(n) for n in method_names()}


def unavailable_features(statuses: list[weights.ArtifactStatus], existing_only: bool = True) -> dict[str, list[str]]:
    """Toolkit features that cannot run, each with the artifacts that block it.

    With ``existing_only`` (the default) only features this installation has are listed
    (:func:`feature_exists`): a checkpoint of a method that is not built here disables nothing.
    """
    blocked: dict[str, list[str]] = {}
    exists: dict[str, bool] = {}
    for st in statuses:
        if st.state == "present":
            continue
        for feature in weights.get(st.name).used_by:
            if existing_only and not exists.setdefault(feature, feature_exists(feature)):
                continue
            blocked.setdefault(feature, []).append(f"{st.name} {st.state}")
    return blocked
