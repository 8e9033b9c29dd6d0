"""``zenml pipeline run inference_pipeline -c configs/inference.yaml``, from the repository root.

ZenML loads a source path without a dot as a module and wants that object to be a pipeline, so
this module puts the pipeline in its own place in ``sys.modules``; the import system hands
that to whoever imports it. Python code imports ``pipelines.inference_pipeline`` instead.
"""

import sys

from pipelines import inference_pipeline

sys.modules[__name__] = inference_pipeline  # type: ignore[assignment]  # a Pipeline, not a module
