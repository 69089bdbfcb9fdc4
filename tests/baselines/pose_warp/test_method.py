"""pose-warp keeps the Method contract (tests/helpers/contracts.py) on the default dataset's first test video."""

from __future__ import annotations

from baselines.pose_warp import PoseWarp
from tests.helpers.contracts import MethodContractMixin


class TestPoseWarpMethod(MethodContractMixin):
    method_class = PoseWarp
