"""The mechanism behind every pretrained file: the record of one (`Artifact`), the local cache that holds them,
fetch, import, pins and status.

The records themselves are declared beside the code that reads the files: the pose and DensePose backends and
the metric networks in their modules (entry-point group ``toolkit.artifacts``), each method in its package
description (toolkit/package.py). `ARTIFACTS` joins them on first use; this module names none of its users.

Nothing in the toolkit downloads weights behind the user's back: every network
asks ``path(name)`` for its file, and a missing file raises ``WeightsMissing``
naming the artifact, its URL and the two commands that fix it
(``toolkit weights fetch NAME`` on a connected machine, or
``toolkit weights import /path/to/FILE`` for a file copied by hand).

Files live in ``home()/"weights"/artifact.filename`` (one fetched from the Hugging
Face Hub as a symlink into the shared HF cache, see ``fetch``). Each artifact carries the
sha256 published upstream where one could be verified. Where none could, the
registry trusts the first file it sees (fetch or import), records its hash in
``pins.json`` beside the files, and holds later copies to that record; the
``list`` and ``status`` commands say "sha256 not pinned" for those.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from toolkit import plugins
from toolkit.io import atomic_write_json, temp_path_for

PINS_FILE = "pins.json"
HASH_CACHE_FILE = ".sha256-cache.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """One pretrained file: where it comes from, how to check it, who may use it and what needs it."""

    name: str
    filename: str  # path relative to the cache folder; unique across the table
    url: str
    sha256: str | None  # full hex digest verified from a public source, or None (trust on first use)
    size: int | None  # exact size in bytes where verified, else None
    license: str
    used_by: tuple[str, ...]  # toolkit features that cannot run without this file
    description: str
    loader: str = ""  # file format and how the toolkit reads it (pickles only with weights_only=True)
    sha256_prefix: str | None = None  # upstream-published digest prefix (torch hub file names) when no full hash
    direct_download: bool = True  # False where the URL is a landing page a script cannot download from
    # How a file is proven to be this artifact before its hash is recorded on first use (see `validate`):
    # "load" (weights-only load, then `check`), "scan" (the pickle's imports only: a file read solely by a
    # conversion), "none" (a file the toolkit never loads); safetensors files always have their header parsed
    first_use: str = "load"
    # Called with (name -> tensor mapping, path), raising ValueError when they do not fit: the function, or its
    # "package.module:function" spec where importing it here would be heavy
    check: str | Callable[..., None] | None = None
    # "package.module:function" that converts the file once to our safetensors layout: (source file, destination
    # folder), run by `toolkit weights convert NAME`
    convert: str | None = None
    allow_globals: tuple[str, ...] = ()  # pickle imports beyond the weights-only allow-list this file is known to hold

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None


TORCH_LOAD = "torch.load(map_location='cpu', weights_only=True)"  # the `loader` text of a weights-only pickle

#: Entry-point group of the toolkit's own artifact declarations (pose and DensePose backends, metric networks):
#: each entry is a tuple of Artifact declared beside the code that reads the files. A method declares its
#: artifacts in its package description (the `toolkit.methods` entry, toolkit/package.py) instead.
ARTIFACT_GROUP = "toolkit.artifacts"
_ARTIFACTS = plugins.Registry("artifact declaration", group=ARTIFACT_GROUP)
_METHODS = plugins.Registry("method", group="toolkit.methods")  # toolkit.package.METHODS (package imports us)


def declared() -> dict[str, Artifact]:
    """Every artifact that installed code declares: the `toolkit.artifacts` entries and the `artifacts` of every
    method package. Two different declarations of one name, or of one file, are an error naming both."""
    sources: list[tuple[str, tuple[Artifact, ...]]] = []
    for entry in _ARTIFACTS:
        sources.append((f"{ARTIFACT_GROUP} {entry}", tuple(_ARTIFACTS.get(entry))))
    for entry in _METHODS:
        sources.append((f"method {entry}", tuple(getattr(_METHODS.get(entry), "artifacts", ()))))
    found: dict[str, tuple[Artifact, str]] = {}
    files: dict[str, str] = {}
    for source, artifacts in sources:
        for artifact in artifacts:
            if not isinstance(artifact, Artifact):
                raise plugins.PluginError(f"{source}: declares {artifact!r}, which is not a toolkit.weights.Artifact")
            if artifact.name in found and found[artifact.name][0] != artifact:
                raise plugins.PluginError(f"artifact {artifact.name!r} is declared differently by "
                                          f"{found[artifact.name][1]} and by {source}")
            if files.setdefault(artifact.filename, artifact.name) != artifact.name:
                raise plugins.PluginError(f"{source}: artifact {artifact.name!r} takes the file {artifact.filename}, "
                                          f"which is {files[artifact.filename]!r}'s")
            found.setdefault(artifact.name, (artifact, source))
    return {name: found[name][0] for name in sorted(found)}


class _Registry(MutableMapping):
    """Name -> Artifact of everything declared (`declared`), collected on first use, so importing this module
    imports none of its users. A mapping, so tests can swap one entry (monkeypatch.setitem)."""

    def __init__(self) -> None:
        self._data: dict[str, Artifact] | None = None

    def _all(self) -> dict[str, Artifact]:
        if self._data is None:
            self._data = declared()
        return self._data

    def __getitem__(self, name: str) -> Artifact:
        return self._all()[name]

    def __setitem__(self, name: str, artifact: Artifact) -> None:
        self._all()[name] = artifact

    def __delitem__(self, name: str) -> None:
        del self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


ARTIFACTS: MutableMapping[str, Artifact] = _Registry()


class UnknownArtifact(ValueError):
    """A name that is not in the registry table."""


class WeightsMissing(FileNotFoundError):
    """A registered artifact is not in the local cache; the message says how to get it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.artifact = name

    @property
    def reason(self) -> str:
        """Short form for result tables: 'weights: NAME missing'."""
        return f"weights: {self.artifact} missing"


class WeightsMismatch(ValueError):
    """A file's sha256 or size differs from the registry's record; `artifact` names the entry when known."""

    def __init__(self, message: str, artifact: str | None = None) -> None:
        super().__init__(message)
        self.artifact = artifact


class WeightsUnreadable(WeightsMismatch):
    """A file that does not load as what its artifact is (not a weights file, smuggled code, other tensors)."""


class WeightsFetchError(RuntimeError):
    """A download failed (no network, HTTP error, or the server returned something else than the file)."""


def home() -> Path:
    """The toolkit's cache root: $TOOLKIT_HOME, else ~/.cache/toolkit."""
    env = os.environ.get("TOOLKIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "toolkit"


def weights_dir() -> Path:
    """The folder that holds the weight files."""
    return home() / "weights"


def converted_dir(name: str) -> Path:
    """Where `toolkit weights convert NAME` puts the artifact converted to our layout (safetensors)."""
    return home() / "converted" / get(name).name


def get(name: str) -> Artifact:
    """The table entry for NAME; an unknown name lists the known ones."""
    try:
        return ARTIFACTS[name]
    except KeyError:
        known = ", ".join(sorted(ARTIFACTS))
        raise UnknownArtifact(f"unknown weights artifact {name!r}; known artifacts: {known}") from None


def cache_path(name: str) -> Path:
    """Where NAME's file lives in the cache, whether or not it is there."""
    return weights_dir() / get(name).filename


def fix_commands(name: str) -> str:
    """The exact commands that put NAME's file into the cache."""
    artifact = get(name)
    basename = Path(artifact.filename).name
    get_it = (
        f"on a connected machine run `toolkit weights fetch {name}`" if artifact.direct_download
        else f"download {basename} in a browser from {artifact.url}"
    )
    return f"{get_it}, or copy the file here and run `toolkit weights import /path/to/{basename}`"


def _missing(name: str) -> WeightsMissing:
    artifact = get(name)
    return WeightsMissing(
        name,
        f"weights: {name} missing ({artifact.filename} is not in {weights_dir()}). It comes from "
        f"{artifact.url}. To fix: {fix_commands(name)}.",
    )


# ----------------------------------------------------------------------------- hashing and records

def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable registry record ({exc}); delete it to start over") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object; delete it to start over")
    return data


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, remembered by (size, mtime) so large checkpoints are hashed once.

    Files in the cache are remembered, links there included (keyed by the file they point to).
    """
    path = Path(path)
    st = path.stat()
    cache_file = weights_dir() / HASH_CACHE_FILE
    key = str(path.resolve())
    where = path.parent.resolve() / path.name  # where the name sits, not where a link leads
    inside_cache = where.is_relative_to(weights_dir().resolve()) if weights_dir().exists() else False
    cache = _read_json(cache_file) if inside_cache else {}
    entry = cache.get(key)
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return str(entry["sha256"])
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    value = digest.hexdigest()
    if inside_cache:
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": value}
        atomic_write_json(cache_file, cache)
    return value


def _remember_sha256(path: Path, digest: str) -> None:
    """Seed the hash cache for a file just written whose digest is already known (saves re-reading it)."""
    st = path.stat()
    cache_file = weights_dir() / HASH_CACHE_FILE
    cache = _read_json(cache_file)
    cache[str(path.resolve())] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    atomic_write_json(cache_file, cache)


def pins() -> dict[str, dict]:
    """Hashes recorded on first use for artifacts the table does not pin."""
    return _read_json(weights_dir() / PINS_FILE)


def _record_pin(name: str, sha256: str, size: int, source: str) -> None:
    record = pins()
    record[name] = {
        "sha256": sha256,
        "size": size,
        "source": source,
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(weights_dir() / PINS_FILE, record)


def expected_sha256(name: str) -> str | None:
    """The hash NAME's file must have: the table's, else the one recorded on first use, else None."""
    artifact = get(name)
    if artifact.sha256:
        return artifact.sha256
    pin = pins().get(name)
    return str(pin["sha256"]) if pin else None


def _check(name: str, sha256: str, size: int, where: str) -> None:
    """Raise WeightsMismatch if a file with this hash and size is not NAME's file."""
    artifact = get(name)
    if artifact.size is not None and size != artifact.size:
        raise WeightsMismatch(
            f"{where}: size {size} bytes, but {name} ({artifact.filename}) is {artifact.size} bytes; "
            "the file is truncated or a different file", artifact=name
        )
    expected = expected_sha256(name)
    if expected is not None and sha256 != expected:
        origin = "the registry table" if artifact.sha256 else "the hash recorded on first use (pins.json)"
        raise WeightsMismatch(
            f"{where}: sha256 {sha256} does not match {name}'s {expected} from {origin}", artifact=name
        )
    if expected is None and artifact.sha256_prefix and not sha256.startswith(artifact.sha256_prefix):
        raise WeightsMismatch(
            f"{where}: sha256 {sha256} does not start with {artifact.sha256_prefix}, "
            f"the prefix upstream publishes for {name}", artifact=name
        )


# ----------------------------------------------------------------------------- public lookups

def available(name: str) -> bool:
    """Whether NAME's file is in the cache (existence only; path() verifies it)."""
    return cache_path(name).is_file()


def path(name: str, verify: bool = True) -> Path:
    """NAME's cached file, checked against its recorded size and sha256.

    Raises WeightsMissing when absent and WeightsMismatch when the file is not
    the registered one. Hashes are remembered per (size, mtime), so the check
    costs one read of the file the first time only.
    """
    file = cache_path(name)
    if not file.is_file():
        raise _missing(name)
    if verify:
        _check(name, sha256_of(file), file.stat().st_size, str(file))
    return file


def file_sha256(name: str) -> str:
    """sha256 of NAME's cached file, for provenance in results."""
    file = cache_path(name)
    if not file.is_file():
        raise _missing(name)
    return sha256_of(file)


# ----------------------------------------------------------------------------- import and fetch

def identify(src: str | os.PathLike) -> str:
    """The artifact a file is, by its sha256 (table or first-use record) or else its file name."""
    src = Path(src)
    digest = sha256_of(src)
    recorded = pins()
    by_hash = [
        a.name for a in ARTIFACTS.values()
        if a.sha256 == digest or recorded.get(a.name, {}).get("sha256") == digest
    ]
    if len(by_hash) == 1:
        return by_hash[0]
    if len(by_hash) > 1:
        raise ValueError(f"{src}: its sha256 matches several artifacts ({', '.join(by_hash)}); pass --name")
    by_name = [a.name for a in ARTIFACTS.values() if Path(a.filename).name == src.name]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        raise ValueError(f"{src}: the file name fits several artifacts ({', '.join(by_name)}); pass --name")
    raise ValueError(
        f"{src}: neither its sha256 ({digest}) nor its file name matches a registered artifact; "
        "pass --name NAME (see `toolkit weights list`)"
    )


def validate(name: str, path: str | os.PathLike) -> None:
    """Prove that `path` loads as artifact NAME before its hash is trusted: a safetensors header that parses, or
    a pickle whose imports a weights-only load allows and whose tensors fit the architecture (the artifact's
    `check`). Nothing is executed; a file that fails raises WeightsUnreadable with the reason."""
    from toolkit import safe_pickle

    artifact, path = get(name), Path(path)
    try:
        if artifact.filename.endswith(".safetensors") or artifact.loader.startswith("safetensors"):
            from safetensors import safe_open

            with safe_open(str(path), "pt") as fh:
                names = list(fh.keys())
            if not names:
                raise ValueError(f"{path}: a safetensors file without tensors")
            return
        if artifact.first_use == "none":
            return
        if artifact.first_use == "scan":
            bad = safe_pickle.unsafe_globals(path, artifact.allow_globals)
            if bad:
                raise ValueError(f"{path}: its pickle names {', '.join(bad[:5])}, which {name} does not hold")
            return
        tensors = safe_pickle.tensors_of(safe_pickle.load(path, artifact.allow_globals), path)
        check = plugins.resolve(artifact.check) if isinstance(artifact.check, str) else artifact.check
        if check:
            check(tensors, path)
    except (ValueError, OSError) as exc:
        if isinstance(exc, WeightsUnreadable):
            raise
        raise WeightsUnreadable(f"{exc}; so it is not taken as {name}", artifact=name) from None
    except Exception as exc:  # safetensors' own errors and the like: still a file that is not NAME's
        raise WeightsUnreadable(f"{path}: does not load as {name} ({type(exc).__name__}: {exc})",
                                artifact=name) from None


def _place(src: Path, dest: Path, ways: tuple[str, ...]) -> None:
    """Make DEST name SRC's bytes by the first of `ways` that works ("symlink", "hardlink" or "copy"), atomically
    (built under a temporary name, then renamed over DEST: a link already at DEST is replaced, never written
    through)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(dest)
    try:
        for way in ways:
            tmp.unlink(missing_ok=True)
            try:
                if way == "symlink":
                    os.symlink(src.resolve(), tmp)
                elif way == "hardlink":
                    os.link(src, tmp)
                else:
                    shutil.copyfile(src, tmp)
                break
            except OSError:
                if way == ways[-1]:
                    raise
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def import_file(src: str | os.PathLike, name: str | None = None, verify: bool = True,
                symlink: bool = False) -> Path:
    """Put a local file into the cache as artifact NAME (identified from the file if None).

    With verify, the size and sha256 must match the table (or the hash recorded
    on first use); an artifact without a pinned hash gets this file's hash
    recorded, once the file proved it loads as the artifact (`validate`).
    The file is hard-linked into the cache when both are on one filesystem (no
    second copy of a multi-GB file; the toolkit never writes to either name, and
    `path()` re-hashes a file whose size or mtime changed), else copied; with
    `symlink` the cache holds a symbolic link to SRC instead, which must then stay
    where it is (moved or deleted, it reads as missing). Either way the entry
    appears atomically: readers never see half a file.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file to import")
    if name is None:
        name = identify(src)
    artifact = get(name)
    digest = sha256_of(src)
    size = src.stat().st_size
    if verify:
        _check(name, digest, size, str(src))
        if expected_sha256(name) is None:  # first use: the file must prove what it is before it is pinned
            validate(name, src)
    dest = cache_path(name)
    same_entry = src.parent.resolve() / src.name == dest.parent.resolve() / dest.name
    if not same_entry and not (symlink and src.resolve() == dest.resolve()):  # else it would link to itself
        _place(src, dest, ("symlink",) if symlink else ("hardlink", "copy"))
    _remember_sha256(dest, digest)
    if verify and artifact.sha256 is None and expected_sha256(name) is None:
        _record_pin(name, digest, size, f"import {src}")
    return dest


class HubFile(NamedTuple):
    """A file on the Hugging Face Hub, as `huggingface_hub.hf_hub_download` names it."""

    repo_id: str
    repo_type: str  # "model", "dataset" or "space"
    revision: str
    filename: str


_HUB_HOSTS = ("huggingface.co", "hf.co")
_HUB_REPO_TYPES = {"datasets": "dataset", "spaces": "space"}


def hub_file(url: str) -> HubFile | None:
    """The Hub file a `https://huggingface.co/[datasets/|spaces/]REPO/resolve/REVISION/PATH` URL points to;
    None for any other URL (those are downloaded directly)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or parts.hostname not in _HUB_HOSTS:
        return None
    segments = parts.path.strip("/").split("/")
    repo_type = _HUB_REPO_TYPES.get(segments[0], "model")
    if repo_type != "model":
        segments = segments[1:]
    if "resolve" not in segments:
        return None
    at = segments.index("resolve")
    if at not in (1, 2) or len(segments) < at + 3 or not all(segments):
        return None
    unquote = urllib.parse.unquote
    return HubFile("/".join(segments[:at]), repo_type, unquote(segments[at + 1]),
                   unquote("/".join(segments[at + 2:])))


def _hf_hub_cache() -> str | None:
    """The Hugging Face cache folder the environment names now ($HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, else
    $HF_HOME/hub), or None for the library's default (huggingface_hub reads these only when first imported)."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return os.path.expanduser(os.environ[variable])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def _hf_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set now (else as huggingface_hub read it on import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is None:
        return bool(constants.HF_HUB_OFFLINE)
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_fetch_error(name: str, hub: HubFile, endpoint: str | None, offline: bool,
                     exc: Exception) -> WeightsFetchError:
    """The WeightsFetchError for a failed `hf_hub_download`: what failed, and the fix."""
    url = get(name).url
    reasons = [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
               for e in (exc, exc.__cause__) if e is not None]
    statuses = {getattr(getattr(e, "response", None), "status_code", None) for e in (exc, exc.__cause__)}
    via = f" through HF_ENDPOINT={endpoint}" if endpoint else ""
    if offline:
        hint = ("HF_HUB_OFFLINE is set and the Hugging Face cache holds no copy; unset it and, "
                f"{fix_commands(name)}")
    elif statuses & {401, 403} or type(exc).__name__ in ("GatedRepoError", "RepositoryNotFoundError"):
        hint = (f"if {hub.repo_id} is gated or private, accept its terms on the Hub and set HF_TOKEN (or run "
                f"`hf auth login`); else {fix_commands(name)}")
    else:
        hint = fix_commands(name)
    return WeightsFetchError(f"{name}: could not download {url}{via} ({'; '.join(reasons)}). To fix: {hint}.")


def _fetch_hub(name: str, hub: HubFile, force: bool, progress: bool, timeout: float) -> Path:
    """Fetch NAME with `huggingface_hub.hf_hub_download` into the shared Hugging Face cache, verify it, and make
    the toolkit's cache entry a symbolic link to that file.

    The library sends the token (HF_TOKEN, else the one `hf auth login` stored), retries and resumes a dropped
    transfer within the call, and reuses a file another tool already put in the HF cache ($HF_HUB_CACHE, else
    $HF_HOME/hub); HF_ENDPOINT (a mirror), HF_HUB_OFFLINE and the cache folder are read at each call. The link is
    a symlink rather than a hard link: the HF cache often sits on another filesystem, where no hard link can
    be made, and a file `hf cache` deletes then reads as missing here instead of silently keeping its space
    (where symlinks cannot be made: a hard link, else a copy). A file that fails the size, sha256 or first-use
    checks is not linked; it stays in the HF cache, which is not the toolkit's to prune.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import silent_tqdm

    url = get(name).url
    endpoint = os.environ.get("HF_ENDPOINT") or None
    offline = _hf_offline()
    try:
        blob = Path(hf_hub_download(
            hub.repo_id, hub.filename, repo_type=hub.repo_type, revision=hub.revision, cache_dir=_hf_hub_cache(),
            endpoint=endpoint, force_download=force, local_files_only=offline, etag_timeout=timeout,
            tqdm_class=None if progress else silent_tqdm,
        )).resolve()
    except Exception as exc:  # network, HTTP status, offline mode, cache I/O: each is a failed fetch
        raise _hub_fetch_error(name, hub, endpoint, offline, exc) from exc
    digest, size = sha256_of(blob), blob.stat().st_size
    try:
        _check(name, digest, size, f"{blob} (the Hugging Face cache's file for {url})")
        if expected_sha256(name) is None:
            validate(name, blob)
    except WeightsMismatch as exc:
        raise type(exc)(f"{exc}. Not linked into {weights_dir()}; `toolkit weights fetch --force {name}` "
                        "downloads it again", artifact=name) from None
    dest = cache_path(name)
    _place(blob, dest, ("symlink", "hardlink", "copy"))
    _remember_sha256(dest, digest)
    if get(name).sha256 is None and expected_sha256(name) is None:
        _record_pin(name, digest, size, f"fetch {url}")
    return dest


def _download_error(name: str, exc: BaseException, part: Path) -> WeightsFetchError:
    """The WeightsFetchError for a failed direct download, saying what was kept for the next try."""
    kept = part.stat().st_size if part.is_file() else 0
    if part.is_file() and not kept:
        part.unlink()
    resume = (f" The {kept} bytes received are kept in {part}; `toolkit weights fetch {name}` resumes from there."
              if kept else "")
    return WeightsFetchError(
        f"{name}: could not download {get(name).url} ({exc}).{resume} To fix: {fix_commands(name)}."
    )


def _download(name: str, dest: Path, force: bool, progress: bool, timeout: float) -> tuple[Path, str, int]:
    """Download NAME's URL into `<dest>.part`, resuming a part an interrupted run kept; returns (part, sha256,
    size) of the whole file, not yet verified.

    A failed transfer keeps the part. The next call hashes the kept bytes again and asks for the rest
    (`Range: bytes=N-`): a 206 answer is appended, a 200 answer (a server without ranges) replaces the part.
    `force` discards a kept part first. Two fetches of one artifact at once would share the part; the hash
    check rejects what that writes.
    """
    from tqdm import tqdm

    url = get(name).url
    part = dest.with_name(dest.name + ".part")
    if force:
        part.unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    if part.is_file():
        with open(part, "rb") as fh:
            while block := fh.read(_CHUNK):
                digest.update(block)
                size += len(block)
    headers = {"User-Agent": "animation-toolkit"}
    if size:
        headers["Range"] = f"bytes={size}-"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            if (response.headers.get("Content-Type") or "").startswith("text/html"):
                raise WeightsFetchError(
                    f"{name}: {url} answered with an HTML page, not the file. To fix: download it in a browser, "
                    f"then `toolkit weights import /path/to/{Path(get(name).filename).name}`."
                )
            if response.status == 206:
                answered = response.headers.get("Content-Range") or ""
                if not answered.startswith(f"bytes {size}-"):
                    raise WeightsFetchError(f"{name}: {url} answered a request for bytes {size}- with the range "
                                            f"{answered!r}. To fix: `toolkit weights fetch --force {name}`.")
                mode = "ab"
            else:  # the whole file (HTTP 200, or a file:// URL)
                digest, size, mode = hashlib.sha256(), 0, "wb"
            length = response.headers.get("Content-Length")
            total = size + int(length) if length and length.isdigit() else get(name).size
            with open(part, mode) as out, tqdm(total=total, initial=size, unit="B", unit_scale=True, desc=name,
                                               disable=not progress) as bar:
                while block := response.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                    bar.update(len(block))
        if total is not None and size < total:
            raise OSError(f"the connection closed after {size} of {total} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and size:  # nothing left to send: the kept part is the whole file (verified next)
            return part, digest.hexdigest(), size
        raise _download_error(name, exc, part) from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise _download_error(name, exc, part) from exc
    return part, digest.hexdigest(), size


def fetch(name: str, force: bool = False, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download NAME into the cache, verify it (size, sha256 or the first-use checks) and put it in place
    atomically.

    A file hosted on the Hugging Face Hub comes through `huggingface_hub` and its shared cache, linked into
    ours without a copy (`_fetch_hub`); any other URL through a download that resumes where a failed one
    stopped (`_download`). `force` downloads again even if the file is present.
    """
    artifact = get(name)
    dest = cache_path(name)
    if dest.is_file() and not force:
        return path(name)
    if not artifact.direct_download:
        raise WeightsFetchError(
            f"{name}: {artifact.url} is a page, not a file a script can download. "
            f"To fix: {fix_commands(name)}."
        )
    hub = hub_file(artifact.url)
    if hub is not None:
        return _fetch_hub(name, hub, force, progress, timeout)
    part, digest, size = _download(name, dest, force, progress, timeout)
    try:
        _check(name, digest, size, f"download of {artifact.url}")
        if expected_sha256(name) is None:
            validate(name, part)
    except WeightsMismatch:
        part.unlink(missing_ok=True)  # wrong bytes: resuming them would only repeat the mismatch
        raise
    os.replace(part, dest)
    _remember_sha256(dest, digest)
    if artifact.sha256 is None and expected_sha256(name) is None:
        _record_pin(name, digest, size, f"fetch {artifact.url}")
    return dest


# ----------------------------------------------------------------------------- status

@dataclass(frozen=True)
class ArtifactStatus:
    """The state of one artifact in the cache: 'present', 'missing' or 'mismatch'."""

    name: str
    state: str
    path: Path
    sha256: str | None  # of the cached file, when hashed
    pinned: str  # 'pinned', 'recorded on first use', or 'not pinned'
    detail: str = ""

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out


def status(name: str, verify: bool = True) -> ArtifactStatus:
    """Whether NAME is present and, with verify, whether its bytes are the registered ones."""
    artifact = get(name)
    file = cache_path(name)
    recorded = pins().get(name)
    pinned = "pinned" if artifact.sha256 else ("recorded on first use" if recorded else "not pinned")
    if not file.is_file():
        return ArtifactStatus(name, "missing", file, None, pinned, fix_commands(name))
    size = file.stat().st_size
    if not verify:
        if artifact.size is not None and size != artifact.size:
            return ArtifactStatus(name, "mismatch", file, None, pinned,
                                  f"size {size} bytes, expected {artifact.size}")
        return ArtifactStatus(name, "present", file, None, pinned, "not hashed (--quick)")
    digest = sha256_of(file)
    try:
        _check(name, digest, size, str(file))
    except WeightsMismatch as exc:
        return ArtifactStatus(name, "mismatch", file, digest, pinned, str(exc))
    detail = "" if pinned == "pinned" else (
        "sha256 not pinned; matches the hash recorded on first use" if recorded
        else "sha256 not pinned and not recorded (file was placed by hand); run `toolkit weights import` on it"
    )
    return ArtifactStatus(name, "present", file, digest, pinned, detail)
