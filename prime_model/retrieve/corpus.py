"""What the index holds: the training targets, or a user's corpus file of ``id`` + ``text``.

The ids of training targets are the ones evaluation uses (``target_id``, else a hash of the
text), so a hit can be checked against the turn table it came from.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

import pandas as pd
from pydantic import Field

from prime_model.config import FrozenConfig
from prime_model.data.records import (
    check_file,
    data_suffix,
    id_field,
    load_records,
    read_bytes,
    read_csv_bytes,
    require,
    text_field,
)
from prime_model.encode.encoders import YEncoder
from prime_model.encode.encoding import corpus_id
from prime_model.encode.identity import encoder_fingerprint
from prime_model.errors import DataValidationError
from prime_model.retrieve.index import IndexConfig, RetrievalIndex
from prime_model.text import is_blank, shown

CORPUS_COLUMNS: Final = ("id", "text")
_FORMATS: Final = (".jsonl", ".json", ".parquet", ".csv")


class CorpusSource(FrozenConfig):
    """``path: null`` indexes the unique targets of the training turns."""

    path: str | None = Field(None, description="corpus file (jsonl/json/parquet/csv: id, text)")


def corpus_from_turns(turns: pd.DataFrame) -> pd.DataFrame:
    """Unique targets in first-seen order, with the ids evaluation gives them."""
    first = turns.drop_duplicates("target")
    if first.empty:
        raise DataValidationError("no targets to index; expected a turn table with rows")
    return pd.DataFrame(
        {
            "id": [
                corpus_id(i, t) for i, t in zip(first["target_id"], first["target"], strict=True)
            ],
            "text": first["target"].tolist(),
        }
    ).drop_duplicates("id", ignore_index=True)


def read_corpus(path: str | Path) -> pd.DataFrame:
    """A corpus file's ``id`` and ``text`` columns; every bad row is a typed error naming it."""
    path = Path(path)
    check_file(path)
    suffix = data_suffix(path)
    if suffix not in _FORMATS:
        raise DataValidationError(
            f"{path}: unknown corpus format {suffix!r}; expected one of {list(_FORMATS)}"
        )
    json_file = suffix in (".jsonl", ".json")
    records = load_records(path) if json_file else _frame_records(path, suffix)
    ids, texts = [], []
    for index, record in enumerate(records):
        require(record, CORPUS_COLUMNS, path, index, "corpus")
        ids.append(id_field(record, "id", path, index))
        text = text_field(record, "text", path, index)
        if is_blank(text):
            raise DataValidationError(
                f"{path}: record {index} has a blank text; expected text to retrieve"
            )
        texts.append(text)
    if not ids:
        raise DataValidationError(f"{path}: no corpus items; expected at least one id + text")
    corpus = pd.DataFrame({"id": ids, "text": texts})
    repeated = corpus["id"][corpus["id"].duplicated()].unique().tolist()
    if repeated:
        raise DataValidationError(
            f"{path}: ids {shown(repeated[:5])} occur more than once; expected unique ids"
        )
    return corpus


def _frame_records(path: Path, suffix: str) -> list[dict[str, object]]:
    raw = io.BytesIO(read_bytes(path) if suffix == ".parquet" else read_csv_bytes(path))
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(raw)
        else:  # every cell as text, empty cells as "" (then refused as blank, by row)
            frame = pd.read_csv(raw, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataValidationError(
            f"{path}: not a readable {suffix[1:]} file ({shown(str(exc))})"
        ) from None
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def build_index(
    corpus: pd.DataFrame, encoder: YEncoder, config: IndexConfig | None = None
) -> RetrievalIndex:
    """Encode every corpus text with the Y-Encoder (the targets' space) and index it."""
    texts = corpus["text"].tolist()
    vectors = encoder.encode(texts)
    return RetrievalIndex.build(
        corpus["id"].tolist(),
        texts,
        vectors,
        encoder_name=encoder.name,
        encoder_fingerprint=encoder_fingerprint(encoder),
        config=config,
    )
