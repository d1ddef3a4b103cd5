"""Rig files: which board (mock, simavr, serial, tcp, udp) stands behind each radar and launcher of a scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import ConfigError, read_toml

BOARD_KINDS = {
    "radar": ("mock", "simavr", "serial", "udp", "tcp"),
    "launcher": ("mock", "simavr", "serial", "tcp"),
}
FIELDS = {"name", "board", "port", "baud", "address", "firmware", "device_id", "transport", "timeout_ms"}
RIG_FIELDS = {"name", "description", "defaults", "radar", "launcher", "wire_baud", "rearm", "rearm_holdoff_s",
              "rearm_max_per_min"}
DEFAULT_RIG = Path(__file__).resolve().parent.parent / "rigs" / "mock.toml"


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

    @classmethod
    def load(cls, path: str | Path | None = None) -> Rig:
        path = Path(path) if path else DEFAULT_RIG
        return _read(str(path), read_toml(path, "rig"))

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


def _read(source: str, doc: dict[str, Any]) -> Rig:
    for key in doc:
        if key not in RIG_FIELDS:
            known = ", ".join(sorted(RIG_FIELDS))
            raise ConfigError(source, key, f"unknown field (known: {known})")
    boards: dict[tuple[str, str], BoardSpec] = {}
    for role in ("radar", "launcher"):
        items = doc.get(role, [])
        if not isinstance(items, list):
            raise ConfigError(source, role, f"must be an array of tables ([[{role}]])")
        for i, table in enumerate(items):
            where = f"{role}[{i}]"
            if "name" not in table:
                raise ConfigError(source, f"{where}.name", "missing")
            spec = _board(source, role, f"{where} ({table['name']})", table)
            if (role, spec.name) in boards:
                raise ConfigError(source, f"{where}.name", f"duplicate {role} name {spec.name!r}")
            boards[(role, spec.name)] = spec
    defaults: dict[str, BoardSpec] = {}
    d = doc.get("defaults", {})
    if not isinstance(d, dict):
        raise ConfigError(source, "defaults", "must be a table")
    for key in d:
        if key not in {"radar_board", "launcher_board", "launcher_transport", "baud", "timeout_ms"}:
            raise ConfigError(source, f"defaults.{key}", "unknown field")
    for role in ("radar", "launcher"):
        if f"{role}_board" in d:
            table = {"name": "*", "board": d[f"{role}_board"]}
            if role == "launcher" and "launcher_transport" in d:
                table["transport"] = d["launcher_transport"]
            for key in ("baud", "timeout_ms"):
                if key in d:
                    table[key] = d[key]
            defaults[role] = _board(source, role, f"defaults.{role}_board", table)
    wire_baud = doc.get("wire_baud", 0)
    if not isinstance(wire_baud, int) or wire_baud < 0:
        raise ConfigError(source, "wire_baud", f"must be a non-negative integer (0 = unpaced), got {wire_baud!r}")
    rearm = doc.get("rearm", "auto")
    if rearm not in ("auto", "never"):
        raise ConfigError(source, "rearm", f"must be auto or never, got {rearm!r}")
    holdoff = doc.get("rearm_holdoff_s", 1.0)
    if isinstance(holdoff, bool) or not isinstance(holdoff, int | float) or not 0.0 <= holdoff <= 600.0:
        raise ConfigError(source, "rearm_holdoff_s", f"must be a number of seconds in [0, 600], got {holdoff!r}")
    per_min = doc.get("rearm_max_per_min", 3)
    if isinstance(per_min, bool) or not isinstance(per_min, int) or not 0 <= per_min <= 60:
        raise ConfigError(source, "rearm_max_per_min", f"must be an integer in [0, 60], got {per_min!r}")
    return Rig(name=str(doc.get("name", Path(source).stem)), source=source, boards=boards, defaults=defaults,
               wire_baud=wire_baud, description=str(doc.get("description", "")), rearm=rearm,
               rearm_holdoff_s=float(holdoff), rearm_max_per_min=per_min)


def _board(source: str, role: str, where: str, t: dict[str, Any]) -> BoardSpec:
    for key in t:
        if key not in FIELDS:
            raise ConfigError(source, f"{where}.{key}", f"unknown field (known: {', '.join(sorted(FIELDS))})")
    board = t.get("board")
    if board not in BOARD_KINDS[role]:
        raise ConfigError(source, f"{where}.board", f"must be one of {', '.join(BOARD_KINDS[role])}, got {board!r}")
    if board == "serial" and not t.get("port"):
        raise ConfigError(source, f"{where}.port", "a serial board needs port = \"/dev/serial/by-id/...\"")
    if board in ("tcp", "udp") and not t.get("address"):
        raise ConfigError(source, f"{where}.address", f"a {board} board needs address = \"host:port\"")
    if board in ("tcp", "udp"):
        host, _, port = str(t["address"]).rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(source, f"{where}.address", f"must be host:port, got {t['address']!r}")
    if board == "simavr" and t.get("firmware", role) not in ("radar", "launcher"):
        raise ConfigError(source, f"{where}.firmware", "must be radar or launcher")
    transport = t.get("transport", "rtu")
    if transport not in ("rtu", "tcp"):
        raise ConfigError(source, f"{where}.transport", f"must be rtu or tcp, got {transport!r}")
    for key, lo, hi in (("baud", 300, 4_000_000), ("device_id", 1, 247), ("timeout_ms", 1, 60_000)):
        if key in t and (not isinstance(t[key], int) or not lo <= t[key] <= hi):
            raise ConfigError(source, f"{where}.{key}", f"must be an integer in [{lo}, {hi}], got {t[key]!r}")
    return BoardSpec(
        role=role, name=str(t["name"]), board=board, port=str(t.get("port", "")), baud=int(t.get("baud", 115200)),
        address=str(t.get("address", "")), firmware=str(t.get("firmware", role)), device_id=int(t.get("device_id", 1)),
        transport=transport, timeout_ms=int(t.get("timeout_ms", 100)),
    )
