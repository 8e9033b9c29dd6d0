from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from prime_model.logs import is_terminal, lightning_logs, quiet_loggers


def test_quiet_loggers_raises_the_level_only_inside_the_block(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    child = logging.getLogger("prime_test_lib.optimizer")
    with quiet_loggers("prime_test_lib"):
        child.info("per-node chatter")
        child.warning("something that matters")
    child.info("after the block")
    assert [r.getMessage() for r in caplog.records] == ["something that matters", "after the block"]
    assert logging.getLogger("prime_test_lib").level == logging.NOTSET


def test_quiet_loggers_never_lowers_a_stricter_level() -> None:
    strict = logging.getLogger("prime_test_strict")
    strict.setLevel(logging.ERROR)
    try:
        with quiet_loggers("prime_test_strict"):
            assert strict.level == logging.ERROR
        assert strict.level == logging.ERROR
    finally:
        strict.setLevel(logging.NOTSET)


@pytest.fixture
def lightning_console() -> Iterator[io.StringIO]:
    """Lightning's import-time stderr handler on ``lightning``, as a string to read."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("lightning")
    log.addHandler(handler)
    try:
        yield stream
    finally:
        log.removeHandler(handler)


def test_lightning_lines_come_once_through_the_root_handlers(
    caplog: pytest.LogCaptureFixture, lightning_console: io.StringIO
) -> None:
    caplog.set_level(logging.INFO)
    console = next(
        h for h in logging.getLogger("lightning").handlers if type(h) is logging.StreamHandler
    )
    with lightning_logs():
        rank_zero_info("`Trainer.fit` stopped: `max_steps=8` reached.")
        assert console not in logging.getLogger("lightning").handlers
    assert [r.getMessage() for r in caplog.records] == [
        "`Trainer.fit` stopped: `max_steps=8` reached."
    ]
    assert lightning_console.getvalue() == ""  # not a second time, on stderr
    assert console in logging.getLogger("lightning").handlers  # put back afterwards


def test_lightning_noise_is_dropped_and_warnings_kept(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with lightning_logs(), pytest.warns(UserWarning, match="GPU available but not used"):
        rank_zero_info("GPU available: False, used: False")
        rank_zero_info("TPU available: False, using: 0 TPU cores")
        rank_zero_info("💡 Tip: For seamless cloud logging, try installing [litlogger](...)")
        rank_zero_warn("GPU available but not used.")
    assert caplog.records == []
    rank_zero_info("GPU available: False, used: False")  # outside the block: untouched
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]


def test_is_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert is_terminal(Tty(), Tty())
    assert not is_terminal(Tty(), io.StringIO())
    assert not is_terminal(None)
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    assert not is_terminal(closed)
