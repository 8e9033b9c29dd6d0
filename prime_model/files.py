"""File-system checks before reading or writing: no FIFO opened, no output path that cannot be.

A named pipe blocks the reader forever, and a long run must not end in a bare ``OSError`` about
its output path, so every reader and writer in ``prime_model`` checks here first, typed.
"""

from __future__ import annotations

import errno
import stat
from pathlib import Path
from typing import Final

from prime_model.errors import PrimeError

MAX_TEXT_FILE_BYTES: Final = 1 << 20
"""Largest config or metadata file read whole; data files are read elsewhere, streamed."""

_KINDS: Final = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISSOCK, "is a socket"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
)


_STAT_ERRORS: Final = {
    errno.ELOOP: "is a symlink loop (the link resolves back to itself)",
    errno.ENOTDIR: "has a parent that is a file, not a directory",
    errno.EACCES: "cannot be inspected: permission denied",
    errno.ENAMETOOLONG: "has a name too long for the file system",
}


def _stat_problem(path: Path, exc: OSError) -> str:
    """What an ``os.stat`` failure means, in words: missing, dangling link, loop, ..."""
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return f"is a dangling symlink (its target {path.readlink()!s} does not exist)"
        return "does not exist"
    known = _STAT_ERRORS.get(exc.errno or 0)
    return known or f"cannot be inspected ({exc.strerror or exc})"


def file_kind(mode: int) -> str | None:
    """What a non-regular, non-directory ``st_mode`` is, or None for a regular file."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return None if stat.S_ISREG(mode) else "is not a regular file"


def check_regular_file(path: Path, what: str, error: type[PrimeError]) -> None:
    """Refuse anything but an existing regular file (following symlinks), without opening it.

    ``stat`` rather than ``open``: opening a FIFO blocks until a writer appears, possibly forever.
    """
    try:
        mode = Path(path).stat().st_mode
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL byte
        if isinstance(exc, OSError) and exc.errno == errno.ENOENT and not Path(path).is_symlink():
            raise error(f"{path}: no such {what}; expected an existing regular file") from None
        problem = _stat_problem(Path(path), exc) if isinstance(exc, OSError) else "is not a path"
        raise error(f"{path}: cannot read {what}: it {problem}; expected a regular file") from None
    kind = file_kind(mode)
    if kind is not None:
        if stat.S_ISFIFO(mode):
            kind += " (opening it would block until something writes to it)"
        raise error(f"{path}: cannot read {what}: it {kind}; expected a regular file")


def _dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a directory, in words; None when it can."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno != errno.ENOENT or path.is_symlink():
            return _stat_problem(path, exc)
        for parent in path.parents:  # the nearest existing ancestor must be a directory
            if parent.exists() or parent.is_symlink():
                if not parent.is_dir():
                    return f"cannot be created: {parent} is not a directory"
                return None
        return None
    if stat.S_ISDIR(mode):
        return None
    return f"{file_kind(mode) or 'is a regular file'}, not a directory"


def check_output_dir(path: Path, what: str, error: type[PrimeError]) -> None:
    """Refuse an output directory that exists as something else, or sits under a file.

    A missing directory is fine (the writer creates it); checked before any work is done, so a
    long run cannot end in an ``OSError`` about its output path.
    """
    problem = _dir_problem(Path(path))
    if problem is not None:
        raise error(f"{path}: {what} {problem}; expected a directory")


def check_output_file(path: Path, what: str, error: type[PrimeError]) -> None:
    """Refuse an output file path that is a directory, a FIFO, ..., or whose folder cannot be.

    An existing regular file is fine (it is replaced); checked before any work is done.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno != errno.ENOENT or path.is_symlink():
            problem = _stat_problem(path, exc)
            raise error(
                f"cannot write {path}: the {what} {problem}; expected a file path"
            ) from None
    else:
        if not stat.S_ISREG(mode):
            kind = file_kind(mode) or "is not a regular file"
            raise error(f"cannot write {path}: the {what} {kind}; expected a file path")
    folder = _dir_problem(path.parent)
    if folder is not None:
        raise error(
            f"cannot write {path}: the {what}'s folder {path.parent} {folder}; expected a "
            "folder that is or can become a directory"
        )


def read_text_file(
    path: Path, what: str, error: type[PrimeError], max_bytes: int = MAX_TEXT_FILE_BYTES
) -> str:
    """A regular file's UTF-8 text of at most ``max_bytes``; every failure is ``error`` naming
    ``path``. The bound is for configs: PyYAML takes seconds per 100 KB of flow lists."""
    check_regular_file(path, what, error)
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if size > max_bytes:
        raise error(
            f"{path}: {what} is {size} bytes; expected at most {max_bytes} (a config, not data)"
        )
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
