"""prime_model.files: file-kind checks before reading or writing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prime_model.errors import ConfigError, DataValidationError
from prime_model.files import (
    check_output_dir,
    check_output_file,
    check_regular_file,
    read_text_file,
)


def test_check_regular_file_names_each_kind(tmp_path: Path) -> None:
    regular = tmp_path / "f.txt"
    regular.write_text("x", encoding="utf-8")
    check_regular_file(regular, "data file", DataValidationError)  # accepted
    link = tmp_path / "link"
    link.symlink_to(regular)
    check_regular_file(link, "data file", DataValidationError)  # a link to a file: accepted
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    loop_a, loop_b = tmp_path / "a", tmp_path / "b"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    cases = {
        tmp_path / "missing": "missing: no such data file; expected an existing regular file",
        tmp_path: "cannot read data file: it is a directory; expected a regular file",
        fifo: "pipe: cannot read data file: it is a named pipe (FIFO) (opening it would block",
        loop_a: "a: cannot read data file: it is a symlink loop",
        dangling: "dangling: cannot read data file: it is a dangling symlink (its target",
        regular / "x": "cannot read data file: it has a parent that is a file, not a directory",
        Path("/dev/null"): "cannot read data file: it is a character device",
    }
    for path, message in cases.items():
        with pytest.raises(DataValidationError) as info:
            check_regular_file(path, "data file", DataValidationError)
        assert message in str(info.value), str(info.value)


def test_check_output_dir_and_file(tmp_path: Path) -> None:
    regular = tmp_path / "f"
    regular.write_text("x", encoding="utf-8")
    check_output_dir(tmp_path, "out", ConfigError)
    check_output_dir(tmp_path / "new" / "deeper", "out", ConfigError)
    check_output_file(regular, "report", ConfigError)  # replaced: fine
    check_output_file(tmp_path / "new" / "r.html", "report", ConfigError)
    with pytest.raises(ConfigError, match="f: out is a regular file, not a directory"):
        check_output_dir(regular, "out", ConfigError)
    with pytest.raises(ConfigError, match="out has a parent that is a file"):
        check_output_dir(regular / "sub", "out", ConfigError)
    with pytest.raises(ConfigError, match=r"cannot write .*: the report is a directory"):
        check_output_file(tmp_path, "report", ConfigError)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="the report is a named pipe"):
        check_output_file(fifo, "report", ConfigError)
    with pytest.raises(ConfigError, match=r"out is a named pipe .*, not a directory"):
        check_output_dir(fifo, "out", ConfigError)


def test_read_text_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    assert read_text_file(path, "config file", ConfigError) == "a: 1\n"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="config file is not UTF-8 text"):
        read_text_file(path, "config file", ConfigError)


def test_a_text_file_past_the_size_bound_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("a: [" + "1, " * 200 + "1]\n", encoding="utf-8")
    assert read_text_file(path, "config file", ConfigError).startswith("a: [1")
    with pytest.raises(
        ConfigError, match=r"huge.yaml: config file is \d+ bytes; expected at most 100"
    ):
        read_text_file(path, "config file", ConfigError, max_bytes=100)
