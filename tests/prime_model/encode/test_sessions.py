"""The threading policy: wide session alone, narrow under load; thread counts resolved."""

from __future__ import annotations

import os
import threading

import pytest

from prime_model.encode import sessions
from prime_model.encode.sessions import SessionChooser, usable_cores, wide_and_narrow
from prime_model.errors import ConfigError


def test_a_call_alone_gets_the_wide_session_and_a_concurrent_one_the_narrow() -> None:
    chooser = SessionChooser("wide", "narrow")
    with chooser.session() as first:
        assert first == "wide"
        assert chooser.in_flight == 1
        with chooser.session() as second:
            assert second == "narrow"
            with chooser.session() as third:
                assert third == "narrow"
            assert chooser.in_flight == 2
    assert chooser.in_flight == 0
    with chooser.session() as again:
        assert again == "wide"  # load gone: back to every core


def test_the_count_drops_when_a_call_fails() -> None:
    chooser = SessionChooser("wide", "narrow")
    with pytest.raises(RuntimeError), chooser.session():
        raise RuntimeError("the encode failed")
    assert chooser.in_flight == 0
    with chooser.session() as session:
        assert session == "wide"


def test_without_a_narrow_session_every_call_is_wide() -> None:
    chooser = SessionChooser("only")
    with chooser.session() as first, chooser.session() as second:
        assert (first, second) == ("only", "only")


def test_concurrent_calls_from_threads_see_each_other() -> None:
    chooser = SessionChooser("wide", "narrow")
    inside, release = threading.Barrier(3), threading.Event()
    got: list[str] = []

    def call() -> None:
        with chooser.session() as session:
            got.append(session)
            inside.wait(timeout=10)
            release.wait(timeout=10)

    workers = [threading.Thread(target=call) for _ in range(2)]
    for worker in workers:
        worker.start()
    inside.wait(timeout=10)  # both are in flight now
    assert sorted(got) == ["narrow", "wide"]
    release.set()
    for worker in workers:
        worker.join(timeout=10)
    assert chooser.in_flight == 0


def test_thread_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "usable_cores", lambda: 6)
    assert wide_and_narrow(None) == (6, None)
    assert wide_and_narrow("adaptive") == (6, 1)
    assert wide_and_narrow(3) == (3, None)
    monkeypatch.setattr(sessions, "usable_cores", lambda: 1)
    assert wide_and_narrow("adaptive") == (1, None)  # one core: nothing to adapt


@pytest.mark.parametrize("bad", [0, -2, True, "fast", 1.5])
def test_bad_thread_counts_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"expected at least 1 intra-op thread, 'adaptive'"):
        wide_and_narrow(bad)  # type: ignore[arg-type]


def test_usable_cores_follows_the_affinity() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
