"""Turn data: the schema, readers, the generated sample set, validation and splitting."""

from prime_model.data.readers import SUPPORTED_FORMATS, TARGETS, read_turns
from prime_model.data.sample import SampleConfig, generate_corpus, generate_sample
from prime_model.data.schema import (
    COLUMNS,
    DTYPES,
    REQUIRED_COLUMNS,
    Turn,
    conform_frame,
    truncate_histories,
    turns_to_frame,
)
from prime_model.data.split import TurnSplits, split_by_conversation
from prime_model.data.validation import (
    ValidationConfig,
    ValidationReport,
    check_turns,
    validate_turns,
)
from prime_model.errors import TurnValidationError

__all__ = [
    "COLUMNS",
    "DTYPES",
    "REQUIRED_COLUMNS",
    "SUPPORTED_FORMATS",
    "TARGETS",
    "SampleConfig",
    "Turn",
    "TurnSplits",
    "TurnValidationError",
    "ValidationConfig",
    "ValidationReport",
    "check_turns",
    "conform_frame",
    "generate_corpus",
    "generate_sample",
    "read_turns",
    "split_by_conversation",
    "truncate_histories",
    "turns_to_frame",
    "validate_turns",
]
