"""Typed, frozen configuration for the predictor and its training.

Invalid values raise :class:`~prime_model.errors.ConfigError` (never a bare pydantic error), whether
the config is built in Python or loaded from YAML, so one ``except PrimeError`` covers both.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prime_model.errors import ConfigError


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad field: where it is, what is wrong, what was given."""
    lines = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a cross-field rule: its message already names the fields
            lines.append(f"  {message}")
            continue
        where = ".".join(str(part) for part in err["loc"])
        given = "" if err["type"] == "missing" else f" (got {err['input']!r})"
        lines.append(f"  {where}: {message}{given}")
    return "\n".join(lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice: plain YAML keeps the last value silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class FrozenConfig(BaseModel):
    """Base for PRIME configs: immutable, unknown keys rejected, errors typed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(
                f"invalid {type(self).__name__}:\n{describe_validation_error(exc)}"
            ) from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Load from a YAML mapping of field names; errors name the file and the bad field."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text ({exc}); expected a YAML file") from None
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: expected a mapping of {cls.__name__} fields, got a {type(data).__name__}"
            )
        odd = [key for key in data if not isinstance(key, str)]
        if odd:
            raise ConfigError(f"{path}: field names must be strings, got {odd!r}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


class PredictorConfig(FrozenConfig):
    """Architecture of the :class:`~prime_model.model.EmbeddingPredictor` (defaults: the seed's)."""

    input_dim: int = Field(1024, gt=0, description="D: dimension of turn and query embeddings")
    output_dim: int = Field(1024, gt=0, description="D_out: dimension of the Y-Encoder targets")
    hidden_dim: int = Field(2048, gt=0, description="H: transformer width")
    num_layers: int = Field(4, gt=0, description="number of pre-norm transformer blocks")
    num_heads: int = Field(8, gt=0, description="attention heads; must divide hidden_dim")
    mlp_ratio: int = Field(4, gt=0, description="MLP width as a multiple of hidden_dim")
    max_context_length: int = Field(10, gt=0, description="N_max: most context turns accepted")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout in attention and MLP")
    max_batch_size: int | None = Field(
        32,
        gt=0,
        description=(
            "largest batch one inference (eval-mode) call accepts; sizes the optimised backends' "
            "static buffers. Training batches are not limited by it. None lifts the limit."
        ),
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute block activations in backward to save memory when training"
    )
    residual: bool = Field(
        False,
        description=(
            "predict the query embedding plus a correction read from [PRED] (zero at init, so an "
            "untrained model retrieves exactly like the query); False: [PRED] alone, the seed's"
        ),
    )

    @model_validator(mode="after")
    def _residual_needs_same_space(self) -> Self:
        if self.residual and self.input_dim != self.output_dim:
            raise ValueError(
                f"residual=True adds the query to the output, so input_dim={self.input_dim} "
                f"must equal output_dim={self.output_dim}"
            )
        return self

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Self:
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim={self.hidden_dim} must be divisible by num_heads={self.num_heads}"
            )
        return self


Precision = Literal["32-true", "bf16-mixed", "16-mixed"]
Strategy = Literal["auto", "ddp", "ddp_spawn", "fsdp"]


class TrainingConfig(FrozenConfig):
    """Optimisation settings for training the predictor with InfoNCE."""

    learning_rate: float = Field(3e-4, gt=0.0, le=1.0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0.0, lt=1.0, description="AdamW decay of matrices")
    batch_size: int = Field(64, gt=1, description="turns per step; the rest are in-batch negatives")
    max_epochs: int = Field(10, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps if set")
    warmup_steps: int = Field(100, ge=0, description="linear warmup before cosine decay")
    temperature: float = Field(0.07, gt=0.0, le=1.0, description="InfoNCE temperature τ")
    gradient_clip_val: float | None = Field(1.0, gt=0.0, description="max gradient norm")
    precision: Precision = Field(
        "32-true", description="Lightning precision; 16-mixed is CUDA-only"
    )
    early_stopping_patience: int | None = Field(3, gt=0, description="epochs without improvement")
    seed: int = Field(42, ge=0)
    symmetric_loss: bool = Field(False, description="also score targets against predictions")
    mask_duplicate_targets: bool = Field(
        True, description="rows of a batch that share a target are not each other's negatives"
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute block activations in backward (less memory, ~30% slower)"
    )
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu, ...")
    devices: int | str = Field("auto", description="Lightning devices: auto, 1, 2, ...")
    num_nodes: int = Field(1, gt=0, description="machines in a DDP/FSDP run, each with `devices`")
    strategy: Strategy = Field(
        "auto",
        description=(
            "Lightning strategy; inside a pipeline step use ddp_spawn (ddp re-runs the launching "
            "command in every extra rank); fsdp needs accelerator gpu/cuda"
        ),
    )
    num_workers: int = Field(0, ge=0, description="DataLoader workers; tensors are in memory")
    log_every_n_steps: int = Field(10, gt=0)

    @model_validator(mode="after")
    def _warmup_inside_run(self) -> Self:
        if self.max_steps is not None and self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} must be < max_steps={self.max_steps}"
            )
        return self

    @model_validator(mode="after")
    def _strategy_fits_hardware(self) -> Self:
        """Fail at config time what Lightning would only reject (or silently pick) at fit time."""
        if self.num_nodes > 1 and self.strategy == "auto":
            raise ValueError(
                f"num_nodes={self.num_nodes} needs strategy ddp, ddp_spawn or fsdp, not 'auto'"
            )
        if self.strategy == "fsdp" and self.accelerator not in ("gpu", "cuda"):
            raise ValueError(
                f"strategy 'fsdp' needs accelerator 'gpu' or 'cuda', got {self.accelerator!r}; "
                "use ddp_spawn (or ddp) on CPU"
            )
        return self
