"""Parsing hostile text safely: JSON, YAML, file kinds and bounded values in messages.

Every reader of untrusted text in ``prime_model`` goes through here, so the same limits hold
everywhere: no duplicate key silently wins, no nesting deep enough to crash the parser, no huge
integer escapes as a bare ``ValueError``, no YAML alias expands into a billion nodes, no named pipe
is opened (it would block forever), and no error message prints an unbounded value.
"""

from __future__ import annotations

import errno
import json
import re
import reprlib
import stat
import sys
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Final

import yaml

from prime_model.errors import ConfigError, PrimeError
from prime_model.unicode_checks import lone_surrogate_at, may_hold_surrogate

MAX_JSON_DEPTH: Final = 100
"""Deepest ``[``/``{`` nesting accepted; far below where CPython's JSON parser recurses out."""
MAX_YAML_NODES: Final = 100_000
"""Most nodes a YAML document may expand to once its aliases are followed."""
MAX_YAML_DEPTH: Final = 100
MAX_TEXT_FILE_BYTES: Final = 1 << 20  # configs and metadata; data files are read elsewhere
"""Deepest YAML nesting accepted (the composer recurses in Python)."""

INVISIBLE: Final = (
    r"\s\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4"
    r"\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff"
    r"\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)
"""Regex class body of what shows nothing: whitespace, every format (``Cf``) character (zero-width
spaces and joiners, BOM, bidi controls, ...), variation selectors and the Hangul fillers."""
BLANK_PATTERN: Final = rf"^[{INVISIBLE}]*$"
"""A text that is empty, or whitespace and invisible characters only."""
_BLANK: Final = re.compile(rf"[{INVISIBLE}]*")

_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_JSON_BRACKET: Final = re.compile(r"[\[\]{}]")


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` that also survives integers beyond Python's int-to-str digit limit."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of about {int(x.bit_length() * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


_REPR: Final = _BoundedRepr()
_REPR.maxstring = 160
_REPR.maxother = 160
_REPR.maxlevel = 4


def shown(value: object, limit: int = 200) -> str:
    """A repr of ``value`` for an error message, never longer than ``limit`` characters.

    Costs what the shown part costs, so a billion-laughs value or a 10 MB string is safe to name.
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not replace the real error
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        keep = max(limit - 5, 1)
        text = f"{text[:keep]}...{text[-2:]}" if limit >= 8 else text[:limit]
    return text


def is_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: ``str.strip`` keeps U+200B, U+2060, U+FEFF, ..."""
    return _BLANK.fullmatch(text) is not None


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


# ---------------------------------------------------------------------------------------- files


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
