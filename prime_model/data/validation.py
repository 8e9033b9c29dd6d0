"""Validate a turn table with a Great Expectations 1.x suite, before anything is encoded.

GX runs in an ephemeral, file-less context (nothing written, nothing fetched) and is imported only
when a table is validated, since its import alone takes seconds. GX cannot look inside list cells,
so ``history`` is checked through columns derived on a copy of the frame (``history_is_list``,
``history_len``, …); the caller's frame is never modified.

:func:`check_turns` returns a :class:`ValidationReport` whatever it finds; :func:`validate_turns`
raises :class:`TurnValidationError` (a :class:`DataValidationError` carrying the report) on
failure, so a pipeline can still store the report's HTML.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pandas as pd

from prime_model.data.validation_report import (
    MAX_EXAMPLES,
    ExampleRow,
    ExpectationOutcome,
    ValidationReport,
    outcome_from_result,
)
from prime_model.data.validation_suite import Check, ValidationConfig, derived_frame, suite_checks
from prime_model.errors import DataValidationError, TurnValidationError
from prime_model.logs import quiet_loggers

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation import Expectation

__all__ = [
    "ExampleRow",
    "ExpectationOutcome",
    "TurnValidationError",
    "ValidationConfig",
    "ValidationReport",
    "check_turns",
    "validate_turns",
]

logger = logging.getLogger(__name__)


def validate_turns(
    turns: pd.DataFrame, config: ValidationConfig | None = None, source: str = "turn table"
) -> ValidationReport:
    """Validate, and raise :class:`TurnValidationError` listing every failed check."""
    report = check_turns(turns, config, source)
    if not report.success:
        raise TurnValidationError(report.describe_failures(), report)
    return report


def check_turns(
    turns: pd.DataFrame, config: ValidationConfig | None = None, source: str = "turn table"
) -> ValidationReport:
    """Run the suite and report every outcome; never raises on bad data, only on a non-frame."""
    if not isinstance(turns, pd.DataFrame):
        raise DataValidationError(f"{source}: expected a pandas DataFrame, got {type(turns)!r}")
    config = config or ValidationConfig()
    frame = derived_frame(turns, config)
    checks = suite_checks(frame.columns, config)
    results = _run_suite(frame, checks)
    outcomes = tuple(
        outcome_from_result(
            result,
            frame,
            name=check.name,
            expectation=kind,
            column=check.column,
            shown=check.example_column,
        )
        for check, (kind, result) in zip(checks, results, strict=True)
    )
    history_len = frame.get("history_len", pd.Series(dtype=float))
    report = ValidationReport(
        source=source,
        success=all(o.success for o in outcomes),
        rows=len(frame),
        conversations=int(frame["conversation_id"].nunique()) if "conversation_id" in frame else 0,
        truncated_histories=int((history_len > config.max_context_length).sum()),
        max_context_length=config.max_context_length,
        results=outcomes,
    )
    logger.info("%s", report.summary())
    return report


def _run_suite(
    frame: pd.DataFrame, checks: list[Check]
) -> list[tuple[str, ExpectationValidationResult]]:
    """Run the checks in a fresh ephemeral GX context; results come back in ``checks`` order.

    GX logs its own bookkeeping on INFO while importing and building a context (~200
    "Skipping registering function ... because it is a closure" lines, "Multiple declarations
    of metric", "Loading 'datasources'"): only its warnings are kept.
    """
    with quiet_loggers("great_expectations"):
        return _run_gx_suite(frame, checks)


def _run_gx_suite(
    frame: pd.DataFrame, checks: list[Check]
) -> list[tuple[str, ExpectationValidationResult]]:
    import great_expectations as gx  # noqa: PLC0415 - a 2.5 s import, paid only when validating
    import great_expectations.expectations as gxe  # noqa: PLC0415
    from great_expectations.data_context.types.base import (  # noqa: PLC0415
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # In-memory stores, no Data Docs site (not even a temporary directory), no progress bars.
    project = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=project)
    batch = (
        context.data_sources.add_pandas("turns")
        .add_dataframe_asset("turns")
        .add_batch_definition_whole_dataframe("all rows")
    )
    expectations: list[Expectation] = [
        getattr(gxe, c.expectation)(**c.kwargs, meta={"check": i}) for i, c in enumerate(checks)
    ]
    suite = context.suites.add(gx.ExpectationSuite(name="turns", expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="turns", data=batch, suite=suite)
    )
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES},
    )
    by_check = {
        r.expectation_config.meta["check"]: r for r in result.results if r.expectation_config
    }
    return [(e.expectation_type, by_check[i]) for i, e in enumerate(expectations)]
