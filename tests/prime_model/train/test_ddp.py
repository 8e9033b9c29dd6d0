"""Multi-process training on CPU (gloo): ddp_spawn as in a pipeline step, ddp as from a script."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L  # noqa: N812
import pytest
import torch

from prime_model import ConfigError, PredictorConfig, TrainingConfig, load_checkpoint
from prime_model.train.strategy import lightning_strategy, process_count
from prime_model.train.training import _refuse_relaunch, train_predictor
from tests.conftest import REPO_ROOT, make_encoded


def _config(**overrides: object) -> TrainingConfig:
    base: dict[str, object] = {
        "batch_size": 16,
        "max_epochs": 2,
        "warmup_steps": 1,
        "learning_rate": 1e-3,
        "log_every_n_steps": 1,
        "accelerator": "cpu",
        "devices": 2,
    }
    return TrainingConfig(**{**base, **overrides})


def test_ddp_spawn_trains_on_two_processes_and_saves_rank_zeros_best(
    tiny_config: PredictorConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"output_dim": 16})
    train, val = make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1)
    result = train_predictor(train, val, config, _config(strategy="ddp_spawn"), tmp_path)

    loaded = load_checkpoint(result.checkpoint_dir)
    meta = loaded.metadata.training
    # 64 rows / 16 per batch = 4 batches, shared by 2 ranks: 2 steps per epoch
    assert meta["global_step"] == 4
    assert meta["training_config"]["strategy"] == "ddp_spawn"
    assert meta["metrics"] == result.best_metrics
    losses = [row["train/loss"] for row in result.history if "train/loss" in row]
    assert len(losses) == 4
    assert all(math.isfinite(loss) for loss in losses)
    # the main process never trained: the saved weights are rank 0's best epoch
    best = torch.load(result.lightning_dir / "best.ckpt", map_location="cpu", weights_only=True)
    for name, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, best["state_dict"][f"net.{name}"])


SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
import prime_model.train.training as training
from prime_model import PredictorConfig, TrainingConfig
from tests.conftest import make_encoded

if __name__ == "__main__":  # Lightning's ddp re-runs this file for rank 1
    out = sys.argv[1]
    save = training.write_checkpoint
    def spy(*args, **kwargs):
        with open(os.path.join(out, "saves.txt"), "a") as f:
            f.write(os.environ.get("LOCAL_RANK", "0") + "\\n")
        return save(*args, **kwargs)
    training.write_checkpoint = spy
    config = PredictorConfig(input_dim=16, output_dim=16, hidden_dim=32, num_layers=2,
                             num_heads=4, max_context_length=6, dropout=0.0, max_batch_size=8)
    result = training.train_predictor(
        make_encoded(m=64, k=16), make_encoded(m=20, k=16, seed=1), config,
        TrainingConfig(**json.loads(sys.argv[2])), out,
    )
    rank = os.environ.get("LOCAL_RANK", "0")
    with open(os.path.join(out, f"result-{{rank}}.json"), "w") as f:
        json.dump({{"dir": str(result.checkpoint_dir), "exists": result.checkpoint_dir.exists(),
                   "metrics": result.best_metrics}}, f)
"""


def test_script_launched_ddp_saves_once_and_every_rank_gets_the_result(tmp_path: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(textwrap.dedent(SCRIPT.format(root=str(REPO_ROOT))))
    out = tmp_path / "out"
    out.mkdir()
    (out / "logs").mkdir()  # a previous run's folder: cleared once, by rank 0
    config = _config(strategy="ddp").model_dump_json()
    done = subprocess.run(  # noqa: S603 - our own script, with this interpreter
        [sys.executable, str(script), str(out), config],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # two ranks on a loaded 2-core machine
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "saves.txt").read_text().split() == ["0"]  # rank 1 never writes
    results = [json.loads((out / f"result-{rank}.json").read_text()) for rank in ("0", "1")]
    assert results[0] == results[1]
    assert results[0]["exists"]
    assert load_checkpoint(results[0]["dir"]).metadata.training["global_step"] == 4


@pytest.mark.parametrize(
    ("overrides", "inside", "expected"),
    [
        ({"strategy": "ddp"}, False, "ddp"),  # a script: re-running it per rank is the design
        ({"strategy": "ddp"}, True, "ddp_spawn"),
        ({"strategy": "ddp_spawn"}, True, "ddp_spawn"),
        ({"strategy": "auto", "devices": 2}, True, "ddp_spawn"),
        ({"strategy": "auto", "devices": "2"}, True, "ddp_spawn"),
        ({"strategy": "auto", "devices": "0,1"}, True, "ddp_spawn"),
        ({"strategy": "auto", "devices": 1}, True, "auto"),
        ({"strategy": "auto", "devices": "auto"}, True, "auto"),  # left to the launcher check
        ({"strategy": "auto", "devices": 2}, False, "auto"),
        ({"strategy": "fsdp", "accelerator": "gpu", "devices": 1}, True, "fsdp"),
        ({"strategy": "fsdp", "accelerator": "gpu", "devices": 4}, False, "fsdp"),
    ],
)
def test_lightning_strategy(overrides: dict[str, object], inside: bool, expected: str) -> None:
    assert lightning_strategy(_config(**overrides), inside_pipeline=inside) == expected


def test_ddp_inside_a_pipeline_says_it_switched(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="prime_model.train.strategy"):
        lightning_strategy(_config(strategy="ddp"), inside_pipeline=True)
    assert "re-run the pipeline" in caplog.text
    assert "using 'ddp_spawn'" in caplog.text


def test_fsdp_on_several_processes_inside_a_pipeline_is_refused() -> None:
    config = _config(strategy="fsdp", accelerator="gpu", devices=2, num_nodes=2)
    with pytest.raises(ConfigError, match=r"'fsdp' on 4 processes inside a pipeline step"):
        lightning_strategy(config, inside_pipeline=True)


@pytest.mark.parametrize(
    ("devices", "num_nodes", "expected"),
    [(2, 1, 2), (2, 3, 6), ("4", 1, 4), ("0, 1", 2, 4), ("auto", 1, None), ("-1", 1, None)],
)
def test_process_count(devices: int | str, num_nodes: int, expected: int | None) -> None:
    strategy = "ddp" if num_nodes > 1 else "auto"
    config = _config(devices=devices, num_nodes=num_nodes, strategy=strategy)
    assert process_count(config) == expected


def test_a_relaunching_trainer_is_refused_inside_a_pipeline() -> None:
    """What Lightning resolved is checked too: the config cannot always tell (devices: auto)."""
    config = _config(strategy="ddp")
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    with pytest.raises(ConfigError, match="re-runs the launching command") as info:
        _refuse_relaunch(trainer, config)
    assert "set strategy: ddp_spawn" in str(info.value)
    spawned = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False)
    _refuse_relaunch(spawned, config)  # spawning is fine
