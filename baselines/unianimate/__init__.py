"""UniAnimate (Wang et al., 2024) as a toolkit baseline.

`model.py` holds the denoiser and its configs; `convert.py` maps the published checkpoint onto it.
"""
