"""Named predictor architectures: ``configs/predictor/<name>.yaml``, shared by the benchmark CLI
and the pipeline's benchmark step."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from prime_model.config import PredictorConfig
from prime_model.errors import ConfigError

PRESETS: Final = ("minilm", "default")
PRESET_DIR: Final = Path("configs") / "predictor"


def resolve_preset(preset: str) -> PredictorConfig:
    """A preset name (looked up under the working directory, then the source tree) or a YAML
    path; the source tree covers an editable install run from elsewhere."""
    if preset not in PRESETS:
        return PredictorConfig.from_yaml(preset)
    roots = (Path.cwd(), Path(__file__).resolve().parents[1])
    for root in roots:
        path = root / PRESET_DIR / f"{preset}.yaml"
        if path.is_file():
            return PredictorConfig.from_yaml(path)
    raise ConfigError(
        f"preset {preset!r}: {PRESET_DIR / (preset + '.yaml')} not found under "
        f"{[str(r) for r in roots]}; pass a CONFIG.yaml path instead"
    )
