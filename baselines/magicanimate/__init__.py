"""MagicAnimate-style reference model: appearance encoder, DensePose ControlNet, motion modules, window fusion."""
