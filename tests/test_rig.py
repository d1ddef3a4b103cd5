"""Rig files: each scenario board resolves to a link, and a typo gets one error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.rig import Rig

REPO = Path(__file__).resolve().parent.parent


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
