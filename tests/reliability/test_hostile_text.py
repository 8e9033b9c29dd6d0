"""Hostile text and file inputs: one table, each case a typed refusal that writes nothing.

The style of ``test_bad_inputs``: each case writes its inputs under ``tmp_path`` and returns the
one call that must fail with exactly ``error``, a message containing ``match``, and ``tmp_path``
as it was. Every call runs in a thread with a deadline, so a regression that hangs (a FIFO opened,
an alias bomb expanded) fails the test instead of hanging the suite. The happy-path tests at the
end pin what the fixes newly accept (U+2028 inside a JSON string, dictionary-encoded Parquet, a
pretty-printed JSON array, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
import torch
from safetensors.torch import save_file

from prime_model import (
    ConfigError,
    DataValidationError,
    PredictorConfig,
    PrimeError,
    TrainingConfig,
)
from prime_model.cli.main import build_parser
from prime_model.data import TurnValidationError, read_turns, validate_turns
from prime_model.encode.encoding import FORMAT, FORMAT_VERSION, EncodedTurns
from prime_model.runtime.batch_prediction import load_embeddings
from tests.reliability.support import Rows, Trigger, valid_rows

Arrange = Callable[[Path], Trigger]
DEADLINE_S = 20.0  # generous on a shared 2-core machine; a hang never returns at all


@dataclass(frozen=True)
class Case:
    """``arrange`` writes the inputs under tmp_path and returns the call that must fail."""

    id: str
    group: str
    arrange: Arrange
    error: type[PrimeError]
    match: str


def _call_with_deadline(trigger: Trigger, seconds: float = DEADLINE_S) -> tuple[object, float]:
    """(what ``trigger`` raised or returned, seconds it took); fails the test if it hangs."""
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(trigger())
        except BaseException as exc:
            outcome.append(exc)

    start = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {seconds} s (it hangs)")
    return outcome[0], time.perf_counter() - start


# ---------------------------------------------------------------------------------- inputs


def _jsonl(rows: Rows) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _qrecc(rows: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "Conversation_no": 1,
            "Conversation_source": "quac",
            "Turn_no": t + 1,
            "Context": [f"q{i}" for i in range(t)],
            "Question": f"question {t}?",
            "Rewrite": f"rewrite {t}",
            "Answer": f"answer {t}",
        }
        for t in range(rows)
    ]


def _read(content: str, name: str, fmt: str | None = None) -> Arrange:
    target = "rewrite" if fmt == "qrecc" else "passage"

    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return lambda: read_turns(path, fmt, target=target)

    return arrange


def _with_line(line: str) -> str:
    """A valid JSONL file whose third line is replaced by ``line``."""
    lines = _jsonl(valid_rows()).splitlines()
    lines[2] = line
    return "\n".join(lines) + "\n"


def _validated(edit: Callable[[Rows], Rows]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "turns.jsonl"
        path.write_text(_jsonl(edit(valid_rows())), encoding="utf-8")
        return lambda: validate_turns(read_turns(path), source=str(path))

    return arrange


def _query(index: int, text: str) -> Callable[[Rows], Rows]:
    return lambda rows: [{**r, "query": text} if i == index else r for i, r in enumerate(rows)]


def _yaml(text: str, cls: type[PredictorConfig] | type[TrainingConfig]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "config.yaml"
        path.write_text(text, encoding="utf-8")
        return lambda: cls.from_yaml(path)

    return arrange


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _special(kind: str, name: str) -> Callable[[Path], Path]:
    """Make ``tmp_path / name`` a FIFO, a symlink loop or a dangling symlink."""

    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "loop":
            other = tmp_path / f"other-{name}"
            path.symlink_to(other)
            other.symlink_to(path)
        else:
            path.symlink_to(tmp_path / "nowhere")
        return path

    return make


def _on_special(kind: str, name: str, load: Callable[[Path], object]) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = _special(kind, name)(tmp_path)
        return lambda: load(path)

    return arrange


def _run_check_config(path: Path) -> object:
    import run  # noqa: PLC0415 - imports zenml: paid only by the cases that need it

    run.check_config(str(path), "training")
    return None


def _run_config(text: str) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        import run  # noqa: F401, PLC0415 - zenml's import (seconds) is not the call's time

        path = tmp_path / "pipeline.yaml"
        path.write_text(text, encoding="utf-8")
        return lambda: _run_check_config(path)

    return arrange


def _run_on_fifo(tmp_path: Path) -> Trigger:
    import run  # noqa: F401, PLC0415 - zenml's import (seconds) is not the call's time

    path = _special("fifo", "pipeline.yaml")(tmp_path)
    return lambda: _run_check_config(path)


def _encoded(header_changes: dict[str, str | None]) -> Arrange:
    """An encoded-turns file whose header has ``header_changes`` (None: field removed)."""

    def arrange(tmp_path: Path) -> Trigger:
        m, n, d = 2, 1, 4
        tensors = {
            "context": torch.zeros(m, n, d),
            "context_mask": torch.ones(m, n, dtype=torch.bool),
            "query": torch.zeros(m, d),
            "target": torch.zeros(m, d),
            "target_index": torch.zeros(m, dtype=torch.long),
            "corpus": torch.zeros(1, d),
            "turns": torch.zeros(m, dtype=torch.long),
        }
        header: dict[str, str | None] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder_name": "test",
            "dim": str(d),
            "conversation_ids": json.dumps(["c0", "c1"]),
            "corpus_ids": json.dumps(["p0"]),
            **header_changes,
        }
        path = tmp_path / "encoded.safetensors"
        kept = {k: v for k, v in header.items() if v is not None}
        save_file(tensors, str(path), metadata=kept)
        return lambda: EncodedTurns.load(path)

    return arrange


def _embeddings(cells: list[Any], arrow_type: pa.DataType | None = None) -> Arrange:
    def arrange(tmp_path: Path) -> Trigger:
        path = tmp_path / "embeddings.parquet"
        table = pa.table(
            {
                "conversation_id": [f"c{i}" for i in range(len(cells))],
                "turn": list(range(len(cells))),
                "embedding": pa.array(cells, type=arrow_type),
            }
        )
        pq.write_table(table, path)
        return lambda: load_embeddings(path)

    return arrange


def _cli(*argv: str, blocker: str, kind: str = "file") -> Arrange:
    """``prime ARGV`` whose output path ``blocker`` is a file (or a directory, a FIFO)."""

    def arrange(tmp_path: Path) -> Trigger:
        blocked = tmp_path / blocker
        if kind == "file":
            blocked.write_text("a file, not a directory\n", encoding="utf-8")
        elif kind == "dir":
            blocked.mkdir()
        else:
            os.mkfifo(blocked)
        (tmp_path / "turns.jsonl").write_text(_jsonl(valid_rows()), encoding="utf-8")
        args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
        parsed = build_parser().parse_args(args)
        return lambda: parsed.command(parsed)

    return arrange


DEEP = "[" * 100_000
HUGE = "9" * 5_000

SILENT_CASES = [
    Case(
        "yaml-yes-as-int",
        "silent",
        _yaml("num_layers: yes\n", PredictorConfig),
        ConfigError,
        "num_layers: got the boolean True (YAML reads yes/no/on/off/true/false as booleans); "
        "expected int",
    ),
    Case(
        "yaml-true-as-int",
        "silent",
        _yaml("batch_size: true\n", TrainingConfig),
        ConfigError,
        "batch_size: got the boolean True",
    ),
    Case(
        "yaml-quoted-int",
        "silent",
        _yaml('batch_size: "32"\n', TrainingConfig),
        ConfigError,
        "batch_size: got the string '32'; expected int, written unquoted in YAML",
    ),
    Case(
        "yaml-quoted-float",
        "silent",
        _yaml("learning_rate: '0.001'\n", TrainingConfig),
        ConfigError,
        "learning_rate: got the string '0.001'; expected float",
    ),
    Case(
        "yaml-quoted-optional-int",
        "silent",
        _yaml('max_steps: "100"\n', TrainingConfig),
        ConfigError,
        "max_steps: got the string '100'; expected int",
    ),
    Case(
        "yaml-string-as-bool",
        "silent",
        _yaml('residual: "yes"\n', PredictorConfig),
        ConfigError,
        "residual: got the string 'yes'; expected bool (true/false)",
    ),
    Case(
        "pipeline-config-yes-as-int",
        "silent",
        _run_config("parameters:\n  predictor: {num_layers: yes}\n"),
        ConfigError,
        "parameters.predictor.num_layers: got the boolean True",
    ),
    Case(
        "pipeline-config-quoted-fraction",
        "silent",
        _run_config('parameters:\n  val_fraction: "0.2"\n'),
        ConfigError,
        "parameters.val_fraction: got the string '0.2'; expected float",
    ),
    Case(
        "jsonl-duplicate-key",
        "silent",
        _read(
            _with_line('{"conversation_id": "c0", "turn": 2, "query": "a", "query": "b"}'),
            "turns.jsonl",
        ),
        DataValidationError,
        "duplicate key 'query' in a JSON object on line 3; expected each key at most once",
    ),
    Case(
        "json-array-duplicate-key",
        "silent",
        _read('[{"Conversation_no": 1, "Conversation_no": 2}]', "qrecc.json", "qrecc"),
        DataValidationError,
        "duplicate key 'Conversation_no' in a JSON object",
    ),
    Case(
        "jsonl-conversation-id-object",
        "silent",
        _read(
            _jsonl(
                [{**r, "conversation_id": {"a": 1}} for r in valid_rows()[:1]] + valid_rows()[1:]
            ),
            "turns.jsonl",
        ),
        DataValidationError,
        "row 0 column 'conversation_id' is the dict {'a': 1}; expected a string or integer",
    ),
    Case(
        "jsonl-conversation-id-list",
        "silent",
        _read(
            _jsonl([*valid_rows()[:3], {**valid_rows()[3], "conversation_id": ["c", 1]}]), "t.jsonl"
        ),
        DataValidationError,
        "row 3 column 'conversation_id' is the list ['c', 1]; expected a string or integer",
    ),
    Case(
        "jsonl-conversation-id-bool",
        "silent",
        _read(_jsonl([{**valid_rows()[0], "conversation_id": True}]), "t.jsonl"),
        DataValidationError,
        "row 0 column 'conversation_id' is the bool True; expected a string or integer",
    ),
    Case(
        "qrecc-conversation-no-list",
        "silent",
        _read(json.dumps([{**_qrecc(1)[0], "Conversation_no": [1, 2]}]), "q.json", "qrecc"),
        DataValidationError,
        "record 0 field 'Conversation_no' is the list [1, 2]; expected a string or integer id",
    ),
    Case(
        "query-only-zero-width-space",
        "silent",
        _validated(_query(4, "\u200b\u200b")),
        TurnValidationError,
        "'query' is not blank",
    ),
    Case(
        "query-only-joiners-and-bom",
        "silent",
        _validated(_query(0, "\u200c\u200d \u2060\ufeff\t")),
        TurnValidationError,
        "'query' is not blank",
    ),
    Case(
        "target-only-bidi-controls",
        "silent",
        _validated(lambda rows: [{**rows[0], "target": "\u202e\u202c\u00ad"}, *rows[1:]]),
        TurnValidationError,
        "'target' is not blank",
    ),
]

HANG_CASES = [
    Case(
        "yaml-billion-laughs",
        "hang",
        _yaml(_billion_laughs(), TrainingConfig),
        ConfigError,
        "YAML expands to more than 100000 values once its aliases (*name) are followed",
    ),
    Case(
        "pipeline-config-billion-laughs",
        "hang",
        _run_config(_billion_laughs()),
        ConfigError,
        "YAML expands to more than 100000 values",
    ),
    Case(
        "config-fifo",
        "hang",
        _on_special("fifo", "config.yaml", TrainingConfig.from_yaml),
        ConfigError,
        "config.yaml: cannot read config file: it is a named pipe (FIFO)",
    ),
    Case(
        "pipeline-config-fifo",
        "hang",
        _run_on_fifo,
        ConfigError,
        "pipeline.yaml: cannot read config file: it is a named pipe (FIFO)",
    ),
    Case(
        "data-fifo",
        "hang",
        _on_special("fifo", "turns.jsonl", read_turns),
        DataValidationError,
        "turns.jsonl: cannot read data file: it is a named pipe (FIFO)",
    ),
    Case(
        "data-gz-fifo",
        "hang",
        _on_special("fifo", "turns.jsonl.gz", read_turns),
        DataValidationError,
        "turns.jsonl.gz: cannot read data file: it is a named pipe (FIFO)",
    ),
    Case(
        "encoded-turns-fifo",
        "hang",
        _on_special("fifo", "encoded.safetensors", EncodedTurns.load),
        DataValidationError,
        "cannot read encoded-turns file: it is a named pipe (FIFO)",
    ),
    Case(
        "embeddings-fifo",
        "hang",
        _on_special("fifo", "embeddings.parquet", load_embeddings),
        DataValidationError,
        "cannot read embeddings file: it is a named pipe (FIFO)",
    ),
]

CRASH_CASES = [
    Case(
        "jsonl-deep-nesting",
        "crash",
        _read(_with_line(DEEP), "turns.jsonl"),
        DataValidationError,
        "JSON on line 3 nested more than 100 levels deep",
    ),
    Case(
        "json-array-deep-nesting",
        "crash",
        _read("[" + DEEP, "q.json", "qrecc"),
        DataValidationError,
        "JSON nested more than 100 levels deep",
    ),
    Case(
        "csv-history-deep-nesting",
        "crash",
        _read(
            "conversation_id,turn,history,query,target\nc0,0," + '"' + "[" * 5000 + '"' + ",q,t\n",
            "t.csv",
        ),
        DataValidationError,
        "row 0 column 'history' is '[[[[",
    ),
    Case(
        "yaml-deep-nesting",
        "crash",
        _yaml("seed: " + DEEP, TrainingConfig),
        ConfigError,
        "YAML nested more than 100 levels deep",
    ),
    Case(
        "jsonl-huge-integer",
        "crash",
        _read(_with_line(f'{{"conversation_id": "c0", "turn": {HUGE}}}'), "turns.jsonl"),
        DataValidationError,
        "JSON number on line 3 has more than 4300 digits",
    ),
    Case(
        "json-array-huge-integer",
        "crash",
        _read(f'[{{"Conversation_no": {HUGE}}}]', "q.json", "qrecc"),
        DataValidationError,
        "JSON number has more than 4300 digits",
    ),
    Case(
        "yaml-huge-integer",
        "crash",
        _yaml(f"seed: {HUGE}\n", TrainingConfig),
        ConfigError,
        "expected numbers of at most 4300 digits",
    ),
    Case(
        "canard-tsv-huge-turn-number",
        "crash",
        lambda tmp_path: (
            (tmp_path / "x.question.tsv").write_text(f"d_q#{HUGE}\tq\n", encoding="utf-8"),
            (tmp_path / "x.rewrite.tsv").write_text(f"d_q#{HUGE}\tr\n", encoding="utf-8"),
            lambda: read_turns(tmp_path / "x.question.tsv", "canard", target="rewrite"),
        )[-1],
        DataValidationError,
        "line 1 is 'd_q#9999",
    ),
    Case(
        "encoded-turns-missing-ids",
        "crash",
        _encoded({"conversation_ids": None}),
        DataValidationError,
        "header is missing field(s) ['conversation_ids']",
    ),
    Case(
        "encoded-turns-ids-not-json",
        "crash",
        _encoded({"corpus_ids": "[oops"}),
        DataValidationError,
        "header field 'corpus_ids': invalid JSON on line 1",
    ),
    Case(
        "encoded-turns-ids-not-strings",
        "crash",
        _encoded({"conversation_ids": "[1, {}]"}),
        DataValidationError,
        "header field 'conversation_ids' is [1, {}]; expected a JSON list of strings",
    ),
    Case(
        "encoded-turns-ids-deep",
        "crash",
        _encoded({"conversation_ids": DEEP}),
        DataValidationError,
        "nested more than 100 levels deep",
    ),
    Case(
        "encoded-turns-dim-not-a-number",
        "crash",
        _encoded({"dim": "four"}),
        DataValidationError,
        "header field 'dim' is 'four'; expected a positive integer",
    ),
    Case(
        "embeddings-string-cells",
        "crash",
        _embeddings(["0.1, 0.2", "abc"]),
        DataValidationError,
        "row 0 column 'embedding' is '0.1, 0.2'; expected a list of numbers",
    ),
    Case(
        "embeddings-list-of-strings",
        "crash",
        _embeddings([["0.1", "x"]]),
        DataValidationError,
        "row 0 column 'embedding' is",
    ),
    Case(
        "embeddings-null-cell",
        "crash",
        _embeddings([[0.1, 0.2], None]),
        DataValidationError,
        "row 1 column 'embedding' is None; expected a list of numbers",
    ),
    Case(
        "embeddings-ragged",
        "crash",
        _embeddings([[0.1, 0.2], [0.3]]),
        DataValidationError,
        "'embedding' cells have lengths [1, 2]; expected one dimension",
    ),
    Case(
        "train-out-is-a-file",
        "crash",
        _cli("train", "--data", "{tmp}/turns.jsonl", "--out", "{tmp}/out", blocker="out"),
        ConfigError,
        "out: --out folder is a regular file, not a directory; expected a directory",
    ),
    Case(
        "train-out-under-a-file",
        "crash",
        _cli("train", "--data", "{tmp}/turns.jsonl", "--out", "{tmp}/f/run", blocker="f"),
        ConfigError,
        "f/run: --out folder has a parent that is a file, not a directory; expected a directory",
    ),
    Case(
        "predict-out-is-a-directory",
        "crash",
        _cli(
            *("predict", "--model", "{tmp}/m.onnx", "--data", "{tmp}/turns.jsonl"),
            *("--out", "{tmp}/out.parquet"),
            blocker="out.parquet",
            kind="dir",
        ),
        ConfigError,
        "out.parquet: the --out embeddings file is a directory; expected a file path",
    ),
    Case(
        "predict-out-under-a-file",
        "crash",
        _cli(
            *("predict", "--model", "{tmp}/m.onnx", "--data", "{tmp}/turns.jsonl"),
            *("--out", "{tmp}/f/out.parquet"),
            blocker="f",
        ),
        ConfigError,
        "out.parquet: the --out embeddings file has a parent that is a file, not a directory",
    ),
    Case(
        "evaluate-html-is-a-fifo",
        "crash",
        _cli(
            *("evaluate", "--model", "{tmp}/m.onnx", "--data", "{tmp}/turns.jsonl"),
            *("--html", "{tmp}/report.html"),
            blocker="report.html",
            kind="fifo",
        ),
        ConfigError,
        "report.html: the --html report file is a named pipe (FIFO); expected a file path",
    ),
]

UNCLEAR_CASES = [
    Case(
        "data-symlink-loop",
        "unclear",
        _on_special("loop", "turns.jsonl", read_turns),
        DataValidationError,
        "turns.jsonl: cannot read data file: it is a symlink loop",
    ),
    Case(
        "config-symlink-loop",
        "unclear",
        _on_special("loop", "config.yaml", TrainingConfig.from_yaml),
        ConfigError,
        "config.yaml: cannot read config file: it is a symlink loop",
    ),
    Case(
        "data-dangling-symlink",
        "unclear",
        _on_special("dangling", "turns.jsonl", read_turns),
        DataValidationError,
        "it is a dangling symlink (its target",
    ),
    Case(
        "jsonl-pretty-printed-object",
        "unclear",
        _read(json.dumps(valid_rows()[0], indent=2), "turns.jsonl"),
        DataValidationError,
        "is a single JSON object spanning several lines (keys ['conversation_id', 'history'",
    ),
    Case(
        "qrecc-pretty-printed-object",
        "unclear",
        _read(json.dumps({"data": _qrecc()}, indent=2), "qrecc.json", "qrecc"),
        DataValidationError,
        "is a single JSON object spanning several lines (keys ['data']), not JSON lines; "
        "expected a JSON array of objects",
    ),
    Case(
        "jsonl-pretty-printed-broken-array",
        "unclear",
        _read(json.dumps(valid_rows()[:2], indent=2)[:-3], "turns.jsonl"),
        DataValidationError,
        "expected a JSON array of objects, or one JSON object per line",
    ),
    Case(
        "json-nan-constant",
        "unclear",
        _read(_with_line('{"conversation_id": "c0", "turn": NaN}'), "turns.jsonl"),
        DataValidationError,
        "NaN on line 3 is not valid JSON",
    ),
]

CASES = [*SILENT_CASES, *HANG_CASES, *CRASH_CASES, *UNCLEAR_CASES]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (links and FIFOs by kind, never opened)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = f"link:{path.readlink()}"
        elif path.is_fifo():
            out[str(path.relative_to(root))] = "fifo"
        elif path.is_dir():
            out[str(path.relative_to(root))] = "dir"
        else:
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_gives_a_typed_error_and_writes_nothing(case: Case, tmp_path: Path) -> None:
    trigger = case.arrange(tmp_path)
    before = _snapshot(tmp_path)
    raised, _ = _call_with_deadline(trigger)
    assert isinstance(raised, PrimeError), f"not a PrimeError: {raised!r}"
    assert type(raised) is case.error, f"{type(raised).__name__}: {raised}"
    assert case.match in str(raised), str(raised)
    assert len(str(raised)) < 2_000, "the message is not bounded"
    assert _snapshot(tmp_path) == before, "the failed call left files behind"


def test_the_table_has_unique_ids_and_covers_every_class() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert {case.group for case in CASES} == {"silent", "hang", "crash", "unclear"}


def test_an_alias_bomb_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_billion_laughs(), encoding="utf-8")
    raised, seconds = _call_with_deadline(lambda: TrainingConfig.from_yaml(path))
    assert isinstance(raised, ConfigError)
    assert seconds < 0.5, f"took {seconds:.2f} s"


def test_a_huge_bad_value_is_shown_bounded(tmp_path: Path) -> None:
    """Under the alias limit, but far too big to print: the message shows a bounded repr."""
    path = tmp_path / "big.yaml"
    path.write_text("a: &a [" + ", ".join(["x" * 50] * 1000) + "]\nseed: *a\n", encoding="utf-8")
    raised, _ = _call_with_deadline(lambda: TrainingConfig.from_yaml(path))
    assert isinstance(raised, ConfigError)
    assert "seed" in str(raised)
    assert len(str(raised)) < 1_000, len(str(raised))


# ---------------------------------------------------------------- what the fixes now accept


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085"])
def test_line_separators_inside_a_json_string_are_read(tmp_path: Path, char: str) -> None:
    rows = valid_rows()
    rows[1]["query"] = f"first{char}second"
    path = tmp_path / "turns.jsonl"
    path.write_text(_jsonl(rows), encoding="utf-8")
    assert char in path.read_text(encoding="utf-8")  # raw, not escaped as \\u2028
    turns = read_turns(path)
    assert len(turns) == len(rows)
    assert turns["query"][1] == f"first{char}second"


def test_crlf_lines_and_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _jsonl(valid_rows()).replace("\n", "\r\n").encode())
    turns = read_turns(path)
    assert turns["conversation_id"].tolist()[:3] == ["c0", "c0", "c0"]
    assert turns["target_id"][11] == "p3-2"  # no '\r' left on the last field


def test_dictionary_encoded_parquet_strings_are_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame(valid_rows())
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name in ("conversation_id", "query", "target", "target_id"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table[name].combine_chunks().dictionary_encode())
    path = tmp_path / "dict.parquet"
    pq.write_table(table, path)
    category = tmp_path / "category.parquet"
    frame.astype({"conversation_id": "category", "query": "category"}).to_parquet(category)
    for file in (path, category):
        turns = read_turns(file)
        assert turns["query"].dtype == object
        assert turns["query"].tolist() == frame["query"].tolist()
        assert turns["conversation_id"].tolist() == frame["conversation_id"].tolist()
        assert validate_turns(turns, source=str(file)).success


def test_pretty_printed_json_arrays_are_read(tmp_path: Path) -> None:
    turns_path = tmp_path / "turns.jsonl"
    turns_path.write_text(json.dumps(valid_rows(), indent=2), encoding="utf-8")
    assert read_turns(turns_path)["query"].tolist() == [r["query"] for r in valid_rows()]
    qrecc = tmp_path / "qrecc.json"
    qrecc.write_text(json.dumps(_qrecc(), indent=2), encoding="utf-8")
    frame = read_turns(qrecc, "qrecc", target="rewrite")
    assert frame["target"].tolist() == ["rewrite 0", "rewrite 1", "rewrite 2"]
    assert frame["conversation_id"].tolist() == ["quac_1"] * 3


def test_integer_ids_and_visible_text_with_invisible_characters_are_kept(tmp_path: Path) -> None:
    rows = valid_rows()
    for row in rows:
        row["conversation_id"] = int(row["conversation_id"][1:])
    rows[0]["query"] = "zero\u200bwidth"
    path = tmp_path / "turns.jsonl"
    path.write_text(_jsonl(rows), encoding="utf-8")
    turns = read_turns(path)
    assert turns["conversation_id"].tolist()[:4] == ["0", "0", "0", "1"]
    assert validate_turns(turns).success


def test_numbers_written_as_numbers_still_load(tmp_path: Path) -> None:
    path = tmp_path / "training.yaml"
    path.write_text(
        "learning_rate: 3e-4\nbatch_size: 16\nmax_steps: 1000\ndevices: '1'\n"
        "symmetric_loss: true\ngradient_clip_val: 1\n",
        encoding="utf-8",
    )
    config = TrainingConfig.from_yaml(path)
    assert config.learning_rate == pytest.approx(3e-4)
    assert (config.batch_size, config.max_steps, config.devices) == (16, 1000, "1")
    assert config.symmetric_loss is True
    assert config.gradient_clip_val == 1.0
