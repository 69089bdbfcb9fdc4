"""Network building blocks for video diffusion models. Import the submodules directly; this package imports
nothing heavy. Among them:

`toolkit.models.scan`: Mamba's selective scan (S6) over the time axis, in plain PyTorch or mamba-ssm's CUDA kernel.
`toolkit.models.temporal_mamba`: `TemporalMamba`, a bidirectional temporal Mamba that replaces diffusers'
`TransformerTemporalModel` inside `UNet3DConditionModel` (UniAnimate's temporal Mamba option).
`toolkit.models.run_folder`: the run folders a trained model is loaded from (``--checkpoint``, ``--init``), shared
by the methods and the training loop.
"""
