"""Score the same predictions with this toolkit (disco, disco-tm) and with DisCo's own evaluation code.

Not part of the package and not a test: it makes the README's table "disco and disco-tm against DisCo's code".
DisCo's code is read from a checkout you fetched yourself and runs unchanged except for its device
(``torch.device("cuda")`` becomes cpu in a copy under OUT). Both sides load the identical stand-in weights
(random networks of the right architectures, ``tests/helpers/standin.py``), since the real files cannot be fetched here.

  # 1. this toolkit's environment: predictions, stand-in weights, our numbers -> OUT/ours.json
  PYTHONPATH=. .venv/bin/python scripts/disco_reference.py ours OUT --dataset data/shards/synthetic
  # 2. an environment with DisCo's requirements (torch, lpips, pytorch-fid 0.3.0, scikit-image, opencv,
  #    ffmpeg-python, imageio-ffmpeg, the ffmpeg binaries) -> OUT/reference.json
  python scripts/disco_reference.py reference OUT --disco PATH/TO/DisCo
  #    and DisCo's FID-VID / FVD features, for the Fréchet distances its own function refuses to return
  python scripts/disco_reference.py features OUT mp4_lossless gen_eval [--metrics fid_vid fvd]
  # 3. standard's frame metrics against torchmetrics and the lpips package (this toolkit's environment)
  PYTHONPATH=. .venv/bin/python scripts/disco_reference.py standard OUT
  # 4. the comparison
  python scripts/disco_reference.py table OUT
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

# Stand-in weights: registry artifact -> (seed, the file name DisCo's code loads, where under OUT it goes).
STANDINS = {
    "lpips-vgg16-backbone": (1, "torch_home/hub/checkpoints/vgg16-397923af.pth"),
    "fid-inception-pytorch": (3, "torch_home/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth"),
    "fidvid-r3d50-kinetics": (4, "root/eval_fvd/resnet-50-kinetics.pth"),
    "fvd-i3d-400": (5, "root/eval_fvd/i3d_pretrained_400.pt"),
}
PROFILES = ("disco", "disco-tm")


def _torchvision_file(factory: str, features: dict, path: Path) -> None:
    """A whole torchvision state dict (as its released file) around stand-in ``features.*``: torchvision loads
    every key, LPIPS uses the features only, so the classifier is zeros."""
    import torch
    import torchvision

    with torch.device("meta"):
        classifier = getattr(torchvision.models, factory)(weights=None).classifier
    zeros = {f"classifier.{k}": torch.zeros(v.shape) for k, v in classifier.state_dict().items()}
    torch.save({**features, **zeros}, path)


def _standin_module():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import standin

    return standin


def _standin_files(out: Path) -> dict[str, Path]:
    """Write each stand-in once, in the released file's format, where DisCo's code looks for it."""
    import torch

    standin = _standin_module()

    files = {}
    for name, (seed, rel) in STANDINS.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "lpips-vgg16-backbone":
            _torchvision_file("vgg16", standin.vgg16_backbone(seed), path)
        else:
            state = {"fid-inception-pytorch": standin.fid_inception_state, "fidvid-r3d50-kinetics":
                     standin.resnet3d_checkpoint, "fvd-i3d-400": standin.i3d_state}[name](seed)
            torch.save(state, path, _use_new_zipfile_serialization=name != "fidvid-r3d50-kinetics")
        files[name] = path
    return files


def _use_standins(files: dict[str, Path], home: Path) -> None:
    """Pin the registry to the stand-in files and import them into a fresh TOOLKIT_HOME."""
    import dataclasses
    import hashlib
    import os

    from toolkit import weights

    os.environ["TOOLKIT_HOME"] = str(home)
    for name, path in files.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        weights.ARTIFACTS[name] = dataclasses.replace(weights.ARTIFACTS[name], sha256=digest,
                                                      size=path.stat().st_size, sha256_prefix=None)
        weights.import_file(path, name)


def _write_frames(out: Path, shards_path: Path, method: str) -> list[str]:
    """The method's predictions and the ground truth as PNGs, in both layouts DisCo's scripts read:
    frames/{pred,gt}/TiktokDance_<n>_<frame>.png (gen_eval.sh) and clips/{pred,gt}/<video>/<frame>.png
    (gen_eval_tm.sh), plus lossless mp4s (mp4/{pred,gt}/<video>.mp4, RGB, qp 0)."""
    import numpy as np
    from PIL import Image

    from toolkit.harness.registry import get_method
    from toolkit.harness.scoring import conditions_for
    from toolkit.shards.reader import Shards

    shards = Shards(shards_path)
    videos = shards.videos[(shards.videos.status == "ok") & (shards.videos.split == "test")]
    runner = get_method(method)
    ids = []
    for n, row in enumerate(videos.itertuples()):
        gt, cond = conditions_for(shards, row.video_id, with_ground_truth=runner.uses_ground_truth)
        pred = np.asarray(runner.generate(cond))
        ids.append(row.video_id)
        for side, frames in (("pred", pred), ("gt", gt)):
            clip_dir = out / "clips" / side / row.video_id
            flat_dir = out / "frames" / side
            for d in (clip_dir, flat_dir, out / "mp4" / side):
                d.mkdir(parents=True, exist_ok=True)
            for i, frame in enumerate(frames):
                Image.fromarray(frame).save(clip_dir / f"{i:04d}.png")
                shutil.copyfile(clip_dir / f"{i:04d}.png", flat_dir / f"TiktokDance_{n:03d}_{i:04d}.png")
            h, w = frames.shape[1:3]
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                            f"{w}x{h}", "-r", "25", "-i", "-", "-c:v", "libx264rgb", "-qp", "0",
                            str(out / "mp4" / side / f"{row.video_id}.mp4")], input=frames.tobytes(), check=True)
    return ids


def ours(out: Path, dataset: Path, method: str) -> None:
    """Predictions, stand-in weights and this toolkit's disco / disco-tm numbers (OUT/ours.json)."""
    from toolkit.harness.runner import evaluate

    out.mkdir(parents=True, exist_ok=True)
    _use_standins(_standin_files(out), out / "toolkit_home")
    ids = _write_frames(out, dataset, method)
    result = {"videos": ids, "method": method}
    for profile in PROFILES:
        report = evaluate(dataset, predictions=out / "clips" / "pred", profile=profile, write=False,
                          progress=False)
        result[profile] = {"aggregate": report.aggregate, "notes": dict(report.notes),
                           "clips": report.provenance["clips"]}
    (out / "ours.json").write_text(json.dumps(result, indent=1, default=float))


def standard(out: Path) -> None:
    """standard's L1, PSNR, SSIM and LPIPS of the same predictions, ours and torchmetrics' / the lpips package's
    (OUT/standard.json); frames 1..T-1, whole frames, the mean over all frames."""
    import os

    import numpy as np
    import torch
    from PIL import Image

    os.environ["TORCH_HOME"] = str(out / "torch_home")
    alex = out / "torch_home/hub/checkpoints/alexnet-owt-7be5be79.pth"
    _torchvision_file("alexnet", _standin_module().alexnet_backbone(2), alex)
    _use_standins({"lpips-alexnet-backbone": alex, **{n: out / rel for n, (_, rel) in STANDINS.items()}},
                  out / "toolkit_home")
    import lpips
    import torchmetrics.functional as tmf

    from toolkit.metrics.functional.pixel import pixel_metrics
    from toolkit.metrics.lpips import LPIPS

    ours_lpips, package = LPIPS("standard"), lpips.LPIPS(net="alex", verbose=False).eval()
    values: dict[str, list[float]] = {}
    for folder in sorted((out / "clips" / "pred").iterdir()):
        pred, gt = (np.stack([np.asarray(Image.open(f)) for f in sorted(folder.parent.with_name(side).joinpath(
            folder.name).glob("*.png"))])[1:] for side in ("pred", "gt"))
        for metric, arr in pixel_metrics(pred, gt, "standard").items():
            values.setdefault(f"ours {metric}", []).extend(arr.tolist())
        values.setdefault("ours lpips", []).extend(ours_lpips.update(pred, gt).tolist())
        for p, g in zip(torch.from_numpy(pred).permute(0, 3, 1, 2).contiguous().double() / 255,
                        torch.from_numpy(gt).permute(0, 3, 1, 2).contiguous().double() / 255):
            p, g = p[None], g[None]
            ref = {"l1": tmf.mean_absolute_error(p, g), "psnr": tmf.peak_signal_noise_ratio(p, g, data_range=1.0),
                   "ssim": tmf.structural_similarity_index_measure(p, g, data_range=1.0)}
            with torch.no_grad():
                ref["lpips"] = package(p.float() * 2 - 1, g.float() * 2 - 1)
            for metric, value in ref.items():
                values.setdefault(f"reference {metric}", []).append(float(value))
    (out / "standard.json").write_text(json.dumps({k: float(np.mean(v)) for k, v in values.items()}, indent=1))


def _disco_code(out: Path, disco: Path) -> Path:
    """A copy of the checkout's tool/ folder with its device set to cpu (the only change)."""
    code = out / "disco_code"
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(disco / "tool", code / "tool")
    for path in (code / "tool").rglob("*.py"):
        text = path.read_text()
        cpu = text.replace('torch.device("cuda")', 'torch.device("cpu")').replace("torch.device('cuda')",
                                                                                    "torch.device('cpu')")
        path.write_text(cpu)
    return code


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, str]:
    """Run one step of DisCo's scripts; its output goes to ``log``, the return code and last line come back."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines[-1] if lines else ""


def reference(out: Path, disco: Path) -> None:
    """DisCo's gen_eval.sh and gen_eval_tm.sh steps on the same frames (OUT/reference.json)."""
    import os

    code = _disco_code(out, disco)
    env = {**os.environ, "TORCH_HOME": str(out / "torch_home"), "CUDA_VISIBLE_DEVICES": ""}
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    py, center = sys.executable, "tool/metrics/metric_center.py"
    result: dict[str, dict] = {}

    def metric(key: str, gen: Path, gt: Path, kind: str, extra: tuple[str, ...] = ()) -> None:
        dest = out / f"{key}-{kind}.json"
        if dest.exists():  # a rerun resumes
            result.setdefault(key, {})[kind] = json.loads(dest.read_text())
            return
        rc, last = _run([py, center, "--root_dir", str(out / "root"), "--path_gen", str(gen), "--path_gt", str(gt),
                         "--type", kind, "--num_workers", "0", "--write_metric_to", str(dest), *extra],
                        code, env, logs / f"{key}-{kind}.log")
        result.setdefault(key, {})[kind] = json.loads(dest.read_text()) if rc == 0 else f"failed: {last}"

    def fid(key: str, gen: Path, gt: Path) -> None:
        dest = out / f"{key}-fid.json"
        if not dest.exists():
            rc, last = _run([py, "-m", "pytorch_fid", str(gen), str(gt), "--device", "cpu", "--num-workers", "0"],
                            code, env, logs / f"{key}-fid.log")
            printed = [line for line in (logs / f"{key}-fid.log").read_text().splitlines() if line.startswith("FID:")]
            dest.write_text(json.dumps(float(printed[0].split()[-1]) if rc == 0 and printed else f"failed: {last}"))
        result.setdefault(key, {})["fid"] = json.loads(dest.read_text())

    frames, clips, video = out / "frames", out / "clips", ("--number_sample_frames", "16", "--sample_duration", "16")
    # gen_eval.sh: frame folders (all four pixel metrics, though the script as shipped runs only psnr)
    for kind in ("l1", "ssim", "lpips", "psnr"):
        metric("gen_eval", frames / "pred", frames / "gt", kind)
    fid("gen_eval", frames / "pred", frames / "gt")
    for kind in ("fid-vid", "fvd"):
        metric("gen_eval", frames / "pred", frames / "gt", kind, video)
    # gen_eval_tm.sh: one subfolder per clip with DisCo's frame names, one frame of each kept (merge_subfolder.py
    # defaults) for FID and the pixel metrics, each subfolder an mp4 at 3 fps for FID-VID and FVD
    for side in ("pred", "gt"):
        for d in (out / "tm_frames" / side, clips.with_name("tm_clips") / side):
            if d.exists():
                shutil.rmtree(d)
        for frame in sorted((frames / side).glob("*.png")):
            folder = clips.with_name("tm_clips") / side / frame.stem.rsplit("_", 1)[0]
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(frame, folder / frame.name)
        _run([py, "tool/merge_subfolder.py", "-i", str(clips.with_name("tm_clips") / side), "-o",
              str(out / "tm_frames" / side)], code, env, logs / f"merge-{side}.log")
        _run([py, "tool/video/yz_gen_gifs_for_fvd_subfolders.py", "-i", str(clips.with_name("tm_clips") / side),
              "-o", str(out / "mp4_3fps" / side), "--fps", "3", "--format", "mp4"], code, env,
             logs / f"mp4-{side}.log")
    fid("gen_eval_tm", out / "tm_frames" / "pred", out / "tm_frames" / "gt")
    for kind in ("l1", "ssim", "lpips", "psnr"):
        metric("gen_eval_tm", out / "tm_frames" / "pred", out / "tm_frames" / "gt", kind)
    for kind in ("fid-vid", "fvd"):
        metric("gen_eval_tm", out / "mp4_3fps" / "pred", out / "mp4_3fps" / "gt", kind, video)
        # the same mp4 path on lossless files: DisCo's computation without its encoding loss
        metric("mp4_lossless", out / "mp4" / "pred", out / "mp4" / "gt", kind, video)
    (out / "reference.json").write_text(json.dumps(result, indent=1))


def features(out: Path, paths: list[str], metrics: list[str]) -> None:
    """DisCo's FID-VID / FVD features (its datasets, networks and feature loop, unchanged but for the device)
    saved to OUT/features-<path>.npz, so a Fréchet distance its own function refuses can still be compared:
    the table step gives its formula's real part and ours on these features."""
    import glob

    import numpy as np

    sys.path.insert(0, str(out / "disco_code"))
    from tool.metrics.features import build_feature_extractor
    from tool.metrics.metric_center import compute_3d_video_prediction
    from tool.metrics.utils import DatasetFVDVideoFromFramesResize, DatasetFVDVideoResize

    folders = {"gen_eval": (out / "frames", "png", DatasetFVDVideoFromFramesResize),
               "mp4_lossless": (out / "mp4", "mp4", DatasetFVDVideoResize)}
    for path in paths:
        root, ext, dataset = folders[path]
        arrays = {}
        for mode, size, key in (("FVD-3DRN50", 112, "fid_vid"), ("FVD-3DInception", 224, "fvd")):
            if key not in metrics:
                continue
            model = build_feature_extractor(mode, str(out / "root"), device="cpu", sample_duration=16)
            for side in ("pred", "gt"):
                files = sorted(glob.glob(str(root / side / f"*.{ext}")))
                arrays[f"{key}_{side}"] = compute_3d_video_prediction(dataset(files, 16, mode, size), model, 1, 0)
        np.savez(out / f"features-{path}.npz", **arrays)


def _refused_frechet(feats: dict, key: str) -> tuple[float, float]:
    """DisCo's Fréchet formula on its own features without its imaginary-component check (scipy sqrtm, real
    part, as it would return), and ours on the same features."""
    import numpy as np
    from scipy import linalg

    from toolkit.metrics.frechet import frechet_distance_from_features

    a, b = feats[f"{key}_pred"], feats[f"{key}_gt"]
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2), disp=False)[0]
    theirs = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))
    return theirs, frechet_distance_from_features(a, b)


def _value(entry: object) -> float | str:
    """A number from one reference result ({"L1": x}, x, or "failed: why")."""
    if isinstance(entry, dict):
        entry = next(iter(entry.values()))
    return float(entry) if isinstance(entry, (int, float)) else str(entry)


def table(out: Path) -> None:
    """Print ours vs the reference code per profile and metric (markdown rows)."""
    ours_json = json.loads((out / "ours.json").read_text())
    ref = json.loads((out / "reference.json").read_text())
    std = json.loads((out / "standard.json").read_text()) if (out / "standard.json").exists() else {}
    kinds = {"l1": "l1", "psnr": "psnr", "ssim": "ssim", "lpips": "lpips", "fid": "fid", "fid_vid": "fid-vid",
             "fvd": "fvd"}
    rows = [("disco", metric, ours_json["disco"]["aggregate"][metric], ref["gen_eval"].get(kind), "gen_eval.sh")
            for metric, kind in kinds.items()]
    for metric, kind in kinds.items():
        mine = ours_json["disco-tm"]["aggregate"][metric]
        if metric in ("fid_vid", "fvd"):
            rows.append(("disco-tm", metric, mine, ref["mp4_lossless"].get(kind), "mp4 path, lossless mp4"))
        rows.append(("disco-tm", metric, mine, ref["gen_eval_tm"].get(kind), "gen_eval_tm.sh"))
    for path in ("gen_eval", "mp4_lossless"):
        if (out / f"features-{path}.npz").exists():
            import numpy as np

            feats = dict(np.load(out / f"features-{path}.npz"))
            profile = "disco" if path == "gen_eval" else "disco-tm"
            for metric in sorted({k.rsplit("_", 1)[0] for k in feats}):
                theirs, on_theirs = _refused_frechet(feats, metric)
                rows.append((profile, metric, ours_json[profile]["aggregate"][metric], theirs,
                             f"{path}: DisCo's features, its formula without the raise"))
                rows.append((profile, metric, ours_json[profile]["aggregate"][metric], on_theirs,
                             f"{path}: DisCo's features, our Fréchet"))
    for metric in ("l1", "psnr", "ssim", "lpips"):
        if std:
            rows.append(("standard", metric, std[f"ours {metric}"], std[f"reference {metric}"],
                         "lpips package" if metric == "lpips" else "torchmetrics"))
    print("| profile | metric | ours | reference | reference run | difference |")
    print("| --- | --- | --: | --: | --- | --: |")
    for profile, metric, mine, theirs, source in rows:
        theirs = _value(theirs)
        if isinstance(theirs, float):
            rel = f" ({(mine - theirs) / abs(theirs):+.1e} rel.)" if theirs else ""
            print(f"| {profile} | {metric} | {mine:.6g} | {theirs:.6g} | {source} | {mine - theirs:+.3g}{rel} |")
        else:
            print(f"| {profile} | {metric} | {mine:.6g} | {theirs} | {source} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("ours")
    p.add_argument("out", type=Path)
    p.add_argument("--dataset", type=Path, default=Path("data/shards/synthetic"))
    p.add_argument("--method", default="pose-warp")
    p = sub.add_parser("reference")
    p.add_argument("out", type=Path)
    p.add_argument("--disco", type=Path, required=True, help="a checkout of Wangt-CN/DisCo (c4fa48a)")
    p = sub.add_parser("standard")
    p.add_argument("out", type=Path)
    p = sub.add_parser("features")
    p.add_argument("out", type=Path)
    p.add_argument("paths", nargs="+", choices=("gen_eval", "mp4_lossless"))
    p.add_argument("--metrics", nargs="+", choices=("fid_vid", "fvd"), default=["fid_vid", "fvd"])
    p = sub.add_parser("table")
    p.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.step == "ours":
        ours(args.out.resolve(), args.dataset, args.method)
    elif args.step == "reference":
        reference(args.out.resolve(), args.disco.resolve())
    elif args.step == "features":
        features(args.out.resolve(), args.paths, args.metrics)
    elif args.step == "standard":
        standard(args.out.resolve())
    else:
        table(args.out.resolve())


if __name__ == "__main__":
    main()
