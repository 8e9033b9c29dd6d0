"""Parsing hostile text strictly: JSON and YAML with the same limits everywhere.

Every reader of untrusted text in ``prime_model`` goes through here: no duplicate key silently
wins, no nesting deep enough to crash the parser, no huge integer escapes as a bare
``ValueError`` and no YAML alias expands into a billion nodes. File checks live in
:mod:`prime_model.files`, bounded values in messages in :mod:`prime_model.text`.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Hashable
from typing import Any, Final

import yaml

from prime_model.errors import ConfigError, PrimeError
from prime_model.text import shown
from prime_model.unicode_checks import lone_surrogate_at, may_hold_surrogate

MAX_JSON_DEPTH: Final = 100
"""Deepest ``[``/``{`` nesting accepted; far below where CPython's JSON parser recurses out."""
MAX_YAML_NODES: Final = 100_000
"""Most nodes a YAML document may expand to once its aliases are followed."""
MAX_YAML_DEPTH: Final = 100
"""Deepest YAML nesting accepted (the composer recurses in Python)."""

_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_JSON_BRACKET: Final = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``: checked before parsing."""
    if text.count("[") + text.count("{") <= limit:  # cannot nest deeper than it has brackets
        return False
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise _ConstantError(name)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _ConstantError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def parse_json(
    text: str,
    where: str,
    error: type[PrimeError] = ConfigError,
    *,
    expected: str = "a valid JSON document",
    line: int | None = None,
) -> Any:
    """Strict ``json.loads``: every failure is ``error`` naming ``where``, what and what's expected.

    Refuses a key given twice in one object (``json`` keeps the last one), nesting deeper than
    :data:`MAX_JSON_DEPTH`, ``NaN``/``Infinity`` (not JSON) and integers beyond Python's digit
    limit. ``line``: ``text`` is that line of a JSON-lines file, and messages say so.
    """
    on = "" if line is None else f" on line {line}"
    if json_depth_exceeds(text):
        raise error(
            f"{where}: JSON{on} nested more than {MAX_JSON_DEPTH} levels deep; expected {expected} "
            f"at most {MAX_JSON_DEPTH} levels deep"
        )
    try:
        value = json.loads(text, object_pairs_hook=_unique_object, parse_constant=_refuse_constant)
    except _DuplicateKeyError as exc:
        raise error(
            f"{where}: duplicate key {shown(exc.key)} in a JSON object{on}; expected each key at "
            "most once per object"
        ) from None
    except _ConstantError as exc:
        raise error(
            f"{where}: {exc.name}{on} is not valid JSON; expected {expected} with finite numbers"
        ) from None
    except json.JSONDecodeError as exc:
        at = exc.lineno if line is None else line
        raise error(
            f"{where}: invalid JSON on line {at} column {exc.colno} ({exc.msg}); "
            f"expected {expected}"
        ) from None
    except RecursionError:
        raise error(
            f"{where}: JSON{on} nested too deeply to parse; expected at most "
            f"{MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError:  # the int-to-str limit: "Exceeds the limit (4300 digits) ..."
        raise error(
            f"{where}: JSON number{on} has more than {_int_digit_limit()} digits; expected "
            f"{expected} with numbers of at most {_int_digit_limit()} digits"
        ) from None
    if may_hold_surrogate(text):
        found = lone_surrogate_at(value)
        if found is not None:
            raise error(
                f"{where}: {shown(found, 80)}{on} holds a lone surrogate (such as \\ud800), "
                f"which has no UTF-8 form; expected {expected} of valid Unicode text"
            )
    return value


def _int_digit_limit() -> int:
    limit = sys.get_int_max_str_digits()
    return limit if limit else 4300


# ----------------------------------------------------------------------------------------- YAML


class _TooDeepError(yaml.YAMLError):
    pass


class RecursiveYamlError(yaml.YAMLError):
    """An alias inside the node it names (``a: &x [*x]``): its expansion never ends."""


class StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice and nesting past :data:`MAX_YAML_DEPTH`.

    Plain YAML keeps the last of two equal keys silently; the composer recurses in Python, so a
    deep document would otherwise end in a bare ``RecursionError``.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _TooDeepError
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {shown(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads `3e-4` as a string; YAML 1.2 and every hand-written config mean a float.
StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_expanded_size(root: yaml.Node, limit: int = MAX_YAML_NODES) -> int:
    """Nodes ``root`` stands for once every alias is expanded, stopping counting past ``limit``.

    Aliases share nodes, so the composed graph is small even when its expansion is huge; each
    distinct node is sized once (memoised), iteratively, so this costs the graph, not the expansion.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            total = 1 + sum(sizes.get(id(child), 1) for child in children)
            sizes[id(node)] = min(total, limit + 1)
            continue
        if id(node) in entered:
            raise RecursiveYamlError
        entered.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, where: str, error: type[PrimeError] = ConfigError) -> Any:
    """Strict, bounded ``yaml.safe_load``: every failure is ``error`` naming ``where``.

    Refuses duplicate keys, documents whose aliases expand past :data:`MAX_YAML_NODES` nodes
    ("billion laughs"), nesting past :data:`MAX_YAML_DEPTH` and integers beyond the digit limit.
    """
    loader = StrictYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = yaml_expanded_size(node)
        if size > MAX_YAML_NODES:
            raise error(
                f"{where}: YAML expands to more than {MAX_YAML_NODES} values once its aliases "
                f"(*name) are followed; expected a plain config (alias bomb?)"
            )
        return loader.construct_document(node)
    except RecursiveYamlError:
        raise error(
            f"{where}: YAML alias refers to a value that contains it (such as `&a [*a]`), so it "
            "expands forever; expected a plain config without recursive aliases"
        ) from None
    except _TooDeepError:
        raise error(
            f"{where}: YAML nested more than {MAX_YAML_DEPTH} levels deep; expected at most "
            f"{MAX_YAML_DEPTH} levels of lists/mappings"
        ) from None
    except PrimeError:
        raise
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {_bounded_yaml_error(exc)}") from None
    except RecursionError:
        raise error(
            f"{where}: YAML nested too deeply to parse; expected at most {MAX_YAML_DEPTH} levels"
        ) from None
    except ValueError as exc:  # int("9" * 5000): the int-to-str digit limit
        raise error(
            f"{where}: YAML value cannot be read ({shown(str(exc))}); expected numbers of at most "
            f"{_int_digit_limit()} digits"
        ) from None
    finally:
        loader.dispose()


def _bounded_yaml_error(exc: yaml.YAMLError) -> str:
    """PyYAML quotes the offending line; a one-line 10 MB document must not be quoted whole."""
    text = str(exc)
    return text if len(text) <= 600 else f"{text[:600]}..."
