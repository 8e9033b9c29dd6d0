"""``zenml pipeline run training_pipeline -c configs/training.yaml``, from the repository root.

ZenML loads a source path without a dot as a module and wants that object to be a pipeline, so
this module puts the pipeline in its own place in ``sys.modules``; the import system hands
that to whoever imports it. Python code imports ``pipelines.training_pipeline`` instead.
"""

import sys

from pipelines import training_pipeline

sys.modules[__name__] = training_pipeline  # type: ignore[assignment]  # a Pipeline, not a module
