"""Locating, verifying and downloading data files (DESIGN section 7).

A data file is named by its path relative to a data root (``"mnist/t10k-labels-idx1-ubyte.gz"``)
and its sha256. The roots searched, in order:

1. ``$LATENTKIT_DATA``, when set;
2. ``shared/data`` beside the checkout (the sibling of the repository root), and
   ``shared/data`` beside the current working directory;
3. the user cache, ``$XDG_CACHE_HOME/latentkit`` (default ``~/.cache/latentkit``).

The first existing file wins and must match its sha256: a mismatch is an error, never a
silent fall-through to the next root. When no root holds the file and a URL is known, it is
downloaded into the user cache (written to a temporary file, checked, then renamed into place).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from latentkit.exceptions import InvalidInputError

ENV_VAR = "LATENTKIT_DATA"
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60

# (resolved path, inode, size, mtime_ns) -> sha256 hex digest, so repeated loads do not
# re-hash. A file replaced by another (copy, rename, download) gets a new inode or mtime.
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def cache_dir() -> Path:
    """The user cache for downloaded data: ``$XDG_CACHE_HOME/latentkit`` or
    ``~/.cache/latentkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "latentkit"


def data_dirs() -> list[Path]:
    """Every root searched for data files, in search order, without duplicates."""
    repo_root = Path(__file__).resolve().parents[3]
    candidates = []
    env = os.environ.get(ENV_VAR)
    if env:
        candidates.append(Path(env).expanduser())
    candidates.append(repo_root.parent / "shared" / "data")
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(cache_dir())
    roots: list[Path] = []
    for path in candidates:
        if path not in roots:
            roots.append(path)
    return roots


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, memoized per (path, inode, size, mtime) in this
    process."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                hasher.update(block)
        digest = hasher.hexdigest()
        _DIGESTS[key] = digest
    return digest


def _check_digest(path: Path, expected: str, url: str | None) -> None:
    actual = file_sha256(path)
    if actual == expected:
        return
    fix = f"Delete {path}"
    if url is not None:
        fix += f" and it will be downloaded again from {url}"
    else:
        fix += " and put a good copy of the file in one of the data directories"
    raise InvalidInputError(
        f"Data file {path} is corrupt or not the expected version: its sha256 is {actual}, "
        f"expected {expected}. {fix} (see shared/data/SOURCES.md for provenance)."
    )


def _download(url: str, destination: Path, sha256: str) -> None:
    """Fetch `url` into `destination` atomically; the file appears only once its sha256
    matches."""
    made_folder = not destination.parent.exists()
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        dir=destination.parent, prefix=destination.name + ".", suffix=".part", delete=False
    )
    temp_path = Path(handle.name)
    try:
        hasher = hashlib.sha256()
        with handle, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            for block in iter(lambda: response.read(_CHUNK), b""):
                hasher.update(block)
                handle.write(block)
        actual = hasher.hexdigest()
        if actual != sha256:
            raise InvalidInputError(
                f"Downloaded {url} but its sha256 is {actual}, expected {sha256}; the file was "
                f"not saved. The upstream copy may have changed: fetch the file named in "
                f"shared/data/SOURCES.md by hand and point ${ENV_VAR} at its directory."
            )
        os.replace(temp_path, destination)
    finally:
        if temp_path.exists():
            temp_path.unlink()
        if made_folder and not destination.exists():
            with contextlib.suppress(OSError):  # leave no empty folder behind a failure
                destination.parent.rmdir()


def find_data_file(relpath: str, sha256: str, url: str | None = None) -> Path:
    """Path of the verified data file `relpath`, downloading it to the user cache if needed.

    Parameters
    ----------
    relpath : path relative to a data root, with forward slashes (``"faithful/faithful.csv"``).
    sha256 : the expected hex digest of the file's bytes.
    url : where to download the file from when no root holds it; None means no download.

    Raises
    ------
    ValueError : the file found (or downloaded) does not match `sha256`.
    FileNotFoundError : no root holds the file and it could not be downloaded; the message
        lists every place looked.
    """
    roots = data_dirs()
    for root in roots:
        candidate = root / relpath
        if candidate.is_file():
            _check_digest(candidate, sha256, url)
            return candidate
    looked = "\n".join(f"  - {root / relpath}" for root in roots)
    hint = (
        f"Put the file under one of these directories, or set the environment variable "
        f"{ENV_VAR} to a directory holding {relpath} (for example "
        f"`export {ENV_VAR}=/path/to/shared/data`). See shared/data/SOURCES.md."
    )
    if url is None:
        raise FileNotFoundError(
            f"Data file {relpath!r} was not found and has no download address. Looked in:\n"
            f"{looked}\n{hint}"
        )
    destination = cache_dir() / relpath
    try:
        _download(url, destination, sha256)
    except OSError as error:  # urllib.error.URLError is an OSError
        raise FileNotFoundError(
            f"Data file {relpath!r} was not found and downloading it from {url} failed "
            f"({error}). Looked in:\n{looked}\n{hint}"
        ) from error
    return destination


def clear_digest_cache() -> None:
    """Forget the memoized sha256 digests (tests, or files replaced within one mtime tick)."""
    _DIGESTS.clear()


__all__ = ["cache_dir", "data_dirs", "file_sha256", "find_data_file", "clear_digest_cache"]
