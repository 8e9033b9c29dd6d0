"""One writer per output path at a time, across processes (``flock`` on a hidden lock file).

Two processes saving the same index or cache shard used to clear each other's staging files as
"stale" and then fail in a rename. The lock lives beside the target as ``.<name>.lock`` and is
removed by the holder on release; a killed holder's lock is released by the kernel, and its file
is reused by the next writer.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from prime_model.errors import LockTimeoutError

LOCK_TIMEOUT_S: Final = 300.0
"""How long a writer waits for another one writing the same path (an index of 1M items)."""
_POLL_S: Final = 0.05
_UNSUPPORTED: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})

logger = logging.getLogger(__name__)


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextmanager
def exclusive(target: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the write lock of ``target`` for the block (the parent folder must exist)."""
    path = lock_path(target)
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if _acquire(fd, deadline) and _still_linked(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed that file as we waited on it: lock the new one
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)  # while still held: nobody else can be inside
        finally:
            os.close(fd)  # releases the lock


def _acquire(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:  # some network/FUSE mounts: write as before, unlocked
                logger.debug("no flock on the file system of %s (%s)", fd, exc.strerror)
                return True
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline:
            raise LockTimeoutError(
                errno.EBUSY, "another process is still writing the same path", None
            )
        time.sleep(_POLL_S)


def _still_linked(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one at ``path`` (not unlinked by its last holder)."""
    try:
        return path.stat().st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
