"""Check toolkit/models/openclip.py against the real open_clip package, outside the project's environment.

Not part of the package and not a test: it makes the README's figure "our OpenCLIP towers against
open_clip". The real ViT-H-14 weights (3.94 GB) cannot be fetched here, so the numbers come from a
random-weight OpenCLIP model of ViT-H-14's structure (head width 80 in the visual tower, 64 in the text
tower, exact GELU, no layer scale, 224 px input in 14 px patches, 77 text positions, the full
49,408-token vocabulary) at reduced width and depth; the real ViT-H-14 config is built on the meta
device to check its names, shapes, head counts and activation against what our code assumes.

  # 1. an environment with open_clip (torch + open_clip_torch), nothing from this project
  python3.11 -m venv /tmp/ocvenv && /tmp/ocvenv/bin/pip install torch==2.14.1 open_clip_torch
  /tmp/ocvenv/bin/python scripts/openclip_reference.py reference OUT
  # 2. this toolkit's environment: our towers on the same state dict, the differences -> OUT/comparison.json
  PYTHONPATH=. .venv/bin/python scripts/openclip_reference.py compare OUT

The reference side computes UniAnimate's tensors the way tools/modules/clip_embedder.py drives open_clip
(``FrozenOpenCLIPTextVisualEmbedder``, layer "penultimate"): ``open_clip.tokenize("")``, token plus
positional embeddings, every residual block but the last with the model's ``attn_mask``, ``ln_final``;
and ``model.encode_image`` on the reference prepared as tools/inferences/inference_unianimate_entrance.py
does (PIL bilinear resize to 224 x 224, ``ToTensor``, ``Normalize`` with OpenAI's mean and std).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SMALL_VISION = dict(image_size=224, layers=3, width=160, head_width=80, patch_size=14)
SMALL_TEXT = dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=3)
SMALL_EMBED = 48
# The committed test fixture (tests/toolkit/models/openclip_reference.safetensors, ~100 kB): the same structure at
# width 16 with head width 8 (2 heads per tower), 2 blocks per tower, 28 px images (2 x 2 patches of 14).
FIXTURE_VISION = dict(image_size=28, layers=2, width=16, head_width=8, patch_size=14)
FIXTURE_TEXT = dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=2)
FIXTURE_EMBED = 8
VIT_MEAN = (0.48145466, 0.4578275, 0.40821073)   # UniAnimate's cfg.vit_mean / cfg.vit_std
VIT_STD = (0.26862954, 0.26130258, 0.27577711)


def _image():
    """A fixed 300 x 200 RGB test image (smooth gradients plus noise), uint8."""
    import numpy as np

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:300, 0:200]
    base = np.stack([x / 200 * 255, y / 300 * 255, (x + y) % 255], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _perturbed(vision_cfg: dict, text_cfg: dict, embed_dim: int, seed: int):
    """A random open_clip CLIP model; open_clip zero-initialises biases and sets norms to 1, so every tensor
    is perturbed too."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.CLIP(embed_dim=embed_dim, vision_cfg=vision_cfg, text_cfg=text_cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _unianimate_tensors(model, image) -> dict:
    """UniAnimate's tensors through open_clip's modules: "" at the penultimate and last layer, the reference
    prepared at the visual tower's size, its embedding."""
    import open_clip
    import torch
    import torchvision.transforms as T
    from PIL import Image

    size = model.visual.image_size[0]
    with torch.no_grad():
        tokens = open_clip.tokenize([""])
        x = model.token_embedding(tokens) + model.positional_embedding
        blocks = model.transformer.resblocks
        for block in blocks[:-1]:
            x = block(x, attn_mask=model.attn_mask)
        penultimate = model.ln_final(x)
        last = model.ln_final(blocks[-1](x, attn_mask=model.attn_mask))
        vit = T.Compose([T.ToTensor(), T.Normalize(mean=VIT_MEAN, std=VIT_STD)])
        pixels = vit(Image.fromarray(image).resize((size, size), Image.BILINEAR)).unsqueeze(0)
        embedding = model.encode_image(pixels)
    return {"penultimate": penultimate, "last": last, "pixels": pixels, "embedding": embedding}


def reference(out: Path) -> None:
    """open_clip's side: the meta-device ViT-H-14 facts, a small random model, its UniAnimate tensors, and the
    test fixture."""
    import numpy as np
    import open_clip
    import torch
    from open_clip import constants

    out.mkdir(parents=True, exist_ok=True)
    with torch.device("meta"):
        big = open_clip.create_model("ViT-H-14", pretrained=None, device="meta")
    (out / "vit_h_14_keys.tsv").write_text("".join(f"{k}\t{'x'.join(map(str, v.shape))}\n"
                                                   for k, v in big.state_dict().items()))
    pcfg = open_clip.get_pretrained_cfg("ViT-H-14", "laion2b_s32b_b79k")
    facts = {
        "open_clip": open_clip.__version__, "torch": torch.__version__,
        "text_heads": big.transformer.resblocks[0].attn.num_heads,
        "vision_heads": big.visual.transformer.resblocks[0].attn.num_heads,
        "text_act": type(big.transformer.resblocks[0].mlp.gelu).__name__,
        "vision_act": type(big.visual.transformer.resblocks[0].mlp.gelu).__name__,
        "layer_scale": any(".ls_" in k for k in big.state_dict()),
        "text_layers": len(big.transformer.resblocks), "vision_layers": len(big.visual.transformer.resblocks),
        "laion2b_quick_gelu": bool(pcfg.get("quick_gelu", False)),
        "laion2b_mean": list(pcfg.get("mean") or constants.OPENAI_DATASET_MEAN),
        "laion2b_std": list(pcfg.get("std") or constants.OPENAI_DATASET_STD),
        "empty_prompt_ids": open_clip.tokenize([""])[0].tolist(),
        "vision_pool_type": big.visual.pool_type, "vision_final_ln_after_pool": big.visual.final_ln_after_pool,
    }

    model = _perturbed(SMALL_VISION, SMALL_TEXT, SMALL_EMBED, seed=0)
    torch.save(model.state_dict(), out / "small_open_clip.bin")
    facts["small_text_heads"] = model.transformer.resblocks[0].attn.num_heads
    facts["small_vision_heads"] = model.visual.transformer.resblocks[0].attn.num_heads
    image = _image()
    np.save(out / "image.npy", image)
    torch.save(_unianimate_tensors(model, image), out / "reference_outputs.pt")

    from safetensors.torch import save_file

    tiny = _perturbed(FIXTURE_VISION, FIXTURE_TEXT, FIXTURE_EMBED, seed=1)
    state = {k: v.detach().clone() for k, v in tiny.state_dict().items() if k != "token_embedding.weight"}
    used = torch.tensor([0, 49406, 49407])   # the only rows "" reads; the test puts them into a zero table
    state["fixture.token_rows"] = tiny.token_embedding.weight.detach()[used].clone()
    state["fixture.token_ids"] = used
    small_image = image[::10, ::10].copy()
    state["fixture.image"] = torch.from_numpy(small_image)
    state.update({f"expected.{k}": v for k, v in _unianimate_tensors(tiny, small_image).items()})
    save_file({k: v.contiguous() for k, v in state.items()}, out / "openclip_reference.safetensors")
    (out / "reference.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts, indent=2))


def compare(out: Path) -> None:
    """The toolkit's side: the same tensors from toolkit.models.openclip, the max abs differences."""
    import numpy as np
    import torch

    from toolkit.models import openclip

    facts = json.loads((out / "reference.json").read_text())
    ref = torch.load(out / "reference_outputs.pt", weights_only=True)
    conditioner = openclip.OpenCLIPConditioner.from_file(out / "small_open_clip.bin")
    image = np.load(out / "image.npy")
    text_state = {k: v for k, v in conditioner.state.items() if not k.startswith("visual.")}
    pixels = openclip.preprocess(image, openclip.image_size(conditioner.state))
    ours = {
        "penultimate": conditioner.empty_text_context(),
        "last": openclip.text_context(text_state, skip_last=0),
        "pixels": pixels,
        "embedding": openclip.image_embedding(conditioner.state, pixels),
        "embedding_from_image": conditioner.embed_image(image),
    }
    diffs = {k: float((v - ref[k.replace("_from_image", "")]).abs().max()) for k, v in ours.items()}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from standin import openclip_fixture

    state, expected, tiny_image = openclip_fixture(out / "openclip_reference.safetensors")
    tiny_pixels = openclip.preprocess(tiny_image, openclip.image_size(state))
    tiny = {"penultimate": openclip.text_context(state, head_width=8),
            "last": openclip.text_context(state, skip_last=0, head_width=8),
            "pixels": tiny_pixels, "embedding": openclip.image_embedding(state, tiny_pixels, head_width=8)}
    diffs.update({f"fixture_{k}": float((v - expected[k]).abs().max()) for k, v in tiny.items()})
    scale = {k: float(ref[k.replace("_from_image", "")].abs().max()) for k in ours}
    scale.update({f"fixture_{k}": float(v.abs().max()) for k, v in expected.items()})
    big = {}
    for line in (out / "vit_h_14_keys.tsv").read_text().splitlines():
        name, shape = line.split("\t")
        big[name] = tuple(int(s) for s in shape.split("x")) if shape else ()
    openclip.check_state({k: torch.empty(s, device="meta") for k, s in big.items()}, "ViT-H-14 (meta)")
    checks = {
        "empty_prompt_ids": openclip.empty_prompt_ids().tolist()[0] == facts["empty_prompt_ids"],
        "text_heads": big["ln_final.weight"][0] // openclip.TEXT_HEAD_WIDTH == facts["text_heads"],
        "vision_heads": big["visual.ln_pre.weight"][0] // openclip.VISION_HEAD_WIDTH == facts["vision_heads"],
        "exact_gelu": facts["text_act"] == facts["vision_act"] == "GELU" and not facts["laion2b_quick_gelu"],
        "no_layer_scale": not facts["layer_scale"],
        "mean_std": (tuple(facts["laion2b_mean"]) == openclip.MEAN and tuple(facts["laion2b_std"]) == openclip.STD),
        "image_size": big["visual.conv1.weight"][-1] * round((big["visual.positional_embedding"][0] - 1) ** 0.5)
        == 224,
        "class_token_pool": facts["vision_pool_type"] == "tok" and not facts["vision_final_ln_after_pool"],
        "embed_dim": big["visual.proj"][1] == 1024 and big["positional_embedding"] == (77, 1024),
    }
    result = {"max_abs_diff": diffs, "max_abs_reference": scale, "vit_h_14_checks": checks,
              "reference": {k: facts[k] for k in ("open_clip", "torch", "small_text_heads", "small_vision_heads")}}
    (out / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not all(checks.values()) or max(diffs.values()) > 1e-4:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("reference", "compare"))
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    (reference if args.step == "reference" else compare)(args.out)


if __name__ == "__main__":
    main()
