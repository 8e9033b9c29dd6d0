"""``prime index`` and ``prime serve``: a corpus file to an index, an export + index to a server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig
from prime_model.cli.main import build_parser, main
from prime_model.cli.serve import serving_config
from prime_model.export.export import export_verified
from prime_model.http import app
from prime_model.http.batching import MicroBatchingEncoder
from prime_model.http.request import RetrievalRequest
from prime_model.http.service import Retriever
from prime_model.http.serving_config import ServingConfig
from prime_model.retrieve.index import RetrievalIndex
from tests.prime_model.cli.test_inference import SMALL

Capture = pytest.CaptureFixture[str]
CORPUS = [
    {"id": "born", "text": "Ilsa Revorn was born in Temel."},
    {"id": "founded", "text": "Vulith Works was founded by Ilsa Revorn."},
    {"id": "ceo", "text": "The CEO of Vulith Works is Teodor Bida."},
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("serve")
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(item) for item in CORPUS))
    package = logging.getLogger("prime_model")
    level = package.level  # main() sets it; conftest restores it per test, not per module
    try:
        assert (
            main(["index", "--quiet", "--corpus", str(corpus), "--out", str(root / "index")]) == 0
        )
    finally:
        package.setLevel(level)
    torch.manual_seed(0)
    model = export_verified(EmbeddingPredictor(PredictorConfig(**SMALL)).eval())
    (root / "model.onnx").write_bytes(model.data)
    return root / "model.onnx", root / "index"


def test_index_writes_a_loadable_index_of_the_corpus(files: tuple[Path, Path]) -> None:
    index = RetrievalIndex.load(files[1])
    assert index.ids == ["born", "founded", "ceo"] and index.encoder_name == "all-MiniLM-L6-v2"


def test_serve_builds_the_retriever_from_the_files(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[Retriever, str, int]] = []
    monkeypatch.setattr(app, "serve", lambda r, host, port: served.append((r, host, port)))
    model, index = files
    argv = ["serve", "--quiet", "--model", str(model), "--index", str(index), "--port", "9123"]
    caps = ["--history-max-tokens", "64", "--conversation-ttl", "90", "--max-conversations", "5"]
    assert main([*argv, *caps]) == 0
    retriever, host, port = served[0]
    assert (host, port, retriever.predictor.backend) == ("127.0.0.1", 9123, "onnx")
    assert retriever.caps.info() == {"history_max_tokens": 64, "concat_max_tokens": None}
    assert (retriever.conversations.ttl_s, retriever.conversations.max_conversations) == (90, 5)
    assert isinstance(retriever.encoder.inner, MicroBatchingEncoder)  # type: ignore[attr-defined]
    assert retriever.model_version.startswith("weights:")
    answer = retriever.answer(
        RetrievalRequest(history=["Who founded Vulith Works?"], query="Where?")
    )
    assert {hit.id for hit in answer.hits} == {"born", "founded", "ceo"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "model.txt", "--index", "."], "expected an exported .onnx file"),
        (["--model", "absent.onnx", "--index", "."], "absent.onnx"),
    ],
)
def test_serve_errors_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_serve_needs_exactly_one_index_and_a_real_port(capsys: Capture) -> None:
    assert main(["serve", "--model", "m.onnx"]) == 2
    assert "one of the arguments --index --pgvector is required" in capsys.readouterr().err
    assert main(["serve", "--model", "m.onnx", "--index", ".", "--port", "70000"]) == 2
    assert "expected a TCP port in 1..65535" in capsys.readouterr().err


def test_serving_flags_become_the_serving_config() -> None:
    parser = build_parser()
    base = ["serve", "--model", "m.onnx", "--index", "."]
    assert serving_config(parser.parse_args(base)) == ServingConfig()
    args = parser.parse_args(
        [*base, "--concat-max-tokens", "128", "--precision", "int8", "--no-micro-batching"]
    )
    assert serving_config(args) == ServingConfig(
        concat_max_tokens=128, precision="int8", micro_batching=False
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--history-max-tokens", "0"], "expected a whole number >= 1, got '0'"),
        (["--concat-max-tokens", "x"], "expected a whole number >= 1"),
        (["--conversation-ttl", "-5"], "expected a number of seconds > 0, got '-5'"),
        (["--conversation-ttl", "nan"], "expected a number of seconds > 0"),
        (["--precision", "int4"], "invalid choice: 'int4'"),
    ],
)
def test_bad_serving_flags_exit_2(flags: list[str], message: str, capsys: Capture) -> None:
    assert main(["serve", "--model", "m.onnx", "--index", ".", *flags]) == 2
    assert message in capsys.readouterr().err


def test_index_errors_exit_2(tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"id": "a"}\n')
    assert main(["index", "--quiet", "--corpus", str(bad), "--out", str(tmp_path / "i")]) == 2
    assert "missing field(s) ['text']" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()
