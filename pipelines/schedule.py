"""Scheduled retraining: the ``schedule:`` section of a run config, checked before ZenML sees it.

ZenML accepts any string as a cron expression and ignores unknown schedule keys, so a typo
surfaces only on the cluster (or never). The local orchestrator cannot schedule at all; there the
refusal names the alternatives instead of ZenML's generic "does not support scheduling".

    python -m pipelines.schedule configs/retraining_schedule.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from croniter import CroniterError, croniter
from pydantic import ValidationError
from zenml.config.schedule import Schedule

from pipelines.retraining import retraining_pipeline
from pipelines.run_config import BASE_KEY, load_run_config
from prime_model.config import describe_validation_error
from prime_model.errors import (
    ConfigError,
    PrimeError,
    ScheduleConfigError,
    SchedulingUnsupportedError,
)
from prime_model.files import read_text_file
from prime_model.parsing import parse_yaml
from prime_model.strict_fields import strict_scalars
from prime_model.text import shown

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("configs/retraining_schedule.yaml")

_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FORMS = "minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"


def check_cron(expression: str) -> None:
    """Standard 5-field cron (Kubernetes CronJob), a 6-field one with seconds first (Kubeflow),
    or a macro such as ``@daily``; croniter judges the fields, we only bound the forms."""
    text = expression.strip().lower()
    if text in _MACROS:
        return
    fields = len(text.split())
    if fields not in {5, 6}:
        raise ScheduleConfigError(
            f"cron expression {shown(expression)} has {fields} fields; expected 5 ({_FORMS}), "
            f"6 with seconds first (Kubeflow), or one of {', '.join(_MACROS)}"
        )
    try:
        croniter(text, second_at_beginning=fields == 6)
    except CroniterError as exc:
        raise ScheduleConfigError(
            f"cron expression {shown(expression)} is not valid ({exc}); expected {_FORMS}"
        ) from None


def load_schedule(path: str | Path) -> Schedule:
    """The ``schedule:`` section of a ZenML run config as a checked ZenML ``Schedule``."""
    path = Path(path)
    text = read_text_file(path, "schedule config file", ScheduleConfigError)
    data = parse_yaml(text, str(path), ScheduleConfigError)
    if isinstance(data, dict) and BASE_KEY in data:  # the schedule may come from the base
        data = load_run_config(path, "schedule config file", ScheduleConfigError)
    section: Any = data.get("schedule") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ScheduleConfigError(
            f"{path}: expected a 'schedule:' mapping, e.g. schedule: {{cron_expression: "
            f"'0 3 * * *', name: prime-retraining-nightly}}; got {shown(section)}"
        )
    unknown = sorted(set(section) - set(Schedule.model_fields))
    if unknown:
        raise ScheduleConfigError(
            f"{path}: unknown schedule keys {unknown}; expected some of "
            f"{sorted(Schedule.model_fields)}"
        )
    if not isinstance(section.get("cron_expression"), str):
        raise ScheduleConfigError(
            f"{path}: schedule.cron_expression must be a cron string such as '0 3 * * *' "
            f"(the Kubernetes orchestrator runs cron schedules only); got "
            f"{shown(section.get('cron_expression'))}"
        )
    try:
        check_cron(section["cron_expression"])
        schedule = Schedule(**section)
        strict_scalars(Schedule, section, f"{path}: schedule")  # what pydantic let pass laxly
        return schedule
    except ScheduleConfigError as exc:
        raise ScheduleConfigError(f"{path}: {exc}") from None
    except ConfigError as exc:  # strict_scalars: its message names the file already
        raise ScheduleConfigError(str(exc)) from None
    except ValidationError as exc:
        raise ScheduleConfigError(
            f"{path}: invalid schedule:\n{describe_validation_error(exc)}"
        ) from None


def schedule_retraining(config_path: str | Path = DEFAULT_CONFIG) -> Schedule:
    """Register the retraining pipeline with the active orchestrator's scheduler."""
    schedule = load_schedule(config_path)
    try:
        retraining_pipeline.with_options(config_path=str(config_path), schedule=schedule)()
    except ValueError as exc:
        if "does not support scheduling" not in str(exc):
            raise
        raise SchedulingUnsupportedError(
            f"the active ZenML stack cannot schedule runs ({str(exc).split('.')[0]}); the "
            "local orchestrator never can. Locally, run the pipeline from cron or a systemd "
            "timer: see infra/local/ (`make schedule-local`). To schedule in ZenML, switch to "
            "a Kubernetes or Kubeflow stack (infra/stacks/) and run this again."
        ) from exc
    logger.info("scheduled retraining %r with cron %r", schedule.name, schedule.cron_expression)
    return schedule


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.schedule [CONFIG]``: exit 2 with the reason when it cannot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("config", nargs="?", default=str(DEFAULT_CONFIG))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        schedule_retraining(args.config)
    except PrimeError as exc:
        logger.error("error: %s", exc)  # the message is the whole story: no traceback
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
