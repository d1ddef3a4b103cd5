"""Real-time options: applied and restored as root, refused with a clear message as a normal user."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any

import pytest

from hil.errors import ConfigError
from hil.measure.bench import host_apart
from hil.measure.realtime import (
    GC_PATH_HEADROOM,
    RealtimeOptions,
    add_arguments,
    apply,
    board_placement,
    collect_young_garbage,
    cpu_latency_limit_us,
    describe_scheduler,
    options_from_args,
    parse_cpu_latency,
    parse_cpus,
    realtime,
)
from hil.procutil import Child, board_cpus
from tests.helpers import in_child

ANNOUNCE_AFFINITY = [sys.executable, "-c",
                     "import json, os; print(json.dumps({'cpus': sorted(os.sched_getaffinity(0))}))"]


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


@pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's CPU latency limit is root's to hold")
def test_idle_cpus_poll_while_the_loop_runs_and_the_limit_ends_with_it() -> None:
    def body() -> dict[str, Any]:
        before = cpu_latency_limit_us()
        with realtime(RealtimeOptions(cpu_latency_us=0)) as results:
            inside = cpu_latency_limit_us()
        return {"results": results, "before": before, "inside": inside, "after": cpu_latency_limit_us()}

    out = in_child(body)
    if out["before"] == 0:
        pytest.skip("another process holds the limit at 0 already: holding it proves nothing")
    assert [tuple(r) for r in out["results"]] == [
        ("cpu_latency_us", True, "idle CPUs poll instead of halting (a wake-up latency limit of 0 µs)")]
    assert out["inside"] == 0
    assert out["after"] == out["before"]


@pytest.mark.skipif(not os.path.exists("/dev/cpu_dma_latency"), reason="a kernel without CPU latency QoS")
def test_a_normal_user_is_told_idle_cpus_may_halt() -> None:
    def body() -> list[Any]:
        with realtime(RealtimeOptions(cpu_latency_us=0)) as results:
            return list(results)

    (option, ok, msg), = in_child(body, drop_to_nobody=True)
    assert option == "cpu_latency_us" and not ok
    assert msg == "/dev/cpu_dma_latency is not writable (needs root): idle CPUs may halt, and the first work after " \
                  "a wake-up runs slower"


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
    assert options_from_args(p.parse_args(["--cpu-latency-us", "0"])) == RealtimeOptions(cpu_latency_us=0)
    assert options_from_args(p.parse_args(["--cpu-latency-us", "off"])).cpu_latency_us is None
    assert parse_cpu_latency("50") == 50
    for bad in ("-1", "fast", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a latency in whole µs"):
            parse_cpu_latency(bad)
    with pytest.raises(ConfigError, match="outside"):
        RealtimeOptions(cpu_latency_us=-3).validate()
    assert parse_cpus("0-2,5") == [0, 1, 2, 5]
    for bad in ("x", "3-1", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="is not a CPU list"):
            parse_cpus(bad)
    with pytest.raises(ConfigError, match="outside"):
        RealtimeOptions(fifo_priority=150).validate()
    with pytest.raises(ConfigError, match="no CPU"):
        RealtimeOptions(cpus=[4096]).validate()


two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to place the boards apart")


def announced_cpus() -> list[int]:
    child = Child(ANNOUNCE_AFFINITY, "affinity")
    child.stop()
    return list(child.info["cpus"])


@two_cpus
def test_board_processes_start_on_the_board_cpus_and_the_caller_keeps_its_own() -> None:
    mine = sorted(os.sched_getaffinity(0))
    with board_cpus([mine[0]]):
        inside = announced_cpus()
    assert inside == [mine[0]]
    assert sorted(os.sched_getaffinity(0)) == mine
    assert announced_cpus() == mine  # outside, a board may run wherever this process may


@two_cpus
def test_the_boards_take_the_cpus_the_loop_leaves_unless_told() -> None:
    mine = sorted(os.sched_getaffinity(0))
    assert RealtimeOptions(cpus=[mine[-1]]).boards_on() == mine[:-1]
    assert RealtimeOptions(cpus=mine).boards_on() is None  # none left over: the boards are not placed
    assert RealtimeOptions(cpus=[mine[-1]], board_cpus=[mine[-1]]).boards_on() == [mine[-1]]
    assert RealtimeOptions().boards_on() is None
    cpus, placed = board_placement(RealtimeOptions(cpus=[mine[-1]]))
    assert cpus == mine[:-1] and placed is not None and placed.applied
    apart = host_apart(RealtimeOptions(fifo_priority=10))
    assert apart.board_cpus == [mine[0]] and apart.cpus == mine[1:] and apart.fifo_priority == 10
    assert host_apart(RealtimeOptions(cpus=[mine[0]])) == RealtimeOptions(cpus=[mine[0]])  # the user's placement


@two_cpus
def test_board_cpus_this_process_may_not_use_are_refused_in_one_line() -> None:
    def body() -> Any:
        first = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, [first])
        cpus, placed = board_placement(RealtimeOptions(board_cpus=[first + 1]))
        return [cpus, list(placed) if placed else None]

    cpus, placed = in_child(body)
    assert cpus is None and placed[0] == "board_cpus" and not placed[1]
    assert "cannot start on CPUs" in placed[2] and "they start wherever it may" in placed[2]


def test_board_cpus_are_a_flag() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert options_from_args(p.parse_args(["--board-cpus", "0"])).board_cpus == [0]
    with pytest.raises(ConfigError, match="--board-cpus"):
        RealtimeOptions(board_cpus=[]).validate()


def test_the_young_collection_comes_between_iterations_not_on_the_next_fire_path() -> None:
    """The loop calls collect_young_garbage() at the end of each iteration: when fewer than GC_PATH_HEADROOM
    allocations are left before the collector would start by itself, it collects then, so the next iteration's fire
    command path has that headroom; far from the threshold, or with the collector off (--freeze-gc), nothing."""
    threshold = gc.get_threshold()
    enabled = gc.isenabled()
    try:
        gc.collect()
        gc.set_threshold(100_000, 10, 10)
        gc.enable()
        kept: list[list[int]] = [[] for _ in range(50_000)]  # half way: the path has far more headroom than it needs
        assert collect_young_garbage() == -1 and gc.get_count()[0] >= 50_000
        kept += [[] for _ in range(100_000 - GC_PATH_HEADROOM - 50_000)]  # less headroom than the path may take
        assert collect_young_garbage() == 0
        assert gc.get_count()[0] < 100, "the young generation was collected"
        gc.set_threshold(100_000, 0, 10)  # the middle generation is due as well: both, as the collector would
        kept += [[] for _ in range(100_000 - GC_PATH_HEADROOM)]
        assert collect_young_garbage() == 1 and gc.get_count()[1] == 0
        gc.disable()  # --freeze-gc: the collector is off for the run, and stays off
        kept += [[] for _ in range(100_000 - GC_PATH_HEADROOM)]
        assert collect_young_garbage() == -1 and gc.get_count()[0] >= 100_000 - GC_PATH_HEADROOM
        del kept
    finally:
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()
        else:
            gc.disable()
