"""Atomic writes of model files, and the clean-up of temporary files left by killed saves.

Policy (DESIGN section 6):

- `save` writes to a temporary file beside the target, named `.<target name>.<32 hex>.tmp`
  (the target name cut to 200 characters, so the name stays within NAME_MAX), fsyncs it and
  renames it over the target, then fsyncs the directory (POSIX). A reader sees the old file
  or the new one, never half of one; an error removes the temporary file.
- On POSIX the writer holds an exclusive `flock` on its temporary file until the rename.
  The kernel drops that lock when the process dies, SIGKILL included, so a temporary file
  that can be locked belongs to nobody.
- Each save first removes the stale temporary files of the same target: regular files whose
  name matches the pattern exactly, last modified more than `STALE_AFTER_S` seconds ago,
  and (POSIX) not locked. A concurrent save of the same target is never disturbed: its file
  is locked, and is fresh anyway. Elsewhere (Windows) no lock is taken: a file another
  process still has open cannot be removed there, and the age rule is the safeguard.
"""

from __future__ import annotations

import os
import re
import stat
import time
import uuid

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: a temporary file untouched for this long, and not locked, is left over from a killed save
STALE_AFTER_S = 60.0
_PREFIX_CHARS = 200


def _prefix(base: str) -> str:
    return f".{base[:_PREFIX_CHARS]}."


def temp_name(base: str) -> str:
    """The temporary file name for the target file name `base`."""
    return f"{_prefix(base)}{uuid.uuid4().hex}.tmp"


def is_temp_name(name: str, base: str) -> bool:
    """Whether `name` is a temporary file name `temp_name(base)` could have given."""
    prefix = _prefix(base)
    return name.startswith(prefix) and re.fullmatch(r"[0-9a-f]{32}\.tmp",
                                                     name[len(prefix):]) is not None


def remove_stale_temps(directory: str, base: str, *, now: float | None = None) -> list[str]:
    """Remove the temporary files of target `base` in `directory` that killed saves left
    (see the module docstring); the names removed. Never raises for a file it cannot read
    or remove: the next save tries again."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    removed = []
    for name in names:
        if is_temp_name(name, base) and _remove_if_stale(os.path.join(directory, name), now):
            removed.append(name)
    return removed


def _remove_if_stale(path: str, now: float) -> bool:
    """Unlink `path` if it is a regular file, older than STALE_AFTER_S and unlocked."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < STALE_AFTER_S:
            return False
        if fcntl is None:
            os.remove(path)
            return True
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a live save owns it
        same = os.path.samestat(os.fstat(fd), os.lstat(path))
        if same:
            os.remove(path)  # removed while locked: no save can take it meanwhile
        return same
    except OSError:
        return False
    finally:
        os.close(fd)


def atomic_write(path: str, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`.

    On failure the temporary file is removed and an existing file at `path` is untouched.
    """
    directory, base = os.path.split(path)
    remove_stale_temps(directory, base)
    temp = os.path.join(directory, temp_name(base))
    # O_EXCL: never clobber; mode 0o666 lets the umask decide, as for a plain open()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as file:  # a file object: numpy appends no ".npz"
            if fcntl is not None:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            write(file)
            file.flush()
            os.fsync(file.fileno())
            if fcntl is not None:  # POSIX renames an open file: rename while locked
                os.replace(temp, path)
        if fcntl is None:
            os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a directory that cannot be opened is skipped."""
    if fcntl is None:
        return
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
