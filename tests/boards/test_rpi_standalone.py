"""The Raspberry Pi's board side stands alone: bundled by firmware_stubs/rpi/bundle.py, it imports and runs in a
virtualenv holding numpy, pyserial and pymodbus only, and the host's own links talk to it on ptys."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hil.drivers.launcher_link import LauncherLink
from hil.drivers.radar_link import RadarLink
from hil.drivers.registers import State
from hil.drivers.transport import open_transport
from hil.emulators.launcher import Launch, LaunchEvents
from hil.geo import enu_to_polar
from hil.plant.radars import config_from_spec
from hil.procutil import Child
from hil.scenario import RadarSpec
from tests.helpers import RPI_FIRMWARE

# what a Pi installs: numpy and pyserial from Raspberry Pi OS, pymodbus from PyPI (README.md beside bundle.py)
PI_PACKAGES = ("numpy", "pyserial", "pymodbus>=3.16,<4")
# what must never be loaded on a board: hil's heavy dependencies and its host-machine parts
NOT_ON_A_BOARD = ("scipy", "Cython", "matplotlib", "pydantic", "hdrh", "hil.ext", "hil.scenario", "hil.host",
                  "hil.plant", "hil.records", "hil.measure", "hil.commands", "hil.runtime")
SPEC = RadarSpec(name="pi", site=(0.0, 0.0, 10.0), scan_period_s=0.5, pd=1.0, clutter_per_scan=0.0)
TARGETS = np.array([[20_000.0, 20_000.0, 3_000.0, -150.0, 0.0, 0.0], [-30_000.0, 5_000.0, 6_000.0, 0.0, -200.0, 0.0]])


def load_bundler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rpi_bundle", RPI_FIRMWARE / "bundle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


# --- the boundary, checked on the checkout's sources (fast) ----------------------------------------------------


def test_the_board_side_imports_nothing_a_pi_does_not_have() -> None:
    modules = load_bundler().board_side()
    assert {"hil.emulators.radar", "hil.emulators.launcher", "hil.drivers.framing", "hil.drivers.asterix"} <= set(
        modules)
    assert not [m for m in modules if any(loaded([m], bad) for bad in NOT_ON_A_BOARD)]


def test_the_bundler_refuses_a_board_module_that_reaches_for_the_scenario_or_scipy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundler = load_bundler()
    sources = {"hil/__init__.py": "", "hil/scenario.py": "", "drivers/__init__.py": "", "hil/emulators/__init__.py": "",
               "rpi/radar.py": "import sys\n", "rpi/launcher.py": "import sys\n",
               "hil/emulators/radar.py": "import numpy\n\n\ndef plan():\n    from hil.scenario import Scenario\n"}
    for rel, text in sources.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(bundler, "HERE", tmp_path / "rpi")
    monkeypatch.setattr(bundler, "PACKAGE_DIRS", {"hil": tmp_path / "hil", "hil.drivers": tmp_path / "drivers",
                                                  "hil.emulators": tmp_path / "hil" / "emulators"})
    with pytest.raises(bundler.BoundaryError, match=r"hil\.emulators\.radar imports hil\.scenario"):
        bundler.board_side()
    (tmp_path / "hil/emulators/radar.py").write_text("import numpy\nimport scipy.signal\n")
    with pytest.raises(bundler.BoundaryError, match=r"imports scipy\.signal, which a board does not install"):
        bundler.board_side()
    (tmp_path / "hil/emulators/radar.py").write_text("import numpy\nimport serial\n")
    assert list(bundler.board_side()) == ["hil", "hil.emulators", "hil.emulators.radar"]
    assert bundler.main([str(tmp_path / "rpi")]) == 1  # not empty, and not an earlier bundle: left alone


# --- the bundle in a virtualenv with the Pi's packages only (slow: makes a virtualenv) -------------------------


@dataclass(frozen=True)
class PiBundle:
    python: Path  # the virtualenv's interpreter
    dir: Path  # the bundle, as copied to a Pi
    files: list[str]

    def command(self, script: str, *args: str) -> list[str]:
        # -E: no PYTHONPATH or other PYTHON* settings of the test's environment reach the board
        return [str(self.python), "-E", str(self.dir / script), *args]


def pi_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}


@pytest.fixture(scope="module")
def pi(tmp_path_factory: pytest.TempPathFactory) -> PiBundle:
    root = tmp_path_factory.mktemp("pi")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=pi_env())
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                              *PI_PACKAGES], capture_output=True, text=True, timeout=600, env=pi_env())
    if install.returncode != 0:
        pytest.fail(f"could not install {', '.join(PI_PACKAGES)} into a fresh virtualenv (it needs PyPI, a pip "
                    f"cache or a wheel folder): {install.stderr[-2000:]}")
    bundle = root / "hil-board"
    made = subprocess.run([sys.executable, str(RPI_FIRMWARE / "bundle.py"), str(bundle)], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((bundle / "hil-board.json").read_text())
    return PiBundle(python, bundle, manifest["files"])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_board_module_imports_in_the_pis_virtualenv_without_hils_heavy_parts(pi: PiBundle) -> None:
    listed = subprocess.run([str(pi.python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True, timeout=60, env=pi_env())
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert installed - {"pip", "setuptools", "wheel"} == {"numpy", "pyserial", "pymodbus"}

    modules = [f.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
               for f in pi.files if f.endswith(".py")]
    assert {"hil.emulators.radar", "hil.emulators.launcher", "radar", "launcher"} <= set(modules)
    check = ("import importlib, json, sys\n"
             "for name in sys.argv[1:]:\n"
             "    importlib.import_module(name)\n"
             "print(json.dumps({'loaded': sorted(sys.modules),\n"
             "                  'files': [getattr(sys.modules[n], '__file__', '') for n in sys.argv[1:]]}))\n")
    # run from inside the bundle, as `python3 radar.py` on the Pi finds its hil package beside it
    out = subprocess.run([str(pi.python), "-E", "-c", check, *modules], capture_output=True, text=True, timeout=60,
                         cwd=pi.dir, env=pi_env())
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [name for name in NOT_ON_A_BOARD if loaded(result["loaded"], name)] == []
    assert all(Path(f).resolve().is_relative_to(pi.dir.resolve()) for f in result["files"])


def poll_radar(link: RadarLink, done: Callable[[list[tuple[float, ...]], int], bool],
               timeout_s: float) -> tuple[list[tuple[float, ...]], int]:
    """Plots (t_s, range, azimuth, mode3a) and sector crossings until done(plots, sectors) or the time is up."""
    got: list[tuple[float, ...]] = []
    sectors = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done(got, sectors):
        time.sleep(0.01)
        plots, crossings = link.poll()
        sectors += len(crossings)
        got += zip(plots.column("t_s"), plots.column("range_m"), plots.column("azimuth_rad"),
                   plots.column("mode3a"), strict=True)
    return got, sectors


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_bundled_radar_answers_a_time_sync_and_sends_plots_of_the_truth_it_is_given(pi: PiBundle) -> None:
    board = Child(pi.command("radar.py"), name="bundled radar")
    link = RadarLink(open_transport(board.info["pty"]), sensor_index=0, site_enu=SPEC.site, name="pi")
    try:
        assert link.identify().split(";")[0] == "hil-radar-py"
        for _ in range(5):
            link.request_time_sync()
            poll_radar(link, lambda _p, _s: link.stats["sync_responses"] >= link.stats["sync_requests"], 2.0)
        assert link.clock_sync.synced
        t_sent = time.monotonic()
        link.send_config(config_from_spec(SPEC, seed=1))
        link.send_stimulus([1, 2], [-1, 0o4001], TARGETS)
        got, sectors = poll_radar(link, lambda p, s: len(p) >= 4 and s >= 8, 10.0)
        t_done = time.monotonic()
    finally:
        link.close()
        board.stop()
    assert len(got) >= 4 and sectors >= 8
    assert link.counters["plots_unsynced"] == 0
    r_true, az_true, _ = enu_to_polar(TARGETS[:, :3] - np.array(SPEC.site))
    slack_s = link.clock_sync.uncertainty_ns / 1e9
    for t_s, rng, az, code in got:
        # stamped by the board's clock, mapped to the host's through the sync: between the config's sending and
        # the plot's arrival, give or take the sync's uncertainty
        assert t_sent - slack_s <= t_s <= t_done + slack_s
        k = int(np.argmin(np.abs(rng - r_true)))
        assert abs(rng - r_true[k]) < 500.0  # the targets move at most 200 m/s x 2 s; sigma_r is 50 m
        assert abs((az - az_true[k] + np.pi) % (2 * np.pi) - np.pi) < np.radians(1.5)
        assert code in ((0o4001, -1) if k == 1 else (-1,))  # IFF replies with p = 0.98


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_bundled_launcher_identifies_arms_fires_and_reports_over_modbus_rtu(pi: PiBundle) -> None:
    cable = Child.python("hil.plant.nullmodem", [], name="cable")
    board = Child(pi.command("launcher.py", "--rtu", cable.info["a"], "--reload-ms", "0"), name="bundled launcher")
    try:
        assert board.proc.stdout is not None
        events = LaunchEvents(board.proc.stdout.fileno())

        async def session() -> tuple[str, State, State, bool, int]:
            link = LauncherLink.from_url(cable.info["b"], timeout_s=1.0)
            try:
                safe = (await link.connect()).state
                ident = str(await link.identify())
                armed = (await link.arm()).state
                fired = await link.fire(7, math.radians(45.0), math.radians(5.0), 12_000.0, 20.0)
                status = await link.read_status()
            finally:
                link.close()
            return ident, safe, armed, fired.accepted, status.launch_count

        ident, safe, armed, accepted, launches = asyncio.run(session())
        seen: list[Launch] = []
        deadline = time.monotonic() + 5.0
        while not seen and time.monotonic() < deadline:
            seen = events.poll()
            time.sleep(0.01)
    finally:
        board.stop()
        cable.stop()
    assert ident.split(";")[0] == "hil-launcher-rpi"
    assert (safe, armed, accepted, launches) == (State.SAFE, State.ARMED, True, 1)
    assert [(launch.track, launch.range_m) for launch in seen] == [(7, 12_000)]
