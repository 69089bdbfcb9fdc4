"""`gt-oracle`: returns the ground truth, a sanity row that checks the harness itself."""

from __future__ import annotations

import numpy as np

from toolkit.harness.method import Conditions, Method


class GroundTruthOracle(Method):
    name = "gt-oracle"
    description = "returns the ground truth: perfect scores, a sanity row for the harness itself"
    uses_ground_truth = True

    def generate(self, cond: Conditions) -> np.ndarray:
        if cond.ground_truth is None:
            raise ValueError("gt-oracle needs the ground truth frames")
        return cond.ground_truth.copy()
