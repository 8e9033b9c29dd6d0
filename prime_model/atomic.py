"""Crash-safe writes: build beside the target, fsync, then one rename.

A reader either sees the old content or the complete new one, never a half-written file.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError

from prime_model.errors import ForeignContentError, LockTimeoutError, WriteError
from prime_model.file_lock import exclusive
from prime_model.text import shown

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
    clears them; without this, each crash would leak a copy of the weights. Called under the
    target's write lock, so whatever matches is a dead writer's, never a concurrent one's.
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


def write_error(target: Path, exc: BaseException) -> WriteError:
    """``exc`` (an ``OSError``, or safetensors' own I/O error) as a :class:`WriteError` naming
    ``target``, with the ``errno`` and ``strerror`` callers look at."""
    if isinstance(exc, WriteError):
        return exc
    code = exc.errno if isinstance(exc, OSError) else _safetensors_errno(str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    elif code is not None:
        reason = os.strerror(code)
    else:
        reason = f"{type(exc).__name__}: {shown(str(exc))}"
    full = " (the disk is full)" if code in (errno.ENOSPC, errno.EDQUOT) else ""
    error = WriteError(
        f"cannot write {target}: {reason}{full}; expected a writable folder with free space "
        f"({target} is unchanged)"
    )
    error.errno, error.strerror, error.filename = code, reason, str(target)
    return error


def _safetensors_errno(message: str) -> int | None:
    """safetensors reports I/O failures as text: ``IoError(Os { code: 28, ... })`` or
    ``I/O error: File too large (os error 27)``."""
    found = re.search(r"Os \{ code: (\d+)|\(os error (\d+)\)", message)
    return int(found[1] or found[2]) if found else None


def check_replaceable(
    target: Path, names: Collection[str] = (), pattern: re.Pattern[str] | None = None
) -> None:
    """Refuse to replace ``target`` unless it is missing, an empty directory, or a directory
    holding only entries named in ``names`` or matching ``pattern`` (what a previous write of
    the same kind left).

    A user's ``--out`` over a folder of their own files, or over a regular file, must not
    disappear into a rename: PRIME replaces only what it wrote.
    """
    target = Path(target)
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        kind = "a symlink" if target.is_symlink() else "a file, not a directory"
        raise ForeignContentError(
            f"{target} is {kind}; refusing to replace it with an output directory (choose a "
            "new path, or remove it yourself)"
        )
    foreign = sorted(
        entry.name
        for entry in target.iterdir()
        if entry.name not in names and not (pattern and pattern.fullmatch(entry.name))
    )
    if foreign:
        raise ForeignContentError(
            f"{target} already holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} "
            f"PRIME did not write there ({shown(foreign[:5])}); refusing to replace it: expected "
            "a new or empty directory, or one this command wrote before"
        )


@contextmanager
def atomic_directory(target: Path, replaceable: Collection[str] = ()) -> Iterator[Path]:
    """Yield an empty directory beside ``target``; on success it replaces ``target``.

    On error the temporary directory is removed and ``target`` is untouched. An existing
    ``target`` is moved aside, replaced, then deleted, so a crash between the two renames
    leaves the old content under a hidden name rather than a mix of old and new files; a
    failed second rename moves the old content back. The result has umask-honouring modes.

    An existing ``target`` is replaced only if every entry in it is one the new content has,
    or is named in ``replaceable`` (:func:`check_replaceable`); one writer at a time holds the
    target (:func:`~prime_model.file_lock.exclusive`). An ``OSError`` (full disk, ...) keeps
    its type for the caller to name; safetensors' own I/O errors become :class:`WriteError`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        _remove_stale_staging(target)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        )
        try:
            yield staging
            check_replaceable(target, {*replaceable, *(p.name for p in staging.iterdir())})
            apply_umask(staging)
            _swap_in(staging, target)
        except SafetensorError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise write_error(target, exc) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _swap_in(staging: Path, target: Path) -> None:
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


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is fsynced and renamed onto it.

    The file gets ``0666 & ~umask``, as a plain ``open()`` would give it, not mkstemp's 0600.
    One writer at a time; on failure ``target`` is unchanged, and the error is an ``OSError``
    (safetensors' own I/O errors too, as :class:`WriteError`).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        _remove_stale_staging(target)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(handle)
        staging = Path(name)
        try:
            yield staging
            fsync_file(staging)
            apply_umask(staging)
            staging.replace(target)
        except SafetensorError as exc:
            staging.unlink(missing_ok=True)
            raise write_error(target, exc) from None
        except BaseException:
            staging.unlink(missing_ok=True)
            raise


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """The target's write lock; waiting too long for it is a :class:`WriteError`."""
    try:
        lock = exclusive(target)
        lock.__enter__()
    except LockTimeoutError as exc:
        raise WriteError(
            f"cannot write {target}: {exc.strerror}; expected one writer at a time (retry when "
            "the other one is done)"
        ) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write a whole text file (a report) so that readers never see half of it."""
    with atomic_file(path) as staging:
        staging.write_text(text, encoding="utf-8")
    return path
