from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from prime_model import DataValidationError
from prime_model.data import Turn, turns_to_frame
from prime_model.encode.encoding import EncodedTurns, encode_splits, encode_turns
from tests.conftest import CountingEncoder


def _conversation(cid: str, n: int, topic: str) -> list[Turn]:
    turns: list[Turn] = []
    history: list[str] = []
    for t in range(n):
        query, answer = f"{topic} q{t}", f"{topic} passage {t}"
        turns.append(
            Turn(
                conversation_id=cid,
                turn=t,
                history=list(history),
                query=query,
                target=answer,
                target_id=f"{topic}:{t}",
            )
        )
        history += [query, answer]
    return turns


@pytest.fixture
def frame() -> pd.DataFrame:
    return turns_to_frame(_conversation("a", 3, "alpha") + _conversation("b", 2, "beta"))


def test_every_unique_text_is_encoded_exactly_once(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    encoded = encode_turns(frame, encoder, max_context_length=10)
    assert len(encoder.calls) == 1
    sent = encoder.calls[0]
    assert len(sent) == len(set(sent))
    # 5 queries + 5 passages; history texts are those same queries/passages
    assert set(sent) == {f"alpha q{i}" for i in range(3)} | {
        f"alpha passage {i}" for i in range(3)
    } | {"beta q0", "beta q1", "beta passage 0", "beta passage 1"}
    assert len(encoded) == 5


def test_bundle_contents_match_the_encoder(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    encoded = encode_turns(frame, encoder, max_context_length=10)
    vec = {t: torch.from_numpy(encoder.encode([t])[0]) for t in encoder.calls[0]}
    assert encoded.context.shape == (5, 4, 8)  # longest history: alpha turn 2 has 4 texts
    assert encoded.context_mask.sum(1).tolist() == [0, 2, 4, 0, 2]
    torch.testing.assert_close(encoded.context[2, 3], vec["alpha passage 1"])
    assert torch.all(encoded.context[~encoded.context_mask] == 0)  # zero padding
    torch.testing.assert_close(encoded.query[4], vec["beta q1"])
    torch.testing.assert_close(encoded.target[1], vec["alpha passage 1"])
    assert encoded.corpus_ids == ["alpha:0", "alpha:1", "alpha:2", "beta:0", "beta:1"]
    torch.testing.assert_close(encoded.corpus[encoded.target_index], encoded.target)
    assert encoded.conversation_ids == ["a", "a", "a", "b", "b"]
    assert encoded.turns.tolist() == [0, 1, 2, 0, 1]
    assert (encoded.encoder_name, encoded.dim) == ("counting-stub", 8)


def test_histories_keep_the_most_recent_turns(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    encoded = encode_turns(frame, encoder, max_context_length=3)
    assert encoded.context.shape[1] == 3
    assert "alpha q0" in encoder.calls[0]  # still a query of turn 0
    vec = torch.from_numpy(encoder.encode(["alpha passage 0"])[0])
    torch.testing.assert_close(encoded.context[2, 0], vec)  # oldest kept of [q0, p0, q1, p1]


def test_splits_share_one_encoder_call(frame: pd.DataFrame) -> None:
    encoder = CountingEncoder()
    out = encode_splits({"train": frame.iloc[:3], "val": frame.iloc[3:]}, encoder, 10)
    assert len(encoder.calls) == 1
    assert [len(out["train"]), len(out["val"])] == [3, 2]
    assert out["val"].corpus_ids == ["beta:0", "beta:1"]  # each split has its own corpus


def test_missing_target_ids_get_stable_text_ids() -> None:
    turns = [Turn(conversation_id="c", turn=0, history=[], query="q", target="same text")]
    a = encode_turns(turns_to_frame(turns), CountingEncoder(), 4)
    b = encode_turns(turns_to_frame(turns), CountingEncoder(), 4)
    assert a.corpus_ids == b.corpus_ids
    assert a.corpus_ids[0].startswith("sha1:")


def test_save_load_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    encoded = encode_turns(frame, CountingEncoder(), 10)
    path = encoded.save(tmp_path / "sub" / "train.safetensors")
    loaded = EncodedTurns.load(path)
    for name in ("context", "context_mask", "query", "target", "target_index", "corpus", "turns"):
        assert torch.equal(getattr(loaded, name), getattr(encoded, name)), name
    assert loaded.conversation_ids == encoded.conversation_ids
    assert loaded.corpus_ids == encoded.corpus_ids
    assert (loaded.encoder_name, loaded.dim) == (encoded.encoder_name, encoded.dim)
    assert [p.name for p in path.parent.iterdir()] == ["train.safetensors"]


def test_load_refuses_other_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 40)
    with pytest.raises(DataValidationError, match="not a readable encoded-turns file"):
        EncodedTurns.load(garbage)
    other = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(
        DataValidationError, match="expected prime-encoded-turns version 1, got None"
    ):
        EncodedTurns.load(other)
    save_file(
        {"w": torch.zeros(2)},
        str(other),
        metadata={"format": "prime-encoded-turns", "format_version": "1"},
    )
    with pytest.raises(DataValidationError, match="missing tensors"):
        EncodedTurns.load(other)
    with pytest.raises(
        DataValidationError, match=r"absent\.safetensors: no such encoded-turns file"
    ):
        EncodedTurns.load(tmp_path / "absent.safetensors")


def test_inconsistent_bundle_is_refused(frame: pd.DataFrame) -> None:
    encoded = encode_turns(frame, CountingEncoder(), 10)
    with pytest.raises(DataValidationError, match=r"query \(4, 8\) != \(5, 8\)"):
        EncodedTurns(**{**encoded.__dict__, "query": encoded.query[:4]})
    with pytest.raises(DataValidationError, match="4 conversation_ids for 5 turns"):
        EncodedTurns(**{**encoded.__dict__, "conversation_ids": encoded.conversation_ids[:4]})


def test_empty_split_is_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="val: no turns to encode"):
        encode_splits({"val": frame.iloc[:0]}, CountingEncoder(), 10)


def test_roles_and_concat_are_encoded_and_survive_a_round_trip(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    roles = [["user", "system"] * (len(h) // 2) for h in frame["history"]]
    with_roles = frame.copy()
    with_roles["history_roles"] = pd.Series(roles, dtype=object)
    encoder = CountingEncoder()
    encoded = encode_turns(with_roles, encoder, 3, concat=True)
    assert encoded.context_roles is not None and encoded.concat is not None
    # turn 2 of "a": history q0 a0 q1 a1 keeps its 3 most recent entries: a0 q1 a1
    assert encoded.context_roles[2].tolist() == [2, 1, 2]
    assert encoded.context_roles[0].tolist() == [0, 0, 0]  # no history: padding
    joined = "alpha passage 0 alpha q1 alpha passage 1 alpha q2"
    assert torch.equal(encoded.concat[2], torch.from_numpy(encoder.encode([joined])[0]))
    loaded = EncodedTurns.load(encoded.save(tmp_path / "e.safetensors"))
    assert loaded.context_roles is not None and loaded.concat is not None
    assert torch.equal(loaded.context_roles, encoded.context_roles)
    assert torch.equal(loaded.concat, encoded.concat)
    plain = encode_turns(frame, encoder, 3)
    assert loaded.fingerprint() == encoded.fingerprint() != plain.fingerprint()


def test_tables_without_roles_encode_none(frame: pd.DataFrame) -> None:
    encoded = encode_turns(frame, CountingEncoder(), 3)
    assert encoded.context_roles is None and encoded.concat is None
    with pytest.raises(DataValidationError, match="concat"):
        EncodedTurns(**{**encoded.__dict__, "concat": encoded.query[:2]})
