"""The weights registry: table sanity, import/fetch verification, trust on first use, status, and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import http.server
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import standin
from toolkit import weights
from toolkit.harness import availability
from toolkit.cli import main

FIXED_NAMES = (
    "dwpose-yolox-l", "dwpose-ll-ucoco-384", "densepose-r50-fpn", "fid-inception-pytorch", "fvd-i3d-400",
    "fvd-i3d-styleganv", "fidvid-r3d50-kinetics", "lpips-vgg16-backbone", "lpips-alexnet-backbone",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return standin.use_home(monkeypatch, tmp_path / "home")


def _file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _set(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> weights.Artifact:
    artifact = dataclasses.replace(weights.ARTIFACTS[name], **changes)
    monkeypatch.setitem(weights.ARTIFACTS, name, artifact)
    return artifact


# ----------------------------------------------------------------------------- the table

def test_table_has_the_fixed_names_and_unique_files() -> None:
    for name in FIXED_NAMES:
        assert name in weights.ARTIFACTS
    filenames = [a.filename for a in weights.ARTIFACTS.values()]
    assert len(filenames) == len(set(filenames))
    assert any(n.startswith("magicanimate-") for n in weights.ARTIFACTS)
    assert any(n.startswith("unianimate-") for n in weights.ARTIFACTS)


def test_table_hashes_are_well_formed_and_agree_with_their_prefixes() -> None:
    for a in weights.ARTIFACTS.values():
        if a.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", a.sha256), a.name
            if a.sha256_prefix:
                assert a.sha256.startswith(a.sha256_prefix), a.name
        assert a.size is None or a.size > 0
        assert a.url.startswith("https://") and a.license and a.description and a.loader
        assert "pkl" not in a.filename or "detectron2" in a.loader
        assert a.first_use in ("load", "scan", "none"), a.name
        assert a.check is None or a.first_use == "load", a.name  # a shape check needs the tensors loaded
        if a.loader.startswith("torch.load"):
            assert "weights_only=True" in a.loader, a.name


def test_unknown_artifact_lists_the_known_ones() -> None:
    with pytest.raises(weights.UnknownArtifact, match="fid-inception-pytorch"):
        weights.get("no-such-weights")


def test_home_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TOOLKIT_HOME", raising=False)
    assert weights.home() == Path.home() / ".cache" / "toolkit"
    monkeypatch.setenv("TOOLKIT_HOME", str(tmp_path))
    assert weights.cache_path("fvd-i3d-400") == tmp_path / "weights" / "metrics" / "i3d_pretrained_400.pt"


# ----------------------------------------------------------------------------- missing

def test_missing_weights_message_names_artifact_url_and_commands(home: Path) -> None:
    with pytest.raises(weights.WeightsMissing) as info:
        weights.path("fid-inception-pytorch")
    message = str(info.value)
    artifact = weights.ARTIFACTS["fid-inception-pytorch"]
    assert "fid-inception-pytorch" in message and artifact.url in message
    assert "`toolkit weights fetch fid-inception-pytorch`" in message
    assert "`toolkit weights import /path/to/pt_inception-2015-12-05-6726825d.pth`" in message
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.reason == "weights: fid-inception-pytorch missing"
    assert not weights.available("fid-inception-pytorch")
    with pytest.raises(weights.WeightsMissing):
        weights.file_sha256("fid-inception-pytorch")


def test_missing_page_only_artifact_says_to_use_a_browser(home: Path) -> None:
    message = str(weights._missing("fidvid-r3d50-kinetics"))
    assert "browser" in message and "toolkit weights import /path/to/resnet-50-kinetics.pth" in message


# ----------------------------------------------------------------------------- import

def test_import_rejects_a_file_that_is_not_the_pinned_one(home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = _file(tmp_path / "src" / "vgg16-397923af.pth", b"the real bytes")
    standin.pin(monkeypatch, "lpips-vgg16-backbone", good)
    bad = _file(tmp_path / "other" / "vgg16-397923af.pth", b"something else!")
    with pytest.raises(weights.WeightsMismatch, match="size|sha256"):
        weights.import_file(bad, "lpips-vgg16-backbone")
    assert not weights.available("lpips-vgg16-backbone")
    _set(monkeypatch, "lpips-vgg16-backbone", size=None)
    with pytest.raises(weights.WeightsMismatch, match="does not match"):
        weights.import_file(bad, "lpips-vgg16-backbone")
    dest = weights.import_file(good, "lpips-vgg16-backbone")
    assert dest.read_bytes() == b"the real bytes"
    assert weights.path("lpips-vgg16-backbone") == dest
    assert weights.file_sha256("lpips-vgg16-backbone") == standin.sha256(good)
    assert not list(dest.parent.glob("*.tmp"))


def test_import_identifies_by_sha256_then_by_file_name(home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    oddly_named = _file(tmp_path / "download (1).bin", b"inception bytes")
    standin.pin(monkeypatch, "fid-inception-pytorch", oddly_named)
    assert weights.identify(oddly_named) == "fid-inception-pytorch"
    assert weights.import_file(oddly_named) == weights.cache_path("fid-inception-pytorch")

    by_name = _file(tmp_path / "x" / "i3d_pretrained_400.pt", b"i3d bytes")
    assert weights.identify(by_name) == "fvd-i3d-400"
    with pytest.raises(ValueError, match="--name"):
        weights.identify(_file(tmp_path / "unknown.bin", b"?"))


def _tensor_file(path: Path, value: float) -> Path:
    """A small weights-only checkpoint (passes the first-use load check once the architecture check is off)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.full((2,), value)}, path)
    return path


def test_unpinned_artifact_is_trusted_on_first_use_then_held_to_it(home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, "fvd-i3d-400", check=None)  # the I3D shape check has its own tests (tests/reliability)
    first = _tensor_file(tmp_path / "a" / "i3d_pretrained_400.pt", 1.0)
    assert weights.expected_sha256("fvd-i3d-400") is None
    weights.import_file(first)
    record = weights.pins()["fvd-i3d-400"]
    assert record["sha256"] == standin.sha256(first) and record["source"].startswith("import ")
    assert weights.expected_sha256("fvd-i3d-400") == standin.sha256(first)
    assert weights.status("fvd-i3d-400").detail.startswith("sha256 not pinned; matches")

    other = _tensor_file(tmp_path / "b" / "i3d_pretrained_400.pt", 2.0)
    with pytest.raises(weights.WeightsMismatch, match="recorded on first use"):
        weights.import_file(other)
    assert weights.identify(first) == "fvd-i3d-400"  # now also known by its recorded hash


def test_upstream_prefix_is_enforced_without_a_full_hash(home: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, "lpips-alexnet-backbone", sha256=None, size=None)
    wrong = _file(tmp_path / "alexnet-owt-7be5be79.pth", b"not alexnet")
    with pytest.raises(weights.WeightsMismatch, match="7be5be79"):
        weights.import_file(wrong)


def test_import_of_a_missing_source_file_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        weights.import_file(tmp_path / "nope.pth", "fvd-i3d-400")


# ----------------------------------------------------------------------------- fetch

def test_fetch_offline_names_the_url_and_the_import_fix(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(weights.WeightsFetchError) as info:
        weights.fetch("lpips-alexnet-backbone", progress=False)
    message = str(info.value)
    assert weights.ARTIFACTS["lpips-alexnet-backbone"].url in message
    assert "toolkit weights import /path/to/alexnet-owt-7be5be79.pth" in message
    assert not weights.available("lpips-alexnet-backbone")
    assert not list(weights.weights_dir().rglob("*.tmp"))


def test_fetch_from_an_unreachable_file_url_fails_cleanly(home: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url = (tmp_path / "absent" / "i3d_pretrained_400.pt").as_uri()
    _set(monkeypatch, "fvd-i3d-400", url=url)
    with pytest.raises(weights.WeightsFetchError, match=re.escape(url)):
        weights.fetch("fvd-i3d-400", progress=False)


def test_fetch_downloads_verifies_and_records(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = _tensor_file(tmp_path / "server" / "i3d_pretrained_400.pt", 1.0)
    _set(monkeypatch, "fvd-i3d-400", url=served.as_uri(), check=None)
    dest = weights.fetch("fvd-i3d-400", progress=False)
    assert dest.read_bytes() == served.read_bytes()
    assert weights.pins()["fvd-i3d-400"]["source"] == f"fetch {served.as_uri()}"
    assert weights.fetch("fvd-i3d-400", progress=False) == dest  # present: no second download

    pinned = _file(tmp_path / "server" / "alexnet-owt-7be5be79.pth", b"tampered")
    _set(monkeypatch, "lpips-alexnet-backbone", url=pinned.as_uri())
    with pytest.raises(weights.WeightsMismatch):
        weights.fetch("lpips-alexnet-backbone", progress=False)
    assert not weights.available("lpips-alexnet-backbone")
    assert not list(weights.weights_dir().rglob("*.tmp"))


def test_fetch_refuses_landing_pages(home: Path) -> None:
    with pytest.raises(weights.WeightsFetchError, match="browser"):
        weights.fetch("fidvid-r3d50-kinetics", progress=False)


# ----------------------------------------------------------------------------- Hub and resumable downloads

class _Server(http.server.ThreadingHTTPServer):
    """Serves `files` (URL path -> bytes) on 127.0.0.1 with the headers hf_hub_download reads (X-Repo-Commit,
    ETag, Content-Length; no Xet), byte ranges when `ranges`, every answer `status` when set, and the first
    `cuts` GETs closed after half the body. `requests` records (method, path, lower-cased headers)."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True, status: int | None = None,
                 cuts: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.ranges, self.status, self.cuts = files, ranges, status, cuts
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.url = f"http://127.0.0.1:{self.server_port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        srv = self.server
        srv.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        data = srv.files.get(self.path)
        if srv.status or data is None:
            self.send_response(srv.status or 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(asked.group(1)) if asked and srv.ranges else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.end_headers()
        if self.command == "GET":
            body = data[start:]
            if srv.cuts:
                srv.cuts -= 1
                body = body[: len(body) // 2]
            self.wfile.write(body)


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(files: dict[str, bytes], **options: object) -> _Server:
        server = _Server(files, **options)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _refused_url() -> str:
    """The URL of a local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def hf_env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache under tmp (HF_HOME), online, no token unless a test sets one; returns its hub folder.

    huggingface_hub asks the endpoint it read on import (huggingface.co) for its agent registry once a day
    unless a fresh copy is cached: one is, here, so no test reaches the network.
    """
    from huggingface_hub import constants

    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    registry = _file(tmp_path / "hf" / ".agent_harnesses.json", b'{"standardEnvVars": [], "harnesses": {}}')
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(registry))
    return tmp_path / "hf" / "hub"


YOLOX_PATH = "/yzd-v/DWPose/resolve/main/yolox_l.onnx"


def test_hub_urls_parse_to_hf_hub_download_arguments() -> None:
    assert weights.hub_file(weights.ARTIFACTS["dwpose-yolox-l"].url) == ("yzd-v/DWPose", "model", "main",
                                                                        "yolox_l.onnx")
    assert weights.hub_file(weights.ARTIFACTS["fvd-i3d-400"].url) == (
        "LanguageBind/Open-Sora-Plan-v1.0.0", "space", "810fa8c4bdb3a4c8eec9bd57375c29bde6fb46de",
        "opensora/eval/fvd/videogpt/i3d_pretrained_400.pt")
    assert weights.hub_file("https://huggingface.co/datasets/o/d/resolve/refs%2Fpr%2F1/a/b.bin?download=true") == (
        "o/d", "dataset", "refs/pr/1", "a/b.bin")
    for url in (weights.ARTIFACTS["fid-inception-pytorch"].url, "https://huggingface.co/o/r/blob/main/x.bin",
                "http://huggingface.co/o/r/resolve/main/x.bin", "https://example.org/o/r/resolve/main/x.bin"):
        assert weights.hub_file(url) is None, url
    for artifact in weights.ARTIFACTS.values():
        assert (weights.hub_file(artifact.url) is not None) == artifact.url.startswith("https://huggingface.co/")


def test_hub_fetch_links_the_hf_cache_file_and_sends_the_token(hf_env: Path, tmp_path: Path, serve,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve({YOLOX_PATH: b"onnx bytes"})
    standin.pin(monkeypatch, "dwpose-yolox-l", _file(tmp_path / "yolox_l.onnx", b"onnx bytes"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    dest = weights.fetch("dwpose-yolox-l", progress=False)
    assert dest == weights.cache_path("dwpose-yolox-l") and dest.is_symlink()
    assert dest.resolve().parent == (hf_env / "models--yzd-v--DWPose" / "blobs").resolve()
    assert weights.path("dwpose-yolox-l").read_bytes() == b"onnx bytes"
    assert weights.status("dwpose-yolox-l").state == "present"
    assert {(method, path) for method, path, _ in server.requests} == {("HEAD", YOLOX_PATH), ("GET", YOLOX_PATH)}
    assert all(headers.get("authorization") == "Bearer hf_test_token" for _, _, headers in server.requests)

    dest.unlink()  # another tool's copy in the HF cache is reused offline, without a request
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sent = len(server.requests)
    assert weights.fetch("dwpose-yolox-l", progress=False).resolve() == dest.resolve()
    assert len(server.requests) == sent

    dest.resolve().unlink()  # the HF cache pruned: the link reads as missing, with the fix
    assert weights.status("dwpose-yolox-l").state == "missing"
    with pytest.raises(weights.WeightsMissing, match="toolkit weights fetch dwpose-yolox-l"):
        weights.path("dwpose-yolox-l")


def test_hub_fetch_links_nothing_that_fails_its_checks(hf_env: Path, tmp_path: Path, serve,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text_encoder = "/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/text_encoder/model.safetensors"
    server = serve({YOLOX_PATH: b"other bytes", text_encoder: b"not a safetensors file"})
    standin.pin(monkeypatch, "dwpose-yolox-l", _file(tmp_path / "yolox_l.onnx", b"onnx bytes!"))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    with pytest.raises(weights.WeightsMismatch, match="does not match.*Not linked"):
        weights.fetch("dwpose-yolox-l", progress=False)
    with pytest.raises(weights.WeightsUnreadable, match="sd15-text-encoder"):  # unpinned: first-use check
        weights.fetch("sd15-text-encoder", progress=False)
    for name in ("dwpose-yolox-l", "sd15-text-encoder"):
        assert not os.path.lexists(weights.cache_path(name))
    assert "sd15-text-encoder" not in weights.pins()


def test_hub_fetch_failures_name_the_fix(hf_env: Path, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = _refused_url()
    monkeypatch.setenv("HF_ENDPOINT", refused)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # huggingface_hub's retry backoff
    fix = "toolkit weights import /path/to/yolox_l.onnx"
    with pytest.raises(weights.WeightsFetchError) as info:
        weights.fetch("dwpose-yolox-l", progress=False)
    assert weights.ARTIFACTS["dwpose-yolox-l"].url in str(info.value) and refused in str(info.value)
    assert fix in str(info.value)

    monkeypatch.setenv("HF_ENDPOINT", serve({}, status=401).url)
    with pytest.raises(weights.WeightsFetchError, match="HF_TOKEN") as info:
        weights.fetch("dwpose-yolox-l", progress=False)
    assert fix in str(info.value)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(weights.WeightsFetchError, match="HF_HUB_OFFLINE") as info:
        weights.fetch("dwpose-yolox-l", progress=False)
    assert fix in str(info.value)
    assert not os.path.lexists(weights.cache_path("dwpose-yolox-l"))


def test_direct_download_resumes_where_it_was_cut(home: Path, tmp_path: Path, serve,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * 400
    server = serve({"/alexnet-owt-7be5be79.pth": data}, cuts=1)
    standin.pin(monkeypatch, "lpips-alexnet-backbone", _file(tmp_path / "alexnet-owt-7be5be79.pth", data))
    _set(monkeypatch, "lpips-alexnet-backbone", url=server.url + "/alexnet-owt-7be5be79.pth")
    dest = weights.cache_path("lpips-alexnet-backbone")
    part = dest.with_name(dest.name + ".part")
    with pytest.raises(weights.WeightsFetchError, match="resumes") as info:
        weights.fetch("lpips-alexnet-backbone", progress=False)
    assert str(part) in str(info.value) and part.stat().st_size == len(data) // 2 and not dest.exists()
    assert weights.fetch("lpips-alexnet-backbone", progress=False) == dest
    assert server.requests[-1][2]["range"] == f"bytes={len(data) // 2}-"
    assert dest.read_bytes() == data and not part.exists()
    assert weights.file_sha256("lpips-alexnet-backbone") == hashlib.sha256(data).hexdigest()

    server.ranges = False  # a server without ranges answers 200: the kept part is replaced, not appended to
    dest.unlink()
    part.write_bytes(b"kept junk")
    assert weights.fetch("lpips-alexnet-backbone", progress=False).read_bytes() == data
    assert server.requests[-1][2]["range"] == "bytes=9-"
    part.write_bytes(b"kept junk")
    weights.fetch("lpips-alexnet-backbone", force=True, progress=False)  # force discards the part
    assert "range" not in server.requests[-1][2] and not part.exists()


def test_import_hard_links_else_copies_or_symlinks(home: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = _file(tmp_path / "yolox_l.onnx", b"onnx bytes")
    standin.pin(monkeypatch, "dwpose-yolox-l", src)
    dest = weights.import_file(src)
    assert os.path.samefile(dest, src) and not dest.is_symlink()  # one filesystem: a hard link
    assert main(["weights", "import", str(src), "--symlink"]) == 0
    assert dest.is_symlink() and dest.resolve() == src.resolve() and weights.path("dwpose-yolox-l") == dest

    def cross_device(*args: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    dest = weights.import_file(src)
    assert not dest.is_symlink() and not os.path.samefile(dest, src) and dest.read_bytes() == b"onnx bytes"
    assert not list(dest.parent.glob("*.tmp"))


# ----------------------------------------------------------------------------- status

def test_status_reports_present_missing_and_mismatch(home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = _file(tmp_path / "yolox_l.onnx", b"onnx bytes")
    standin.pin(monkeypatch, "dwpose-yolox-l", src)
    weights.import_file(src)
    assert weights.status("dwpose-yolox-l").state == "present"
    assert weights.status("dwpose-ll-ucoco-384").state == "missing"

    cached = weights.cache_path("dwpose-yolox-l")
    cached.write_bytes(b"onnx bytez")  # same size, different bytes
    st = weights.status("dwpose-yolox-l")
    assert st.state == "mismatch" and "does not match" in st.detail
    assert weights.status("dwpose-yolox-l", verify=False).state == "present"
    with pytest.raises(weights.WeightsMismatch):
        weights.path("dwpose-yolox-l")
    cached.write_bytes(b"short")
    assert weights.status("dwpose-yolox-l", verify=False).state == "mismatch"

    blocked = availability.unavailable_features([weights.status(n) for n in ("dwpose-yolox-l", "dwpose-ll-ucoco-384")])
    assert blocked == {"DWPose pose extraction": ["dwpose-yolox-l mismatch", "dwpose-ll-ucoco-384 missing"]}


def test_status_names_only_features_that_exist(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from toolkit.harness import protocols, registry

    # an artifact of a feature this installation does not have (no method, backend or metric of that name)
    monkeypatch.setitem(weights.ARTIFACTS, "clip-vit-large-patch14", dataclasses.replace(
        weights.ARTIFACTS["sd15-unet"], name="clip-vit-large-patch14", filename="clip/model.safetensors",
        used_by=("CLIP image encoder (SD 1.5 era methods)",)))
    blocked = availability.unavailable_features([weights.status(n, verify=False) for n in weights.ARTIFACTS])
    # every metric a protocol card lists, under that profile, and nothing else of the metric kind
    for profile in protocols.available_protocols():
        for metric in set(protocols.load_protocol(profile).metrics) & {"lpips", "fid", "fid_vid", "fvd"}:
            label = {"lpips": "LPIPS", "fid": "FID", "fid_vid": "FID-VID", "fvd": "FVD"}[metric]
            assert f"{label} ({profile})" in blocked
    assert "DWPose pose extraction" in blocked and "DensePose extraction" in blocked
    # methods only when a plug-in of that name is registered
    names = set(registry.method_names())
    for feature in blocked:
        assert availability.feature_exists(feature)
    assert ("MagicAnimate" in blocked) == ("magicanimate" in names)
    assert not any("CLIP image encoder" in f for f in blocked)
    monkeypatch.setattr(registry, "method_names", lambda: sorted(names | {"magicanimate"}))
    blocked = availability.unavailable_features([weights.status(n, verify=False) for n in weights.ARTIFACTS])
    assert "sd15-unet missing" in blocked["MagicAnimate"]
    everything = availability.unavailable_features([weights.status(n, verify=False) for n in weights.ARTIFACTS],
                                              existing_only=False)
    assert "CLIP image encoder (SD 1.5 era methods)" in everything


def test_hash_cache_notices_a_changed_file(home: Path) -> None:
    file = _file(weights.weights_dir() / "metrics" / "x.bin", b"one")
    assert weights.sha256_of(file) == hashlib.sha256(b"one").hexdigest()
    assert (weights.weights_dir() / weights.HASH_CACHE_FILE).is_file()
    file.write_bytes(b"three")
    assert weights.sha256_of(file) == hashlib.sha256(b"three").hexdigest()


# ----------------------------------------------------------------------------- CLI

def test_cli_list_shows_pinning(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "fid-inception-pytorch" in out and "sha256 not pinned" in out and "pinned" in out
    assert main(["weights", "list", "--long"]) == 0
    assert "weights_only=True" in capsys.readouterr().out


def test_cli_status_and_import(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "status", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "missing" in out and "unavailable until fixed" in out and "FVD (disco)" in out
    assert main(["weights", "status", "--quick", "--json"]) == 0  # every artifact, with who needs it
    listed = {a["name"]: a["used_by"] for a in json.loads(capsys.readouterr().out)["artifacts"]}
    assert listed.keys() == weights.ARTIFACTS.keys()
    assert listed["dwpose-yolox-l"] == ["DWPose pose extraction"]

    _set(monkeypatch, "fidvid-r3d50-kinetics", check=None)  # shape checks: tests/reliability
    src = _tensor_file(tmp_path / "resnet-50-kinetics.pth", 1.0)
    assert main(["weights", "import", str(src)]) == 0
    assert "fidvid-r3d50-kinetics: imported" in capsys.readouterr().out
    assert main(["weights", "status", "fidvid-r3d50-kinetics"]) == 0
    assert "recorded on first use" in capsys.readouterr().out

    weights.cache_path("fidvid-r3d50-kinetics").write_bytes(b"r3d bytez")
    assert main(["weights", "status", "fidvid-r3d50-kinetics"]) == 1
    assert "mismatch" in capsys.readouterr().out

    assert main(["weights", "import", str(tmp_path / "missing.pth"), "--name", "fvd-i3d-400"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_cli_fetch_offline_and_usage(home: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "fetch"]) == 2
    assert main(["weights"]) == 2

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    capsys.readouterr()
    assert main(["weights", "fetch", "fid-inception-pytorch"]) == 1
    err = capsys.readouterr().err
    assert "github.com/mseitzer/pytorch-fid" in err and "toolkit weights import" in err
    assert main(["weights", "fetch", "bogus-name"]) == 1
    assert "unknown weights artifact" in capsys.readouterr().err
