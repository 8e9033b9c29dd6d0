from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prime_model import CheckpointError, EmbeddingPredictor, PredictorConfig, save_checkpoint
from prime_model.cli.main import main
from prime_model.evaluate.report import FIRST_TURN, LATER_TURNS, SYSTEMS
from tests.conftest import REPO_ROOT

Files = tuple[Path, Path]  # checkpoint directory, turn file
Capture = pytest.CaptureFixture[str]

TURNS = [
    {"conversation_id": "c1", "turn": 0, "history": [], "query": "Who designed the tower?",
     "target": "The tower was designed by Koechlin and Nouguier.", "target_id": "p1"},
    {"conversation_id": "c1", "turn": 1,
     "history": ["Who designed the tower?", "Koechlin and Nouguier.", "When was it built?"],
     "query": "How tall is it?", "target": "The tower is 330 metres tall.", "target_id": "p2"},
    {"conversation_id": "c2", "turn": 0, "history": [], "query": "What do koalas eat?",
     "target": "Koalas feed on eucalyptus leaves.", "target_id": None},
]  # fmt: skip


def _checkpoint(directory: Path, dim: int = 384) -> Path:
    torch.manual_seed(0)
    config = PredictorConfig(
        input_dim=dim,
        output_dim=dim,
        hidden_dim=32,
        num_layers=1,
        num_heads=2,
        max_context_length=2,
        dropout=0.0,
    )
    return save_checkpoint(EmbeddingPredictor(config), directory)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("cli")
    data = root / "turns.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in TURNS), encoding="utf-8")
    return _checkpoint(root / "ckpt"), data


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_prints_the_markdown_table(files: Files, capsys: Capture) -> None:
    ckpt, data = files
    code, out, err = _run(capsys, "evaluate", "--model", str(ckpt), "--data", str(data))
    assert code == 0, err
    assert out.startswith("Retrieval on 3 turns against a corpus of 3 targets")
    assert "(Y-Encoder all-MiniLM-L6-v2, up to 2 context turns)" in out
    for system in SYSTEMS:
        assert f"| {system} |" in out or f"| **{system}** |" in out


def test_evaluate_json_and_html(files: Files, tmp_path: Path, capsys: Capture) -> None:
    ckpt, data = files
    page = tmp_path / "report.html"
    code, out, err = _run(
        capsys,
        *("evaluate", "--model", str(ckpt), "--data", str(data), "--format", "jsonl"),
        *("--json", "--html", str(page), "--device", "cpu", "--quiet"),
    )
    assert code == 0, err
    result = json.loads(out)
    assert list(result["rows"]) == list(SYSTEMS)
    assert (result["num_turns"], result["corpus_size"], result["max_context_length"]) == (3, 3, 2)
    assert set(result["breakdown"]) == {FIRST_TURN, LATER_TURNS}
    # turn 0 has no history: concat-text is the query's own embedding there
    first = result["breakdown"][FIRST_TURN]["rows"]
    assert first["concat-text"] == first["query-only"]
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def _assert_error(code: int, err: str, message: str) -> None:
    assert code == 2
    assert err.startswith("error: ") or "\nerror: " in err  # after the encoder's progress bar
    error = err[err.index("error: ") :]
    assert message in error
    assert "Traceback" not in err


def test_missing_checkpoint(files: Files, tmp_path: Path, capsys: Capture) -> None:
    _, data = files
    missing = tmp_path / "nope"
    code, out, err = _run(capsys, "evaluate", "--model", str(missing), "--data", str(data))
    _assert_error(code, err, f"{missing}: no such checkpoint directory")
    assert out == ""


def test_missing_data_file(files: Files, tmp_path: Path, capsys: Capture) -> None:
    ckpt, _ = files
    missing = tmp_path / "none.jsonl"
    code, _, err = _run(capsys, "evaluate", "--model", str(ckpt), "--data", str(missing))
    _assert_error(code, err, f"{missing}: file not found")


def test_unknown_format(files: Files, capsys: Capture) -> None:
    ckpt, data = files
    argv = ("evaluate", "--model", str(ckpt), "--data", str(data), "--format", "xml")
    code, _, err = _run(capsys, *argv)
    _assert_error(code, err, "unknown format 'xml'; supported formats:")


def test_encoder_and_checkpoint_dims_must_match(
    files: Files, tmp_path: Path, capsys: Capture
) -> None:
    _, data = files
    ckpt = _checkpoint(tmp_path / "ckpt16", dim=16)
    code, _, err = _run(capsys, "evaluate", "--model", str(ckpt), "--data", str(data))
    _assert_error(code, err, "produces 384-d embeddings but the predictor config has input_dim=16")


def test_unwritable_html(files: Files, tmp_path: Path, capsys: Capture) -> None:
    ckpt, data = files
    (tmp_path / "a-file").write_text("")
    page = tmp_path / "a-file" / "report.html"  # its parent is a file: no folder can be made
    argv = ("evaluate", "--model", str(ckpt), "--data", str(data), "--html", str(page))
    code, out, err = _run(capsys, *argv)
    _assert_error(code, err, f"cannot write {page}")
    assert out == ""  # nothing printed when the command failed
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_html_report_folders_are_created(files: Files, tmp_path: Path, capsys: Capture) -> None:
    ckpt, data = files
    page = tmp_path / "new" / "report.html"
    code, _, err = _run(
        capsys, "evaluate", "--model", str(ckpt), "--data", str(data), "--html", str(page)
    )
    assert code == 0, err
    assert "<svg" in page.read_text()


def test_debug_shows_the_exception(files: Files, tmp_path: Path) -> None:
    _, data = files
    argv = ["evaluate", "--model", str(tmp_path / "nope"), "--data", str(data), "--debug"]
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        main(argv)


def test_help_and_usage_errors(capsys: Capture) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "evaluate" in out
    code, out, _ = _run(capsys, "evaluate", "--help")
    assert code == 0
    assert "--model CKPT_DIR" in out
    code, _, err = _run(capsys)
    assert code == 2
    assert "usage: prime" in err
    code, _, err = _run(capsys, "evaluate", "--data", "x.jsonl")
    assert code == 2
    assert "--model" in err


def test_train_on_the_sample_writes_model_and_reports(tmp_path: Path, capsys: Capture) -> None:
    code, out, err = _run(
        capsys, "train", "--conversations", "30", "--out", str(tmp_path),
        "--training", "smoke", "--predictor", "minilm",
    )  # fmt: skip
    assert code == 0, err
    assert "| **model** |" in out
    assert {"model", "validation.html", "evaluation.html", "evaluation.md"} <= {
        p.name for p in tmp_path.iterdir()
    }


def test_train_without_a_test_split_scores_on_validation(
    tmp_path: Path, capsys: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    code, out, err = _run(
        capsys, "train", "--conversations", "30", "--out", str(tmp_path), "--test-fraction", "0",
        "--training", "smoke", "--predictor", "minilm",
    )  # fmt: skip
    assert code == 0, err
    assert "| **model** |" in out
    assert "test_fraction=0: scoring on the validation split" in caplog.text + err


def test_train_refuses_fractions_that_leave_nothing_to_train_on(
    tmp_path: Path, capsys: Capture
) -> None:
    code, _, err = _run(
        capsys, "train", "--conversations", "30", "--out", str(tmp_path),
        "--val-fraction", "0.5", "--test-fraction", "0.5", "--training", "smoke",
    )  # fmt: skip
    _assert_error(code, err, "val_fraction + test_fraction must be < 1")
    code, _, err = _run(capsys, "train", "--out", str(tmp_path), "--val-fraction", "0")
    _assert_error(code, err, "val_fraction=0.0: training needs validation conversations")


def test_train_errors(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = _run(capsys, "train", "--predictor", str(tmp_path / "none.yaml"))
    _assert_error(code, err, "none.yaml: no such config file")
    code, _, err = _run(
        capsys, "train", "--data", str(tmp_path / "absent.jsonl"),
        "--predictor", str(REPO_ROOT / "prime_model/presets/predictor/minilm.yaml"),
        "--training", str(REPO_ROOT / "prime_model/presets/training/smoke.yaml"),
    )  # fmt: skip
    _assert_error(code, err, "absent.jsonl: file not found")
