"""Files allsmi writes: private (0600), never through a symlink, never a FIFO or a device.

Every path allsmi writes — a snapshot's ``-o``, a recording's segments and rotation
targets, its lock file — is opened with ``O_NOFOLLOW`` and created ``0600``. A symlink at a
path we are about to write is refused with :class:`SinkFailed`, never followed or replaced.
A path that exists but is not a regular file (a FIFO would block the open forever, a device
or socket would be renamed aside by a restart) is refused with :class:`UsageError` before
anything opens it: :func:`require_regular_file`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Final

from allsmi.domain.errors import SinkFailed, UsageError

PRIVATE_MODE = 0o600

_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, in words: ``"a FIFO"``, ``"a directory"``, …"""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "an unknown kind of file"


def require_regular_file(path: Path, what: str) -> None:
    """Raise ``UsageError`` (exit 2) when ``path`` exists and is not a regular file.

    Only ``stat``: nothing is opened, so a FIFO is refused instead of waited on. Symlinks
    are followed (a reader may be given one; writers refuse them separately). A missing
    path passes — whether it must exist is the caller's call — and so does one that cannot
    be examined: the open that follows reports that with its own reason.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {path}: not a regular file ({file_kind(mode)})")


def refuse_symlink(path: Path) -> None:
    """Raise ``SinkFailed`` when ``path`` is a symlink (dangling ones included)."""
    if path.is_symlink():
        raise SinkFailed(f"refusing to write through symlink {path}")


def open_private(path: Path, *, exclusive: bool = False, keep: bool = False) -> int:
    """Open ``path`` for writing with ``O_NOFOLLOW``, creating it ``0600``; returns the fd.

    ``exclusive``: it must not exist yet. ``keep``: open it read-write and leave its content
    as it is (a lock file, whose pid must survive until the lock says whose it is).
    Otherwise it is truncated. An existing path is opened with
    ``O_NONBLOCK``, so a FIFO put there is refused (``ENXIO``), never waited on.
    """
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_RDWR if keep else os.O_WRONLY
    # An exclusive create never opens what already exists; any other open might meet a FIFO.
    flags |= os.O_EXCL if exclusive else os.O_NONBLOCK
    if not keep:
        flags |= os.O_TRUNC
    try:
        return os.open(path, flags, PRIVATE_MODE)
    except OSError as err:
        raise SinkFailed(describe_os_error(err, path)) from None


def open_for_reading(path: Path) -> int | None:
    """Open ``path`` read-only, never through a symlink and never waiting on a FIFO; None
    when it cannot be opened (missing, a symlink, unreadable)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


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
    if err.errno == errno.ENXIO:  # O_NONBLOCK met a FIFO without a reader, or a socket
        return f"cannot write {path}: not a regular file"
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
