from __future__ import annotations

import logging

from zenml import get_step_context, step
from zenml.client import Client

from prime_model.artifacts import PREDICTOR_CHECKPOINT

logger = logging.getLogger(__name__)


@step(enable_cache=False)
def discard_empty_version() -> None:
    """Delete this run's model version when no model was trained into it.

    A pipeline under a ``Model`` gets its version when the run starts; a retraining run that
    decides not to retrain would otherwise leave an empty, stage-less version behind. The run
    keeps its record (its link to the version becomes empty) and its decision artifacts.
    """
    model = get_step_context().model
    client = Client()
    version = client.get_model_version(model.name, str(model.version))
    if version.stage is not None or version.get_artifact(PREDICTOR_CHECKPOINT) is not None:
        logger.info("model version %s holds a model: kept", version.name)
        return
    client.delete_model_version(version.id)
    logger.info("no model trained: empty model version %s deleted", version.name)
