"""On-disk cache of processed touches, keyed by the source files and the blob rule.

One cache file per data folder and rule. It stores a fingerprint of the source
files (name, size, modification time) and is rebuilt when the fingerprint
differs or the file cannot be read. The data folder may be read-only, so the
cache lives in ``$FINGERQUANT_CACHE`` (default ``~/.cache/fingerquant``).
"""

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from fingerquant.data.blobs import BlobRule
from fingerquant.data.preprocess import TouchSet, find_recordings, process_folder

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bumped whenever reading or blob extraction changes what a cache would hold."""

_ARRAYS = (
    "images",
    "participant",
    "hand",
    "finger",
    "file_id",
    "line_number",
    "timestamp_ns",
    "repeat",
)


def cache_dir() -> Path:
    """Return the cache folder: ``$FINGERQUANT_CACHE``, else ``~/.cache/fingerquant``."""
    configured = os.environ.get("FINGERQUANT_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "fingerquant"


def load_touches(
    data_dir: str | Path, rule: BlobRule = BlobRule(), use_cache: bool = True
) -> TouchSet:
    """Return the touches of ``data_dir``, from the cache when it is current."""
    folder = Path(data_dir).resolve()
    if not use_cache:
        return process_folder(folder, rule)

    fingerprint = _fingerprint(folder, rule)
    path = cache_dir() / f"touches-{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}.npz"
    if path.exists():
        cached = _read(path)
        if cached is None:
            logger.warning("Cache %s is unreadable; rebuilding it from %s.", path, folder)
        elif cached[0] != fingerprint:
            logger.info("Cache %s is stale (recordings or blob rule changed); rebuilding.", path)
        else:
            return cached[1]

    touches = process_folder(folder, rule)
    _write(path, fingerprint, touches)
    return touches


def _fingerprint(folder: Path, rule: BlobRule) -> str:
    """Return a digest of the cache version, the blob rule and each recording's stat."""
    digest = hashlib.sha256(f"{CACHE_VERSION}{dataclasses.astuple(rule)}".encode())
    for path in find_recordings(folder):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _read(path: Path) -> tuple[str, TouchSet] | None:
    """Return (fingerprint, touches) from a cache file, or None if it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: stored[name] for name in _ARRAYS}
        return meta["fingerprint"], TouchSet(files=meta["files"], counts=meta["counts"], **arrays)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None


def _write(path: Path, fingerprint: str, touches: TouchSet) -> None:
    """Write the cache atomically; a cache that cannot be written is only logged."""
    meta = {"fingerprint": fingerprint, "files": touches.files, "counts": touches.counts}
    arrays = {name: getattr(touches, name) for name in _ARRAYS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
            np.savez(file, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(file.name, path)
    except OSError as error:
        logger.warning("Cannot write the touch cache %s (%s); continuing without it.", path, error)
