"""Rig files: each scenario board resolves to a link, and a typo gets one error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.commands.cli import main as hil_main
from hil.errors import ConfigError
from hil.rig import BoardSpec, Rig
from tests.helpers import REPO


def test_mock_rig_serves_every_board_by_default() -> None:
    rig = Rig.load(REPO / "rigs" / "mock.toml")
    assert rig.board_for("radar", "anything").board == "mock"
    launcher = rig.board_for("launcher", "x")
    assert (launcher.board, launcher.transport) == ("mock", "rtu")


def test_named_boards_override_defaults(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[[launcher]]\nname = "l1"\nboard = "tcp"\naddress = "127.0.0.1:1502"\ndevice_id = 3\n')
    rig = Rig.load(p)
    spec = rig.board_for("launcher", "l1")
    assert (spec.board, spec.address, spec.device_id) == ("tcp", "127.0.0.1:1502", 3)
    with pytest.raises(ConfigError, match="no \\[\\[radar\\]\\] with that name"):
        rig.board_for("radar", "r1")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[[radar]]\nname = "r"\nboard = "usb"\n', "board"),
        ('[[radar]]\nname = "r"\nboard = "serial"\n', "port"),
        ('[[launcher]]\nname = "l"\nboard = "tcp"\naddress = "localhost"\n', "address"),
        ('[[launcher]]\nname = "l"\nboard = "mock"\ndevice_id = 300\n', "device_id"),
        ('[[launcher]]\nname = "l"\nboard = "mock"\nbaudrate = 9600\n', "baudrate"),
        ('wire_baud = -5\n', "wire_baud"),
        ('[[radar]]\nboard = "mock"\n', "name"),
    ],
)
def test_rig_typos_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        Rig.load(p)
    assert field in str(e.value)


def test_missing_rig_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such rig file"):
        Rig.load(tmp_path / "missing.toml")


# --- the file's fields, typed and ranged (issue 12 part 7) -----------------------------------------


def test_shipped_rigs_load_exactly_as_they_did_before_validation_moved_to_pydantic() -> None:
    """Expectations written out from the files' values (checked once against the loader before the change)."""

    def board(role: str, name: str, kind: str, **more: object) -> BoardSpec:
        return BoardSpec(role=role, name=name, board=kind, firmware=role, **more)  # type: ignore[arg-type]

    mock = Rig.load(REPO / "rigs" / "mock.toml")
    assert mock == Rig(name="mock", source=str(REPO / "rigs" / "mock.toml"), boards={},
                       defaults={"radar": board("radar", "*", "mock"), "launcher": board("launcher", "*", "mock")},
                       description="software emulators on ptys (real time) or in-process (virtual time)",
                       rearm="auto", rearm_holdoff_s=1.0, rearm_max_per_min=3, wire_baud=0)
    simavr = Rig.load(REPO / "rigs" / "simavr.toml")
    named = {(role, name): board(role, name, "simavr") for role, name in (
        ("radar", "radar-west"), ("radar", "radar-east"), ("launcher", "launcher-north"),
        ("launcher", "launcher-south"))}
    assert simavr == Rig(name="simavr", source=str(REPO / "rigs" / "simavr.toml"), boards=named,
                         defaults={"radar": board("radar", "*", "simavr"),
                                   "launcher": board("launcher", "*", "simavr")},
                         description="AVR radar and launcher firmware under simavr, UARTs on ptys", rearm="auto")
    bench = Rig.load(REPO / "rigs" / "bench-example.toml")
    by_id = "/dev/serial/by-id/usb-"
    assert bench == Rig(
        name="bench-example", source=str(REPO / "rigs" / "bench-example.toml"), rearm="never",
        description="two Arduino Uno radars on USB, one Uno launcher on RS-485 (Modbus RTU), one Pi launcher on "
                    "Modbus TCP",
        boards={
            ("radar", "radar-west"): board("radar", "radar-west", "serial",
                                           port=f"{by_id}Arduino__www.arduino.cc__0043_7573530343735170F0A1-if00"),
            ("radar", "radar-east"): board("radar", "radar-east", "serial",
                                           port=f"{by_id}Arduino__www.arduino.cc__0043_95735303437351D0C1E2-if00"),
            ("launcher", "launcher-north"): board("launcher", "launcher-north", "serial",
                                                  port=f"{by_id}FTDI_USB-RS485_Cable_FT4ZK2QX-if00-port0"),
            ("launcher", "launcher-south"): board("launcher", "launcher-south", "tcp", address="192.168.50.21:1502",
                                                  timeout_ms=50),
        })


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("wire_baud = 99999999999\n", "wire_baud", "at most 4000000"),
        ("wire_baud = 12\n", "wire_baud", "0 (unpaced)"),
        ("wire_baud = 1.5e5\n", "wire_baud", "integer"),
        ("name = 5\n", "name", "must be a string, got 5"),
        ("[defaults]\nradar_board = \"mock\"\ntimeout_ms = true\n", "defaults.timeout_ms", "integer, got true"),
        ("[defaults]\nradar_bord = \"mock\"\n", "defaults.radar_bord", "known: radar_board"),
        ('[[launcher]]\nname = "l"\nboard = "mock"\ntimeout_ms = true\n', "launcher[0] (l).timeout_ms", "integer"),
        ('[[launcher]]\nname = "l"\nboard = "mock"\nbaud = 1e9\n', "launcher[0] (l).baud", "integer"),
        ('[[launcher]]\nname = "l"\nboard = "udp"\naddress = "h:1"\n', "launcher[0] (l).board", "'tcp', got 'udp'"),
        ('[[radar]]\nname = "r"\nboard = "tcp"\naddress = "h:99999"\n', "radar[0] (r).address", "host:port"),
        ('[[radar]]\nname = "r"\nboard = "mock"\n[[radar]]\nname = "r"\nboard = "mock"\n', "radar[1] (r).name",
         "duplicate"),
        ('rearm = "sometimes"\n', "rearm", "'auto' or 'never'"),
        ("rearm_holdoff_s = nan\n", "rearm_holdoff_s", "finite"),
        ("rearm_max_per_min = 1000\n", "rearm_max_per_min", "at most 60"),
        ("radar = 3\n", "radar", "array"),
    ],
)
def test_a_malformed_rig_value_is_one_line_naming_file_and_field(tmp_path: Path, text: str, field: str,
                                                                 says: str) -> None:
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        Rig.load(p)
    assert str(e.value).startswith(f"{p}: {field}: ") and says in str(e.value) and "\n" not in str(e.value)


def test_a_file_that_is_no_rig_is_refused_in_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "rig.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 64)
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (1 << 20) + b"\n")
    for path, says in ((binary, "binary"), (huge, "larger than 1 MiB"), (tmp_path, "is a directory")):
        with pytest.raises(ConfigError, match=says):
            Rig.load(path)


def test_hil_schema_rig_prints_a_json_schema_the_shipped_rigs_meet(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import tomllib

    jsonschema = pytest.importorskip("jsonschema")
    assert hil_main(["schema", "rig"]) == 0
    schema = json.loads(capsys.readouterr().out)
    validator = jsonschema.Draft202012Validator(schema)
    for name in ("mock", "simavr", "bench-example"):
        assert list(validator.iter_errors(tomllib.loads((REPO / "rigs" / f"{name}.toml").read_text()))) == []
    assert not validator.is_valid({"wire_baud": 99999999999})
    assert not validator.is_valid({"launcher": [{"name": "l", "board": "udp"}]})
