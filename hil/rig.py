"""Rig files: which board (mock, simavr, serial, tcp, udp) stands behind each radar and launcher of a scenario."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field

from hil.config_schema import FileModel, Integer, Name, Number, Text, default_of, shown, validate
from hil.errors import ConfigError, read_toml
from hil.shipped import resolve_rig

RadarBoard = Literal["mock", "simavr", "serial", "udp", "tcp"]
LauncherBoard = Literal["mock", "simavr", "serial", "tcp"]
BOARD_KINDS = {"radar": get_args(RadarBoard), "launcher": get_args(LauncherBoard)}
DEFAULT_RIG = "mock"  # a name hil.shipped resolves: rigs/mock.toml of the checkout or the package
# a serial line: from the slowest UART rate anyone still uses to the fastest USB-serial bridges
MIN_BAUD, MAX_BAUD = 300, 4_000_000


@dataclass(frozen=True)
class BoardSpec:
    """A passive description of one board's link: what it is and where it is plugged in."""

    role: str  # radar | launcher
    name: str
    board: str  # mock | simavr | serial | udp | tcp
    port: str = ""  # serial device (/dev/serial/by-id/...) for board = serial
    baud: int = 115200
    address: str = ""  # host:port for tcp / udp
    firmware: str = ""  # radar | launcher for board = simavr
    device_id: int = 1  # Modbus device id of a launcher
    transport: str = "rtu"  # mock launchers: rtu over a pty pair, or tcp on 127.0.0.1
    timeout_ms: int = 100


# a launcher SAFE for more than this share of the time since it first armed (tripped, held off, lost) is a rig
# problem even when it is armed again at the end: the run's outcomes were not made with it
SAFE_SHARE_LIMIT = 0.25


@dataclass
class SafeTime:
    """A launcher's time SAFE (not armed) after it first armed, as whoever watches it sees it (the host's status
    reads, the plant's board lines), and the rig-health rule over it."""

    armed_at_ns: int | None = None  # when it was first seen armed
    safe_ns: int = 0  # SAFE time of the intervals that ended
    safe_since_ns: int | None = None  # the SAFE interval under way

    def note(self, now_ns: int, armed: bool) -> None:
        """The launcher is (or is not) armed at now_ns."""
        if armed and self.armed_at_ns is None:
            self.armed_at_ns = now_ns
        if self.armed_at_ns is None:
            return
        if armed and self.safe_since_ns is not None:
            self.safe_ns += now_ns - self.safe_since_ns
            self.safe_since_ns = None
        elif not armed and self.safe_since_ns is None:
            self.safe_since_ns = now_ns

    def safe_at(self, end_ns: int) -> int:
        """SAFE time up to end_ns (ns)."""
        return self.safe_ns + (max(0, end_ns - self.safe_since_ns) if self.safe_since_ns is not None else 0)

    def problem(self, name: str, end_ns: int, trips: int) -> str | None:
        """The rig problem when it was SAFE for more than SAFE_SHARE_LIMIT of the time since it first armed."""
        if self.armed_at_ns is None:
            return None
        safe, span = self.safe_at(end_ns), end_ns - self.armed_at_ns
        if safe <= SAFE_SHARE_LIMIT * span:
            return None
        return (f"launcher {name} was SAFE for {safe / 1e9:.1f} s of the {span / 1e9:.1f} s after it first armed "
                f"({trips} watchdog trips)")


@dataclass(frozen=True)
class PlantRun:
    """The running `hil plant` a rig file of plant = "external" was written by: its boards exist while it runs."""

    process: str  # PID@START (hil.procutil.process_identity)
    scenario: str  # the scenario's name
    scenario_file: str  # what `hil plant --scenario` loaded (a shipped name or a file's path)
    duration_s: float  # the plant scores this long from the host's first byte

    def problem(self, source: str) -> ConfigError | None:
        """Why a host must not open these boards: the plant is gone (its ptys may be another run's by now)."""
        from hil.procutil import process_running

        if process_running(self.process):
            return None
        pid = self.process.partition("@")[0]
        return ConfigError(source, "plant_run.process",
                           f"the hil plant that wrote this file (pid {pid}) is no longer running: its boards are "
                           "gone, and ports of the same names may belong to another run now; start hil plant "
                           "again and use the rig file it writes")


@dataclass(frozen=True)
class Rig:
    name: str
    source: str
    boards: dict[tuple[str, str], BoardSpec] = field(default_factory=dict)
    defaults: dict[str, BoardSpec] = field(default_factory=dict)  # role -> spec used for unnamed boards
    wire_baud: int = 0  # mock rig: pace pty bytes like a wire at this rate (0: as fast as the pty goes)
    description: str = ""
    # after a launcher's watchdog trips: "auto" re-arms once the link has been healthy for rearm_holdoff_s (at most
    # rearm_max_per_min a minute, no fire inside the hold-off); "never" leaves it SAFE for an operator
    rearm: str = "auto"
    rearm_holdoff_s: float = 1.0
    rearm_max_per_min: int = 3
    # "local": the run flies the plant itself (truth, the radars' stimulus, the interceptors); "external": a plant
    # runs elsewhere (`hil plant`) and this host only talks to the boards it serves
    plant: str = "local"
    system_tracks: str = ""  # udp://HOST:PORT: where the host publishes its system tracks (ASTERIX CAT062)
    plant_run: PlantRun | None = None  # [plant_run]: the hil plant that wrote this rig file (plant = "external")
    # [criteria]: this bench's own limits (latency, links) for every run on it (hil.measure.verdict)
    criteria: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Rig:
        """A rig file's path (relative to the current directory) or a shipped rig's name; the mock rig by default."""
        found = resolve_rig(path or DEFAULT_RIG)
        return _read(str(found), read_toml(found, "rig"))

    def board_for(self, role: str, name: str) -> BoardSpec:
        spec = self.boards.get((role, name))
        if spec is not None:
            return spec
        default = self.defaults.get(role)
        if default is None:
            raise ConfigError(self.source, f"{role} {name!r}",
                              f"the scenario has a {role} named {name!r} but the rig has no [[{role}]] with that name "
                              f"and no [defaults] {role}_board")
        return BoardSpec(**{**default.__dict__, "name": name})

    @property
    def is_hardware(self) -> bool:
        return any(b.board in ("serial", "tcp", "udp") for b in self.boards.values())


# --- the file: typed and ranged fields (hil.config_schema), then what spans fields ------------------


class BoardTable(FileModel):
    """A board's link, as written in [[radar]] or [[launcher]]."""

    name: Name = Field(description="the scenario's radar or launcher this board stands behind")
    port: Text = Field(default_of(BoardSpec, "port"), description="serial device /dev/serial/by-id/... (serial)")
    baud: Integer = Field(default_of(BoardSpec, "baud"), ge=MIN_BAUD, le=MAX_BAUD)
    address: Text = Field(default_of(BoardSpec, "address"), description="host:port (tcp, udp)")
    firmware: Literal["radar", "launcher"] | None = Field(None, description="simavr: which firmware (default: role)")
    device_id: Integer = Field(default_of(BoardSpec, "device_id"), ge=1, le=247, description="Modbus device id")
    transport: Literal["rtu", "tcp"] = Field(default_of(BoardSpec, "transport"),
                                             description="mock launchers: RTU over a pty pair or TCP on 127.0.0.1")
    timeout_ms: Integer = Field(default_of(BoardSpec, "timeout_ms"), ge=1, le=60_000)


class RadarBoardTable(BoardTable):
    """[[radar]]: the board behind a scenario's radar."""

    board: RadarBoard


class LauncherBoardTable(BoardTable):
    """[[launcher]]: the board behind a scenario's launcher."""

    board: LauncherBoard


class RigDefaults(FileModel):
    """[defaults]: the board for every radar or launcher the rig does not name."""

    radar_board: RadarBoard | None = None
    launcher_board: LauncherBoard | None = None
    launcher_transport: Literal["rtu", "tcp"] | None = None
    baud: Integer | None = Field(None, ge=MIN_BAUD, le=MAX_BAUD)
    timeout_ms: Integer | None = Field(None, ge=1, le=60_000)


class PlantRunTable(FileModel):
    """[plant_run]: written by hil plant beside plant = "external" (the running plant, its scenario, its duration)."""

    process: Text = Field(pattern=r"^[0-9]+@[0-9]+$", description="PID@START of the hil plant process")
    scenario: Name = Field(description="the plant's scenario")
    scenario_file: Text = Field(description="what the plant loaded: a shipped scenario's name or a file's path")
    duration_s: Number = Field(gt=0.0, le=86_400.0, description="seconds the plant scores from the host's first byte")


class RigFile(FileModel):
    """A hil rig: which board stands behind each radar and launcher of a scenario."""

    name: Name | None = Field(None, description="default: the file's stem")
    description: Text = ""
    defaults: RigDefaults = RigDefaults.model_validate({})
    radar: list[RadarBoardTable] = Field(default_factory=list, max_length=255)
    launcher: list[LauncherBoardTable] = Field(default_factory=list, max_length=255)
    wire_baud: Integer = Field(default_of(Rig, "wire_baud"), ge=0, le=MAX_BAUD,
                               description="mock rig: pace pty bytes like a wire at this rate (0: unpaced)")
    rearm: Literal["auto", "never"] = Field(default_of(Rig, "rearm"),
                                            description="after a launcher's watchdog trips: re-arm, or leave it SAFE")
    rearm_holdoff_s: Number = Field(default_of(Rig, "rearm_holdoff_s"), ge=0.0, le=600.0,
                                    description="the link healthy this long before an auto re-arm")
    rearm_max_per_min: Integer = Field(default_of(Rig, "rearm_max_per_min"), ge=0, le=60)
    plant: Literal["local", "external"] = Field(
        default_of(Rig, "plant"), description='"external": a plant runs elsewhere (hil plant) and scores this host')
    system_tracks: Text = Field(default_of(Rig, "system_tracks"), pattern=r"^(udp://[^\s/]+:[0-9]{1,5})?$",
                                description="udp://HOST:PORT: where the host publishes its system tracks (CAT062)")
    plant_run: PlantRunTable | None = Field(None, description="the hil plant that wrote this file (it writes this)")
    criteria: dict[str, Any] = Field(default_factory=dict,
                                     description="this bench's limits for every run on it (docs/CRITERIA.md)")


def _read(source: str, doc: dict[str, Any]) -> Rig:
    f = validate(RigFile, doc, source, frozenset({"radar", "launcher"}))
    if 0 < f.wire_baud < MIN_BAUD:
        raise ConfigError(source, "wire_baud", f"must be 0 (unpaced) or a rate from {MIN_BAUD}, got {f.wire_baud}")
    boards: dict[tuple[str, str], BoardSpec] = {}
    named: tuple[tuple[str, list[Any]], ...] = (("radar", f.radar), ("launcher", f.launcher))
    for role, tables in named:
        for i, table in enumerate(tables):
            where = f"{role}[{i}] ({table.name})"
            if (role, table.name) in boards:
                raise ConfigError(source, f"{where}.name", f"duplicate {role} name {table.name!r}")
            boards[(role, table.name)] = _board(source, role, where, table)
    defaults: dict[str, BoardSpec] = {}
    d = f.defaults
    for role, board, model in (("radar", d.radar_board, RadarBoardTable),
                               ("launcher", d.launcher_board, LauncherBoardTable)):
        if board is not None:
            table = {"name": "*", "board": board, "baud": d.baud, "timeout_ms": d.timeout_ms,
                     "transport": d.launcher_transport if role == "launcher" else None}
            spec = model.model_validate({k: v for k, v in table.items() if v is not None})
            defaults[role] = _board(source, role, f"defaults.{role}_board", spec)
    if f.plant_run is not None and f.plant != "external":
        raise ConfigError(source, "plant_run", 'belongs to a rig file of plant = "external" (hil plant writes both)')
    plant_run = None if f.plant_run is None else PlantRun(**f.plant_run.model_dump())
    return Rig(name=f.name or Path(source).stem, source=source, boards=boards, defaults=defaults,
               wire_baud=f.wire_baud, description=f.description, rearm=f.rearm,
               rearm_holdoff_s=f.rearm_holdoff_s, rearm_max_per_min=f.rearm_max_per_min, plant=f.plant,
               system_tracks=f.system_tracks, plant_run=plant_run, criteria=_criteria(source, f.criteria))


def _criteria(source: str, table: dict[str, Any]) -> dict[str, Any]:
    from hil.measure.verdict import criteria_from

    criteria_from(table, source)  # one clear line for a criterion that is wrong
    return dict(table)


def _board(source: str, role: str, where: str, t: RadarBoardTable | LauncherBoardTable) -> BoardSpec:
    if t.board == "serial" and not t.port:
        raise ConfigError(source, f"{where}.port", "a serial board needs port = \"/dev/serial/by-id/...\"")
    if t.board in ("tcp", "udp"):
        host, _, port = t.address.rpartition(":")
        if not host or not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
            raise ConfigError(source, f"{where}.address",
                              f"a {t.board} board needs address = \"host:port\", got {shown(t.address)}")
    return BoardSpec(role=role, name=t.name, board=t.board, port=t.port, baud=t.baud, address=t.address,
                     firmware=t.firmware or role, device_id=t.device_id, transport=t.transport,
                     timeout_ms=t.timeout_ms)
