"""``prime predict``: a turn file in, a Parquet file of embeddings out, errors as exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prime_model import EmbeddingPredictor, PredictorConfig, save_checkpoint
from prime_model.cli.main import main
from prime_model.export.export import export_onnx
from prime_model.runtime.batch_prediction import load_embeddings
from tests.conftest import REPO_ROOT
from tests.prime_model.cli.test_inference import SMALL

INPUTS = REPO_ROOT / "examples" / "data" / "inputs.jsonl"
Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = EmbeddingPredictor(PredictorConfig(**SMALL))
    return save_checkpoint(model, tmp_path_factory.mktemp("predict") / "ckpt")


def _predict(capsys: Capture, *argv: str) -> tuple[int, str]:
    code = main(["predict", "--quiet", *argv])
    return code, capsys.readouterr().err


def test_predicts_every_turn_and_backends_agree(
    checkpoint: Path, tmp_path: Path, capsys: Capture
) -> None:
    exported = export_onnx(checkpoint, tmp_path / "model.onnx").path  # prime export's work
    outputs = {}
    for backend, model in (("eager", checkpoint), ("onnx", exported)):
        out = tmp_path / f"{backend}.parquet"
        args = ("--model", str(model), "--data", str(INPUTS), "--out", str(out))
        code, err = _predict(capsys, *args, "--backend", backend)
        assert code == 0, err
        outputs[backend] = load_embeddings(out)
    eager, onnx = outputs["eager"], outputs["onnx"]
    assert len(eager) == 5 and list(eager["turn"]) == [0, 1, 2, 0, 1]
    vectors = np.stack(eager["embedding"].tolist())
    assert vectors.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.stack(onnx["embedding"].tolist()), vectors, atol=1e-4)


def test_user_errors_exit_2_and_write_nothing(
    checkpoint: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out.parquet"
    missing = tmp_path / "absent.jsonl"
    code, err = _predict(
        capsys, "--model", str(checkpoint), "--data", str(missing), "--out", str(out)
    )
    assert code == 2 and "absent.jsonl" in err

    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"conversation_id": "c", "turn": 0, "history": [], "query": "  "}\n')
    code, err = _predict(
        capsys, "--model", str(checkpoint), "--data", str(blank), "--out", str(out)
    )
    assert code == 2 and "query" in err

    torch.manual_seed(0)
    wrong_dim = save_checkpoint(
        EmbeddingPredictor(PredictorConfig(**{**SMALL, "input_dim": 16, "output_dim": 16})),
        tmp_path / "wrong",
    )
    code, err = _predict(
        capsys, "--model", str(wrong_dim), "--data", str(INPUTS), "--out", str(out)
    )
    assert code == 2 and "input_dim" in err and "384" in err
    assert not out.exists()


def test_an_onnx_backend_for_a_checkpoint_says_to_export_it_first(
    checkpoint: Path, tmp_path: Path, capsys: Capture
) -> None:
    out = tmp_path / "out.parquet"
    args = ("--model", str(checkpoint), "--data", str(INPUTS), "--out", str(out))
    code, err = _predict(capsys, *args, "--backend", "onnx")
    assert code == 2 and "prime export" in err and not out.exists()
