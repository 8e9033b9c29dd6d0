"""prime_model.parsing: strict bounded JSON/YAML, bounded reprs, file-kind checks."""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from prime_model.errors import CheckpointError, ConfigError, DataValidationError
from prime_model.files import (
    check_output_dir,
    check_output_file,
    check_regular_file,
    read_text_file,
)
from prime_model.parsing import (
    MAX_JSON_DEPTH,
    MAX_YAML_NODES,
    json_depth_exceeds,
    parse_json,
    parse_yaml,
)
from prime_model.text import is_blank, shown


def test_parse_json_reads_valid_json() -> None:
    assert parse_json('{"a": [1, 2.5, "x\u2028y", null, true]}', "w") == {
        "a": [1, 2.5, "x\u2028y", None, True]
    }
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_depth_exceeds(nested) is False
    assert parse_json(nested, "w") is not None
    # brackets inside strings do not count as nesting
    assert parse_json('["' + "[" * 1000 + '"]', "w") == ["[" * 1000]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "w: duplicate key 'a' in a JSON object"),
        ('[{"b": {"c": 1, "c": 1}}]', "duplicate key 'c'"),
        ("[" * (MAX_JSON_DEPTH + 1), "nested more than 100 levels deep"),
        ("[" * 100_000, "nested more than 100 levels deep"),
        ('{"a": ' * 5_000, "nested more than 100 levels deep"),
        ("9" * 5_000, "JSON number has more than"),
        ("[NaN]", "NaN is not valid JSON"),
        ("-Infinity", "-Infinity is not valid JSON"),
        ("{oops", "w: invalid JSON on line 1 column 2"),
        ("", "invalid JSON on line 1 column 1 (Expecting value); expected a valid JSON document"),
    ],
)
def test_parse_json_refuses(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_json(text, "w")
    assert message in str(info.value)
    assert len(str(info.value)) < 500


def test_parse_json_uses_the_given_error_expected_and_line() -> None:
    with pytest.raises(DataValidationError, match=r"f: invalid JSON on line 7 column 1 .*; "
                       r"expected one object"):  # fmt: skip
        parse_json("x", "f", DataValidationError, expected="one object", line=7)
    with pytest.raises(CheckpointError, match="duplicate key 'k' in a JSON object on line 3"):
        parse_json('{"k": 1, "k": 1}', "f", CheckpointError, line=3)


def test_shown_is_bounded_and_survives_hostile_values() -> None:
    assert shown("abc") == "'abc'"
    assert len(shown("x" * 10_000_000)) <= 200
    assert len(shown(list(range(100_000)), limit=50)) <= 50
    assert "digits" in shown(10**5000)  # repr() itself would raise ValueError

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown(Hostile()).startswith("<Hostile")  # the repr's own error is not raised
    nested: list[object] = []
    for _ in range(10_000):
        nested = [nested]
    assert len(shown(nested)) <= 200


def test_is_blank_covers_every_format_character() -> None:
    assert is_blank("") and is_blank(" \t\n\u3000\u2028")
    for char in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u3164"):
        assert is_blank(char * 3), hex(ord(char))
    assert not is_blank("a\u200b")
    assert not is_blank("\u200bx")
    format_chars = [
        c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) == "Cf"
    ]
    assert format_chars
    assert [hex(ord(c)) for c in format_chars if not is_blank(c)] == []


def test_parse_yaml_reads_configs_with_small_aliases_and_1_2_floats() -> None:
    text = "base: &b {x: 1}\nc:\n  <<: *b\n  y: 3e-4\nd: 1.0e-3\ne: '3e-4'\n"
    assert parse_yaml(text, "w") == {
        "base": {"x": 1},
        "c": {"x": 1, "y": 3e-4},
        "d": 1e-3,
        "e": "3e-4",
    }
    assert parse_yaml("", "w") is None


def _bomb(levels: int) -> str:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, levels):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    return "\n".join(lines)


def test_parse_yaml_refuses_an_alias_bomb_fast() -> None:
    assert parse_yaml(_bomb(4), "w") is not None  # 10**4 values: under the bound
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=f"expands to more than {MAX_YAML_NODES} values"):
        parse_yaml(_bomb(12), "w")  # 10**12 values
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("a: " + "[" * 1000, "YAML nested more than 100 levels deep"),
        ("a: " + "9" * 5000, "at most"),
        ("a: [", "not valid YAML"),
        ("a: !!python/object/apply:os.system ['true']", "not valid YAML"),
        ("a: *missing", "not valid YAML"),
    ],
)
def test_parse_yaml_refuses(text: str, message: str) -> None:
    with pytest.raises(DataValidationError) as info:
        parse_yaml(text, "w", DataValidationError)
    assert message in str(info.value)
    assert str(info.value).startswith("w: ")


def test_a_yaml_error_quoting_a_huge_line_is_bounded() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: [" + "x, " * 20_000 + "}", "w")
    assert len(str(info.value)) < 1_000


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
