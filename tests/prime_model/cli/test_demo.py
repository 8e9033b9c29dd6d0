from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prime_model import load_checkpoint
from prime_model.cli import demo
from tests.conftest import REPO_ROOT


def test_demo_predicts_with_the_default_y_encoder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="prime_model.cli.demo")
    assert (
        demo.main(
            [
                "--config",
                str(REPO_ROOT / "prime_model/presets/predictor/minilm.yaml"),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "reload reproduces it: True" in caplog.text
    assert load_checkpoint(tmp_path / "checkpoint").metadata.training == {"source": "demo"}
    predicted = demo.run(REPO_ROOT / "prime_model/presets/predictor/minilm.yaml", tmp_path)
    assert predicted.shape == (1, 384)
    assert np.isclose(np.linalg.norm(predicted), 1.0, atol=1e-5)


def test_demo_reports_user_errors_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert demo.main(["--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path)]) == 2
    assert "no such config file" in caplog.text
    assert "Traceback" not in caplog.text
