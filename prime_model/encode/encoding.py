"""Turn tables -> tensors: every unique text is encoded once, then gathered into a bundle.

Histories repeat across the turns of a conversation and passages repeat across conversations, so
encoding unique texts (across all splits at once) is what keeps the default run in minutes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from prime_model.atomic import atomic_file
from prime_model.data.schema import (
    EXTRA_TARGET_COLUMN,
    ROLE_COLUMN,
    role_ids,
    truncate_histories,
    without_extra_targets,
)
from prime_model.encode.encoders import YEncoder
from prime_model.encode.texts import TextTable, fitted_concat_texts
from prime_model.errors import DataValidationError
from prime_model.files import check_regular_file
from prime_model.parsing import parse_json
from prime_model.text import shown

logger = logging.getLogger(__name__)

FORMAT = "prime-encoded-turns"
FORMAT_VERSION = "1"
_TENSORS = ("context", "context_mask", "query", "target", "target_index", "corpus", "turns")


@dataclass(frozen=True)
class EncodedTurns:
    """Everything training and evaluation read, with no text left: M turns, K unique targets.

    context (M×N×D, zero-padded, oldest turn first), context_mask (M×N, True = real turn),
    query (M×D), target (M×D), target_index (M,) into corpus (K×D), plus ids for reporting.
    Optional: context_roles (M×N int64: 0 unknown, 1 user, 2 system) and concat (M×D, history +
    query embedded as one text), for predictors that read them; extra_target (M×D, zero rows
    where extra_target_mask (M,) is False), a second positive training reads (not evaluation).
    """

    context: Tensor
    context_mask: Tensor
    query: Tensor
    target: Tensor
    target_index: Tensor
    corpus: Tensor
    conversation_ids: list[str]
    turns: Tensor
    corpus_ids: list[str]
    encoder_name: str
    dim: int
    context_roles: Tensor | None = None
    concat: Tensor | None = None
    extra_target: Tensor | None = None
    extra_target_mask: Tensor | None = None

    def __post_init__(self) -> None:
        m, n = self.context_mask.shape
        expected = {
            "context": (m, n, self.dim),
            "query": (m, self.dim),
            "target": (m, self.dim),
            "target_index": (m,),
            "turns": (m,),
            "corpus": (len(self.corpus_ids), self.dim),
        }
        wrong = [
            f"{name} {tuple(getattr(self, name).shape)} != {shape}"
            for name, shape in expected.items()
            if tuple(getattr(self, name).shape) != shape
        ]
        optional = {
            "context_roles": (m, n),
            "concat": (m, self.dim),
            "extra_target": (m, self.dim),
            "extra_target_mask": (m,),
        }
        wrong += [
            f"{name} {tuple(getattr(self, name).shape)} != {shape}"
            for name, shape in optional.items()
            if getattr(self, name) is not None and tuple(getattr(self, name).shape) != shape
        ]
        if len(self.conversation_ids) != m:
            wrong.append(f"{len(self.conversation_ids)} conversation_ids for {m} turns")
        if (self.extra_target is None) != (self.extra_target_mask is None):
            wrong.append("extra_target and extra_target_mask come together, got only one")
        if wrong:
            raise DataValidationError(f"inconsistent EncodedTurns: {'; '.join(wrong)}")

    def __len__(self) -> int:
        return int(self.query.shape[0])

    def fingerprint(self) -> str:
        """sha256 of every tensor and id: equal fingerprints mean identical training data."""
        digest = hashlib.sha256(f"{self.encoder_name}:{self.dim}".encode())
        for name in self._tensor_names():
            digest.update(getattr(self, name).contiguous().numpy().tobytes())
        for ids in (self.conversation_ids, self.corpus_ids):
            digest.update(json.dumps(ids).encode())
        return digest.hexdigest()

    def save(self, path: str | Path) -> Path:
        """One safetensors file (ids and encoder in its JSON header); atomic, no pickle."""
        path = Path(path)
        tensors = {name: getattr(self, name).contiguous() for name in self._tensor_names()}
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder_name": self.encoder_name,
            "dim": str(self.dim),
            "conversation_ids": json.dumps(self.conversation_ids),
            "corpus_ids": json.dumps(self.corpus_ids),
        }
        with atomic_file(path) as staging:
            save_file(tensors, str(staging), metadata=header)
        return path

    def _tensor_names(self) -> list[str]:
        return [*_TENSORS, *(name for name in _OPTIONAL if getattr(self, name) is not None)]

    def rows(self, index: Tensor) -> dict[str, Tensor | None]:
        """The per-turn tensors of rows ``index``, as the model's forward takes them."""
        return {
            "context": self.context[index],
            "query": self.query[index],
            "context_mask": self.context_mask[index],
            "context_roles": None if self.context_roles is None else self.context_roles[index],
            "concat": None if self.concat is None else self.concat[index],
        }

    @classmethod
    def load(cls, path: str | Path) -> EncodedTurns:
        """Read a file written by :meth:`save`; anything else is a :class:`DataValidationError`."""
        path = Path(path)
        check_regular_file(path, "encoded-turns file", DataValidationError)
        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
        except (SafetensorError, OSError) as exc:
            raise DataValidationError(
                f"{path}: not a readable encoded-turns file ({shown(str(exc))})"
            ) from None
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise DataValidationError(
                f"{path}: expected {FORMAT} version {FORMAT_VERSION}, got "
                f"{shown(header.get('format'))} version {shown(header.get('format_version'))}"
            )
        missing = sorted(set(_TENSORS) - set(tensors))
        if missing:
            raise DataValidationError(f"{path}: missing tensors {missing}")
        absent = sorted(set(_HEADER) - set(header))
        if absent:
            raise DataValidationError(
                f"{path}: header is missing field(s) {absent}; an encoded-turns file has "
                f"{sorted(_HEADER)}"
            )
        _check_tensors(path, tensors)
        dim = header["dim"]
        if not (dim.isascii() and dim.isdigit() and 0 < len(dim) <= 9 and int(dim) > 0):
            raise DataValidationError(
                f"{path}: header field 'dim' is {shown(dim)}; expected a positive integer"
            )
        return cls(
            **{name: tensors[name] for name in _TENSORS},
            context_roles=tensors.get("context_roles"),
            concat=tensors.get("concat"),
            extra_target=tensors.get("extra_target"),
            extra_target_mask=tensors.get("extra_target_mask"),
            conversation_ids=_id_list(header, "conversation_ids", path),
            corpus_ids=_id_list(header, "corpus_ids", path),
            encoder_name=header["encoder_name"],
            dim=int(dim),
        )


_HEADER = ("conversation_ids", "corpus_ids", "encoder_name", "dim")
_OPTIONAL = ("context_roles", "concat", "extra_target", "extra_target_mask")
# name -> (rank, dtypes it may have, what to call them)
_FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_TENSOR_KINDS: dict[str, tuple[int, tuple[torch.dtype, ...], str]] = {
    "context": (3, _FLOATS, "floating-point"),
    "context_mask": (2, (torch.bool,), "bool"),
    "query": (2, _FLOATS, "floating-point"),
    "target": (2, _FLOATS, "floating-point"),
    "corpus": (2, _FLOATS, "floating-point"),
    "target_index": (1, (torch.int64,), "int64"),
    "turns": (1, (torch.int64,), "int64"),
    "context_roles": (2, (torch.int64,), "int64"),
    "concat": (2, _FLOATS, "floating-point"),
    "extra_target": (2, _FLOATS, "floating-point"),
    "extra_target_mask": (1, (torch.bool,), "bool"),
}


def _check_tensors(path: Path, tensors: Mapping[str, Tensor]) -> None:
    """Ranks, dtypes and the corpus index range, so a foreign file fails here, typed."""
    for name, (rank, dtypes, kind) in _TENSOR_KINDS.items():
        if name in _OPTIONAL and name not in tensors:
            continue
        tensor = tensors[name]
        if tensor.dim() != rank or tensor.dtype not in dtypes:
            raise DataValidationError(
                f"{path}: tensor {name!r} is {tensor.dim()}-D {tensor.dtype}; expected a "
                f"{rank}-D {kind} tensor"
            )
    index, corpus = tensors["target_index"], tensors["corpus"]
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= corpus.shape[0]):
        raise DataValidationError(
            f"{path}: target_index holds values outside [0, {corpus.shape[0]}); expected rows "
            "of corpus"
        )


def _id_list(header: Mapping[str, str], field: str, path: Path) -> list[str]:
    """A header id list: JSON, parsed strictly (no duplicate keys, bounded depth and numbers)."""
    value = parse_json(header[field], f"{path}: header field {field!r}", DataValidationError)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DataValidationError(
            f"{path}: header field {field!r} is {shown(value)}; expected a JSON list of strings"
        )
    return value


def _texts(frame: pd.DataFrame) -> Iterable[str]:
    for history in frame["history"]:
        yield from history
    yield from frame["query"]
    yield from frame["target"]
    yield from _extra_targets(frame)


def _extra_targets(frame: pd.DataFrame) -> list[str]:
    """The ``extra_target`` cells that hold a text (split_sources keeps them on train only)."""
    if EXTRA_TARGET_COLUMN not in frame.columns:
        return []
    return [t for t in frame[EXTRA_TARGET_COLUMN] if isinstance(t, str)]


def encode_splits(
    splits: Mapping[str, pd.DataFrame],
    encoder: YEncoder,
    max_context_length: int,
    *,
    concat: bool = False,
) -> dict[str, EncodedTurns]:
    """Encode each split's turns, calling the encoder once for the union of their unique texts.

    Histories keep their ``max_context_length`` most recent turns. ``concat`` also embeds each
    turn's history + query as one text (what the concat-text baseline and a predictor with
    ``concat_input`` read).
    """
    kept = {name: truncate_histories(f, max_context_length) for name, f in splits.items()}
    joined = {name: fitted_concat_texts(f, encoder) if concat else [] for name, f in kept.items()}
    texts = (t for name, frame in kept.items() for t in (*_texts(frame), *joined[name]))
    table = TextTable(texts, encoder)
    logger.info("encoded %d unique texts with %s", len(table.row), encoder.name)
    return {
        name: _assemble(frame, table, name, joined[name] or None) for name, frame in kept.items()
    }


def encode_turns(
    turns: pd.DataFrame, encoder: YEncoder, max_context_length: int, *, concat: bool = False
) -> EncodedTurns:
    """Encode one turn table (to evaluate or predict: its extra targets, being for training,
    are left out); histories keep their ``max_context_length`` most recent turns."""
    plain = without_extra_targets(turns)
    return encode_splits({"turns": plain}, encoder, max_context_length, concat=concat)["turns"]


def _assemble(
    frame: pd.DataFrame, table: TextTable, name: str, joined: list[str] | None
) -> EncodedTurns:
    if frame.empty:
        raise DataValidationError(f"{name}: no turns to encode; expected at least one row")
    context, context_mask = table.gather_histories(frame["history"].tolist())
    corpus_texts = list(dict.fromkeys(frame["target"]))
    corpus_row = {text: k for k, text in enumerate(corpus_texts)}
    first_id: dict[str, object] = {}
    for text, target_id in zip(frame["target"], frame["target_id"], strict=True):
        first_id.setdefault(text, target_id)
    return EncodedTurns(
        context=context,
        context_mask=context_mask,
        query=table.gather(frame["query"]),
        target=table.gather(frame["target"]),
        target_index=torch.tensor([corpus_row[t] for t in frame["target"]], dtype=torch.long),
        corpus=table.gather(corpus_texts),
        conversation_ids=[str(c) for c in frame["conversation_id"]],
        turns=torch.tensor(frame["turn"].to_numpy(), dtype=torch.long),
        corpus_ids=[corpus_id(first_id[t], t) for t in corpus_texts],
        encoder_name=table.encoder_name,
        dim=table.dim,
        context_roles=_roles(frame, context_mask.shape[1]),
        concat=None if joined is None else table.gather(joined),
        **_extra(frame, table),
    )


def _extra(frame: pd.DataFrame, table: TextTable) -> dict[str, Tensor]:
    """extra_target (M×D, zero rows where absent) and its mask, when any row has one."""
    if EXTRA_TARGET_COLUMN not in frame.columns:
        return {}
    cells = frame[EXTRA_TARGET_COLUMN].tolist()
    mask = torch.tensor([isinstance(t, str) for t in cells], dtype=torch.bool)
    if not mask.any():
        return {}
    pad = table.vectors.shape[0] - 1  # the padding row (zeros)
    rows = [table.row[t] if isinstance(t, str) else pad for t in cells]
    return {"extra_target": table.vectors[rows], "extra_target_mask": mask}


def _roles(frame: pd.DataFrame, width: int) -> Tensor | None:
    """M×N role ids when the table says who spoke, else None (the model reads no roles)."""
    if ROLE_COLUMN not in frame.columns:
        return None
    ids = torch.zeros(len(frame), width, dtype=torch.long)
    for i, (roles, history) in enumerate(zip(frame[ROLE_COLUMN], frame["history"], strict=True)):
        ids[i, : len(history)] = torch.tensor(role_ids(roles, len(history)), dtype=torch.long)
    return ids


def corpus_id(target_id: object, text: str) -> str:
    """The given target_id, else a stable id from the text (so ids exist for every target)."""
    if isinstance(target_id, str) and target_id:
        return target_id
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]  # noqa: S324 - an id
