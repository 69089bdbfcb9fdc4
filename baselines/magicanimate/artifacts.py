"""The pretrained files MagicAnimate reads, declared for the weights registry through its package description
(`baselines/magicanimate/__init__.py`)."""

from toolkit.weights import TORCH_LOAD, Artifact

ARTIFACTS = (
    Artifact(
        name="sd15-unet",
        filename="sd15/unet/diffusion_pytorch_model.safetensors",
        url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/unet/"
        "diffusion_pytorch_model.safetensors",
        sha256="19da7aaa4b880e59d56843f1fcb4dd9b599c28a1d9d9af7c1143057c8ffae9f1",
        size=None,
        license="CreativeML OpenRAIL-M",
        used_by=("MagicAnimate",),
        description="Stable Diffusion 1.5 UNet (diffusers layout, fp32, ~3.44 GB). Originally "
        "runwayml/stable-diffusion-v1-5, now served from the stable-diffusion-v1-5 organisation.",
        loader="safetensors",
    ),
    Artifact(
        name="sd15-text-encoder",
        filename="sd15/text_encoder/model.safetensors",
        url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/text_encoder/"
        "model.safetensors",
        sha256=None,
        size=None,
        license="CreativeML OpenRAIL-M",
        used_by=("MagicAnimate",),
        description="SD 1.5 CLIP ViT-L/14 text encoder (fp32, ~492 MB); MagicAnimate encodes the empty prompt.",
        loader="safetensors",
    ),
    Artifact(
        name="sd-vae-ft-mse",
        filename="sd-vae-ft-mse/diffusion_pytorch_model.safetensors",
        url="https://huggingface.co/stabilityai/sd-vae-ft-mse/resolve/main/diffusion_pytorch_model.safetensors",
        sha256="a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",
        size=None,
        license="MIT",
        used_by=("MagicAnimate",),
        description="Stable Diffusion VAE fine-tuned with MSE loss (~335 MB), MagicAnimate's VAE.",
        loader="safetensors",
    ),
    Artifact(
        name="animatediff-mm-sd-v15",
        filename="animatediff/mm_sd_v15.ckpt",
        url="https://huggingface.co/guoyww/animatediff/resolve/main/mm_sd_v15.ckpt",
        sha256=None,
        size=None,
        license="Apache-2.0 (guoyww/AnimateDiff)",
        used_by=("MagicAnimate",),
        description="AnimateDiff v1 motion module for SD 1.5 (~1.67 GB fp32): 20 temporal transformers, 8 heads, "
        "24 sinusoid positions, none in the mid block -- the layout of MagicAnimate's motion modules (v2, "
        "mm_sd_v15_v2.ckpt, has a mid-block module and 32 positions). MagicAnimate's paper starts stage 2's "
        "temporal attention from AnimateDiff; the paper config loads it there ([stages.2.pretrained]).",
        loader=TORCH_LOAD + ": flat state dict in AnimateDiff's names, mapped to ours as the release's motion "
        "modules are (baselines/magicanimate/convert.py MOTION_RENAMES)",
        check="baselines.magicanimate.recipe:check_motion_module_file",
    ),
    Artifact(
        name="magicanimate-appearance-encoder",
        filename="magicanimate/appearance_encoder/diffusion_pytorch_model.safetensors",
        url="https://huggingface.co/zcxu-eric/MagicAnimate/resolve/main/appearance_encoder/"
        "diffusion_pytorch_model.safetensors",
        sha256="cb2e8f281d73eff5f9b7f0c94118496607cf5f29fc5b56535a19a8b68e79b619",
        size=None,
        license="BSD-3-Clause",
        used_by=("MagicAnimate",),
        description="MagicAnimate appearance encoder (~3.43 GB), HF zcxu-eric/MagicAnimate commit 0aac567.",
        loader="safetensors",
    ),
    Artifact(
        name="magicanimate-densepose-controlnet",
        filename="magicanimate/densepose_controlnet/diffusion_pytorch_model.safetensors",
        url="https://huggingface.co/zcxu-eric/MagicAnimate/resolve/main/densepose_controlnet/"
        "diffusion_pytorch_model.safetensors",
        sha256="f5e06b41bd614e84eba294ebf2fa868ef31ffc88fca33987938fde3ec0eb67a4",
        size=None,
        license="BSD-3-Clause",
        used_by=("MagicAnimate",),
        description="MagicAnimate DensePose ControlNet (~1.45 GB), HF zcxu-eric/MagicAnimate commit 0aac567.",
        loader="safetensors",
    ),
    Artifact(
        name="magicanimate-temporal-attention",
        filename="magicanimate/temporal_attention/temporal_attention.ckpt",
        url="https://huggingface.co/zcxu-eric/MagicAnimate/resolve/main/temporal_attention/temporal_attention.ckpt",
        sha256="5e14b488d09569ddf5524cf6d671413b6fa6cf13ba2b1f304e5e965d2b997125",
        size=None,
        license="BSD-3-Clause",
        used_by=("MagicAnimate",),
        description="MagicAnimate's denoising 3D UNet (~5.11 GB, fp32): by its size the whole UNet, SD 1.5's "
        "fine-tuned spatial layers plus 20 AnimateDiff motion modules (baselines/magicanimate/convert.py).",
        loader=TORCH_LOAD + ": state dict (pickle imports: OrderedDict, _rebuild_tensor_v2, FloatStorage); "
        "`toolkit weights convert` writes it once as safetensors in our names",
        convert="baselines.magicanimate.convert:convert_published_file",
    ),
)
