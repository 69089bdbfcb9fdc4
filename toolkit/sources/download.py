"""`toolkit prepare --download`: fetch a dataset from its official source where that can be scripted."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from toolkit.io import atomic_write_bytes
from toolkit.sources.card import DatasetCard


class DownloadError(RuntimeError):
    """The dataset could not be fetched; the message says what to do instead."""


def _get(url: str, timeout: float = 30.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"cannot download {url} ({reason}); this machine may have no internet: "
                            "download on a connected machine and pass the folder as --source") from None


def download(card: DatasetCard, dest: str | Path) -> Path:
    """Fetch what the card's [download] table lists into dest; raise DownloadError with instructions otherwise."""
    dest = Path(dest)
    spec = card.download
    if "lists" in spec:
        for split, list_url in spec["lists"].items():
            text = _get(list_url).decode("utf-8")
            atomic_write_bytes(dest / Path(list_url).name, text.encode())
            urls = [u.strip() for u in text.splitlines() if u.strip()]
            for url in tqdm(urls, desc=f"download {card.name} {split}", unit="video"):
                target = dest / split / url.split("/")[-1]
                if not target.exists():
                    atomic_write_bytes(target, _get(url, timeout=120))
        return dest
    if "manual" in spec:
        raise DownloadError(f"{card.name} cannot be downloaded by script:\n{spec['manual']}")
    raise DownloadError(f"{card.name}: the card names no download source")
