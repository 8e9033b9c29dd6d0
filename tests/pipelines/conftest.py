"""One smoke-trained production version for every pipeline test module that needs one."""

from __future__ import annotations

import pytest
from zenml.client import Client
from zenml.enums import ModelStages

from pipelines import training_pipeline
from prime_model.artifacts import MODEL_NAME
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="session")
def production() -> str:
    """A smoke-trained version forced into production (a smoke model may not beat the gate)."""
    run = training_pipeline.with_options(config_path=str(REPO_ROOT / "configs" / "smoke.yaml"))()
    assert run is not None and run.model_version is not None
    version = Client().get_model_version(MODEL_NAME, run.model_version.id)
    version.set_stage(ModelStages.PRODUCTION, force=True)
    return str(version.id)
