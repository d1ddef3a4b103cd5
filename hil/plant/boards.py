"""Bring up the boards a rig names for a scenario and hand back the links the host drives.

Mock boards run as their own processes on ptys in real time (the same drivers as on hardware) and
in-process in virtual time (the same bytes, stepped by the virtual clock); simavr boards run the real
AVR firmware under the simavr harness; serial, tcp and udp boards are real hardware on the bench.

Scheduled link faults (hil.drivers.faults) sit in the byte stream between the host and the board, so the host's
code is the same with and without them: in virtual time an injector wraps the radar's pipe or the launcher
model; in real time a hil.plant.faultproxy process sits between the board's pty or TCP port and the host. A link with
no byte fault gets neither.
"""

from __future__ import annotations

import contextlib
import random
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hil.clock import Clock
from hil.drivers.faults import BYTE_KINDS, FaultInjector, FaultyModbusBoard, FaultyTransport, LinkFault
from hil.drivers.launcher_link import LauncherLink
from hil.drivers.radar_link import RadarLink
from hil.drivers.transport import BytePipe, open_transport
from hil.emulators.launcher import LauncherModel
from hil.emulators.radar import RadarBoard
from hil.errors import ConfigError, LinkError
from hil.plant.faultproxy import ProxyProcess
from hil.procutil import Child
from hil.rig import BoardSpec, Rig
from hil.scenario import Scenario

Recorder = Callable[[str, str, bytes, int, str], None]


@dataclass
class VirtualRadar:
    """A radar board stepped by the virtual clock, at the far end of an in-process byte pipe."""

    board: RadarBoard
    pipe: Any  # the board's end of a BytePipe pair
    offset_us: int  # the board's clock reads virtual time plus this (it booted before the run)

    def step(self, t_ns: int) -> None:
        now_us = t_ns // 1000 + self.offset_us
        data = self.pipe.read_available()
        frames = self.board.receive(data, now_us, now_us) if data else []
        frames += self.board.advance(now_us)
        if frames:
            self.pipe.write(b"".join(f.data for f in frames))


@dataclass
class Boards:
    radars: list[RadarLink] = field(default_factory=list)
    launchers: list[LauncherLink] = field(default_factory=list)
    virtual_radars: list[VirtualRadar] = field(default_factory=list)
    launcher_models: list[LauncherModel] = field(default_factory=list)
    children: list[Any] = field(default_factory=list)  # processes and simavr boards to stop
    processes: dict[str, Any] = field(default_factory=dict)  # board name -> its emulator process (real time)
    simavr: dict[str, Any] = field(default_factory=dict)  # board name -> its SimavrBoard (real time)
    describe: list[dict[str, str]] = field(default_factory=list)
    faults: tuple[LinkFault, ...] = ()  # the byte faults scheduled on the links
    seed: int = 1
    injectors: dict[str, FaultInjector] = field(default_factory=dict)  # link name -> injector (virtual time)
    proxies: dict[str, ProxyProcess] = field(default_factory=dict)  # link name -> fault proxy (real time)
    _workdir: Any = None  # a temporary folder for the proxies' start and stats files

    def step_virtual(self, t_ns: int) -> None:
        for radar in self.virtual_radars:
            radar.step(t_ns)

    def inject(self, board: str, kind: str, launcher_names: list[str]) -> None:
        """A fault on a mock board: "silent" stops it answering (a pulled cable, a hung board), "resume" ends that."""
        if board in launcher_names and self.launcher_models:
            self.launcher_models[launcher_names.index(board)].responding = kind != "silent"
        elif board in self.processes:
            self.processes[board].proc.send_signal(signal.SIGSTOP if kind == "silent" else signal.SIGCONT)
        else:
            raise ConfigError("--fault", board, "silent and resume act on mock boards only")

    def start_faults(self, start_ns: int) -> None:
        """Align every link's fault schedule with the run's start (the run clock's now_ns() at t = 0).

        Until this is called, fault times count from bring-up.
        """
        for injector in self.injectors.values():
            injector.start(start_ns)
        for proxy in self.proxies.values():
            proxy.align(start_ns)

    def fault_counts(self) -> dict[str, dict[str, Any]]:
        """What the injectors did, per link with a byte fault: {"up": {...}, "down": {...}} (FaultInjector.summary();
        a TCP proxy adds "tcp": connections and cuts). Valid during the run and after close() (final counts)."""
        out = {name: injector.summary() for name, injector in self.injectors.items()}
        out.update({name: proxy.counts() for name, proxy in self.proxies.items()})
        return out

    def _byte_faults(self, link: str) -> list[LinkFault]:
        return [f for f in self.faults if f.link == link and f.kind in BYTE_KINDS]

    def _injector(self, link: str, clock: Clock) -> FaultInjector | None:
        faults = self._byte_faults(link)
        if not faults:
            return None
        injector = self.injectors[link] = FaultInjector(link, faults, self.seed, t0_ns=clock.now_ns())
        return injector

    def _through_proxy(self, link: str, board_url: str, clock: Clock, baud: int = 115200) -> str:
        """The URL the host opens: the board's own, or a fault proxy's in front of it when the link has faults."""
        faults = self._byte_faults(link)
        if not faults:
            return board_url
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="hil-faults-")
        proxy = ProxyProcess(link, board_url, faults, self.seed, self._workdir.name, baud=baud,
                             start_ns=clock.now_ns())
        self.children.append(proxy)
        self.proxies[link] = proxy
        return proxy.url

    def close(self) -> None:
        for child in self.processes.values():
            with contextlib.suppress(Exception):
                child.proc.send_signal(signal.SIGCONT)  # a stopped process would not hear SIGTERM
        for link in self.radars:
            with contextlib.suppress(Exception):
                link.close()
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop()
        self.children.clear()
        if self._workdir is not None:
            self.fault_counts()  # the proxies' final counts, read before their files go
            self._workdir.cleanup()
            self._workdir = None


def bring_up(scenario: Scenario, rig: Rig, clock: Clock, virtual: bool, recorder: Recorder | None,
             seed: int, faults: tuple[LinkFault, ...] = ()) -> Boards:
    """Start (or open) one board per scenario radar and launcher; the links are not yet connected.

    Byte faults (drop, corrupt, delay, stall, duplicate, cut) are put in the links they name; silent and resume
    are the runtime's to apply (inject()). Call start_faults() at the run's start to align their times.
    """
    boards = Boards(faults=tuple(faults), seed=seed)
    rng = random.Random(seed)
    try:
        for index, radar in enumerate(scenario.radars):
            spec = rig.board_for("radar", radar.name)
            transport = _radar_transport(spec, rig, virtual, boards, rng, clock, radar.name)
            link = RadarLink(transport, sensor_index=index, site_enu=radar.site, clock_ns=clock.now_ns,
                             recorder=recorder, name=radar.name)
            boards.radars.append(link)
            boards.describe.append({"role": "radar", "name": radar.name, "board": spec.board,
                                    "where": _where(spec, transport)})
        for launcher in scenario.launchers:
            spec = rig.board_for("launcher", launcher.name)
            link, where = _launcher_link(spec, rig, virtual, boards, clock, recorder, launcher.name, rng)
            boards.launchers.append(link)
            boards.describe.append({"role": "launcher", "name": launcher.name, "board": spec.board, "where": where})
    except BaseException:
        boards.close()
        raise
    return boards


def _where(spec: BoardSpec, transport: Any) -> str:
    return str(getattr(transport, "url", "") or spec.port or spec.address or spec.board)


def _radar_transport(spec: BoardSpec, rig: Rig, virtual: bool, boards: Boards, rng: random.Random, clock: Clock,
                     name: str) -> Any:
    if spec.board == "mock" and virtual:
        host_end, board_end = BytePipe.pair()
        boards.virtual_radars.append(VirtualRadar(RadarBoard(build="virtual"), board_end,
                                                  offset_us=rng.randrange(1_000_000, 100_000_000)))
        injector = boards._injector(name, clock)
        return host_end if injector is None else FaultyTransport(host_end, injector, clock.now_ns)
    if virtual:
        raise ConfigError(rig.source, f"radar {spec.name!r}.board",
                          f"a {spec.board} board runs in real time only: use --time real")
    if spec.board == "mock":
        child = start_mock_radar(spec.name, rig, boards.children)
        boards.processes[spec.name] = child
        return open_transport(boards._through_proxy(name, child.info["pty"], clock))
    if spec.board == "simavr":
        return open_transport(boards._through_proxy(name, _simavr(spec, boards), clock))
    if spec.board == "serial":
        return open_transport(boards._through_proxy(name, spec.port, clock, spec.baud), baudrate=spec.baud)
    if spec.board == "udp":
        if boards._byte_faults(name):
            raise ConfigError("--fault", name, "byte faults on a UDP radar link are not supported yet")
        return open_transport(f"udp://{spec.address}")
    url = boards._through_proxy(name, f"tcp://{spec.address}", clock)
    return open_transport("socket://" + url.removeprefix("tcp://"))


def start_mock_radar(name: str, rig: Rig, children: list[Any]) -> Child:
    """A radar emulator process on its pty (child.info["pty"]), added to children for the caller to stop."""
    args = ["--baud", str(rig.wire_baud)] if rig.wire_baud else []
    child = Child.python("hil.emulators.radar", args, name=f"radar {name}")
    children.append(child)
    return child


def start_mock_launcher(name: str, spec: BoardSpec, rig: Rig, children: list[Any]) -> tuple[Child, str]:
    """A launcher emulator process answering at spec's device id, and the URL a host opens it at: Modbus TCP on
    127.0.0.1, or RTU through a null-modem cable (the host's end of it). Every process goes into children."""
    ident = ["--device-id", str(spec.device_id)]
    if spec.transport == "tcp":
        child = Child.python("hil.emulators.launcher", ["--tcp", "127.0.0.1:0", *ident], name=f"launcher {name}")
        children.append(child)
        url = f"tcp://{child.info['tcp']}" if "tcp" in child.info else f"tcp://127.0.0.1:{child.info['port']}"
        return child, url
    cable = Child.python("hil.plant.nullmodem", ["--baud", str(rig.wire_baud)], name=f"cable {name}")
    children.append(cable)
    child = Child.python("hil.emulators.launcher", ["--rtu", cable.info["a"], *ident], name=f"launcher {name}")
    children.append(child)
    return child, str(cable.info["b"])


def _simavr(spec: BoardSpec, boards: Boards) -> str:
    from hil.plant.firmware import SimavrBoard, build_firmware

    board = SimavrBoard(build_firmware(spec.firmware))
    boards.children.append(board)
    boards.simavr[spec.name] = board
    return str(board.start())


def _launcher_link(spec: BoardSpec, rig: Rig, virtual: bool, boards: Boards, clock: Clock,
                   recorder: Recorder | None, name: str, rng: random.Random) -> tuple[LauncherLink, str]:
    timeout_s = spec.timeout_ms / 1000.0
    if spec.board == "mock" and virtual:
        offset_us = rng.randrange(1_000_000, 100_000_000)
        model = LauncherModel(clock_us=lambda: clock.now_ns() // 1000 + offset_us)
        boards.launcher_models.append(model)
        injector = boards._injector(name, clock)
        board: Any = model if injector is None else FaultyModbusBoard(model, injector, clock.now_ns)
        return LauncherLink.virtual(board, device_id=spec.device_id, name=name, clock_ns=clock.now_ns,
                                    recorder=recorder), "in-process"
    if virtual:
        raise ConfigError(rig.source, f"launcher {name!r}.board",
                          f"a {spec.board} board runs in real time only: use --time real")
    if spec.board == "mock":
        child, url = start_mock_launcher(name, spec, rig, boards.children)
        boards.processes[name] = child
    elif spec.board == "simavr":
        url = _simavr(spec, boards)
    elif spec.board == "serial":
        url = spec.port
    else:
        url = f"tcp://{spec.address}"
    if not url:
        raise LinkError(f"launcher {name}: no address")
    url = boards._through_proxy(name, url, clock, spec.baud)
    return LauncherLink.from_url(url, device_id=spec.device_id, name=name, clock_ns=clock.now_ns,
                                 recorder=recorder, timeout_s=timeout_s, baud=spec.baud), url
