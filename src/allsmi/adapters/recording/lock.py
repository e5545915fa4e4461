"""One recorder per recording set, and how a follower learns that the recording ended.

Theory of operation. ``allsmi record -o trace.ndjson.zst`` holds an exclusive lock on
``trace.ndjson.zst.lock`` beside the set for its whole run, with its pid written inside. A
second recorder on the same path finds the lock taken and refuses to start, naming the
pid; a follower asks :func:`holder` whether anyone still records there.

Rules this module obeys:
- The lock is a Linux open-file-description lock (``F_OFD_SETLK``, fcntl(2)). The kernel
  drops it when the last descriptor of that description closes — a clean exit, a crash,
  ``kill -9`` — so a dead recorder never blocks a restart and nothing needs cleaning up.
  Unlike classic ``F_SETLK`` locks it is not dropped when the same process closes some
  other descriptor of the file, and two descriptions conflict even inside one process.
- OFD locks belong to no process (``F_OFD_GETLK`` reports ``l_pid == -1``), hence the pid
  in the file. It is written over the old one, then the file is cut to length, so a reader
  never finds it empty once a pid was ever written.
- :func:`holder` only queries (``F_OFD_GETLK``) and never takes the lock: a follower
  probing every second can never make a starting recorder fail.
- The lock file is never deleted: unlinking a lock file races (a newcomer would lock a
  fresh inode while the first recorder still holds the unlinked one). Its name matches no
  segment name (:mod:`allsmi.domain.segments`), so rotation, eviction and set discovery
  never see it.
- It is opened ``0600`` with ``O_NOFOLLOW`` and ``O_NONBLOCK``: a symlink is refused, and
  a FIFO or device at the lock path is refused instead of waited on. A file there that does
  not look like a lock (empty, or a pid line) is refused too, never overwritten: it may be
  a recording someone named ``trace.ndjson.zst.lock``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from allsmi.adapters.recording.files import (
    describe_os_error,
    file_kind,
    open_for_reading,
    open_private,
    refuse_symlink,
    require_regular_file,
)
from allsmi.domain.errors import SinkFailed, UsageError

# struct flock (fcntl(2)): l_type, l_whence, l_start, l_len, l_pid. Native alignment gives
# the C layout; the kernel reads sizeof(struct flock) ≤ 32 bytes, so the tail is zeroed.
_FLOCK: Final = struct.Struct("@hhqqi")
_FLOCK_BYTES: Final = 32
_PID_BYTES: Final = 32  # a pid and its newline, with room to spare
# Between taking the lock and writing its pid a recorder spends two syscalls; a prober that
# lands there looks again a few times before settling for "held, pid unknown" (0).
_PID_TRIES: Final = 10
_PID_RETRY_S: Final = 0.001


def lock_path(active: Path) -> Path:
    """The lock file of the set named ``active``: ``trace.ndjson.zst.lock`` beside it."""
    return active.with_name(active.name + ".lock")


class RecordingLock:
    """The exclusive lock on a recording set, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, active: Path) -> RecordingLock:
        """Lock the set named ``active`` and write our pid, or raise ``UsageError`` naming
        the recorder that holds it."""
        path = lock_path(active)
        fd = _open_lock_file(path)
        try:
            if not _try_lock(fd, path):
                pid = _pid_of_holder(fd)
                who = f"pid {pid}" if pid else "another process"
                raise UsageError(f"{active}: already being recorded by {who} (lock {path.name})")
            if not _looks_like_a_lock(fd):
                raise UsageError(f"{path}: exists and is not a recording lock; not overwriting it")
            _write_pid(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path)

    def release(self) -> None:
        """Drop the lock (closing its only descriptor); the file stays. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> RecordingLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def holder(active: Path) -> int | None:
    """The pid of the recorder holding the lock of the set ``active``, or None when nobody
    does (no lock file, or nobody has it locked). Never takes the lock.

    0 means held by something that wrote no readable pid (not an allsmi recorder, or one
    stopped between locking and writing)."""
    fd = open_for_reading(lock_path(active))
    if fd is None:
        return None  # missing, a symlink, unreadable: no recorder of ours to wait for
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not _is_locked(fd):
            return None
        return _pid_of_holder(fd)
    finally:
        os.close(fd)


def recorder_running(active: Path) -> bool | None:
    """Whether an allsmi recorder still writes the set ``active``: True while its lock is
    held; False when the lock file is there and nobody holds it (the recorder exited,
    cleanly or killed); None when there is no lock file (a recording by another tool, or a
    copy): nothing to tell. Never takes the lock."""
    if holder(active) is not None:
        return True
    return False if os.path.lexists(lock_path(active)) else None


# ----------------------------------------------------------------------------- helpers


def _open_lock_file(path: Path) -> int:
    # keep=True: truncating would erase a live holder's pid before the lock said whose it is.
    refuse_symlink(path)
    require_regular_file(path, "lock file")
    fd = open_private(path, keep=True)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped in between the check and the open
        os.close(fd)
        raise UsageError(f"lock file {path}: not a regular file ({file_kind(mode)})")
    return fd


def _flock(kind: int) -> bytes:
    """A whole-file ``struct flock`` of ``kind``; ``l_pid`` must be 0 for OFD locks."""
    return _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0).ljust(_FLOCK_BYTES, b"\0")


def _try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise SinkFailed(f"cannot lock {path}: {err.strerror or err}") from None
    return True


def _is_locked(fd: int) -> bool:
    """Whether someone holds the lock: ``F_OFD_GETLK`` answers ``F_UNLCK`` when a write
    lock could be taken, and takes nothing either way."""
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK))
    except OSError:
        return False
    kind: int = _FLOCK.unpack_from(answer)[0]
    return kind != fcntl.F_UNLCK


def _looks_like_a_lock(fd: int) -> bool:
    """Empty, or a short file whose first line is a pid (a crash between writing a shorter
    pid and cutting the file leaves a digit tail behind: still ours)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    return size <= _PID_BYTES and _read_pid(fd) is not None


def _write_pid(fd: int, path: Path) -> None:
    data = f"{os.getpid()}\n".encode()
    try:
        os.pwrite(fd, data, 0)  # over the old pid, then cut: never an empty file
        os.ftruncate(fd, len(data))
    except OSError as err:
        raise SinkFailed(describe_os_error(err, path)) from None


def _pid_of_holder(fd: int) -> int:
    for attempt in range(_PID_TRIES):
        pid = _read_pid(fd)
        if pid is not None:
            return pid
        if attempt + 1 < _PID_TRIES:
            time.sleep(_PID_RETRY_S)
    return 0


def _read_pid(fd: int) -> int | None:
    try:
        first = os.pread(fd, _PID_BYTES, 0).split(b"\n", 1)[0]
    except OSError:
        return None
    if not (first.isascii() and first.isdigit()) or len(first) > 10:
        return None
    return int(first) or None
