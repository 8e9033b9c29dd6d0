"""Typed, frozen configuration for the predictor and its training.

Invalid values raise :class:`~prime_model.errors.ConfigError` (never a bare pydantic error), whether
the config is built in Python or loaded from YAML, so one ``except PrimeError`` covers both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prime_model.errors import ConfigError
from prime_model.files import read_text_file
from prime_model.parsing import parse_yaml
from prime_model.strict_fields import strict_scalars
from prime_model.text import shown

# The shipped presets, data files beside this module (prime_model/presets/<kind>/<name>.yaml).
PRESETS_DIR: Final = Path(__file__).with_name("presets")


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad field: where it is, what is wrong, what was given."""
    lines = []
    for err in exc.errors(include_url=False):
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a cross-field rule: its message already names the fields
            lines.append(f"  {message}")
            continue
        where = ".".join(str(part) for part in err["loc"])
        given = "" if err["type"] == "missing" else f" (got {shown(err['input'])})"
        lines.append(f"  {where}: {message}{given}")
    return "\n".join(lines)


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
        data = read_fields(cls, path)
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def read_fields(cls: type[BaseModel], path: Path) -> dict[str, Any]:
    """A YAML file's mapping of ``cls`` field names, strictly read; errors name the file."""
    text = read_text_file(path, "config file", ConfigError)
    data = parse_yaml(text, str(path), ConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of {cls.__name__} fields, got a {type(data).__name__}"
        )
    odd = [key for key in data if not isinstance(key, str)]
    if odd:
        raise ConfigError(f"{path}: field names must be strings, got {shown(odd)}")
    strict_scalars(cls, data, str(path))
    return data


def preset_names(kind: str) -> tuple[str, ...]:
    """The presets shipped for ``kind`` (predictor or training): its YAML files, by name."""
    return tuple(sorted(path.stem for path in (PRESETS_DIR / kind).glob("*.yaml")))


class PresetConfig(FrozenConfig):
    """A config that may start from a shipped preset, e.g. ``{preset: minilm, hidden_dim: 256}``.

    The preset's fields come first and the given ones override them, so a pipeline YAML names the
    preset instead of copying it. The name is consumed here: the config (and a run's recorded
    parameters, and its cache key) holds the resolved values, exactly as if they were written out.
    """

    preset_kind: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _start_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "preset" not in data:
            return data
        fields = dict(data)
        name = fields.pop("preset")
        names = preset_names(cls.preset_kind)
        if name not in names:
            raise ValueError(
                f"unknown {cls.preset_kind} preset {shown(name)}; expected one of {names}"
            )
        return {**read_fields(cls, PRESETS_DIR / cls.preset_kind / f"{name}.yaml"), **fields}


MAX_PARAMETERS: Final = 4_000_000_000  # 16 GB of fp32: far beyond a predictor's size


class PredictorConfig(PresetConfig):
    """Architecture of the :class:`~prime_model.model.EmbeddingPredictor` (defaults: the seed's,
    made residual: the ``default`` preset)."""

    preset_kind: ClassVar[str] = "predictor"

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
        True,
        description=(
            "predict the query embedding plus a correction read from [PRED] (zero at init, so an "
            "untrained model retrieves exactly like the query), as every shipped preset does; "
            "False: [PRED] alone, the seed's, and the only choice when input_dim != output_dim"
        ),
    )

    role_embedding: bool = Field(
        False,
        description=(
            "add a learned user/system embedding to each context turn (history_roles); turns "
            "of unknown role get none"
        ),
    )
    concat_input: bool = Field(
        False,
        description=(
            "also read the Y-Encoder's embedding of history + query as one text (an extra token, "
            "and a learned share of it in the residual, zero at init); needs residual"
        ),
    )

    @model_validator(mode="after")
    def _concat_needs_residual(self) -> Self:
        if self.concat_input and not self.residual:
            raise ValueError("concat_input=True mixes into the residual: it needs residual=True")
        return self

    @model_validator(mode="after")
    def _residual_needs_same_space(self) -> Self:
        if self.residual and self.input_dim != self.output_dim:
            raise ValueError(
                f"residual=True adds the query to the output, so input_dim={self.input_dim} "
                f"must equal output_dim={self.output_dim}"
            )
        return self

    @property
    def approximate_parameters(self) -> int:
        """Weights of the projections and blocks (biases and norms left out): enough to refuse
        a config that could never be allocated before torch tries to."""
        d, h, width = self.input_dim, self.hidden_dim, self.mlp_ratio * self.hidden_dim
        block = 4 * h * h + 2 * h * width
        return 2 * d * h + self.num_layers * block + h * self.output_dim

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Self:
        if self.approximate_parameters > MAX_PARAMETERS:
            raise ValueError(
                f"this architecture has ~{self.approximate_parameters:.2e} parameters, more than "
                f"the {MAX_PARAMETERS:.0e} PRIME builds ({MAX_PARAMETERS * 4 / 2**30:.0f} GiB of "
                "fp32 weights); check input_dim, hidden_dim, mlp_ratio and num_layers"
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


class TrainingConfig(PresetConfig):
    """Optimisation settings for training the predictor with InfoNCE."""

    preset_kind: ClassVar[str] = "training"

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
    early_stopping_min_delta: float = Field(
        0.0, ge=0.0, lt=1.0, description="smallest val/recall@10 gain that counts as improvement"
    )
    conversation_batches: bool = Field(
        False,
        description=(
            "fill each batch with whole conversations, so a turn's in-batch negatives include "
            "its own conversation's other targets (hard negatives)"
        ),
    )
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
