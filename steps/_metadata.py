"""log_metadata that also works when a step's ``.entrypoint`` runs outside a pipeline (tests)."""

from __future__ import annotations

import logging
from typing import Any

from zenml import get_step_context, log_metadata

logger = logging.getLogger(__name__)


def log_step_metadata(metadata: dict[str, Any], **target: Any) -> None:
    try:
        get_step_context()
    except RuntimeError:
        logger.debug("not inside a pipeline run: metadata not logged: %s", sorted(metadata))
        return
    log_metadata(metadata=metadata, **target)
