"""The on-disk embedding cache: encode once per encoder and text, never trust a broken shard."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from prime_model.encode.cache import CACHE_ENV, CachedEncoder, cached, default_cache_dir
from prime_model.errors import DataValidationError
from tests.conftest import CountingEncoder


def test_a_second_encoder_on_the_same_folder_encodes_nothing(tmp_path: Path) -> None:
    first_inner = CountingEncoder()
    first = CachedEncoder(first_inner, tmp_path, "stub v1")
    vectors = first.encode(["a", "b", "a"])
    assert first_inner.calls == [["a", "b"]]  # duplicates encoded once
    np.testing.assert_array_equal(vectors, first_inner.encode(["a", "b", "a"]))
    again_inner = CountingEncoder()
    again = CachedEncoder(again_inner, tmp_path, "stub v1")
    np.testing.assert_array_equal(again.encode(["b", "a", "a"]), vectors[[1, 0, 0]])
    assert again_inner.calls == []
    again.encode(["a", "c"])
    assert again_inner.calls == [["c"]]


def test_another_encoder_identity_never_shares_vectors(tmp_path: Path) -> None:
    CachedEncoder(CountingEncoder(), tmp_path, "model A").encode(["a"])
    other = CountingEncoder()
    CachedEncoder(other, tmp_path, "model B").encode(["a"])
    assert other.calls == [["a"]]


def test_a_corrupt_shard_is_skipped_and_its_texts_encoded_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = CachedEncoder(CountingEncoder(), tmp_path, "stub")
    cache.encode(["a"])
    (shard,) = cache.directory.glob("*.safetensors")
    shard.write_bytes(b"garbage")
    inner = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="prime_model.encode.cache"):
        CachedEncoder(inner, tmp_path, "stub").encode(["a"])
    assert inner.calls == [["a"]]
    assert "skipping unreadable shard" in caplog.text


def test_a_shard_of_another_dimension_is_skipped(tmp_path: Path) -> None:
    CachedEncoder(CountingEncoder(dim=8, name="x"), tmp_path, "same").encode(["a"])
    inner = CountingEncoder(dim=4, name="x")
    out = CachedEncoder(inner, tmp_path, "same").encode(["a"])
    assert out.shape == (1, 4)
    assert inner.calls == [["a"]]


def test_a_wrong_shape_from_the_encoder_is_a_typed_error(tmp_path: Path) -> None:
    class Broken(CountingEncoder):
        def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
            return np.zeros((len(texts) + 1, self.dim), dtype=np.float32)

    with pytest.raises(DataValidationError, match=r"returned shape \(2, 8\) for 1 texts"):
        CachedEncoder(Broken(), tmp_path, "broken").encode(["a"])


def test_an_unwritable_folder_costs_time_not_correctness(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    inner = CountingEncoder()
    with caplog.at_level(logging.WARNING, logger="prime_model.encode.cache"):
        out = CachedEncoder(inner, blocker, "stub").encode(["a"])
    np.testing.assert_array_equal(out, inner.encode(["a"]))
    assert "could not write" in caplog.text


def test_empty_input_and_pass_throughs(tmp_path: Path) -> None:
    inner = CountingEncoder(dim=5, name="stub")
    cache = cached(inner, tmp_path, "stub")
    assert (cache.name, cache.dim) == ("stub", 5)
    assert cache.encode([]).shape == (0, 5)
    assert isinstance(cache, CachedEncoder)
    assert cache.fit_to_limit(["x y"]) == ["x y"]
    assert cached(inner, None, "stub") is inner


def test_default_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "prime" / "embeddings"
