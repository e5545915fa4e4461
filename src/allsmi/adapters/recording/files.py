"""Files allsmi writes: private (0600), never through a symlink, never a FIFO or a device.

Every path allsmi writes — a snapshot's ``-o``, a recording's segments and rotation
targets, its lock file — is opened with ``O_NOFOLLOW`` and created ``0600``. A symlink at a
path we are about to write is refused with :class:`SinkFailed`, never followed or replaced.
A path that exists but is not a regular file (a FIFO would block the open forever, a device
or socket would be renamed aside by a restart) is refused with :class:`UsageError` before
anything opens it: :func:`require_regular_file`.

One rule for every path a user names for allsmi to write (``record -o``, ``snapshot -o``,
``mock --hostfile``): its directory must already exist — allsmi creates only its own default
directories — and :func:`require_writable_output` checks, before any collection, that a file
can be created there, refusing with :class:`UsageError` (exit 2, docs/architecture.md §7.3).
A write that fails later is :class:`SinkFailed` (exit 1). Either way the one line names the
user's path, never an internal temp or probe file, and gives the reason the errno gives:
a missing directory, a file where a directory should be, permission denied, a read-only
file system, or a file system that does not support creating files (``/proc``).
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


def require_writable_output(
    path: Path, what: str = "output", *, create_parent: bool = False
) -> None:
    """Raise ``UsageError`` (exit 2) unless a file can be created at ``path``.

    Run before any collection. The directory must exist unless ``create_parent`` (allsmi's
    own default directories only); ``path`` must not be a directory or another kind of
    non-regular file; and a private probe file is created and removed beside it, so the
    real reason a write would fail (read-only, not supported, permission denied) is found
    from the errno, as root too, where ``os.access`` says yes to everything.
    """
    if create_parent:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as err:
            failed = Path(err.filename) if err.filename else path.parent  # the dir not made
            reason = (
                _directory_problem(path.parent)  # a file stands where a directory should
                if isinstance(err, FileExistsError)
                else None
            ) or write_failure_reason(err, failed)
            raise UsageError(f"cannot write {path}: {reason}") from None
    problem = _directory_problem(path.parent)
    if problem is not None:
        raise UsageError(f"cannot write {path}: {problem}")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory (name a file)")
    require_regular_file(path, what)
    probe = path.with_name(f".allsmi-probe.{os.getpid()}")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, PRIVATE_MODE)
    except FileExistsError:
        return  # a leftover probe: creating files there worked before
    except OSError as err:
        raise UsageError(f"cannot write {path}: {write_failure_reason(err, path)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        probe.unlink()


def _directory_problem(directory: Path) -> str | None:
    """What is wrong with ``directory`` as a place for a new file, or None when it is one.

    The deepest ancestor that exists says which: a file where a directory should be, or a
    directory that does not exist yet.
    """
    for ancestor in (directory, *directory.parents):
        try:
            mode = os.stat(ancestor).st_mode
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            continue  # an ancestor further up is the file; the loop reaches it
        except OSError:
            return None  # cannot be examined: the open that follows says why
        if not stat.S_ISDIR(mode):
            return f"{ancestor} is not a directory ({file_kind(mode)})"
        if ancestor == directory:
            return None
        return f"directory {directory} does not exist"
    return f"directory {directory} does not exist"


def write_failure_reason(err: OSError, path: Path) -> str:
    """Why creating or writing ``path`` failed, in words, from the errno."""
    code = err.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        # ENOENT in a directory that exists: its file system creates no files (/proc).
        problem = _directory_problem(path.parent)
        return problem or f"creating files in {path.parent} is not supported"
    if code == errno.EROFS:
        return "read-only file system"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
        return "not supported by its file system"
    if code == errno.EISDIR:
        return "it is a directory (name a file)"
    if code == errno.ENXIO:  # O_NONBLOCK met a FIFO without a reader, or a socket
        return "not a regular file"
    return err.strerror or str(err)


def refuse_symlink(path: Path) -> None:
    """Raise ``SinkFailed`` when ``path`` is a symlink (dangling ones included)."""
    if path.is_symlink():
        raise SinkFailed(f"refusing to write through symlink {path}")


def open_private(
    path: Path, *, exclusive: bool = False, keep: bool = False, named: Path | None = None
) -> int:
    """Open ``path`` for writing with ``O_NOFOLLOW``, creating it ``0600``; returns the fd.

    ``exclusive``: it must not exist yet. ``keep``: open it read-write and leave its content
    as it is (a lock file, whose pid must survive until the lock says whose it is).
    Otherwise it is truncated. An existing path is opened with
    ``O_NONBLOCK``, so a FIFO put there is refused (``ENXIO``), never waited on.
    ``named``: the path the user gave, which an error names instead of ``path`` (a temp file).
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
        raise SinkFailed(describe_os_error(err, named or path)) from None


def open_for_reading(path: Path) -> int | None:
    """Open ``path`` read-only, never through a symlink and never waiting on a FIFO; None
    when it cannot be opened (missing, a symlink, unreadable)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def reading_refused(path: Path) -> OSError | None:
    """Why ``path`` cannot be opened for reading (as :func:`open_for_reading` opens it), or
    None when it can; nothing stays open."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError as err:
        return err
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
    return f"cannot write {path}: {write_failure_reason(err, path)}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a private temp file, fsync and rename (never torn)."""
    refuse_symlink(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, exclusive=True, named=path)  # errors name the user's path
    try:
        try:
            _write_all(fd, data, path)
            os.fsync(fd)
        finally:
            os.close(fd)
        refuse_symlink(path)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()  # no temp file is left behind, whatever failed
        if isinstance(exc, OSError):
            raise SinkFailed(describe_os_error(exc, path)) from None
        raise


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
