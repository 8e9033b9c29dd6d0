"""Bounded gzip decompression: a 4 MB file that expands to 4 GiB is refused, not inflated.

``gzip.decompress`` builds the whole output in memory before anyone can look at its size.
Here the stream is inflated in chunks and stops as soon as the output passes an absolute cap, or
passes :data:`RATIO_FLOOR_BYTES` while expanding more than :data:`MAX_RATIO` times what was read
(text compresses 3-20x; a bomb of zeros, 1000x).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Final

from prime_model.errors import DataValidationError

MAX_DECOMPRESSED_BYTES: Final = 2 << 30
"""Largest decompressed data file read (public releases are a few hundred MB)."""
MAX_RATIO: Final = 200
RATIO_FLOOR_BYTES: Final = 64 << 20
"""Below this much output the ratio is not judged: small files compress oddly."""
_CHUNK: Final = 1 << 20


def gunzip_bounded(path: Path, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """The decompressed content of the gzip file ``path`` (all members), at most ``max_bytes``."""
    out: list[bytes] = []
    size = 0
    with path.open("rb") as raw, gzip.GzipFile(fileobj=raw, mode="rb") as inflated:
        try:
            while chunk := inflated.read(_CHUNK):
                size += len(chunk)
                _check_size(path, size, raw.tell(), max_bytes)
                out.append(chunk)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataValidationError(
                f"{path}: not a readable gzip file ({exc}); expected gzip-compressed data"
            ) from None
    return b"".join(out)


def _check_size(path: Path, size: int, consumed: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DataValidationError(
            f"{path}: decompresses to more than {max_bytes} bytes; expected a data file of at "
            f"most {max_bytes} bytes uncompressed (refused before reading it whole)"
        )
    if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(consumed, 1):
        raise DataValidationError(
            f"{path}: expands more than {MAX_RATIO}x ({consumed} compressed bytes gave {size} "
            f"so far); expected ordinary compressed text, not a decompression bomb"
        )
