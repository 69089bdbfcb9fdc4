"""`reference-copy`: repeats the reference frame, the floor every method must beat."""

from __future__ import annotations

import numpy as np

from toolkit.harness.method import Conditions, Method


class ReferenceCopy(Method):
    name = "reference-copy"
    description = "repeats the reference frame: the floor every method must beat"

    def generate(self, cond: Conditions) -> np.ndarray:
        return np.repeat(cond.reference[None], cond.n_frames, axis=0)
