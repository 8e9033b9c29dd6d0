"""prime_model.parsing: strict bounded JSON and YAML."""

from __future__ import annotations

import time

import pytest

from prime_model.errors import CheckpointError, ConfigError, DataValidationError
from prime_model.parsing import (
    MAX_JSON_DEPTH,
    MAX_YAML_NODES,
    json_depth_exceeds,
    parse_json,
    parse_yaml,
)


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
