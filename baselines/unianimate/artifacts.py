"""The pretrained files UniAnimate reads, declared for the weights registry through its package description
(`baselines/unianimate/__init__.py`)."""

from toolkit.weights import TORCH_LOAD, Artifact

ARTIFACTS = (
    Artifact(
        name="openclip-vit-h-14-laion2b",
        filename="clip/open_clip_vit_h_14_laion2b_s32b_b79k.bin",
        url="https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K/resolve/main/open_clip_pytorch_model.bin",
        sha256="9a78ef8e8c73fd0df621682e7a8e8eb36c6916cb3c16b291a082ecd52ab79cc4",
        size=None,
        license="MIT",
        used_by=("UniAnimate",),
        description="OpenCLIP ViT-H-14 laion2B-s32B-b79K (~3.94 GB): UniAnimate's \"\" text context (penultimate "
        "layer) and reference-image embedding (its checkpoint folder names it open_clip_pytorch_model.bin).",
        loader=TORCH_LOAD + ": flat OpenCLIP state dict, run by toolkit.models.openclip",
        check="toolkit.models.openclip:check_state",
    ),
    Artifact(
        name="sd21-512-ema-pruned",
        filename="sd21/v2-1_512-ema-pruned.ckpt",
        url="https://huggingface.co/camenduru/unianimate/resolve/main/v2-1_512-ema-pruned.ckpt",
        sha256=None,
        size=None,
        license="CreativeML OpenRAIL++-M",
        used_by=("UniAnimate",),
        description="SD 2.1-base checkpoint (~5.21 GB); UniAnimate takes its VAE from it.",
        loader="Lightning pickle that also holds a ModelCheckpoint callback and numpy scalars: read with "
        "torch.load(weights_only=True), those globals (allow_globals) unpickled as inert placeholders "
        "(toolkit.safe_pickle.Opaque); only first_stage_model.* (the VAE) is used",
        first_use="scan",
        allow_globals=("numpy.", "pytorch_lightning."),
    ),
    Artifact(
        name="unianimate-16f-32f",
        filename="unianimate/unianimate_16f_32f_non_ema_223000.pth",
        url="https://huggingface.co/camenduru/unianimate/resolve/main/unianimate_16f_32f_non_ema_223000.pth",
        sha256=None,
        size=None,
        license="unspecified (ali-vilab/UniAnimate publishes no licence file)",
        used_by=("UniAnimate",),
        description="UniAnimate UNet, non-EMA step 223000 (~5.67 GB, fp32). Official copy on ModelScope "
        "(iic/unianimate); the URL is the camenduru/unianimate mirror on Hugging Face.",
        loader=TORCH_LOAD + ": state dict, loaded with strict=True (pickle imports: OrderedDict, "
        "_rebuild_tensor_v2, FloatStorage)",
        check="baselines.unianimate.convert:check_published",
        convert="baselines.unianimate.convert:convert_published_file",
    ),
)
