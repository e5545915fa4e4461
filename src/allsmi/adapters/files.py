"""Files allsmi writes: private (0600), never through a symlink.

Every path allsmi writes — a snapshot's ``-o``, a recording's segments and rotation
targets — is opened with ``O_NOFOLLOW`` and created ``0600``. A symlink at a path we are
about to write is refused with :class:`SinkFailed`, never followed or replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from allsmi.domain.errors import SinkFailed

PRIVATE_MODE = 0o600


def refuse_symlink(path: Path) -> None:
    """Raise ``SinkFailed`` when ``path`` is a symlink (dangling ones included)."""
    if path.is_symlink():
        raise SinkFailed(f"refusing to write through symlink {path}")


def open_private(path: Path, *, exclusive: bool = False, append: bool = False) -> int:
    """Open ``path`` for writing with ``O_NOFOLLOW``, creating it ``0600``; returns the fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_EXCL if exclusive else 0
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        return os.open(path, flags, PRIVATE_MODE)
    except OSError as err:
        raise SinkFailed(describe_os_error(err, path)) from None


def describe_os_error(err: OSError, path: Path) -> str:
    """One clear line for a failed write: what, where, why."""
    if err.errno == errno.ELOOP:
        return f"refusing to write through symlink {path}"
    if err.errno == errno.ENOSPC:
        return f"disk full while writing {path}"
    if err.errno == errno.EDQUOT:
        return f"disk quota exceeded while writing {path}"
    if err.errno == errno.EFBIG:
        return f"file size limit reached while writing {path}"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: {err.strerror}"
    if err.errno == errno.ENOENT:
        return f"cannot write {path}: directory does not exist"
    return f"cannot write {path}: {err.strerror or err}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a private temp file, fsync and rename (never torn)."""
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, exclusive=True)
    try:
        _write_all(fd, data, tmp)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    try:
        refuse_symlink(path)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SinkFailed(describe_os_error(err, path)) from None


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError as err:
            raise SinkFailed(describe_os_error(err, path)) from None
        view = view[written:]


def silence_stdout() -> None:
    """Point stdout at /dev/null (its reader went away: ``allsmi snapshot | head``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
