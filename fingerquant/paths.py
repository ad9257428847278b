"""File helpers shared by the entry points."""

import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
"""Mode of a new file under the process umask; temporary files are created 0600."""


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader never sees a half-written file, and an earlier file at ``path``
    survives if writing fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as file:
        try:
            file.write(data)
            os.chmod(file.name, FILE_MODE)
        except BaseException:
            os.unlink(file.name)
            raise
    os.replace(file.name, path)


RESULTS_FILE = "results.json"
"""File of a finished run. Sweeps and reports read a folder without it as unfinished."""

LOCK_FILE = "run.lock"


def claim_folder(folder: Path) -> Path:
    """Create ``folder`` if needed and take its lock file, so no second run writes there.

    Raises:
        FileExistsError: if another run holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError as error:
        raise FileExistsError(
            f"{folder} is in use by another run ({LOCK_FILE} exists). Choose another --run_dir, "
            f"or delete {lock} if no run is active."
        ) from error
    os.write(descriptor, str(os.getpid()).encode())
    os.close(descriptor)
    return lock


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, raising ``FileExistsError`` if it exists.

    The file appears whole through a hard link of a temporary file, which fails
    rather than replace an existing file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as file:
        file.write(data)
        os.chmod(file.name, FILE_MODE)
    try:
        os.link(file.name, path)
    except FileExistsError as error:
        raise FileExistsError(f"{path} already exists; results are never overwritten.") from error
    finally:
        os.unlink(file.name)
