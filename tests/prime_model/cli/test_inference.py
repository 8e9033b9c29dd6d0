from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from prime_model import EmbeddingPredictor, PredictorConfig, save_checkpoint
from prime_model.cli.main import main
from prime_model.evaluate.report import SYSTEMS
from prime_model.presets import predictor_config
from tests.prime_model.cli.test_main import TURNS

Capture = pytest.CaptureFixture[str]
SMALL = {
    "input_dim": 384,
    "output_dim": 384,
    "hidden_dim": 32,
    "num_layers": 1,
    "num_heads": 2,
    "max_context_length": 2,
    "dropout": 0.0,
    "max_batch_size": 4,
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-inference")
    torch.manual_seed(0)
    ckpt = save_checkpoint(EmbeddingPredictor(PredictorConfig(**SMALL)), root / "ckpt")
    data = root / "turns.jsonl"
    data.write_text("".join(json.dumps(t) + "\n" for t in TURNS), encoding="utf-8")
    config = root / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "input_dim": 16, "output_dim": 16}), "utf-8")
    return {"root": root, "ckpt": ckpt, "data": data, "config": config}


def _run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_benchmark_prints_json_for_a_config_file(files: dict[str, Path], capsys: Capture) -> None:
    code, out, err = _run(
        capsys,
        *("benchmark", "--preset", str(files["config"]), "--backends", "eager,onnx"),
        *("--batch-sizes", "1,2", "--repeats", "2", "--json", "--quiet"),
    )
    assert code == 0, err
    report = json.loads(out)
    assert [(r["backend"], r["batch_size"]) for r in report["rows"]] == [
        ("eager", 1),
        ("onnx", 1),
        ("eager", 2),
        ("onnx", 2),
    ]
    assert report["predictor_config"]["input_dim"] == 16


def test_benchmark_markdown_and_html_for_a_checkpoint(
    files: dict[str, Path], capsys: Capture
) -> None:
    page = files["root"] / "bench.html"
    code, out, err = _run(
        capsys,
        *("benchmark", "--checkpoint", str(files["ckpt"]), "--backends", "onnx"),
        *("--batch-sizes", "1", "--repeats", "2", "--html", str(page)),
    )
    assert code == 0, err
    assert "| backend | batch |" in out and "| onnx | 1 |" in out and "| eager | 1 |" in out
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_export_then_evaluate_the_onnx_file(files: dict[str, Path], capsys: Capture) -> None:
    target = files["root"] / "model.onnx"
    code, out, err = _run(
        capsys, "export", "--checkpoint", str(files["ckpt"]), "--out", str(target), "--json"
    )
    assert code == 0, err
    result = json.loads(out)["export"]
    assert result["parity"]["random"]["max_abs_diff"] <= 1e-4 and target.is_file()
    code, out, err = _run(
        capsys, "evaluate", "--model", str(target), "--data", str(files["data"]), "--json"
    )
    assert code == 0, err
    assert list(json.loads(out)["rows"]) == list(SYSTEMS)
    # the same numbers as the checkpoint itself
    code, ckpt_out, err = _run(
        capsys, "evaluate", "--model", str(files["ckpt"]), "--data", str(files["data"]), "--json"
    )
    assert code == 0, err
    assert json.loads(ckpt_out)["rows"]["model"] == pytest.approx(json.loads(out)["rows"]["model"])


def test_export_int8_with_a_recall_check(files: dict[str, Path], capsys: Capture) -> None:
    fp32, int8 = files["root"] / "a.onnx", files["root"] / "a-int8.onnx"
    code, out, err = _run(
        capsys,
        *("export", "--checkpoint", str(files["ckpt"]), "--out", str(fp32)),
        *("--int8", str(int8), "--data", str(files["data"]), "--tolerance", "1.0"),
        *("--min-speedup", "0"),
    )
    assert code == 0, err
    assert out.startswith(f"fp32: {fp32}")
    if int8.is_file():  # a scheme met the cosine rule on this CPU
        assert " accepted on this " in out and f"-> {int8}" in out
    else:
        assert "int8 REJECTED on this " in out and "min cosine" in out


def test_export_options_are_checked_before_any_work(capsys: Capture) -> None:
    for flag, value in (("--tolerance", "-1"), ("--min-speedup", "x")):
        code, _, err = _run(capsys, "export", "--checkpoint", "c", "--out", "o.onnx", flag, value)
        assert code == 2 and flag in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--preset", "missing.yaml"], "error: missing.yaml: no such config file"),
        (["benchmark", "--checkpoint", "nowhere"], "error: nowhere: no such checkpoint"),
        (["export", "--checkpoint", "nowhere", "--out", "x.onnx"], "no such checkpoint"),
        (
            ["export", "--checkpoint", "nowhere", "--out", "x.onnx", "--int8", "y.onnx"],
            "--int8 needs --data",
        ),
    ],
)
def test_errors_exit_2_without_a_traceback(argv: list[str], message: str, capsys: Capture) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_garbage_onnx_model_is_a_clean_error(files: dict[str, Path], capsys: Capture) -> None:
    bad = files["root"] / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf \xff\xfe")
    code, _, err = _run(capsys, "evaluate", "--model", str(bad), "--data", str(files["data"]))
    assert code == 2 and "not an ONNX model" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["benchmark", "--backends", "eager,tensorrt"], "unknown backend(s) ['tensorrt']"),
        (["benchmark", "--batch-sizes", "1,x"], "expected comma-separated integers"),
        (["benchmark", "--batch-sizes", "0"], "expected positive batch sizes"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: Capture) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2 and message in err


def test_presets_resolve_by_name() -> None:
    assert predictor_config("default").hidden_dim == 2048
    assert predictor_config("minilm").input_dim == 384
