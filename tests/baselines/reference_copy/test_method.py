"""reference-copy keeps the Method contract (tests/helpers/contracts.py) on the default dataset's first test video."""

from __future__ import annotations

import numpy as np

from baselines.reference_copy import ReferenceCopy
from tests.helpers.contracts import MethodContractMixin


class TestReferenceCopyMethod(MethodContractMixin):
    method_class = ReferenceCopy

    def test_every_frame_is_the_reference(self, conditions) -> None:
        out = ReferenceCopy().generate(conditions)
        assert all(np.array_equal(frame, conditions.reference) for frame in out)
