"""`toolkit weights`: list, check, download and import the pretrained files the toolkit uses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolkit.cli.table import format_table

EPILOG = """examples:
  toolkit weights list                     what the toolkit can use, with sizes and licences
  toolkit weights list --long              also URLs, file formats and how each file is loaded
  toolkit weights status                   present / missing / sha mismatch, and what that disables
  toolkit weights status --quick           existence and size only (no hashing)
  toolkit weights fetch lpips-alexnet-backbone fid-inception-pytorch
  toolkit weights fetch --all              everything with a direct download URL
  toolkit weights import ~/Downloads/resnet-50-kinetics.pth
  toolkit weights import ./model.bin --name openclip-vit-h-14-laion2b
  toolkit weights import /mnt/models/v2-1_512-ema-pruned.ckpt --symlink

Files live in $TOOLKIT_HOME/weights (default ~/.cache/toolkit/weights).
Files on the Hugging Face Hub are fetched with huggingface_hub into its shared
cache ($HF_HOME/hub) and linked from ours, not copied; HF_TOKEN authenticates,
HF_ENDPOINT names a mirror, HF_HUB_OFFLINE=1 uses only what that cache holds.
Other downloads resume where a failed one stopped. Imports are hard-linked
when source and cache share a filesystem, else copied (--symlink: a link).
Artifacts marked "not pinned" have no published sha256 that could be verified:
the first file fetched or imported is trusted and its hash recorded in pins.json.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "weights",
        help="list, check, download and import pretrained weights",
        description="Manage the pretrained files (pose models, metric networks, model checkpoints) "
        "the toolkit uses. Nothing downloads weights implicitly: a feature whose file is missing "
        "stops with the command that fixes it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=lambda args: _print_help(parser))
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")

    p_list = actions.add_parser("list", help="the registry table: name, size, licence, used by, pinned?",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_list.add_argument("--long", action="store_true", help="also print URL, file, loader and description")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_list)

    p_status = actions.add_parser("status", help="present / missing / sha mismatch per artifact",
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_status.add_argument("names", nargs="*", metavar="NAME", help="artifacts to check (default: all)")
    p_status.add_argument("--quick", action="store_true", help="check existence and size only, no sha256")
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.set_defaults(func=cmd_status)

    p_fetch = actions.add_parser("fetch", help="download artifacts into the cache (verified, atomic)",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_fetch.add_argument("names", nargs="*", metavar="NAME", help="artifacts to download")
    p_fetch.add_argument("--all", action="store_true", help="every artifact with a direct download URL")
    p_fetch.add_argument("--force", action="store_true", help="download again even if the file is present")
    p_fetch.set_defaults(func=cmd_fetch)

    p_import = actions.add_parser("import", help="put a local file into the cache after checking it",
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_import.add_argument("path", help="the file to import")
    p_import.add_argument("--name", help="artifact name (default: identified by sha256, then by file name)")
    p_import.add_argument("--symlink", action="store_true",
                          help="link to the file instead of hard-linking or copying it (it must stay where it is)")
    p_import.set_defaults(func=cmd_import)

    p_convert = actions.add_parser("convert", help="convert a released checkpoint once to safetensors in our layout",
                                   epilog="example:\n  toolkit weights convert unianimate-16f-32f\n\nThe pickle is "
                                   "read with torch.load(weights_only=True); the result is\nconfig.json + "
                                   "model.safetensors under the cache's converted/NAME/.",
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p_convert.add_argument("name", metavar="NAME", help="artifact with a converter (e.g. unianimate-16f-32f)")
    p_convert.add_argument("--out", type=Path, help="destination folder (default: the cache's converted/NAME)")
    p_convert.add_argument("--force", action="store_true", help="convert again even if the folder exists")
    p_convert.set_defaults(func=cmd_convert)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


def _pinned_label(artifact, recorded: dict) -> str:
    if artifact.sha256:
        return "pinned"
    if artifact.name in recorded:
        return "sha256 not pinned (recorded on first use)"
    if artifact.sha256_prefix:
        return f"sha256 not pinned (prefix {artifact.sha256_prefix})"
    return "sha256 not pinned"


def cmd_list(args: argparse.Namespace) -> int:
    from toolkit import weights

    recorded = weights.pins()
    artifacts = list(weights.ARTIFACTS.values())
    if args.json:
        out = []
        for a in artifacts:
            entry = {f: getattr(a, f) for f in a.__dataclass_fields__}
            entry["used_by"] = list(a.used_by)
            entry["pinned"] = _pinned_label(a, recorded)
            out.append(entry)
        print(json.dumps(out, indent=2))
        return 0
    rows = [[a.name, _size(a.size), a.license.split(" (")[0], ", ".join(a.used_by) or "-",
             _pinned_label(a, recorded)] for a in artifacts]
    print(format_table(["name", "size", "licence", "used by", "sha256"], rows))
    if args.long:
        for a in artifacts:
            print(f"\n{a.name}\n  file:    {weights.weights_dir() / a.filename}\n  url:     {a.url}"
                  f"\n  sha256:  {a.sha256 or 'not pinned'}\n  licence: {a.license}"
                  f"\n  loader:  {a.loader}\n  about:   {a.description}")
    print(f"\ncache: {weights.weights_dir()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from toolkit import weights
    from toolkit.annotate.backends import backend_status
    from toolkit.harness.availability import unavailable_features

    names = args.names or list(weights.ARTIFACTS)
    statuses = [weights.status(n, verify=not args.quick) for n in names]
    blocked = unavailable_features(statuses)
    backends = backend_status()
    if args.json:
        print(json.dumps({"cache": str(weights.weights_dir()),
                          "artifacts": [{**s.to_dict(), "used_by": list(weights.get(s.name).used_by)}
                                        for s in statuses],
                          "unavailable_features": blocked, "annotation_backends": backends}, indent=2))
    else:
        rows = [[s.name, s.state, "; ".join(weights.get(s.name).used_by) or "-", s.pinned, s.detail]
                for s in statuses]
        print(format_table(["name", "state", "used by", "sha256", "detail"], rows))
        print(f"\ncache: {weights.weights_dir()}")
        if blocked:
            print("\nunavailable until fixed:")
            for feature, reasons in sorted(blocked.items()):
                print(f"  {feature}: {', '.join(reasons)}")
        else:
            print("\nall features that need these weights can run")
        print("\nannotation backends (toolkit prepare --pose / --densepose / --mask):")
        for b in backends:
            state = "available" if b["available"] else "unavailable"
            print(f"  {b['kind']:9s} {b['name']:10s} {state:11s} {b['reason']}")
    return 1 if any(s.state == "mismatch" for s in statuses) else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from toolkit import weights

    if args.all:
        names = [a.name for a in weights.ARTIFACTS.values() if a.direct_download]
    elif args.names:
        names = [weights.get(n).name for n in args.names]
    else:
        print("error: name at least one artifact, or pass --all (see `toolkit weights list`)", file=sys.stderr)
        return 2
    failures = 0
    for name in names:
        try:
            dest = weights.fetch(name, force=args.force)
        except (weights.WeightsFetchError, weights.WeightsMismatch) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{name}: {dest}")
    return 1 if failures else 0


def cmd_convert(args: argparse.Namespace) -> int:
    import shutil

    from toolkit import plugins, weights

    artifact = weights.get(args.name)
    if not artifact.convert:
        known = ", ".join(a.name for a in weights.ARTIFACTS.values() if a.convert) or "none"
        raise ValueError(f"{artifact.name} has no converter (artifacts with one: {known})")
    convert = plugins.resolve(artifact.convert)
    source = weights.path(artifact.name)  # missing or mismatched files fail here, with the fix
    dest = args.out or weights.converted_dir(artifact.name)
    if dest.exists() and not args.force:
        print(f"{artifact.name}: already converted in {dest} (--force to redo)")
        return 0
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    convert(source, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.replace(dest)
    print(f"{artifact.name}: converted to {dest}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from toolkit import weights

    name = args.name or weights.identify(args.path)
    dest = weights.import_file(args.path, name=name, symlink=args.symlink)
    print(f"{name}: imported to {dest} (sha256 {weights.file_sha256(name)})")
    return 0
