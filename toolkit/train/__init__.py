"""One training loop for every method.

A method contributes a `Recipe` (recipe.py: config, model, dataset, loss); `loop.train` runs
it on HuggingFace accelerate with AdamW, EMA, mixed precision, a data order and per-step
randomness that are pure functions of (seed, step), and atomic checkpoints (checkpoint.py),
so a run that is killed and resumed reproduces the uninterrupted one exactly.
A recipe comes with its method's package description (toolkit/package.py) or as a ``pkg.module:Class`` spec.
Batches come from loader threads (thread_loader.py) or DataLoader worker processes.
"""

from toolkit.train.recipe import Recipe, Trainee
from toolkit.train.thread_loader import ThreadLoader

__all__ = ["Recipe", "ThreadLoader", "Trainee"]
