"""The ONNX Y-Encoder against sentence-transformers; the real export runs once per module."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from prime_model.encode.cache import CACHE_ENV
from prime_model.encode.encoders import EncoderConfig, SentenceTransformerEncoder, YEncoder
from prime_model.encode.onnx_cache import ONNX_FILE, SIDECAR_FILE, default_onnx_cache_dir
from prime_model.encode.onnx_encoder import MIN_COSINE, OnnxTextEncoder
from prime_model.errors import ExportError, OnnxEncoderError, PrimeError

LOGGER = "prime_model.encode.onnx_encoder"
# well past MiniLM's 256-token limit, and differing only after it
LONG_HEAD = " ".join(f"Gustave{i} built bridge{i} over river{i}." for i in range(150))


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(EncoderConfig(device="cpu"))


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-encoders")


@pytest.fixture(scope="module")
def onnx_minilm(minilm: SentenceTransformerEncoder, onnx_cache: Path) -> OnnxTextEncoder:
    encoder = OnnxTextEncoder(minilm, cache_dir=onnx_cache)
    assert encoder.exported
    return encoder


@pytest.fixture(scope="module")
def good_bytes(onnx_minilm: OnnxTextEncoder) -> bytes:
    return onnx_minilm.path.read_bytes()


@pytest.fixture
def fake_export(
    monkeypatch: pytest.MonkeyPatch, good_bytes: bytes
) -> Callable[[], list[OnnxTextEncoder]]:
    """Replace the 10-s trace by the module's real export; returns who exported."""
    calls: list[OnnxTextEncoder] = []

    def export(self: OnnxTextEncoder, model: object) -> bytes:
        calls.append(self)
        self.exported = True
        return good_bytes

    monkeypatch.setattr(OnnxTextEncoder, "_export", export)
    return lambda: calls


def _cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    out: npt.NDArray[np.float32] = np.sum(a * b, axis=1) / norms
    return out


def test_matches_sentence_transformers_on_varied_texts(
    onnx_minilm: OnnxTextEncoder, minilm: SentenceTransformerEncoder
) -> None:
    assert isinstance(onnx_minilm, YEncoder)
    assert (onnx_minilm.name, onnx_minilm.dim) == (minilm.name, minilm.dim)
    assert onnx_minilm.identity == minilm.identity
    assert onnx_minilm.input_names == ("input_ids", "attention_mask", "token_type_ids")
    texts = [
        "hi",
        "How tall is the Eiffel tower, antennas included?",
        "",
        "Ünïcödé: 東京, São Paulo, Zürich ☕🚀 — ça va?",
        f"{LONG_HEAD} and then the first ending",
        "The tower is 312 m tall.",
    ]
    got = onnx_minilm.encode(texts)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _cosines(got, minilm.encode(texts)).min() >= MIN_COSINE
    one_by_one = np.concatenate([onnx_minilm.encode([t]) for t in texts])  # no padding leaks
    assert _cosines(got, one_by_one).min() >= 0.99999


def test_long_texts_are_truncated_like_sentence_transformers(
    onnx_minilm: OnnxTextEncoder, minilm: SentenceTransformerEncoder
) -> None:
    endings = [f"{LONG_HEAD} then the river dried up.", f"{LONG_HEAD} zebra quantum ballet!"]
    got = onnx_minilm.encode(endings)
    assert _cosines(got, minilm.encode(endings)).min() >= MIN_COSINE
    assert float(got[0] @ got[1]) > 0.99999  # the endings lie beyond the 256-token cut


def test_a_shorter_token_limit_is_respected(
    fake_export: Callable[[], list[OnnxTextEncoder]], onnx_cache: Path
) -> None:
    short = SentenceTransformerEncoder(EncoderConfig(device="cpu", max_seq_length=16))
    encoder = OnnxTextEncoder(short, cache_dir=onnx_cache)
    assert encoder.max_seq_length == 16
    assert fake_export() == [encoder]  # another identity: its own folder, its own export
    texts = [
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen",
        "short",
    ]
    assert _cosines(encoder.encode(texts), short.encode(texts)).min() >= MIN_COSINE
    assert encoder._tokenize(texts)["input_ids"].shape == (2, 16)


@pytest.fixture(scope="module")
def tiny_cls_model(
    tmp_path_factory: pytest.TempPathFactory, minilm: SentenceTransformerEncoder
) -> Path:
    """A 2-layer random BERT with CLS pooling and no Normalize module, like BGE's layout."""
    from transformers import BertConfig, BertModel  # noqa: PLC0415 - only here

    folder = tmp_path_factory.mktemp("tiny-cls")
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    bert: Any = BertModel  # typed in some transformers releases, untyped in others
    bert(config).save_pretrained(folder)
    minilm._model.tokenizer.save_pretrained(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 64}', encoding="utf-8")
    return folder


def test_cls_pooling_without_normalize_is_exported_faithfully(
    tiny_cls_model: Path, tmp_path: Path
) -> None:
    reference = SentenceTransformerEncoder(EncoderConfig(model=str(tiny_cls_model), device="cpu"))
    encoder = OnnxTextEncoder(
        EncoderConfig(model=str(tiny_cls_model), device="cpu"), cache_dir=tmp_path
    )
    assert (encoder.name, encoder.dim, encoder.max_seq_length) == (tiny_cls_model.name, 32, 64)
    texts = ["hello", "a much longer sentence about towers " * 20, ""]
    got = encoder.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # normalised here
    assert _cosines(got, reference.encode(texts)).min() >= MIN_COSINE
    model = reference._model
    with torch.no_grad():
        tokens = model[0](model.preprocess(texts))["token_embeddings"]
    cls = torch.nn.functional.normalize(tokens[:, 0], dim=-1).numpy()
    mean = torch.nn.functional.normalize(tokens.mean(1), dim=-1).numpy()
    assert _cosines(got, cls).min() >= MIN_COSINE
    assert _cosines(got, mean).min() < 0.99  # really CLS, not a guessed mean pooling


def test_empty_input(onnx_minilm: OnnxTextEncoder) -> None:
    out = onnx_minilm.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_large_inputs_run_in_length_sorted_chunks(
    onnx_minilm: OnnxTextEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"text number {i} " * (1 + i % 7) for i in range(11)]
    whole = onnx_minilm.encode(texts)
    monkeypatch.setattr(onnx_minilm, "batch_size", 3)
    chunked = onnx_minilm.encode(texts)
    assert _cosines(whole, chunked).min() >= 0.99999  # same rows, in the caller's order


def test_second_construction_reuses_the_cached_file(
    onnx_minilm: OnnxTextEncoder,
    minilm: SentenceTransformerEncoder,
    onnx_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mtime = onnx_minilm.path.stat().st_mtime_ns
    sidecar = json.loads((onnx_minilm.directory / SIDECAR_FILE).read_text(encoding="utf-8"))
    assert sidecar["key"]["torch"] == version("torch")
    assert sidecar["key"]["identity"] == minilm.identity
    assert len(sidecar["sha256"]) == 64
    caplog.set_level(logging.INFO, logger=LOGGER)
    again = OnnxTextEncoder(minilm, cache_dir=onnx_cache, threads=2)
    assert not again.exported
    assert again.path == onnx_minilm.path
    assert onnx_minilm.path.stat().st_mtime_ns == mtime
    assert any("loaded" in r.getMessage() for r in caplog.records)
    texts = ["the same vectors", "from the cached file"]
    assert _cosines(again.encode(texts), onnx_minilm.encode(texts)).min() >= 0.99999


@pytest.fixture
def copied(onnx_minilm: OnnxTextEncoder, tmp_path: Path) -> Path:
    """A copy of the module's cached folder, free to damage; its parent is the cache root."""
    folder = tmp_path / "cache" / onnx_minilm.directory.name
    shutil.copytree(onnx_minilm.directory, folder)
    return folder


def test_a_corrupted_file_is_detected_and_exported_again(
    copied: Path,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    good_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, path = copied.parent, copied / ONNX_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep in the weights: still loadable
    path.write_bytes(bytes(data))
    encoder = OnnxTextEncoder(minilm, cache_dir=cache)
    assert fake_export() == [encoder]
    assert "does not match its recorded sha256" in caplog.text
    assert path.read_bytes() == good_bytes  # rewritten
    caplog.clear()
    assert not OnnxTextEncoder(minilm, cache_dir=cache).exported  # and trusted again
    assert "sha256" not in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / SIDECAR_FILE).write_text("{not json", encoding="utf-8"),
        lambda d: (d / SIDECAR_FILE).unlink(),
        lambda d: (d / ONNX_FILE).unlink(),
        lambda d: (d / SIDECAR_FILE).write_text(
            (d / SIDECAR_FILE).read_text(encoding="utf-8").replace('"torch": "', '"torch": "0'),
            encoding="utf-8",
        ),
    ],
    ids=["bad-json", "no-sidecar", "no-model", "other-versions"],
)
def test_an_untrustworthy_cache_is_exported_again(
    damage: Callable[[Path], object],
    copied: Path,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    damage(copied)
    encoder = OnnxTextEncoder(minilm, cache_dir=copied.parent)
    assert fake_export() == [encoder]
    assert "exporting it again" in caplog.text
    assert (copied / SIDECAR_FILE).is_file()


def test_a_file_onnx_runtime_cannot_load_is_exported_again(
    copied: Path,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk = b"not an onnx graph"
    (copied / ONNX_FILE).write_bytes(junk)
    sidecar = json.loads((copied / SIDECAR_FILE).read_text(encoding="utf-8"))
    sidecar.update(sha256=hashlib.sha256(junk).hexdigest(), bytes=len(junk))  # consistent
    (copied / SIDECAR_FILE).write_text(json.dumps(sidecar), encoding="utf-8")
    encoder = OnnxTextEncoder(minilm, cache_dir=copied.parent)
    assert fake_export() == [encoder]
    assert "cannot be loaded by ONNX Runtime" in caplog.text
    assert "making it again" in caplog.text


def test_default_cache_follows_prime_cache_dir(
    monkeypatch: pytest.MonkeyPatch,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_onnx_cache_dir() == tmp_path / "mine" / "onnx-encoders"
    encoder = OnnxTextEncoder(minilm)
    assert encoder.path.parent.parent == tmp_path / "mine" / "onnx-encoders"
    assert encoder.path.is_file()


def test_a_failed_parity_check_raises_and_caches_nothing(
    monkeypatch: pytest.MonkeyPatch,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    tmp_path: Path,
) -> None:
    real = minilm.encode
    monkeypatch.setattr(minilm, "encode", lambda texts: np.roll(real(texts), 1, axis=1))
    with pytest.raises(
        OnnxEncoderError, match=r"does not reproduce .* min cosine .* \(required 0.9999\)"
    ):
        OnnxTextEncoder(minilm, cache_dir=tmp_path)
    assert not any(tmp_path.rglob(ONNX_FILE))


def test_a_cached_file_that_no_longer_matches_is_exported_again(
    monkeypatch: pytest.MonkeyPatch,
    copied: Path,
    minilm: SentenceTransformerEncoder,
    fake_export: Callable[[], list[OnnxTextEncoder]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = minilm.encode
    monkeypatch.setattr(minilm, "encode", lambda texts: -real(texts))
    with pytest.raises(OnnxEncoderError, match="does not reproduce"):
        OnnxTextEncoder(minilm, cache_dir=copied.parent)
    assert "no longer matches the torch encoder" in caplog.text
    assert len(fake_export()) == 1


def test_an_untraceable_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, minilm: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Unsupported: data-dependent control flow\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(OnnxEncoderError, match=r"cannot trace .*data-dependent control flow") as e:
        OnnxTextEncoder(minilm, cache_dir=tmp_path)
    assert isinstance(e.value, ExportError) and isinstance(e.value, PrimeError)
    assert "more detail" not in str(e.value)


def test_bad_thread_count(minilm: SentenceTransformerEncoder) -> None:
    with pytest.raises(OnnxEncoderError, match=r"threads=0; expected at least 1"):
        OnnxTextEncoder(minilm, threads=0)


def test_concurrent_encode_from_four_threads(onnx_minilm: OnnxTextEncoder) -> None:
    batches = [[f"request {i} turn {j} about towers" for j in range(1 + i % 4)] for i in range(12)]
    expected = [onnx_minilm.encode(batch) for batch in batches]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def hammer(offset: int) -> None:
        try:
            start.wait()
            for round_ in range(30):
                i = (offset + round_) % len(batches)
                got = onnx_minilm.encode(batches[i])
                assert _cosines(got, expected[i]).min() >= 0.99999
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, repr(errors[0])


def test_fit_to_limit_cuts_like_the_torch_encoder(
    minilm: SentenceTransformerEncoder, onnx_minilm: OnnxTextEncoder
) -> None:
    """Serving (ONNX) must cut history + query texts exactly as training (torch) did."""
    history = " ".join(f"Koechlin{i} designed tower{i}." for i in range(200))
    texts = ["How tall is it?", f"{history} And how tall is it?"]
    fitted = onnx_minilm.fit_to_limit(texts)
    assert fitted == minilm.fit_to_limit(texts)
    assert fitted[0] == texts[0] and fitted[1] != texts[1]
    assert fitted[1].endswith("And how tall is it?")


# --- the engine: token-budget batches, the tokenizer, threads, int8 ------------------------


def test_token_budget_batches_give_the_same_vectors_in_input_order(
    onnx_minilm: OnnxTextEncoder,
    minilm: SentenceTransformerEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [("tower " * (i * 7 % 90)) + f"number {i}" for i in range(40)] + ["", LONG_HEAD]
    seen: list[int] = []
    run = onnx_minilm._run

    def counting(session: Any, feeds: dict[str, Any], count: int) -> Any:
        seen.append(feeds["input_ids"].size)  # padded tokens of this batch
        return run(session, feeds, count)

    monkeypatch.setattr(onnx_minilm, "_run", counting)
    monkeypatch.setattr(onnx_minilm, "max_batch_tokens", 300)
    got = onnx_minilm.encode(texts)
    assert len(seen) > 3  # really in several batches
    assert all(size <= 300 for size in seen[1:])  # the 256-token text alone may pad more
    assert _cosines(got, minilm.encode(texts)).min() >= MIN_COSINE


def test_the_tokenizer_is_public_and_counts_like_the_torch_one(
    onnx_minilm: OnnxTextEncoder, minilm: SentenceTransformerEncoder
) -> None:
    text = "How tall is the Eiffel tower?"
    assert onnx_minilm.tokenizer(text)["input_ids"] == minilm.tokenizer(text)["input_ids"]
    assert onnx_minilm.tokenizer is not minilm.tokenizer  # its own copy: no shared borrow
    with pytest.raises(AttributeError):
        onnx_minilm.tokenizer = None  # type: ignore[misc]


def test_adaptive_threads_open_a_narrow_session_beside_the_wide_one(
    minilm: SentenceTransformerEncoder,
    onnx_cache: Path,
    onnx_minilm: OnnxTextEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("prime_model.encode.sessions.usable_cores", lambda: 2)  # even on 1 core
    encoder = OnnxTextEncoder(minilm, cache_dir=onnx_cache, threads="adaptive")
    assert encoder.threads == 2
    assert not encoder.exported
    chooser = encoder._sessions
    assert chooser.narrow is not None and chooser.narrow is not chooser.wide
    assert encoder.narrow_threads == 1
    texts = ["one text alone", "and another"]
    with chooser.session():  # another call in flight: this one runs on the narrow session
        busy = encoder.encode(texts)
    assert _cosines(busy, encoder.encode(texts)).min() >= 0.99999


@pytest.fixture(scope="module")
def onnx_int8(
    minilm: SentenceTransformerEncoder, onnx_cache: Path, onnx_minilm: OnnxTextEncoder
) -> OnnxTextEncoder:
    """Made from the fp32 graph ``onnx_minilm`` cached."""
    return OnnxTextEncoder(minilm, cache_dir=onnx_cache, precision="int8")


def test_int8_has_its_own_identity_and_cache_folder(
    onnx_int8: OnnxTextEncoder, onnx_minilm: OnnxTextEncoder, minilm: SentenceTransformerEncoder
) -> None:
    assert onnx_int8.quantized and not onnx_int8.exported  # made from the cached fp32 graph
    assert onnx_int8.identity == minilm.identity + "|int8"
    assert onnx_int8.fingerprint == f"{onnx_minilm.fingerprint}|int8"
    assert onnx_int8.directory.parent == onnx_minilm.directory.parent
    assert onnx_int8.directory != onnx_minilm.directory
    sidecar = json.loads((onnx_int8.directory / SIDECAR_FILE).read_text(encoding="utf-8"))
    assert sidecar["key"]["precision"] == "int8"
    assert sidecar["sha256"] == hashlib.sha256(onnx_int8.path.read_bytes()).hexdigest()
    assert onnx_int8.path.stat().st_size < onnx_minilm.path.stat().st_size / 2
    texts = ["How tall is the Eiffel tower?", "The tower is 312 m tall.", "Pasta recipes"]
    got = onnx_int8.encode(texts)
    cosines = _cosines(got, minilm.encode(texts))
    assert cosines.min() >= 0.95 and cosines.min() < MIN_COSINE  # close, yet other vectors
    again = OnnxTextEncoder(minilm, cache_dir=onnx_int8.directory.parent, precision="int8")
    assert not again.quantized and again.path == onnx_int8.path  # read from the cache


def test_an_int8_graph_below_its_floor_is_refused_and_not_cached(
    minilm: SentenceTransformerEncoder,
    onnx_minilm: OnnxTextEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(onnx_minilm.directory, tmp_path / onnx_minilm.directory.name)
    monkeypatch.setattr("prime_model.encode.onnx_encoder.MIN_COSINE_INT8", 0.99999)
    with pytest.raises(OnnxEncoderError, match=r"int8 ONNX graph .* too far .*required 0.99999"):
        OnnxTextEncoder(minilm, cache_dir=tmp_path, precision="int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [onnx_minilm.directory.name]


def test_a_quantiser_failure_is_an_onnx_encoder_error(
    minilm: SentenceTransformerEncoder,
    onnx_minilm: OnnxTextEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnxruntime.quantization  # noqa: PLC0415

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator\nmore detail")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", fail)
    shutil.copytree(onnx_minilm.directory, tmp_path / onnx_minilm.directory.name)
    with pytest.raises(OnnxEncoderError, match=r"cannot quantise .*\(unsupported operator\)"):
        OnnxTextEncoder(minilm, cache_dir=tmp_path, precision="int8")


def test_a_bad_precision_or_token_budget_is_refused(minilm: SentenceTransformerEncoder) -> None:
    with pytest.raises(OnnxEncoderError, match=r"precision='fp16'; expected 'fp32' or 'int8'"):
        OnnxTextEncoder(minilm, precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(OnnxEncoderError, match=r"max_batch_tokens=-1; expected at least 1"):
        OnnxTextEncoder(minilm, max_batch_tokens=-1)
