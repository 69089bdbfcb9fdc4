"""`pose-warp`: a training-free per-limb affine warp of the reference (see method.py)."""

from baselines.pose_warp.method import PoseWarp

__all__ = ["PoseWarp"]
