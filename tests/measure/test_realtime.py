"""Real-time options: applied and restored as root, refused with a clear message as a normal user."""

from __future__ import annotations

import argparse
import gc
import os
from typing import Any

import pytest

from hil.errors import ConfigError
from hil.measure.realtime import (
    RealtimeOptions,
    add_arguments,
    apply,
    describe_scheduler,
    options_from_args,
    parse_cpus,
    realtime,
)
from tests.helpers import in_child


def state() -> dict[str, Any]:
    return {**describe_scheduler(), "gc_frozen": gc.get_freeze_count()}


def everything() -> RealtimeOptions:
    return RealtimeOptions(fifo_priority=10, cpus=[(os.cpu_count() or 1) - 1], mlock=True, freeze_gc=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="the permitted path needs root (CAP_SYS_NICE and CAP_IPC_LOCK)")
def test_as_root_every_option_applies_and_is_restored_on_exit() -> None:
    def body() -> dict[str, Any]:
        before = state()
        with realtime(everything()) as results:
            inside = state()
        return {"results": results, "before": before, "inside": inside, "after": state()}

    out = in_child(body)
    assert [(opt, ok) for opt, ok, _ in out["results"]] == [
        ("cpus", True), ("fifo_priority", True), ("mlock", True), ("freeze_gc", True)]
    inside, before, after = out["inside"], out["before"], out["after"]
    assert inside["policy"] == "SCHED_FIFO" and inside["priority"] == 10
    assert inside["cpus"] == everything().cpus
    assert inside["memory_locked_kib"] > 0
    assert not inside["gc_enabled"] and inside["gc_frozen"] > 0
    assert after == before
    assert after["policy"] == "SCHED_OTHER" and after["memory_locked_kib"] == 0 and after["gc_enabled"]


def test_as_a_normal_user_fifo_and_mlock_degrade_with_a_clear_message() -> None:
    def body() -> dict[str, Any]:
        with realtime(everything()) as results:
            inside = state()
        return {"results": results, "inside": inside, "after": state(), "uid": os.geteuid()}

    out = in_child(body, drop_to_nobody=True)
    assert out["uid"] != 0
    by_option = {opt: (ok, msg) for opt, ok, msg in out["results"]}
    assert by_option["cpus"][0] and by_option["freeze_gc"][0]  # a normal user may still do these
    ok, msg = by_option["fifo_priority"]
    assert not ok and "not permitted" in msg and "CAP_SYS_NICE" in msg
    ok, msg = by_option["mlock"]
    assert not ok and "not permitted" in msg and "CAP_IPC_LOCK" in msg
    assert out["inside"]["policy"] == "SCHED_OTHER" and out["inside"]["memory_locked_kib"] == 0
    assert out["after"]["gc_enabled"]


def test_refusals_are_logged_as_warnings() -> None:
    def body() -> list[Any]:
        import logging

        seen: list[Any] = []

        class Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.append([record.levelname, record.getMessage()])

        logging.getLogger("hil.measure.realtime").addHandler(Keep())
        apply(RealtimeOptions(fifo_priority=5))
        return seen

    seen = in_child(body, drop_to_nobody=True)
    assert seen and seen[0][0] == "WARNING" and "SCHED_FIFO" in seen[0][1]


def test_nothing_requested_changes_nothing() -> None:
    before = state()
    with realtime(RealtimeOptions()) as results:
        assert results == []
        assert state() == before


def test_command_line_flags() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    o = options_from_args(p.parse_args(["--fifo", "80", "--cpus", "0", "--mlock", "--freeze-gc"]))
    assert o == RealtimeOptions(fifo_priority=80, cpus=[0], mlock=True, freeze_gc=True)
    assert not options_from_args(p.parse_args([])).any()
    assert parse_cpus("0-2,5") == [0, 1, 2, 5]
    for bad in ("x", "3-1", ""):
        with pytest.raises(ConfigError):
            parse_cpus(bad)
    with pytest.raises(ConfigError, match="outside"):
        RealtimeOptions(fifo_priority=150).validate()
    with pytest.raises(ConfigError, match="no CPU"):
        RealtimeOptions(cpus=[4096]).validate()
