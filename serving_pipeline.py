"""``zenml pipeline deploy serving_pipeline``, from the repository root (see training_pipeline.py).

ZenML loads a source path without a dot as a module and wants that object to be a pipeline, so
this module puts the pipeline in its own place in ``sys.modules``.
"""

import sys

from pipelines import serving_pipeline

sys.modules[__name__] = serving_pipeline  # type: ignore[assignment]  # a Pipeline, not a module
