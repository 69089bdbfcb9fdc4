"""UniAnimate (Wang et al., 2024) as a toolkit baseline.

`model.py` holds the denoiser and its configs; `convert.py` maps the published checkpoint onto it. `PACKAGE` is
the method's whole registration (one ``toolkit.methods`` entry point).
"""

from pathlib import Path

from baselines.unianimate.artifacts import ARTIFACTS
from toolkit.package import MethodPackage

PACKAGE = MethodPackage(
    method="baselines.unianimate.method:UniAnimateMethod",
    recipe="baselines.unianimate.recipe:UniAnimateRecipe",
    artifacts=ARTIFACTS,
    configs=Path(__file__).parent / "configs",
)
