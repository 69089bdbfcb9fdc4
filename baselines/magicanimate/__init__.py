"""MagicAnimate-style reference model: appearance encoder, DensePose ControlNet, motion modules, window fusion.

`PACKAGE` is the method's whole registration (one ``toolkit.methods`` entry point).
"""

from pathlib import Path

from baselines.magicanimate.artifacts import ARTIFACTS
from toolkit.package import MethodPackage

PACKAGE = MethodPackage(
    method="baselines.magicanimate.method:MagicAnimateMethod",
    recipe="baselines.magicanimate.recipe:MagicAnimateRecipe",
    artifacts=ARTIFACTS,
    configs=Path(__file__).parent / "configs",
)
