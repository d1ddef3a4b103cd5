"""hil's pytest plugin: a user's own rig tests, from scenario verdicts down to one frame on one board (docs/TESTING.md).

Installed with hil (entry point group pytest11, name "hil"; `-p no:hil` switches it off). It adds:

- options --hil-rig (a shipped rig's name or a rig file; default mock), --hil-scenario (default raid) and --hil-time
  (virtual | real; default virtual), also read from $HIL_RIG, $HIL_SCENARIO, $HIL_TIME and the ini keys hil_rig,
  hil_scenario, hil_time (the command line first, then the environment, then the ini file);
- the fixture hil_rig: the session's Rig, proved once by a rig check (real time: every link opened and proved as
  `hil rig check` does; virtual time: the scenario's boards brought up in-process). A rig that is not fit fails
  every test that uses it, with the check's one line;
- the fixture hil_run: a factory, hil_run(scenario=None, seed=None, criteria=None, duration=None, **overrides) ->
  hil.RunResult, one run folder per call under the test's tmp_path; a test's marker
  @pytest.mark.hil_scenario(...) gives its defaults. Each run's verdict goes into the test's JUnit properties
  (hil.verdict, hil.criterion.NAME, ...) and, when the test fails, into its report;
- the fixtures radar, launcher and hil_boards: the scenario's boards on the rig for low-level tests, with sync
  calls that wait for an answer within a timeout (radar.expect_plots(n, timeout_s), launcher.expect_state(...));
- assert_verdict(result): fails the test with one line per failed criterion, measured against its limit.

Nothing of hil's orchestration is imported until a test asks for a fixture: the plugin costs nothing in a session
that does not use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hil.api import RunResult
    from hil.clock import RealClock, VirtualClock
    from hil.drivers.framing import SensorConfig
    from hil.drivers.launcher_link import FireResult, Identity, LauncherLink, LauncherStatus, Reconciliation
    from hil.drivers.plot_batch import PlotBatch
    from hil.drivers.radar_link import RadarLink, RadarPoll
    from hil.drivers.timesync import ClockSync
    from hil.ext.firecontrol_types import LauncherSpec
    from hil.plant.boards import Boards
    from hil.rig import Rig
    from hil.scenario import RadarSpec, Scenario

TIME_MODES = ("virtual", "real")
DEFAULTS = {"rig": "mock", "scenario": "raid", "time": "virtual"}
MARKER = "hil_scenario"
# virtual time: how far the clock moves between two looks at a link while a test waits for an answer
VIRTUAL_STEP_NS = 10_000_000
# real time: the longest wait for a link's bytes before looking again
REAL_POLL_S = 0.01
STATUS_POLL_S = 0.02  # between two status reads while waiting for a launcher's state
RIG_CHECK_TIMEOUT_S = 2.0


class ExpectTimeout(AssertionError):
    """A board did not give what a test expected within its timeout (a test failure, as in pytest-embedded)."""


class VerdictFailed(AssertionError):
    """A run's verdict failed: the message has one line per failed criterion (measured against its limit)."""


# --- options and settings -------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hil: scenario runs and board tests on a rig (docs/TESTING.md)")
    group.addoption("--hil-rig", default=None, metavar="RIG",
                    help="a shipped rig's name (mock, simavr) or a rig file (default: $HIL_RIG, else mock)")
    group.addoption("--hil-scenario", default=None, metavar="SCENARIO",
                    help="the scenario hil_run and the board fixtures use unless a test says otherwise: a shipped "
                         "name (raid, safety/escorts) or a file (default: $HIL_SCENARIO, else raid)")
    group.addoption("--hil-time", default=None, choices=TIME_MODES,
                    help="virtual: lockstep, in-process boards, seconds per run; real: boards as processes or "
                         "hardware, wall time (default: $HIL_TIME, else virtual)")
    for key, what in (("rig", "rig name or file"), ("scenario", "scenario name or file"),
                      ("time", "virtual or real")):
        parser.addini(f"hil_{key}", f"hil: the default {what} (after --hil-{key} and $HIL_{key.upper()})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(scenario=None, *, seed=None, criteria=None, duration=None, **overrides): this test's "
                   "hil_run defaults (the call's own arguments win), and the scenario whose boards the radar and "
                   "launcher fixtures bring up")


@dataclass(frozen=True)
class Settings:
    """What this session runs on: resolved from the options, the environment, the ini file and the defaults."""

    rig: str
    scenario: str
    time: str


def _setting(config: pytest.Config, key: str) -> str:
    value = config.getoption(f"--hil-{key}") or os.environ.get(f"HIL_{key.upper()}") or config.getini(f"hil_{key}")
    return str(value or DEFAULTS[key])


def _from_invocation(config: pytest.Config, value: str) -> str:
    """A relative file is looked for where pytest was started, then beside the ini file; a name stays a name."""
    if Path(value).is_absolute():
        return value
    folders = [config.invocation_params.dir, *([config.inipath.parent] if config.inipath else [])]
    for folder in folders:
        if (folder / value).is_file():
            return str(folder / value)
    return value


def settings(config: pytest.Config) -> Settings:
    time_mode = _setting(config, "time")
    if time_mode not in TIME_MODES:
        raise pytest.UsageError(f"hil: the time mode is virtual or real, got {time_mode!r} (--hil-time, $HIL_TIME)")
    return Settings(rig=_from_invocation(config, _setting(config, "rig")),
                    scenario=_from_invocation(config, _setting(config, "scenario")), time=time_mode)


FIXTURES = frozenset({"hil_rig", "hil_run", "hil_boards", "radar", "launcher"})


def _uses_hil(item: pytest.Item) -> bool:
    """Whether a test uses one of this plugin's fixtures (a test suite's own `radar` fixture is not ours)."""
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", None)
    if definitions is None:  # pytest's own bookkeeping moved: go by the names
        return bool(FIXTURES & set(getattr(item, "fixturenames", ())))
    return any(defs and getattr(defs[-1].func, "__module__", "") == __name__
               for name, defs in definitions.items() if name in FIXTURES)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str | None:
    """One header line, when a collected test uses hil: what it runs on."""
    if not any(_uses_hil(item) for item in items):
        return None
    s = settings(config)
    return f"hil: rig {s.rig}, scenario {s.scenario}, {s.time} time"


# --- the session: the rig, proved once per scenario -----------------------------------------------------------


class _Session:
    def __init__(self, config: pytest.Config) -> None:
        self.settings = settings(config)
        self._rig: Rig | None = None
        self._proved: dict[str, str] = {}  # scenario source -> "" (fit) or the check's one line

    def rig(self) -> Rig:
        if self._rig is None:
            from hil.errors import HilError
            from hil.rig import Rig

            problem = ""
            try:
                self._rig = Rig.load(self.settings.rig)
            except HilError as e:
                problem = str(e)
            if self._rig is None:
                pytest.fail(f"hil rig: {problem}", pytrace=False)
        return self._rig

    def prove(self, scenario: Scenario) -> None:
        """Fail (the same line every time) unless the rig can stand behind this scenario's boards."""
        __tracebackhide__ = True
        key = scenario.source if scenario.source != "<generated>" else f"{scenario.name}:{id(scenario)}"
        if key not in self._proved:
            self._proved[key] = rig_check(self.rig(), scenario, self.settings.time)
        if self._proved[key]:
            pytest.fail(self._proved[key], pytrace=False)


_SESSION = pytest.StashKey[_Session]()


def _session(config: pytest.Config) -> _Session:
    if _SESSION not in config.stash:
        config.stash[_SESSION] = _Session(config)
    return config.stash[_SESSION]


def rig_check(rig: Rig, scenario: Scenario, time_mode: str) -> str:
    """"" when the rig is fit for the scenario, else one line saying why.

    Real time: `hil rig check` (every link opened; identity, clock, sweep, registers). Virtual time: the boards are
    in-process mock boards, so bringing them up (and down) is the whole proof: a rig naming hardware fails here."""
    from hil.errors import HilError
    from hil.plant.boards import bring_up

    where = f"rig {rig.name} ({rig.source}) for scenario {scenario.name}, {time_mode} time"
    if time_mode == "virtual":
        from hil.clock import VirtualClock

        for role, specs in (("radar", scenario.radars), ("launcher", scenario.launchers)):
            for spec in specs:
                try:
                    board = rig.board_for(role, spec.name).board
                except HilError as e:
                    return f"{where}: not fit: {e}"
                if board != "mock":
                    return (f"{where}: not fit: {role} {spec.name} is a {board} board, which runs in real time "
                            "only: use --hil-time real")
        try:
            bring_up(scenario, rig, VirtualClock(), virtual=True, recorder=None, seed=scenario.seed).close()
        except HilError as e:
            return f"{where}: not fit: {e}"
        return ""
    from hil.commands.rig_check import check_rig

    checks = asyncio.run(check_rig(rig, scenario, RIG_CHECK_TIMEOUT_S))
    failed = [f"{c.board} {c.check}: {c.detail}" for c in checks if not c.ok]
    return f"{where}: rig check failed: {'; '.join(failed)}" if failed else ""


@pytest.fixture(scope="session")
def hil_rig(request: pytest.FixtureRequest) -> Rig:
    """The session's rig (--hil-rig), proved once by a rig check for the session's scenario (--hil-scenario)."""
    session = _session(request.config)
    session.prove(_load_scenario(session.settings.scenario))
    return session.rig()


def _load_scenario(name: str, beside: Path | None = None) -> Scenario:
    """A scenario by shipped name or file; a relative file is looked for beside the test file first."""
    from hil.errors import HilError
    from hil.scenario import Scenario

    if beside is not None and not Path(name).is_absolute() and (beside / name).is_file():
        name = str(beside / name)
    try:
        scenario = Scenario.load(name)
    except HilError as e:
        problem = str(e)
    else:
        return scenario
    pytest.fail(f"hil scenario: {problem}", pytrace=False)


# --- the marker's defaults ------------------------------------------------------------------------------------


def _criteria_table(criteria: dict[str, Any] | str | None) -> dict[str, Any]:
    from hil.measure.verdict import parse_criteria_option

    return parse_criteria_option(criteria) if isinstance(criteria, str) else dict(criteria or {})


def marker_defaults(node: pytest.Item) -> dict[str, Any]:
    """The test's hil_scenario markers merged, the nearest last (a module's, then a class's, then the test's own);
    criteria merge name by name."""
    out: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if len(mark.args) > 1:
            raise pytest.UsageError(f"{node.nodeid}: {MARKER}() takes one scenario, then keywords")
        kwargs = dict(mark.kwargs)
        if mark.args:
            kwargs["scenario"] = mark.args[0]
        if "criteria" in kwargs:
            kwargs["criteria"] = {**_criteria_table(out.get("criteria")), **_criteria_table(kwargs["criteria"])}
        out.update(kwargs)
    return out


# --- hil_run ----------------------------------------------------------------------------------------------------


@functools.cache
def _result_type() -> Callable[..., RunResult]:
    from hil.api import RunResult

    @dataclass(frozen=True, repr=False)
    class PluginRunResult(RunResult):
        """A RunResult whose repr is one line: what ran and its verdict (pytest shows it under a failed assert)."""

        label: str = ""

        def __repr__(self) -> str:
            failures = self.failures
            return f"<RunResult {self.label}: " + (f"FAIL {'; '.join(failures)}>" if failures else
                                                   ("pass>" if self.passed else f"exit status {self.exit_status}>"))

    return PluginRunResult


_RUNS = pytest.StashKey[list[tuple[str, Any]]]()  # (label, RunResult) of each hil_run call of a test


class HilRun:
    """The hil_run fixture: call it to run a scenario on the session's rig; returns a hil.RunResult."""

    def __init__(self, item: pytest.Item, session: _Session, rig: Rig, folder: Path) -> None:
        self._item, self._session, self._rig, self._folder = item, session, rig, folder
        self._beside = Path(str(item.path)).parent  # a scenario file named by a test may sit beside it
        self.results: list[RunResult] = []  # every run of this test, in order

    def __repr__(self) -> str:
        return f"<hil_run: rig {self._rig.name}, {self._session.settings.time} time, runs so far: {len(self.results)}>"

    def __call__(self, scenario: str | Path | Scenario | None = None, seed: int | None = None,
                 criteria: dict[str, Any] | str | None = None, duration: float | None = None,
                 **overrides: Any) -> RunResult:
        """Run a scenario (default: the marker's, else --hil-scenario) on the session's rig and time mode.

        seed, duration: the marker's, else the scenario's own. criteria: over the rig's, the scenario's and the
        marker's, name by name. overrides: anything else hil.run takes (tracker, fire_control, faults, record,
        report, time, rig, out). Boards are brought up for this run and stopped at its end."""
        __tracebackhide__ = True
        import hil
        from hil.scenario import Scenario

        defaults = marker_defaults(self._item)
        chosen = scenario if scenario is not None else defaults.pop("scenario", self._session.settings.scenario)
        defaults.pop("scenario", None)
        sc = chosen if isinstance(chosen, Scenario) else _load_scenario(str(chosen), self._beside)
        table = {**_criteria_table(defaults.pop("criteria", None)), **_criteria_table(criteria)}
        marker_seed, marker_duration = defaults.pop("seed", None), defaults.pop("duration", None)
        seed = marker_seed if seed is None else seed
        duration = marker_duration if duration is None else duration
        options: dict[str, Any] = {"rig": self._rig, "time": self._session.settings.time, **defaults, **overrides}
        if options["rig"] is self._rig and options["time"] == self._session.settings.time:
            self._session.prove(sc)  # a scenario other than the session's may name other boards
        n = len(self.results) + 1
        options.setdefault("out", self._folder / f"{sc.name.replace('/', '-')}-{n}")
        result = hil.run(scenario=sc, seed=seed, criteria=table, duration=duration, **options)
        summary = result.summary
        label = (f"{sc.name} seed {summary.get('seed')}, {summary.get('time_mode', options['time'])} time, "
                 f"rig {summary.get('rig', self._rig.name)}")
        result = _result_type()(summary=summary, events=result.events, paths=result.paths, label=label)
        self.results.append(result)
        self._item.stash.setdefault(_RUNS, []).append((label, result))
        _record_properties(self._item, n, label, result)
        return result


def _record_properties(item: pytest.Item, n: int, label: str, result: RunResult) -> None:
    """The run's verdict as the test's JUnit properties: hil.run, hil.verdict, hil.exit_status, hil.folder and one
    hil.criterion.NAME per criterion, its value JSON (result, measured, op, limit, unit, detail). A test's second
    run's names start hil.2., and so on."""
    prefix = "hil." if n == 1 else f"hil.{n}."
    props: list[tuple[str, object]] = [
        (prefix + "run", label), (prefix + "verdict", "pass" if result.passed else "fail"),
        (prefix + "exit_status", result.exit_status),
    ]
    if result.paths is not None:
        props.append((prefix + "folder", str(result.paths.folder)))
    for problem in result.summary.get("rig_problems") or []:
        props.append((prefix + "rig_problem", problem))
    for row in result.verdict.get("criteria", []):
        data = {k: row[k] for k in ("result", "measured", "op", "limit", "unit", "detail")}
        props.append((f"{prefix}criterion.{row['name']}", json.dumps(data, ensure_ascii=False)))
    item.user_properties.extend(props)


def verdict_text(result: RunResult, label: str = "") -> str:
    """A run's verdict for people: what ran, each criterion measured against its limit, rig problems, the folder."""
    from hil.measure.verdict import verdict_lines

    lines = [label] if label else []
    lines += [f"RIG FAILED: {p}" for p in result.summary.get("rig_problems") or []]
    if result.verdict:
        lines += verdict_lines(result.verdict)
    if result.paths is not None:
        lines.append(f"run folder: {result.paths.folder}")
    return "\n".join(lines)


def assert_verdict(result: RunResult, judged: bool = False) -> None:
    """Fail the test unless the run passed (as `hil run` would exit 0): one line per failed criterion, with its
    measured value and limit, and per rig problem. judged=True: a criterion not judged (too small a sample) fails
    too."""
    __tracebackhide__ = True
    failures = list(result.failures)
    if judged:
        failures += [f"{line} (not judged)" for line in result.not_judged]
    if result.passed and not failures:
        return
    label = getattr(result, "label", "") or f"{result.summary.get('scenario')} seed {result.summary.get('seed')}"
    failed = len(result.verdict.get("failed") or [])
    what = [f"{failed} {'criterion' if failed == 1 else 'criteria'} failed"] if failed else []
    if result.summary.get("rig_problems"):
        what.append("the rig failed")
    if result.summary.get("interrupted"):
        what.append(f"interrupted by {result.summary.get('signal')}")
    if judged and result.not_judged:
        what.append(f"{len(result.not_judged)} not judged")
    head = f"{label}: {', '.join(what)} (exit status {result.exit_status})"
    folder = f"\nrun folder: {result.paths.folder}" if result.paths is not None else ""
    raise VerdictFailed("\n".join([head, *(f"  {line}" for line in failures)]) + folder)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that ran scenarios gets a "hil verdict" section in its report (pytest prints it under a failure)."""
    report: Any = yield
    runs = item.stash.get(_RUNS, None)
    if runs and report.when == "call":
        text = "\n\n".join(verdict_text(result, label) for label, result in runs)
        report.sections.append(("hil verdict", text))
    return report


@pytest.fixture
def hil_run(request: pytest.FixtureRequest, hil_rig: Rig, tmp_path: Path) -> HilRun:
    """Run a scenario: hil_run(scenario=None, seed=None, criteria=None, duration=None, **overrides) -> RunResult."""
    assert isinstance(request.node, pytest.Item)
    return HilRun(request.node, _session(request.config), hil_rig, tmp_path)


# --- boards under test ------------------------------------------------------------------------------------------


class BoardsUnderTest:
    """The scenario's boards on the rig, for low-level tests: radar(name) and launcher(name), each brought up on
    first use and stopped at the end of the test. One clock for all of them: in virtual time a wait moves it and
    steps every in-process board; in real time it is the wall clock."""

    def __init__(self, scenario: Scenario, rig: Rig, time_mode: str, seed: int) -> None:
        from hil.clock import RealClock, VirtualClock

        self.scenario, self.rig, self.time, self.seed = scenario, rig, time_mode, seed
        self.clock: VirtualClock | RealClock = VirtualClock() if time_mode == "virtual" else RealClock()
        self._boards: list[Boards] = []
        self._radars: dict[str, RadarUnderTest] = {}
        self._launchers: dict[str, LauncherUnderTest] = {}
        self._loop = asyncio.new_event_loop()

    @property
    def virtual(self) -> bool:
        return self.time == "virtual"

    def now_s(self) -> float:
        """The board clock of this test (virtual: seconds since the test began; real: monotonic seconds)."""
        return self.clock.now_ns() / 1e9

    def _bring_up(self, part: Scenario) -> Boards:
        from hil.plant.boards import bring_up

        boards = bring_up(part, self.rig, self.clock, virtual=self.virtual, recorder=None, seed=self.seed)
        self._boards.append(boards)
        return boards

    def radar(self, name: str | None = None) -> RadarUnderTest:
        """The board behind the scenario's radar of that name (default: its first radar)."""
        spec = _pick(self.scenario.radars, name, "radar", self.scenario.name)
        if spec.name not in self._radars:
            boards = self._bring_up(dataclasses.replace(self.scenario, radars=(spec,), launchers=()))
            self._radars[spec.name] = RadarUnderTest(self, spec, boards.radars[0])
        return self._radars[spec.name]

    def launcher(self, name: str | None = None) -> LauncherUnderTest:
        """The board behind the scenario's launcher of that name (default: its first), connected."""
        spec = _pick(self.scenario.launchers, name, "launcher", self.scenario.name)
        if spec.name not in self._launchers:
            boards = self._bring_up(dataclasses.replace(self.scenario, radars=(), launchers=(spec,)))
            launcher = LauncherUnderTest(self, spec, boards.launchers[0])
            self.run(launcher.link.connect())
            self._launchers[spec.name] = launcher
        return self._launchers[spec.name]

    def run(self, coro: Any) -> Any:
        """Run one of a link's coroutines to its end (the fixtures' own event loop)."""
        return self._loop.run_until_complete(coro)

    def settle(self) -> None:
        """Virtual time: let every in-process board answer what it was sent, at the current time."""
        if self.virtual:
            now = self.clock.now_ns()
            for boards in self._boards:
                boards.step_virtual(now)

    def pause(self, fds: tuple[int, ...] = (), seconds: float | None = None) -> None:
        """Let time pass before the next look at a link: one virtual step (or `seconds`), or in real time until
        one of fds has bytes (at most REAL_POLL_S, or `seconds`)."""
        if self.virtual:
            from hil.clock import VirtualClock

            assert isinstance(self.clock, VirtualClock)
            step = VIRTUAL_STEP_NS if seconds is None else max(1, int(seconds * 1e9))
            self.clock.advance_to(self.clock.now_ns() + step)
            self.settle()
            return
        wait = REAL_POLL_S if seconds is None else seconds
        live = [fd for fd in fds if fd >= 0]
        if live:
            select.select(live, [], [], wait)
        else:
            time.sleep(wait)

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass on the boards (virtual: in steps, every board stepped; real: a sleep)."""
        if not self.virtual:
            time.sleep(seconds)
            return
        end = self.clock.now_ns() + int(seconds * 1e9)
        while self.clock.now_ns() < end:
            self.pause(seconds=min(VIRTUAL_STEP_NS, end - self.clock.now_ns()) / 1e9)

    def close(self) -> None:
        """Every launcher made SAFE (best effort), every link closed, every board process stopped."""
        from hil.errors import HilError

        for launcher in self._launchers.values():
            if launcher.link.connected and not launcher.link.lost:
                with contextlib.suppress(HilError, OSError, TimeoutError):
                    self.run(asyncio.wait_for(launcher.link.make_safe(), 2.0))
            launcher.link.close()
        for boards in self._boards:
            boards.close()
        self._boards.clear()
        self._loop.close()


def _pick(specs: tuple[Any, ...], name: str | None, role: str, scenario: str) -> Any:
    if not specs:
        pytest.fail(f"hil: scenario {scenario} has no {role}", pytrace=False)
    if name is None:
        return specs[0]
    for spec in specs:
        if spec.name == name:
            return spec
    pytest.fail(f"hil: scenario {scenario} has no {role} named {name!r}; it has "
                f"{', '.join(s.name for s in specs)}", pytrace=False)


class RadarUnderTest:
    """One radar board. What it sends is kept until an expect_... call takes it: expect_plots(n) returns every plot
    received since the last one, once there are at least n. Timeouts are in the test's time (virtual: the boards'
    seconds, which pass as fast as the host computes)."""

    def __init__(self, bench: BoardsUnderTest, spec: RadarSpec, link: RadarLink) -> None:
        self.bench, self.spec, self.link, self.name = bench, spec, link, spec.name
        self._plots: list[PlotBatch] = []
        self._sectors: list[tuple[float, float, bool]] = []

    def _take(self, poll: RadarPoll) -> None:
        if poll.plots.n:
            self._plots.append(poll.plots.copy())
        self._sectors += poll.sectors

    def _until(self, done: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
        __tracebackhide__ = True
        bench = self.bench
        deadline = bench.clock.now_ns() + int(timeout_s * 1e9)
        while True:
            bench.settle()
            self._take(self.link.poll())
            if done():
                return
            if bench.clock.now_ns() >= deadline:
                raise ExpectTimeout(f"{self.name}: {what()} within {timeout_s:g} s ({bench.time} time)")
            bench.pause((self.link.fileno(),))

    def poll(self) -> None:
        """Read what has arrived into the unread plots and sectors, without waiting."""
        self.bench.settle()
        self._take(self.link.poll())

    def identify(self, timeout_s: float = 2.0) -> str:
        """The board's identity, "name;version;build"."""
        __tracebackhide__ = True
        self.link.ident = None
        self.link.request_ident()
        self._until(lambda: self.link.ident is not None, timeout_s, lambda: "no identity answer")
        assert self.link.ident is not None
        return self.link.ident

    def config(self, **changes: Any) -> SensorConfig:
        """The scenario's SENSOR_CONFIG for this radar (seeded with the test's seed), with changes, e.g.
        clutter_per_scan=0, pd=1.0."""
        from hil.plant.radars import config_from_spec

        return dataclasses.replace(config_from_spec(self.spec, seed=self.bench.seed), **changes)

    def send_config(self, config: SensorConfig | None = None, **changes: Any) -> SensorConfig:
        """Configure the board (default: the scenario's settings for this radar, with changes); it starts sweeping."""
        sent = dataclasses.replace(config, **changes) if config is not None else self.config(**changes)
        self.link.send_config(sent)
        return sent

    def send_truth(self, states: Any, mode3a: Any = None, ids: Any = None) -> None:
        """What the beam can see from now on: ENU states [n, 6] (m, m/s) at this moment, flown at constant
        velocity; mode3a per object (-1: no transponder; default none); ids default 0..n-1."""
        import numpy as np

        s = np.asarray(states, dtype=np.float64).reshape(-1, 6)
        n = len(s)
        self.link.send_stimulus(np.arange(n) if ids is None else ids,
                                np.full(n, -1) if mode3a is None else mode3a, s)

    def expect_sync(self, timeout_s: float = 2.0, samples: int = 4) -> ClockSync:
        """Time-sync exchanges, one at a time, until `samples` answers came back; the link's clock sync."""
        __tracebackhide__ = True
        stats = self.link.stats
        answered = stats["sync_responses"]
        target = answered + samples
        deadline_s = self.bench.now_s() + timeout_s

        def one_more() -> bool:
            return bool(stats["sync_responses"] > answered)

        while answered < target:
            self.link.request_time_sync()
            self._until(one_more, max(deadline_s - self.bench.now_s(), 0.0),
                        lambda: f"{samples - target + stats['sync_responses']} of {samples} time-sync answers")
            answered = stats["sync_responses"]
        return self.link.clock_sync

    def expect_plots(self, n: int = 1, timeout_s: float = 5.0) -> PlotBatch:
        """Every plot received and not yet taken, once there are at least n (their times on the host clock)."""
        __tracebackhide__ = True
        self._until(lambda: self.unread_plots >= n, timeout_s, lambda: f"{self.unread_plots} of {n} plots")
        return self.take_plots()

    def expect_sectors(self, n: int = 1, timeout_s: float = 2.0) -> list[tuple[float, float, bool]]:
        """The CAT034 sector crossings not yet taken, (host time s, azimuth rad, north marker), once at least n."""
        __tracebackhide__ = True
        self._until(lambda: len(self._sectors) >= n, timeout_s,
                    lambda: f"{len(self._sectors)} of {n} sector messages")
        sectors, self._sectors = self._sectors, []
        return sectors

    @property
    def unread_plots(self) -> int:
        return sum(b.n for b in self._plots)

    def take_plots(self) -> PlotBatch:
        """The unread plots as one batch (possibly empty); they are taken."""
        import numpy as np

        from hil.drivers.plot_batch import PLOT_DTYPES, PlotBatch

        batches, self._plots = self._plots, []
        columns: dict[str, Any] = {
            name: np.concatenate([b.column(name) for b in batches]) if batches else np.zeros(0, dtype)
            for name, dtype in PLOT_DTYPES.items()}
        return PlotBatch(**columns, n=sum(b.n for b in batches))

    @property
    def counters(self) -> dict[str, Any]:
        """The link's decoder and link counters (rejected frames, sync answers, plots...)."""
        return dict(self.link.counters)


def _state_name(state: Any) -> str:
    from hil.drivers.registers import State

    if isinstance(state, State):
        return state.name
    name = str(state).upper()
    if name not in State.__members__:
        raise ValueError(f"a launcher state is one of {', '.join(State.__members__)}, got {state!r}")
    return name


class LauncherUnderTest:
    """One launcher board over its Modbus link, connected; each call waits for the board's answer. Angles in
    radians (azimuth clockwise from north), as the link takes them."""

    def __init__(self, bench: BoardsUnderTest, spec: LauncherSpec, link: LauncherLink) -> None:
        self.bench, self.spec, self.link, self.name = bench, spec, link, spec.name

    def identify(self) -> Identity:
        return self.bench.run(self.link.identify())

    def status(self) -> LauncherStatus:
        return self.bench.run(self.link.read_status())

    def arm(self) -> LauncherStatus:
        """Arm (LinkError if the board will not); its watchdog runs from now: heartbeat() or wait() to feed it."""
        return self.bench.run(self.link.arm())

    def make_safe(self) -> LauncherStatus:
        return self.bench.run(self.link.make_safe())

    def heartbeat(self) -> None:
        self.bench.run(self.link.heartbeat())

    def configure(self, watchdog_ms: int, reload_ms: int, rounds: int) -> LauncherStatus:
        return self.bench.run(self.link.configure(watchdog_ms, reload_ms, rounds))

    def fire(self, track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float = 0.0,
             tgo_s: float = 0.0) -> FireResult:
        """One fire command; the result says whether the board launched, or why not (it never raises)."""
        return self.bench.run(self.link.fire(track_id, azimuth_rad, elevation_rad, range_m, tgo_s))

    def reconcile(self) -> Reconciliation:
        return self.bench.run(self.link.reconcile())

    def wait(self, seconds: float, heartbeat: bool = True) -> LauncherStatus:
        """Let `seconds` pass, feeding the watchdog (a heartbeat every quarter period) unless heartbeat=False; the
        status at the end."""
        end = self.bench.now_s() + seconds
        period = self.link.watchdog_ms / 4000.0
        while self.bench.now_s() < end:
            if heartbeat:
                self.heartbeat()
            self.bench.wait(min(period, max(end - self.bench.now_s(), 0.0)))
        return self.status()

    def expect_state(self, state: str, timeout_s: float = 1.0) -> LauncherStatus:
        """Read the status until the board is in `state` (SAFE, ARMED or FAULT); ExpectTimeout naming the state it
        stayed in. Reading does not feed the watchdog."""
        __tracebackhide__ = True
        wanted = _state_name(state)
        deadline = self.bench.now_s() + timeout_s
        while True:
            status = self.status()
            if status.state.name == wanted:
                return status
            if self.bench.now_s() >= deadline:
                raise ExpectTimeout(f"{self.name}: state {status.state.name}, not {wanted}, after {timeout_s:g} s "
                                    f"({self.bench.time} time); last reject {status.reject_name}"
                                    + (", watchdog tripped" if status.watchdog_tripped else ""))
            self.bench.wait(STATUS_POLL_S)


@pytest.fixture
def hil_boards(request: pytest.FixtureRequest, hil_rig: Rig) -> Iterator[BoardsUnderTest]:
    """The scenario's boards (the marker's scenario, else --hil-scenario) on the session's rig and time mode."""
    from hil.scenario import Scenario

    session = _session(request.config)
    defaults = marker_defaults(request.node) if isinstance(request.node, pytest.Item) else {}
    chosen = defaults.get("scenario", session.settings.scenario)
    scenario = chosen if isinstance(chosen, Scenario) else _load_scenario(str(chosen),
                                                                          Path(str(request.node.path)).parent)
    session.prove(scenario)
    seed = defaults.get("seed")
    bench = BoardsUnderTest(scenario, hil_rig, session.settings.time, scenario.seed if seed is None else seed)
    try:
        yield bench
    finally:
        bench.close()


@pytest.fixture
def radar(hil_boards: BoardsUnderTest) -> RadarUnderTest:
    """The scenario's first radar board, not yet configured (send_config() starts its sweep)."""
    return hil_boards.radar()


@pytest.fixture
def launcher(hil_boards: BoardsUnderTest) -> LauncherUnderTest:
    """The scenario's first launcher board, connected, SAFE until armed; made SAFE again at the end of the test."""
    return hil_boards.launcher()


__all__ = ["BoardsUnderTest", "ExpectTimeout", "HilRun", "LauncherUnderTest", "RadarUnderTest", "Settings",
           "VerdictFailed", "assert_verdict", "marker_defaults", "rig_check", "settings", "verdict_text"]
