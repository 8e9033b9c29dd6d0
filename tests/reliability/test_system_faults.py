"""System-level faults: a killed training or checkpoint write, bad data or a bad model in the
pipeline, two pipeline runs at once, and user errors on the command lines.

Processes that must die are real subprocesses killed with SIGKILL (no cleanup handler runs). They
pause at a chosen point and say so through a file, so the kill lands where intended every time.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from zenml.client import Client
from zenml.enums import ExecutionStatus, ModelStages
from zenml.models import ModelVersionResponse, PipelineRunResponse
from zenml.types import HTMLString

from pipelines import training_pipeline
from prime_model import EmbeddingPredictor, PredictorConfig, load_checkpoint, save_checkpoint
from prime_model.artifacts import MODEL_NAME, PREDICTOR_CHECKPOINT
from prime_model.checkpoint import PredictorCheckpoint
from prime_model.config import TrainingConfig
from prime_model.evaluate.promotion import PromotionDecision
from prime_model.runtime.onnx_file import VerifiedOnnx
from prime_model.train.training import train_predictor
from tests.conftest import REPO_ROOT, make_encoded

SMOKE = REPO_ROOT / "configs" / "smoke.yaml"
# smoke.yaml without what these tests do not look at: int8 export and benchmarking backends
LIGHT: dict[str, Any] = {
    "benchmark": {"backends": ["eager"], "batch_sizes": [1], "presets": [], "repeats": 1,
                  "budget_s": 0.5},
    "export": {"int8": False},
}  # fmt: skip
PRIME = Path(sys.executable).with_name("prime")
WAIT_S = 120.0  # for a subprocess to reach its pause point (imports take seconds on 2 cores)

# A small model trained for 3 epochs of 4 batches: 12 optimiser steps without interruption.
PREDICTOR = PredictorConfig(
    input_dim=16,
    output_dim=16,
    hidden_dim=32,
    num_layers=2,
    num_heads=4,
    max_context_length=6,
    dropout=0.0,
    max_batch_size=8,
)
TRAINING = TrainingConfig(
    batch_size=16,
    max_epochs=3,
    warmup_steps=2,
    learning_rate=1e-3,
    accelerator="cpu",
    early_stopping_patience=None,
    log_every_n_steps=1,
)
STEPS_PER_EPOCH = 4
PAUSE_AT_STEP = STEPS_PER_EPOCH + 2  # mid-way through the second epoch

TRAIN_UNTIL_PAUSED = """
import sys, time
from pathlib import Path
from prime_model.train import training
from prime_model.config import PredictorConfig, TrainingConfig
from tests.conftest import make_encoded

out, progress, pause_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])


class PausedModule(training.PredictorLightningModule):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        step = self.trainer.global_step
        progress.write_text(str(step))
        if step == pause_at:
            time.sleep(600)  # the parent SIGKILLs us here


training.PredictorLightningModule = PausedModule
training.train_predictor(
    make_encoded(m=64, k=16),
    make_encoded(m=20, k=16, seed=1),
    PredictorConfig.model_validate_json(sys.argv[4]),
    TrainingConfig.model_validate_json(sys.argv[5]),
    out,
)
"""

SAVE_UNTIL_PAUSED = """
import sys, time
from pathlib import Path
import torch
import prime_model.checkpoint as checkpoint
from prime_model import EmbeddingPredictor, PredictorConfig

target, progress = Path(sys.argv[1]), Path(sys.argv[2])


def paused(path, text):
    progress.write_text("weights written")
    time.sleep(600)  # the parent SIGKILLs us here, between the weights and the metadata


checkpoint.write_text_synced = paused
torch.manual_seed(1)
model = EmbeddingPredictor(PredictorConfig.model_validate_json(sys.argv[3]))
checkpoint.save_checkpoint(model, target, {"version": 2}, overwrite=True)
"""


def _run_until_paused(script: str, args: list[str], progress: Path, ready: str) -> None:
    """Start ``script``, wait until ``progress`` reads ``ready``, then SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(  # noqa: S603 - our own script, with this interpreter
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        deadline = time.monotonic() + WAIT_S
        while not (progress.exists() and progress.read_text() == ready):
            if process.poll() is not None:
                _, err = process.communicate()
                pytest.fail(f"exited with {process.returncode} before pausing:\n{err[-3000:]}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"did not reach {ready!r} within {WAIT_S} s")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL


def _hidden(root: Path) -> list[str]:
    """Temporary or hidden leftovers anywhere under ``root``."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.startswith(".") or p.suffix in (".tmp", ".old", ".partial")
    )


def _global_step(checkpoint_dir: Path) -> int:
    return int(load_checkpoint(checkpoint_dir).metadata.training["global_step"])


def test_training_killed_mid_epoch_resumes_to_the_same_number_of_steps(tmp_path: Path) -> None:
    train, val = make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1)
    assert len(train) // TRAINING.batch_size == STEPS_PER_EPOCH
    clean = train_predictor(train, val, PREDICTOR, TRAINING, tmp_path / "clean")
    total = STEPS_PER_EPOCH * TRAINING.max_epochs
    assert _global_step(clean.checkpoint_dir) == total

    killed = tmp_path / "killed"
    progress = tmp_path / "progress"
    args = [str(killed), str(progress), str(PAUSE_AT_STEP)]
    configs = [PREDICTOR.model_dump_json(), TRAINING.model_dump_json()]
    _run_until_paused(TRAIN_UNTIL_PAUSED, args + configs, progress, str(PAUSE_AT_STEP))

    # what the kill left: last.ckpt from the end of the first epoch, no PRIME model, no temp
    assert not (killed / "model").exists()
    assert _hidden(killed) == []
    last = torch.load(killed / "lightning" / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["global_step"] == STEPS_PER_EPOCH

    resumed = train_predictor(train, val, PREDICTOR, TRAINING, killed, resume=True)
    assert _global_step(resumed.checkpoint_dir) == total == _global_step(clean.checkpoint_dir)
    steps = [int(row["step"]) for row in resumed.history if "train/loss" in row]
    assert steps[-1] == total - 1  # the resumed run logged up to the same last step
    assert _hidden(killed) == []


def test_checkpoint_write_killed_midway_leaves_the_old_one_intact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    target = save_checkpoint(EmbeddingPredictor(PREDICTOR), tmp_path / "ckpt", {"version": 1})
    progress = tmp_path / "progress"
    args = [str(target), str(progress), PREDICTOR.model_dump_json()]
    _run_until_paused(SAVE_UNTIL_PAUSED, args, progress, "weights written")

    # the old checkpoint is untouched and loads; the new weights sit in a hidden staging dir,
    # beside the write lock the killed writer held (the kernel released it; the file stays)
    assert load_checkpoint(target).metadata.training == {"version": 1}
    leftovers = [name for name in _hidden(tmp_path) if "/" not in name]
    assert len(leftovers) == 2 and ".ckpt.lock" in leftovers
    assert next(n for n in leftovers if n != ".ckpt.lock").startswith(".ckpt.")

    # the next write of the same checkpoint succeeds and clears what the killed one left
    torch.manual_seed(1)
    save_checkpoint(EmbeddingPredictor(PREDICTOR), target, {"version": 2}, overwrite=True)
    assert load_checkpoint(target).metadata.training == {"version": 2}
    assert _hidden(tmp_path) == []


# ------------------------------------------------------------------------------------ pipelines


def _pipeline_config(tmp_path: Path, name: str, **parameters: Any) -> Path:
    """configs/smoke.yaml, lightened and with some parameters replaced, written to tmp_path."""
    config = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    config["parameters"].update({**LIGHT, **parameters})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _production() -> ModelVersionResponse | None:
    try:
        return Client().get_model_version(MODEL_NAME, ModelStages.PRODUCTION)
    except KeyError:
        return None


def _production_id() -> object:
    version = _production()
    return None if version is None else version.id


def _model_artifacts() -> set[object]:
    """Every predictor checkpoint and ONNX model any version of the model holds."""
    return {
        artifact.id
        for name in (PREDICTOR_CHECKPOINT, "onnx_model")
        for artifact in Client().list_artifact_versions(name=name, model=MODEL_NAME, size=100)
    }


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A smoke run whose version is in production (promoted by hand if the tiny model did not
    beat a baseline: the tests below are about what later runs do to production)."""
    config = _pipeline_config(tmp_path_factory.mktemp("smoke"), "smoke.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO_ROOT)
        run = training_pipeline.with_options(config_path=str(config))()
    assert run is not None and run.model_version is not None
    version = Client().get_model_version(MODEL_NAME, run.model_version.id)
    if _production_id() != version.id:
        version.set_stage(ModelStages.PRODUCTION, force=True)
    yield version.id


def _latest_run() -> PipelineRunResponse:
    latest = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    return Client().get_pipeline_run(latest.id)


def _turn_rows(conversations: int = 5, turns: int = 3) -> list[dict[str, Any]]:
    rows = []
    for c in range(conversations):
        history: list[str] = []
        for t in range(turns):
            query, answer = f"What about item {t} of topic {c}?", f"Item {t} of topic {c} is fine."
            rows.append(
                {"conversation_id": f"c{c}", "turn": t, "history": list(history),
                 "query": query, "target": answer}
            )  # fmt: skip
            history += [query, answer]
    return rows


# zenml's own PipelineRunFilter reads one of its deprecated fields in list_pipeline_runs
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_invalid_data_stops_at_validation_keeps_the_report_and_registers_no_model(
    production: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    rows = _turn_rows()
    rows[4]["query"] = "   "
    rows.append(dict(rows[7]))  # (c2, 1) twice
    data = tmp_path / "bad_turns.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    source = {"kind": "file", "path": str(data), "format": "jsonl"}
    config = _pipeline_config(tmp_path, "bad-data.yaml", data=source)
    production_before, models_before = _production_id(), _model_artifacts()
    assert models_before  # the production run's checkpoint and ONNX model, at least

    with pytest.raises(RuntimeError, match=r"failure in step\(s\): validate_turns"):
        training_pipeline.with_options(config_path=str(config))()

    run = _latest_run()
    assert run.status == ExecutionStatus.FAILED
    assert run.steps["validate_turns"].status == ExecutionStatus.FAILED
    assert set(run.steps) == {"load_turns", "validate_turns"}  # nothing after validation ran
    report = run.steps["validate_turns"].outputs["validation_report"][0].load()
    assert isinstance(report, HTMLString)
    failed = re.findall(r'<tr class="fail"><td>.*?</td><td>(.*?)</td>', report)
    assert {html.unescape(name) for name in failed} == {
        "'query' is not blank",
        "(conversation_id, turn) is unique",
    }
    # ZenML opens a model version when a run starts; this one holds no model and no stage
    assert run.model_version is not None
    version = Client().get_model_version(MODEL_NAME, run.model_version.id)
    linked = Client().list_artifact_versions(model_version_id=version.id, size=100)
    assert {artifact.artifact.name for artifact in linked} == {"turns", "validation_report"}
    assert version.stage is None
    assert not {"recall@10", "promotion", "evaluation"} & set(version.run_metadata)
    assert _model_artifacts() == models_before
    assert _production_id() == production_before is not None


def test_a_model_below_the_quality_gate_leaves_production_unchanged(
    production: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    config = _pipeline_config(tmp_path, "gate.yaml", gate={"metric": "recall@10", "floor": 1.0})
    production_before = _production_id()
    assert production_before is not None

    run = training_pipeline.with_options(config_path=str(config))()

    assert run is not None
    run = Client().get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED  # a failed gate is a decision, not an error
    assert run.model_version is not None
    decision = run.steps["register_model"].outputs["promotion"][0].load()
    assert isinstance(decision, PromotionDecision) and not decision.promote
    assert any("is not above the floor 1.0" in reason for reason in decision.reasons)
    version = Client().get_model_version(MODEL_NAME, run.model_version.id)
    assert version.id != production_before and version.stage is None
    assert _production_id() == production_before


PIPELINE_RUN = """
import sys
from pipelines import training_pipeline
run = training_pipeline.with_options(config_path=sys.argv[1])()
print(f"RUN_ID={run.id}")
"""


def test_two_pipeline_runs_started_together_both_finish_with_loadable_artifacts(
    production: object, tmp_path: Path
) -> None:
    # new training seed: training onwards runs in both (the data steps are cached by now)
    training = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))["parameters"]["training"]
    config = _pipeline_config(tmp_path, "concurrent.yaml", training={**training, "seed": 7})
    # `python -c` has no main file to derive ZenML's source root from (a fresh clone has no .zen)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ZENML_CUSTOM_SOURCE_ROOT": str(REPO_ROOT)}
    command = [sys.executable, "-c", PIPELINE_RUN, str(config)]
    processes = [
        subprocess.Popen(  # noqa: S603 - our own pipeline, with this interpreter
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=540) for process in processes]

    client = Client()
    versions, trained = set(), []
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
        run_id = next(line for line in out.splitlines() if line.startswith("RUN_ID="))[7:]
        run = client.get_pipeline_run(run_id)
        assert run.status == ExecutionStatus.COMPLETED
        trained.append(run.steps["train_predictor"].status)
        checkpoint = run.steps["train_predictor"].outputs[PREDICTOR_CHECKPOINT][0].load()
        assert isinstance(checkpoint, PredictorCheckpoint)  # size and sha256 verified on load
        onnx_model = run.steps["export_onnx"].outputs["onnx_model"][0].load()
        assert isinstance(onnx_model, VerifiedOnnx)  # content hash verified on load
        assert onnx_model.metadata.weights_sha256 == checkpoint.metadata.weights_sha256
        assert isinstance(
            run.steps["register_model"].outputs["promotion"][0].load(), PromotionDecision
        )
        assert run.model_version is not None
        versions.add(run.model_version.id)
    assert len(versions) == 2  # one model version each
    assert ExecutionStatus.COMPLETED in trained  # not a replay of cached steps
    in_production = client.list_model_versions(model=MODEL_NAME, stage=ModelStages.PRODUCTION)
    assert len(in_production.items) == 1


# ------------------------------------------------------------------------------ command lines


def _command(argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(  # noqa: S603 - our own entry points, no shell
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    config = PREDICTOR.model_copy(update={"input_dim": 384, "output_dim": 384})
    files = {
        "checkpoint": save_checkpoint(EmbeddingPredictor(config), root / "ckpt"),
        "garbage": root / "garbage",
        "garbage_onnx": root / "garbage.onnx",
        "bad_json": root / "bad.jsonl",
        "blocker": root / "blocker",
        "turns": REPO_ROOT / "examples" / "data" / "turns.jsonl",
    }
    files["garbage"].write_bytes(b"\x00 definitely not a model \xff" * 10)
    files["garbage_onnx"].write_bytes(b"\x00 definitely not a model \xff" * 10)
    files["bad_json"].write_text('{"conversation_id": "c0", "turn": 0,\n', encoding="utf-8")
    files["blocker"].write_text("a file, not a directory\n", encoding="utf-8")
    return files


USER_ERRORS: dict[str, tuple[list[str], str]] = {
    "train-missing-data": (
        ["train", "--data", "{root}/missing.jsonl", "--out", "{root}/run"],
        "missing.jsonl: file not found",
    ),
    "evaluate-garbage-model": (
        ["evaluate", "--model", "{garbage}", "--data", "{turns}"],
        "is a file but not a .onnx model",
    ),
    "evaluate-garbage-onnx": (
        ["evaluate", "--model", "{garbage_onnx}", "--data", "{turns}"],
        "not an ONNX model",
    ),
    "predict-invalid-json": (
        ["predict", "--model", "{checkpoint}", "--data", "{bad_json}", "--out", "{root}/e.parquet"],
        "invalid JSON on line 1",
    ),
    "export-to-a-bad-path": (
        ["export", "--checkpoint", "{checkpoint}", "--out", "{blocker}/model.onnx"],
        "blocker is a file, not a directory",
    ),
}


def _argv(template: list[str], files: dict[str, Path]) -> list[str]:
    names = {**{k: str(v) for k, v in files.items()}, "root": str(files["garbage"].parent)}
    return [part.format(**names) for part in template]


@pytest.mark.parametrize("name", USER_ERRORS)
def test_cli_user_errors_exit_2_with_a_message_and_no_traceback(
    name: str, cli_files: dict[str, Path]
) -> None:
    template, message = USER_ERRORS[name]
    before = sorted(cli_files["garbage"].parent.rglob("*"))
    result = _command([str(PRIME), *_argv(template, cli_files), "--quiet"])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert sorted(cli_files["garbage"].parent.rglob("*")) == before  # no partial output


def test_cli_debug_shows_the_traceback(cli_files: dict[str, Path]) -> None:
    template, message = USER_ERRORS["train-missing-data"]
    result = _command([str(PRIME), *_argv(template, cli_files), "--quiet", "--debug"])
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "prime_model.errors.DataValidationError: " in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("missing.yaml", "missing.yaml: no such config file"),
        (
            "heads.yaml",  # hidden_dim 32 is not divisible by 3
            "heads.yaml: invalid pipeline parameters:\n  predictor: invalid PredictorConfig:\n"
            "  hidden_dim=32 must be divisible by num_heads=3",
        ),
    ],
)
def test_run_py_with_a_bad_config_exits_2_with_a_message(
    config: str, message: str, tmp_path: Path
) -> None:
    smoke = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    smoke["parameters"]["predictor"]["num_heads"] = 3
    (tmp_path / "heads.yaml").write_text(yaml.safe_dump(smoke), encoding="utf-8")
    result = _command([sys.executable, "run.py", "--config", str(tmp_path / config)])
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
