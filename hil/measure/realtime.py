"""Real-time process options for a run (SCHED_FIFO, CPU affinity, mlockall, frozen GC, the CPUs' wake-up latency),
degrading with a warning.

Each option is tried on its own and reported as (option, applied, message): as root all five work;
as a normal user only affinity and the GC do, and the others say what permission they lack instead of
failing the run. `realtime(options)` is a context manager that puts the previous state back on exit.
The scheduler and affinity calls address pid 0, the calling thread: apply them from the thread that
runs the loop, before it starts helper threads (threads inherit both).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from hil.errors import ConfigError

log = logging.getLogger("hil.measure.realtime")

MCL_CURRENT, MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux
# the kernel's CPU latency limit (PM QoS): a request holds while its file stays open, and ends when it is closed or
# its process ends, however it ends (Documentation/power/pm_qos_interface.rst)
CPU_LATENCY_DEVICE = "/dev/cpu_dma_latency"
MAX_CPU_LATENCY_US = 2_000_000_000  # the kernel's own default: no limit


@dataclass
class RealtimeOptions:
    fifo_priority: int | None = None  # SCHED_FIFO priority 1..99, None: leave the scheduler alone
    cpus: list[int] | None = None  # CPU affinity, None: leave it alone
    mlock: bool = False  # mlockall(MCL_CURRENT | MCL_FUTURE): no page faults in the loop
    freeze_gc: bool = False  # collect once, freeze what exists, no automatic collection during the run
    # the emulated boards' processes (a mock or simavr rig), None: the CPUs the loop's are not, when it has some
    board_cpus: list[int] | None = None
    # the kernel's limit on how long an idle CPU may take to wake (µs, PM QoS), held while the loop runs; 0: idle
    # CPUs poll instead of halting. None: leave the machine's idle states alone
    cpu_latency_us: int | None = None

    def any(self) -> bool:
        """Whether any option of the loop's own is asked for (board_cpus is applied at bring-up, not here)."""
        return (self.fifo_priority is not None or self.cpus is not None or self.mlock or self.freeze_gc
                or self.cpu_latency_us is not None)

    def boards_on(self) -> list[int] | None:
        """The CPUs the board processes start on: board_cpus, or else the ones this process may use that the loop
        is not pinned to (None: no choice made, or no CPU left over)."""
        if self.board_cpus is not None:
            return self.board_cpus
        if self.cpus is None:
            return None
        rest = sorted(os.sched_getaffinity(0) - set(self.cpus))
        return rest or None

    def validate(self) -> None:
        if self.fifo_priority is not None:
            lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
            if not lo <= self.fifo_priority <= hi:
                raise ConfigError("--fifo", "priority", f"{self.fifo_priority} is outside {lo}..{hi}")
        for flag, cpus in (("--cpus", self.cpus), ("--board-cpus", self.board_cpus)):
            if cpus is None:
                continue
            if not cpus:
                raise ConfigError(flag, "list", "is empty")
            bad = [c for c in cpus if c < 0 or c >= (os.cpu_count() or 1)]
            if bad:
                raise ConfigError(flag, "list", f"no CPU {bad} on this machine (it has {os.cpu_count()})")
        if self.cpu_latency_us is not None and not 0 <= self.cpu_latency_us <= MAX_CPU_LATENCY_US:
            raise ConfigError("--cpu-latency-us", "value", f"{self.cpu_latency_us} is outside 0..{MAX_CPU_LATENCY_US}")


# each option as its report names it
OPTION_NAMES = {"fifo_priority": "scheduler", "cpus": "loop CPUs", "board_cpus": "board CPUs", "mlock": "memory lock",
                "freeze_gc": "garbage collector", "cpu_latency_us": "CPU wake-up"}


def applied_line(option: str, applied: bool, message: str, of: str = "real time") -> str:
    """One real-time option's outcome for people (hil run's and hil bench's output; of: whose, "plant" for hil
    plant's)."""
    return f"{of}, {OPTION_NAMES.get(option, option)}: {message if applied else 'NOT applied: ' + message}"


def applied_lines(applied: Sequence[Sequence[Any]]) -> list[str]:
    """A real-time run's options for people, a line each (option, applied, message as Applied holds them); when
    none was asked for, one line saying so: nothing pinned, nothing raised."""
    if not applied:
        return ["real time: the loop and the emulated boards share every CPU under the default scheduler (none of "
                "--cpus, --board-cpus, --fifo, --mlock, --freeze-gc, --cpu-latency-us)"]
    return [applied_line(option, ok, message) for option, ok, message in applied]


class Applied(NamedTuple):
    option: str  # "fifo_priority" | "cpus" | "board_cpus" | "mlock" | "freeze_gc" | "cpu_latency_us"
    applied: bool
    message: str


def parse_cpus(text: str) -> list[int]:
    """'1', '0,2', '0-3', '0-1,3' -> sorted CPU numbers."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                if int(b) < int(a):
                    raise ValueError(part)
                cpus.update(range(int(a), int(b) + 1))
            else:
                cpus.add(int(part))
    except ValueError:
        # argparse names the option it came with (--cpus, --board-cpus) in its one-line usage error, exit 2
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU list such as 1 or 0,2 or 0-3") from None
    return sorted(cpus)


def parse_cpu_latency(text: str) -> int | str:
    """'0', '50' -> µs; 'off' -> 'off' (leave the idle states alone, where a command would hold a limit)."""
    if text.strip().lower() == "off":
        return "off"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_CPU_LATENCY_US:
        raise argparse.ArgumentTypeError(f"{text!r} is not a latency in whole µs (0 or more) nor off")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The real-time options as command-line flags (`hil bench`, `hil run`)."""
    g = p.add_argument_group("real-time options (each degrades with a warning when not permitted)")
    g.add_argument("--fifo", type=int, default=None, metavar="PRIO",
                   help="run the loop SCHED_FIFO at this priority (1..99; needs root or CAP_SYS_NICE)")
    g.add_argument("--cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="pin the loop to these CPUs, e.g. 1 or 0-1 (the emulated boards then start on the others)")
    g.add_argument("--board-cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="start the emulated boards' processes on these CPUs (default: the ones --cpus leaves)")
    g.add_argument("--mlock", action="store_true", help="lock all memory (mlockall; needs root or CAP_IPC_LOCK)")
    g.add_argument("--freeze-gc", action="store_true", help="freeze the garbage collector during the run")
    g.add_argument("--cpu-latency-us", type=parse_cpu_latency, default=None, metavar="US|off",
                   help="hold the kernel's CPU wake-up latency limit (/dev/cpu_dma_latency) at US while the loop "
                        "runs: 0 keeps idle CPUs polling instead of halting, so a radar datagram or a board's answer "
                        "finds its CPU awake (needs root; hil bench holds 0 unless told off)")


def options_from_args(args: argparse.Namespace) -> RealtimeOptions:
    latency = args.cpu_latency_us  # None (not given) and off alike: leave the idle states alone
    o = RealtimeOptions(fifo_priority=args.fifo, cpus=args.cpus, mlock=args.mlock, freeze_gc=args.freeze_gc,
                        board_cpus=args.board_cpus, cpu_latency_us=latency if isinstance(latency, int) else None)
    o.validate()
    return o


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def memory_locked_kib() -> int:
    """VmLck of this process (kB), 0 when unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmLck:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _apply_fifo(priority: int) -> Applied:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return Applied("fifo_priority", False,
                       f"SCHED_FIFO priority {priority} not permitted (needs root, CAP_SYS_NICE or an "
                       f"RLIMIT_RTPRIO of at least {priority}); the loop runs SCHED_OTHER and its tail "
                       "latency will show it")
    except OSError as e:
        return Applied("fifo_priority", False, f"SCHED_FIFO priority {priority} refused: {e.strerror}")
    return Applied("fifo_priority", True, f"SCHED_FIFO priority {priority}")


def _apply_cpus(cpus: list[int]) -> Applied:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        return Applied("cpus", False, f"CPU affinity {cpus} refused: {e.strerror}; running on "
                                      f"{sorted(os.sched_getaffinity(0))}")
    return Applied("cpus", True, f"pinned to CPUs {sorted(os.sched_getaffinity(0))}")


def _apply_mlock() -> Applied:
    libc = _libc()
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        why = os.strerror(err)
        if err in (1, 12):  # EPERM, ENOMEM: no CAP_IPC_LOCK and RLIMIT_MEMLOCK below the process size
            why = (f"not permitted ({why}: needs root, CAP_IPC_LOCK or an RLIMIT_MEMLOCK above the "
                   "process size); page faults can add to the tail")
        return Applied("mlock", False, f"mlockall {why}")
    return Applied("mlock", True, f"memory locked ({memory_locked_kib() // 1024} MiB)")


def _apply_gc() -> Applied:
    gc.collect()
    gc.freeze()
    gc.disable()
    return Applied("freeze_gc", True, f"garbage collector off, {gc.get_freeze_count()} objects frozen "
                                      "(cycles made during the run are collected after it)")


def hold_cpu_latency(limit_us: int) -> tuple[Applied, int | None]:
    """Ask the kernel to keep every CPU able to wake within limit_us (PM QoS); the request's file, to keep open for
    as long as it should hold (None: refused, said in the message).

    On this project's VM an idle CPU halts, and the hypervisor may run something else on it: the first code run
    after a wake-up (a radar datagram read, a board's answer) then finds cold caches. With 0 the idle loop polls
    instead (its POLL state). The limit is system-wide: the boards' CPUs poll as well."""
    what = ("idle CPUs poll instead of halting (a wake-up latency limit of 0 µs)" if limit_us == 0 else
            f"idle CPUs wake within {limit_us} µs (the kernel's wake-up latency limit)")
    try:
        fd = os.open(CPU_LATENCY_DEVICE, os.O_WRONLY)
    except FileNotFoundError:
        return Applied("cpu_latency_us", False, f"{CPU_LATENCY_DEVICE} is missing (a kernel without CPU latency QoS): "
                                                "idle CPUs sleep as deep as they will"), None
    except PermissionError:
        return Applied("cpu_latency_us", False, f"{CPU_LATENCY_DEVICE} is not writable (needs root): idle CPUs may "
                                                "halt, and the first work after a wake-up runs slower"), None
    except OSError as e:
        return Applied("cpu_latency_us", False, f"{CPU_LATENCY_DEVICE}: {e.strerror}"), None
    try:
        os.write(fd, struct.pack("=i", limit_us))
    except OSError as e:
        os.close(fd)
        return Applied("cpu_latency_us", False, f"{CPU_LATENCY_DEVICE} refused {limit_us} µs: {e.strerror}"), None
    return Applied("cpu_latency_us", True, what), fd


def cpu_latency_limit_us() -> int | None:
    """The kernel's CPU wake-up latency limit now (µs; 2,000,000,000: none), None when it cannot be read."""
    try:
        with open(CPU_LATENCY_DEVICE, "rb") as f:
            return int(struct.unpack("=i", f.read(4))[0])
    except (OSError, struct.error):
        return None


@contextlib.contextmanager
def cpu_latency_held(limit_us: int | None) -> Iterator[Applied | None]:
    """The CPU wake-up latency limit held at limit_us for the body (None: nothing done); how it went."""
    if limit_us is None:
        yield None
        return
    applied, fd = hold_cpu_latency(limit_us)
    try:
        yield applied
    finally:
        if fd is not None:
            os.close(fd)


GC_PATH_HEADROOM = 400  # allocations the loop's next fire command path may make before the collector's threshold


def collect_young_garbage() -> int:
    """Between two loop iterations, off the fire command's path: the young collection the next allocations would
    start by themselves, now, when fewer than GC_PATH_HEADROOM allocations are left before the collector's
    threshold; gen 1 with it when that is due too. The generation collected (-1: none; none with the collector off).

    A collection that started on the path cost it 90–190 µs, in about one fire in sixteen (a traced bench of the
    default load). The oldest generation is left to the collector's own policy: an iteration that allocates more
    than the headroom (a journal stage) still starts one by itself, off the path as well."""
    if not gc.isenabled():
        return -1
    threshold0, threshold1, _ = gc.get_threshold()
    young, middle, _ = gc.get_count()
    if threshold0 <= 0 or young < threshold0 - GC_PATH_HEADROOM:
        return -1
    generation = 1 if middle > threshold1 else 0
    gc.collect(generation)
    return generation


def split_cpus() -> tuple[set[int], set[int]] | None:
    """(board CPUs, host CPUs) from this process' affinity: the first CPU for the emulated boards, the others for
    the host side (the loop, a Modbus client); None with fewer than two CPUs (or no affinity calls on this
    system). A board is its own hardware: emulated on the host's CPU it takes the host's time and evicts its
    caches, and what is measured is no longer the host's alone."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) >= 2 else None


def board_placement(options: RealtimeOptions | None) -> tuple[list[int] | None, Applied | None]:
    """Where the board processes start (hil.procutil.board_cpus) and how that went; (None, None): no choice made.
    CPUs this process may not use are refused with a warning: the boards then start wherever they may."""
    cpus = None if options is None else options.boards_on()
    if cpus is None:
        return None, None
    allowed = os.sched_getaffinity(0)
    if not set(cpus) <= allowed:
        out = Applied("board_cpus", False, f"the emulated boards cannot start on CPUs {cpus}: this process may use "
                                           f"only {sorted(allowed)}; they start wherever it may")
        log.warning("real-time: %s", out.message)
        return None, out
    return cpus, Applied("board_cpus", True, f"the emulated boards on CPUs {cpus}")


def apply(options: RealtimeOptions) -> list[Applied]:
    """Apply each requested option to this process (this thread for the scheduler) and say how it went; all but the
    CPU wake-up latency limit, which holds only while its file is open (realtime() holds it).

    Never raises for a missing permission: the run goes on, and each refusal is logged as a warning.
    """
    options.validate()
    results: list[Applied] = []
    if options.cpus is not None:
        results.append(_apply_cpus(options.cpus))
    if options.fifo_priority is not None:
        results.append(_apply_fifo(options.fifo_priority))
    if options.mlock:
        results.append(_apply_mlock())
    if options.freeze_gc:
        results.append(_apply_gc())
    for r in results:
        _log_applied(r)
    return results


def _log_applied(r: Applied) -> None:
    if r.applied:
        log.info("real-time: %s", r.message)
    else:
        log.warning("real-time: %s", r.message)


@contextlib.contextmanager
def realtime(options: RealtimeOptions) -> Iterator[list[Applied]]:
    """Apply `options` for the body and restore the scheduler, affinity, memory locks, GC and the CPU wake-up latency
    limit after it."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    affinity = os.sched_getaffinity(0)
    was_locked = memory_locked_kib() > 0
    gc_enabled = gc.isenabled()
    results = apply(options)
    done = {r.option for r in results if r.applied}
    held = contextlib.ExitStack()
    latency = held.enter_context(cpu_latency_held(options.cpu_latency_us))
    if latency is not None:
        _log_applied(latency)
        results.append(latency)
    try:
        yield results
    finally:
        held.close()
        if "freeze_gc" in done:
            gc.unfreeze()
            if gc_enabled:
                gc.enable()
        if "mlock" in done and not was_locked:
            _libc().munlockall()
        if "fifo_priority" in done:
            os.sched_setscheduler(0, policy, param)
        if "cpus" in done:
            os.sched_setaffinity(0, affinity)


def describe_scheduler() -> dict[str, object]:
    """This thread's scheduling state, for the results JSON."""
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR"}
    return {"policy": names.get(policy, str(policy)), "priority": os.sched_getparam(0).sched_priority,
            "cpus": sorted(os.sched_getaffinity(0)), "memory_locked_kib": memory_locked_kib(),
            "gc_enabled": gc.isenabled()}
