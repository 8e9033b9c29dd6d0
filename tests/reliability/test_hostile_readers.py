"""Hostile data files, round 3: NULs, lone surrogates, old line endings, decompression bombs,
recursive YAML and nested titles. Each is either read exactly or refused with a typed error that
names the file and the place; none is truncated, stringified or inflated into memory.

The style of ``test_hostile_text``: calls that could hang or allocate without bound run with a
deadline, so a regression fails the test instead of the suite.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from prime_model import ConfigError, DataValidationError, PredictorConfig, PrimeError
from prime_model.cli.main import EXIT_ERROR, main
from prime_model.data import read_turns
from prime_model.data.decompress import gunzip_bounded
from prime_model.retrieve.corpus import read_corpus
from tests.reliability.support import valid_rows

DEADLINE_S = 20.0
FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


def _within_deadline(call: Callable[[], object]) -> tuple[object, float]:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    start = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {DEADLINE_S} s")
    return outcome[0], time.perf_counter() - start


def _refused(call: Callable[[], object], error: type[PrimeError], match: str) -> float:
    raised, seconds = _within_deadline(call)
    assert type(raised) is error, f"{raised!r}"
    assert match in str(raised), str(raised)
    assert len(str(raised)) < 2_000
    return seconds


def _turn_csv(text_with_nul: str) -> str:
    rows = valid_rows()
    rows[1]["query"] = text_with_nul
    frame = pd.DataFrame(rows)
    frame["history"] = [json.dumps(h) for h in frame["history"]]
    return str(frame.to_csv(index=False))


# ------------------------------------------------------------------ silent: a NUL in a CSV cell


def test_a_nul_inside_a_corpus_csv_cell_is_refused_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv"
    path.write_text('id,text\na,"before\0after"\nb,fine\n', encoding="utf-8")
    _refused(lambda: read_corpus(path), DataValidationError, "line 2 holds a NUL byte")


def test_a_nul_inside_a_turn_csv_cell_is_refused_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "turns.csv"
    path.write_text(_turn_csv("question with a\0hidden tail?"), encoding="utf-8")
    _refused(lambda: read_turns(path), DataValidationError, "line 3 holds a NUL byte")


def test_a_nul_in_a_gzipped_csv_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "corpus.csv.gz"
    path.write_bytes(gzip.compress(b"id,text\na,x\0y\n"))
    _refused(lambda: read_corpus(path), DataValidationError, "holds a NUL byte")


def test_a_nul_inside_a_json_string_is_kept_exactly(tmp_path: Path) -> None:
    """JSON escapes it (``\\u0000``), so nothing cuts the text: it round-trips."""
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "before\0after"}) + "\n", encoding="utf-8")
    assert read_corpus(path)["text"].tolist() == ["before\0after"]


# ----------------------------------------------------------- silent: CR-only CANARD line ends


def test_a_canard_tsv_pair_with_cr_only_line_endings_reads_every_turn(tmp_path: Path) -> None:
    for half in ("question", "rewrite"):
        text = (FIXTURES / f"canard_sample.{half}.tsv").read_text(encoding="utf-8")
        cr_only = text.replace("\r\n", "\n").replace("\n", "\r")
        (tmp_path / f"canard_sample.{half}.tsv").write_bytes(cr_only.encode("utf-8"))
    frame = read_turns(tmp_path / "canard_sample.question.tsv", "canard", target="rewrite")
    expected = read_turns(FIXTURES / "canard_sample.question.tsv", "canard", target="rewrite")
    pd.testing.assert_frame_equal(frame, expected)
    assert len(frame) == 4


def test_cr_only_json_lines_are_one_record_per_line(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    lines = [json.dumps(row) for row in valid_rows()]
    path.write_bytes("\r".join(lines).encode("utf-8"))
    assert len(read_turns(path)) == len(lines)


# ---------------------------------------------------------- crashes: lone surrogates in files


def test_a_lone_surrogate_in_a_corpus_line_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": "x\\ud800y"}\n')
    _refused(lambda: read_corpus(path), DataValidationError, "'text' on line 2 holds a lone")


def test_prime_index_on_a_surrogate_corpus_ends_with_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "\\udc80", "text": "fine"}\n')
    argv = ["index", "--quiet", "--corpus", str(path), "--out", str(tmp_path / "index")]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "lone surrogate" in err and "Traceback" not in err
    assert not (tmp_path / "index").exists()


def test_a_lone_surrogate_in_a_turn_history_is_a_typed_error(tmp_path: Path) -> None:
    rows = valid_rows()
    rows[2]["history"] = ["fine", "\ud83d"]
    path = tmp_path / "turns.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="ascii")
    _refused(lambda: read_turns(path), DataValidationError, "'history[1]' on line 3")


def test_a_surrogate_pair_is_an_ordinary_character(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "rocket \\ud83d\\ude80"}\n', encoding="ascii")
    assert read_corpus(path)["text"].tolist() == ["rocket \U0001f680"]


# -------------------------------------------------------------- crashes: decompression bombs


def _bomb(path: Path, megabytes: int = 300) -> Path:
    """``megabytes`` MB of spaces in a few hundred KB of gzip."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    with path.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(deflate.compress(block))
        handle.write(deflate.flush())
    return path


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("turns.jsonl.gz", read_turns),
        ("turns.csv.gz", read_turns),
        ("corpus.jsonl.gz", read_corpus),
        ("topiocqa.json.gz", lambda p: read_turns(p, "topiocqa")),
        ("qrecc.json.gz", lambda p: read_turns(p, "qrecc", target="rewrite")),
    ],
)
def test_a_gzip_bomb_is_refused_after_a_bounded_read(
    tmp_path: Path, name: str, read: Callable[[Path], object]
) -> None:
    path = _bomb(tmp_path / name)
    assert path.stat().st_size < 2 << 20
    seconds = _refused(lambda: read(path), DataValidationError, "not a decompression bomb")
    assert seconds < 10


def test_the_absolute_cap_holds_for_data_that_compresses_normally(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(b"%d\n" % i for i in range(100_000))))
    _refused(
        lambda: gunzip_bounded(path, max_bytes=10_000),
        DataValidationError,
        "decompresses to more than 10000 bytes",
    )


def test_a_truncated_or_concatenated_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(b"x" * 100_000)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    _refused(lambda: read_turns(path), DataValidationError, "not a readable gzip file")
    joined = tmp_path / "joined.gz"  # `cat a.gz b.gz`: two members, one stream
    joined.write_bytes(gzip.compress(b"first ") + gzip.compress(b"second"))
    assert gunzip_bounded(joined) == b"first second"


def test_a_gzipped_file_of_ordinary_size_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in valid_rows()).encode()))
    assert len(read_turns(path)) == len(valid_rows())


# ---------------------------------------------------------------- hang: recursive YAML alias


@pytest.mark.parametrize(
    "text",
    ["input_dim: &a [*a]\n", "hidden_dim: &a {x: *a}\n", "num_layers: &a [1, [2, *a]]\n"],
)
def test_a_recursive_yaml_alias_is_refused_at_once(tmp_path: Path, text: str) -> None:
    path = tmp_path / "predictor.yaml"
    path.write_text(text, encoding="utf-8")
    seconds = _refused(lambda: PredictorConfig.from_yaml(path), ConfigError, "expands forever")
    assert seconds < 1


def test_shared_yaml_aliases_that_do_not_recurse_still_load(tmp_path: Path) -> None:
    path = tmp_path / "predictor.yaml"
    path.write_text("input_dim: &d 16\noutput_dim: *d\nhidden_dim: 32\nnum_heads: 4\n")
    config = PredictorConfig.from_yaml(path)
    assert config.input_dim == config.output_dim == 16


# ------------------------------------------------------ silent: a TopiOCQA title of another type

TOPIOCQA = FIXTURES / "topiocqa_sample.json"


def _topiocqa_with_title(tmp_path: Path, title: object) -> Path:
    records = json.loads(TOPIOCQA.read_text(encoding="utf-8"))
    records[1]["Gold_passage"]["title"] = title
    path = tmp_path / "topiocqa.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.mark.parametrize("title", [["Canberra", "ACT"], {"en": "Canberra"}, 7, True])
def test_a_topiocqa_title_that_is_not_a_string_is_refused_not_stringified(
    tmp_path: Path, title: object
) -> None:
    path = _topiocqa_with_title(tmp_path, title)
    _refused(
        lambda: read_turns(path, "topiocqa"),
        DataValidationError,
        "record 1 field 'Gold_passage.title' is",
    )


@pytest.mark.parametrize(("title", "prefix"), [(None, ""), ("", ""), ("Canberra", "Canberra: ")])
def test_a_missing_or_string_topiocqa_title_reads_as_before(
    tmp_path: Path, title: str | None, prefix: str
) -> None:
    frame = read_turns(_topiocqa_with_title(tmp_path, title), "topiocqa")
    records = json.loads(TOPIOCQA.read_text(encoding="utf-8"))
    assert frame.loc[1, "target"] == prefix + records[1]["Gold_passage"]["text"]
