"""The shipped configs' parameters as the pipelines' defaults: no ``-c`` runs the default run.

``zenml pipeline run training_pipeline`` then does what ``-c configs/training.yaml`` does, instead
of ZenML's page-long traceback about missing parameters. tests/pipelines/test_defaults.py keeps
these equal to configs/training.yaml, configs/retraining.yaml and configs/inference.yaml.
"""

from __future__ import annotations

from typing import Final

from prime_model.bench.latency import BenchmarkConfig
from prime_model.data.sample import SampleConfig
from prime_model.data.source import DataSource
from prime_model.data.validation import ValidationConfig
from prime_model.encode.encoders import EncoderConfig
from prime_model.evaluate.promotion import GateConfig
from prime_model.monitor.drift import DriftConfig
from prime_model.monitor.retraining import RetrainingConfig
from prime_model.presets import predictor_config, training_config
from prime_model.retrieve.corpus import CorpusSource
from prime_model.retrieve.index import IndexConfig
from prime_model.export.serving_models import ExportConfig

# configs/training.yaml (all configs are frozen pydantic models: safe as shared defaults)
DATA: Final = DataSource(kind="sample", sample=SampleConfig(num_conversations=800, seed=0))
VALIDATION: Final = ValidationConfig(
    min_rows=100, min_conversations=50, max_context_length=10, history_matches_turn=True
)
ENCODER: Final = EncoderConfig(model=None, batch_size=128, device="auto")
PREDICTOR: Final = predictor_config("minilm")
TRAINING: Final = training_config("default")
GATE: Final = GateConfig(metric="recall@10", floor=0.5)
EXPORT: Final = ExportConfig(opset=20, int8=True)
BENCHMARK: Final = BenchmarkConfig(
    backends=("eager", "onnx", "onnx-int8"), batch_sizes=(1, 32), presets=(), budget_s=2
)
CORPUS: Final = CorpusSource(path=None)
INDEX: Final = IndexConfig(kind="hnsw", m=32, ef_construction=200, ef_search=128, threads=1)

# configs/retraining.yaml: new turns from another seed, the rest as above
NEW_DATA: Final = DataSource(kind="sample", sample=SampleConfig(num_conversations=500, seed=1))
DRIFT: Final = DriftConfig(method="model", max_rows=500)
RETRAINING: Final = RetrainingConfig(on_drift=True, min_new_rows=5000)
RETRAINING_BENCHMARK: Final = BenchmarkConfig(presets=())

# configs/inference.yaml, but no output_path: a bare run writes nothing into the working directory
INFERENCE_DATA: Final = DataSource(
    kind="file", path="tests/fixtures/data/inputs.jsonl", format="jsonl", require_target=False
)
INFERENCE_VALIDATION: Final = ValidationConfig(
    min_rows=1, min_conversations=1, max_context_length=10, require_target=False
)
