"""benchmarks/real_data.py reads its recipe from configs/real.yaml (no data needed here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.real_data import real_recipe


def test_the_benchmark_trains_on_the_pipelines_recipe() -> None:
    recipe, val_fraction, test_fraction = real_recipe(Path("/data"), 0.25, 600)
    assert (val_fraction, test_fraction) == (0.1, 0.1)  # configs/training.yaml's, not restated
    assert [s.label for s in recipe.sources] == ["canard", "topiocqa", "doc2dial"]
    assert recipe.sources[0].path == "/data/canard/train.question.tsv"
    assert [s.weight for s in recipe.sources] == [1.0, 0.25, 0.0]
    assert recipe.max_train_chars == 600
    default, _, _ = real_recipe(Path("/data"))  # the CLI's defaults: every turn
    assert default.sources[1].weight == 1.0 and default.max_train_chars is None
