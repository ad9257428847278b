"""Download path, tested against an HTTP server on 127.0.0.1 that the test starts."""

import functools
import http.server
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fingerquant.data import CapFingerIdDataModule, find_recordings
from fingerquant.data.download import download_recordings
from fingerquant.errors import DataError


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve ``tmp_path/site`` on 127.0.0.1 and return (base URL, folder)."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", site
    server.shutdown()
    server.server_close()


def repository_zip(recordings_dir: Path) -> bytes:
    """Return a zip laid out like the CapFingerId repository archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("CapFingerId-master/README.md", "CapFingerId")
        for path in sorted(recordings_dir.iterdir()):
            bundle.writestr(f"CapFingerId-master/data/{path.name}", path.read_bytes())
    return buffer.getvalue()


def test_empty_folder_downloaded(
    recordings_dir: Path, served: tuple[str, Path], tmp_path: Path
) -> None:
    url, site = served
    (site / "master.zip").write_bytes(repository_zip(recordings_dir))
    target = tmp_path / "capfingerid"
    datamodule = CapFingerIdDataModule(
        task="fingers", data_dir=str(target), download_url=f"{url}/master.zip"
    )

    datamodule.prepare_data()
    datamodule.setup("fit")

    assert [p.name for p in find_recordings(target)] == sorted(
        p.name for p in recordings_dir.iterdir()
    )
    assert len(datamodule.split.test) > 0
    assert not list((target / "data").glob("*.part"))


def test_sha256_mismatch_rejected(
    recordings_dir: Path, served: tuple[str, Path], tmp_path: Path
) -> None:
    url, site = served
    (site / "master.zip").write_bytes(repository_zip(recordings_dir))

    with pytest.raises(DataError, match=r"has SHA-256 .*, expected 00"):
        download_recordings(tmp_path, url=f"{url}/master.zip", sha256="00" * 32)
    assert not find_recordings(tmp_path)


def test_archive_without_recordings(served: tuple[str, Path], tmp_path: Path) -> None:
    url, site = served
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("other-master/README.md", "other")
    (site / "other.zip").write_bytes(buffer.getvalue())

    with pytest.raises(DataError, match="not the CapFingerId repository"):
        download_recordings(tmp_path, url=f"{url}/other.zip")


def test_not_a_zip(served: tuple[str, Path], tmp_path: Path) -> None:
    url, site = served
    (site / "page.zip").write_text("<html>rate limited</html>")

    with pytest.raises(DataError, match="is not a zip file"):
        download_recordings(tmp_path, url=f"{url}/page.zip")


def test_offline_error_says_where_to_put_files(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(
        DataError, match=r"failed .* copy the data/ folder .* into .*capfingerid/data"
    ):
        download_recordings(
            tmp_path / "capfingerid", url=f"http://127.0.0.1:{closed_port}/master.zip"
        )
