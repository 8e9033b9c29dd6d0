"""Crash-safe writes: build beside the target, fsync, then one rename.

A reader either sees the old content or the complete new one, never a half-written file.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_FILE_MODE = 0o666  # what open() asks for; the umask then takes bits away
_DIR_MODE = 0o777


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows.

    ``os.umask`` can only be read by setting it, which races with other threads creating files,
    so Linux's ``/proc/self/status`` is preferred.
    """
    try:
        with Path("/proc/self/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path) -> None:
    """Give ``path`` (and, for a directory, everything in it) the mode a plain ``open()`` or
    ``mkdir`` would have: ``tempfile`` and safetensors create 0600/0700, which would make a
    checkpoint unreadable to the serving user or the group that shares it."""
    mask = current_umask()
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            if child.is_symlink():
                continue
            child.chmod((_DIR_MODE if child.is_dir() else _FILE_MODE) & ~mask)
        path.chmod(_DIR_MODE & ~mask)
    else:
        path.chmod(_FILE_MODE & ~mask)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed so multi-GB weights do not need to fit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def write_text_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_stale_staging(target: Path) -> None:
    """Delete the hidden ``.<name>.*.tmp``/``.old`` siblings a killed writer left behind.

    SIGKILL (or a power cut) skips every cleanup handler, so the next write of the same target
    clears them; without this, each crash would leak a copy of the weights. Writing one target
    from two processes at once is not supported (the renames below would race anyway).
    """
    # tempfile's names: prefix + 8 characters from [a-z0-9_] + suffix, as made below
    own = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if not own.fullmatch(stale.name):
            continue
        logger.info("removing %s, left by an interrupted write of %s", stale, target)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty directory beside ``target``; on success it replaces ``target``.

    On error the temporary directory is removed and ``target`` is untouched. An existing
    ``target`` is moved aside, replaced, then deleted, so a crash between the two renames
    leaves the old content under a hidden name rather than a mix of old and new files; a
    failed second rename moves the old content back. The result has umask-honouring modes.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        apply_umask(staging)
        if target.exists():
            old = staging.with_suffix(".old")
            target.rename(old)
            try:
                staging.rename(target)
            except BaseException:
                old.rename(target)
                raise
            # the new content is in place: a leftover copy is cleared by the next write
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed onto it.

    The file gets ``0666 & ~umask``, as a plain ``open()`` would give it, not mkstemp's 0600.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        fsync_file(staging)
        apply_umask(staging)
        staging.replace(target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a whole text file (a report) so that readers never see half of it."""
    with atomic_file(path) as staging:
        staging.write_text(text, encoding="utf-8")
    return path
