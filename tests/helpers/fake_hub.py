"""A Hugging Face Hub stand-in on 127.0.0.1 for tests (no network): files of model repos served at
``/<repo>/resolve/<revision>/<path>`` with the headers `huggingface_hub.hf_hub_download` reads.

Point huggingface_hub at it with `FakeHub.use(monkeypatch)` (its endpoint, a fresh HF cache); `requests`
records every request's method, path and Authorization header.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves `files` ({"user/name": {"path/in/repo": bytes}}) until `close()`."""

    def __init__(self, files: dict[str, dict[str, bytes]]):
        self.files = files
        self.requests: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path, self.headers.get("Authorization")))
                parts = self.path.split("?")[0].lstrip("/").split("/")
                repo, data = "/".join(parts[:2]), None
                if len(parts) > 4 and parts[2] == "resolve":
                    data = hub.files.get(repo, {}).get("/".join(parts[4:]))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound" if repo in hub.files else "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @classmethod
    def of_folder(cls, repo: str, folder: Path) -> FakeHub:
        """A hub whose repo `repo` holds every file under `folder`."""
        return cls({repo: {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}})

    def use(self, monkeypatch, cache: Path) -> None:
        """Send huggingface_hub's requests here (it reads HF_ENDPOINT at import, so its constant is patched too),
        with its cache in `cache`."""
        from huggingface_hub import constants

        monkeypatch.setenv("HF_ENDPOINT", self.endpoint)
        monkeypatch.setattr(constants, "ENDPOINT", self.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            self.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
