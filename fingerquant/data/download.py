"""Download of the CapFingerId recordings for users whose data folder is empty."""

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from fingerquant.data.labels import EXPECTED_NAME, FILE_PATTERN
from fingerquant.errors import DataError

logger = logging.getLogger(__name__)

ARCHIVE_URL = "https://github.com/interactionlab/CapFingerId/archive/refs/heads/master.zip"
"""The upstream repository as a zip archive; its ``data/`` folder contains the recordings."""

TIMEOUT_SECONDS = 60.0


def download_recordings(
    data_dir: str | Path, url: str = ARCHIVE_URL, sha256: str | None = None
) -> list[Path]:
    """Fetch the CapFingerId archive, verify it and unpack its recordings into ``data_dir/data``.

    The archive is checked as a whole (CRC of every member, and ``sha256`` when
    given) before any recording is written, and each recording lands under a
    temporary name first, so an interrupted download leaves no partial file.
    """
    target = Path(data_dir) / "data"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as scratch:
        archive = Path(scratch) / "archive.zip"
        logger.info("Downloading CapFingerId recordings from %s", url)
        try:
            with (
                urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response,
                archive.open("wb") as file,
            ):
                shutil.copyfileobj(response, file)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise DataError(
                f"Download of {url} failed ({error}). Without network, copy the data/ folder "
                f"of the CapFingerId repository (files named {EXPECTED_NAME}) into {target}."
            ) from error
        return _unpack(archive, target, url, sha256)


def _unpack(archive: Path, target: Path, url: str, sha256: str | None) -> list[Path]:
    """Verify ``archive`` and move its recordings into ``target``."""
    if sha256 is not None:
        actual = hashlib.sha256(archive.read_bytes()).hexdigest()
        if actual != sha256.lower():
            raise DataError(f"Archive from {url} has SHA-256 {actual}, expected {sha256}.")

    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()
            if broken is not None:
                raise DataError(
                    f"Archive from {url} is damaged: member {broken} fails its CRC check."
                )
            members = [
                info
                for info in bundle.infolist()
                if PurePosixPath(info.filename).parent.name == "data"
                and FILE_PATTERN.match(PurePosixPath(info.filename).name)
            ]
            if not members:
                raise DataError(
                    f"Archive from {url} contains no data/{EXPECTED_NAME} files: it is not the "
                    "CapFingerId repository."
                )
            written = []
            for info in members:
                path = target / PurePosixPath(info.filename).name
                partial = path.with_name(path.name + ".part")
                with bundle.open(info) as source, partial.open("wb") as file:
                    shutil.copyfileobj(source, file)
                os.replace(partial, path)
                written.append(path)
    except zipfile.BadZipFile as error:
        raise DataError(f"Archive from {url} is not a zip file ({error}).") from error

    logger.info("Unpacked %d recordings into %s", len(written), target)
    return written
