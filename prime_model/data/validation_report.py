"""The outcome of validating a turn table, as plain data plus a self-contained HTML page.

GX results become plain pydantic models here, so a report can be stored as a pipeline artifact,
compared in tests and rendered anywhere. GX's own Data Docs load CSS and JS from CDNs and render
unstyled offline, so the HTML here is built by hand, with inline CSS and every user text escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from prime_model.html_page import escape as _e
from prime_model.html_page import html_page

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

MAX_EXAMPLES: Final = 5  # offending rows kept per check
_MAX_LISTED_EXAMPLES: Final = 3  # per failed check in an error message; the HTML shows all kept
_PREVIEW_CHARS: Final = 80


class ExampleRow(BaseModel):
    """One offending row, shown as text so any value (None, a list, a huge string) fits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int = Field(description="0-based position of the row in the validated frame")
    conversation_id: str = Field(description="repr of the row's conversation_id (or '?')")
    turn: str = Field(description="repr of the row's turn (or '?')")
    value: str | None = Field(description="repr of the offending value, shortened, if any")

    def describe(self) -> str:
        """``row 3 (conversation 'c1', turn 2): '  '``, for error messages."""
        where = f"row {self.row} (conversation {self.conversation_id}, turn {self.turn})"
        return where if self.value is None else f"{where}: {self.value}"


class ExpectationOutcome(BaseModel):
    """What one expectation of the suite found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="what was checked, in words: \"'query' is not blank\"")
    expectation: str = Field(description="GX expectation type: expect_column_values_to_…")
    column: str | None = Field(description="validated column (or derived column); None: table")
    success: bool
    unexpected_count: int | None = Field(None, description="offending rows (row-wise checks)")
    observed: str | None = Field(None, description="observed value (table and dtype checks)")
    error: str | None = Field(None, description="why GX could not evaluate the check, if so")
    examples: tuple[ExampleRow, ...] = ()

    def describe(self) -> str:
        """One line naming the check, the GX expectation, the counts and a few offending rows."""
        where = f", column '{self.column}'" if self.column else ""
        text = f"{self.name} [{self.expectation}{where}]"
        if self.error is not None:
            return f"{text}: could not be evaluated: {self.error}"
        facts = []
        if self.unexpected_count is not None:
            facts.append(f"{self.unexpected_count} unexpected row(s)")
        if self.observed is not None:
            facts.append(f"observed {self.observed}")
        if self.examples:
            listed = "; ".join(e.describe() for e in self.examples[:_MAX_LISTED_EXAMPLES])
            facts.append(f"e.g. {listed}")
        return f"{text}: {', '.join(facts)}" if facts else text


class ValidationReport(BaseModel):
    """Every check's outcome on one turn table, plus the facts a pipeline logs about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="what was validated, for messages: a path or split name")
    success: bool
    rows: int
    conversations: int = Field(description="distinct conversation ids (0 if the column is missing)")
    truncated_histories: int = Field(
        description="rows whose history has more than max_context_length turns: encoding keeps "
        "only the most recent max_context_length, so older context is dropped (not a failure)"
    )
    max_context_length: int
    results: tuple[ExpectationOutcome, ...]

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        """The checks that did not pass, in suite order."""
        return tuple(r for r in self.results if not r.success)

    def summary(self) -> str:
        """One line for logs: the verdict and the table's size."""
        checks, failed = len(self.results), len(self.failures)
        verdict = f"failed {failed} of {checks}" if failed else f"passed all {checks}"
        return (
            f"{self.source}: {verdict} checks "
            f"({self.rows} rows, {self.conversations} conversations, "
            f"{self.truncated_histories} histories longer than {self.max_context_length} turns)"
        )

    def describe_failures(self) -> str:
        """The summary, then one line per failed check: what a DataValidationError says."""
        return "\n".join([self.summary(), *(f"  - {r.describe()}" for r in self.failures)])

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS, no scripts, no links) of every check."""
        return render_html(self)


def outcome_from_result(
    result: ExpectationValidationResult,
    frame: pd.DataFrame,
    *,
    name: str,
    expectation: str,
    column: str | None,
    shown: str | None,
) -> ExpectationOutcome:
    """Turn one GX result into plain data; ``frame`` (the validated one) supplies example rows."""
    details: dict[str, Any] = result.result or {}
    observed = details.get("observed_value")
    count = details.get("unexpected_count")
    rows = details.get("partial_unexpected_index_list") or []
    return ExpectationOutcome(
        name=name,
        expectation=expectation,
        column=column,
        success=bool(result.success),
        unexpected_count=None if count is None else int(count),
        observed=None if observed is None else _preview(observed, quote=False),
        error=_exception_message(result.exception_info),
        examples=tuple(_example(frame, int(i), shown) for i in rows[:MAX_EXAMPLES]),
    )


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """GX nests metric errors by metric id; find the first message wherever it is."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    nested = (v for v in info.values() if isinstance(v, Mapping) and v.get("raised_exception"))
    first = next(nested, None)
    return None if first is None else str(first.get("exception_message"))


def _example(frame: pd.DataFrame, row: int, shown: str | None) -> ExampleRow:
    def cell(column: str) -> str:
        return _preview(frame.at[row, column]) if column in frame else "?"

    return ExampleRow(
        row=row,
        conversation_id=cell("conversation_id"),
        turn=cell("turn"),
        value=None if shown is None else cell(shown),
    )


def _preview(value: object, *, quote: bool = True) -> str:
    """A short repr: whitespace and types stay visible, huge texts do not flood the message."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = repr(value) if quote or not isinstance(value, str) else value
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 3] + "..."


_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}.verdict{font-weight:bold;padding:.2em .6em;border-radius:4px}
.pass{background:#d7f5dd;color:#11521f}.fail{background:#fbd9d9;color:#7a1010}
table{border-collapse:collapse;width:100%;margin-top:1em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.fail td:first-child{border-left:4px solid #c62828}
code{font-size:.9em}ul{margin:0;padding-left:1.2em}
"""


def render_html(report: ValidationReport) -> str:
    """Render ``report`` as one HTML document; every value from the data goes through escape."""
    verdict = "pass" if report.success else "fail"
    label = "PASSED" if report.success else f"FAILED ({len(report.failures)} checks)"
    facts = [
        ("Rows", report.rows),
        ("Conversations", report.conversations),
        ("Checks", len(report.results)),
        (f"Histories truncated to {report.max_context_length} turns", report.truncated_histories),
    ]
    fact_rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    result_rows = "".join(_result_row(r) for r in report.results)
    body = (
        f"<h1>Turn validation: {_e(report.source)}</h1>"
        f'<p><span class="verdict {verdict}">{label}</span></p>'
        f"<table>{fact_rows}</table>"
        "<table><thead><tr><th>Status</th><th>Check</th><th>Expectation</th><th>Column</th>"
        "<th>Unexpected</th><th>Observed</th><th>Examples</th></tr></thead>"
        f"<tbody>{result_rows}</tbody></table>"
    )
    return html_page(f"Turn validation: {report.source}", _CSS, body)


def _result_row(result: ExpectationOutcome) -> str:
    status = "pass" if result.success else "fail"
    if result.error is not None:
        details = f"<em>could not be evaluated:</em> {_e(result.error)}"
    else:
        details = "".join(f"<li>{_e(e.describe())}</li>" for e in result.examples)
        details = f"<ul>{details}</ul>" if details else ""
    cells = [
        f'<span class="verdict {status}">{status.upper()}</span>',
        _e(result.name),
        f"<code>{_e(result.expectation)}</code>",
        _e(result.column or "(table)"),
        _e("" if result.unexpected_count is None else result.unexpected_count),
        _e(result.observed or ""),
        details,
    ]
    return f'<tr class="{status}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
