from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from prime_model.atomic import atomic_directory, atomic_file, current_umask, sha256_file


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 9000  # spans several read chunks
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_directory_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "out"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
        assert not target.exists()  # nothing visible until the block succeeds
    assert (target / "a").read_text() == "1"
    with atomic_directory(target, replaceable={"a"}) as staging:  # "a": written here before
        (staging / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert [p.name for p in target.parent.iterdir()] == ["out"]


def test_atomic_directory_failure_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "keep").write_text("new")
        raise RuntimeError
    assert (target / "keep").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_file_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    with atomic_file(target) as staging:
        staging.write_bytes(b"new")
        assert not target.exists()
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_file(target) as staging:
        staging.write_bytes(b"half")
        raise RuntimeError
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_current_umask_reads_without_changing_it(mask: int) -> None:
    old = os.umask(mask)
    try:
        assert current_umask() == mask
        assert current_umask() == mask  # reading it did not reset it
    finally:
        os.umask(old)


def test_a_failed_swap_puts_the_old_directory_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep").write_text("old")
    rename = Path.rename

    def failing(self: Path, to: Any) -> Any:
        if self.name.endswith(".tmp"):  # the staging directory moving onto the target
            raise OSError(errno.EIO, "Input/output error")
        return rename(self, to)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="Input/output error"), atomic_directory(target) as staging:
        (staging / "keep").write_text("new")
    assert (target / "keep").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
