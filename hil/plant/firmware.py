"""Build the AVR board firmware and run it under simavr: `hil firmware build` and `hil firmware sim`.

build_firmware("radar" | "launcher") runs the firmware Makefile (avr-gcc; it fails above 75 % of the Uno's
flash or RAM) and returns the .elf. SimavrBoard(elf) runs it in the simavr harness (firmware_stubs/sim), whose
UART0 is a pty it creates and announces; start() returns that pty's path, stop() ends the harness. A launcher
board's launches reach the plant through launch_events(), the harness's watch on the board's launch discrete.

Builds go to a folder the caller names (`hil firmware build --out DIR`) or to the per-user cache,
$XDG_CACHE_HOME/hil/firmware/<source id> (default_build_dir()), never beside the sources: an installed package's
tree is not ours to write and a checkout stays clean. DIR/radar/hil-radar.elf, DIR/launcher/hil-launcher.elf (with
.hex and size.txt), DIR/sim/hil-simavr.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from hil.errors import HilError
from hil.procutil import Child
from hil.shipped import CHECKOUT, firmware_dir, is_installed, user_cache_dir

if TYPE_CHECKING:
    from hil.emulators.launcher import LaunchEvents

REPO = CHECKOUT  # the source tree's top folder (tests ask git about it)
FIRMWARE_DIR = firmware_dir()
ARDUINO_DIR = FIRMWARE_DIR / "arduino"
SIM_DIR = FIRMWARE_DIR / "sim"
# every file a build reads: their content names the cache folder, so other sources never share one
SOURCES = ("arduino/Makefile", "arduino/*/*.c", "arduino/*/*.h", "common/*.h", "sim/Makefile", "sim/*.c")
TARGETS = ("radar", "launcher")
# Debian packages behind each tool, named in every "not found" error
TOOL_PACKAGES = {"avr-gcc": "gcc-avr avr-libc", "make": "make", "cc": "gcc"}
SIMAVR_PACKAGES = "libsimavr-dev libelf-dev"
_SIZE_LINE = re.compile(r"^(?P<name>\S+): flash (?P<flash>\d+) of (?P<flash_max>\d+) bytes .*"
                        r"RAM (?P<ram>\d+) of (?P<ram_max>\d+) bytes", re.M)


@dataclass(frozen=True)
class FirmwareSize:
    """Flash and RAM a firmware image takes on the Uno, as the Makefile reports them."""

    name: str
    flash: int
    flash_max: int
    ram: int
    ram_max: int

    @property
    def flash_pct(self) -> float:
        return 100.0 * self.flash / self.flash_max

    @property
    def ram_pct(self) -> float:
        return 100.0 * self.ram / self.ram_max

    def __str__(self) -> str:
        return (f"{self.name}: flash {self.flash}/{self.flash_max} B ({self.flash_pct:.1f} %), "
                f"RAM {self.ram}/{self.ram_max} B ({self.ram_pct:.1f} %)")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise HilError(f"{tool} not found: apt-get install {TOOL_PACKAGES.get(tool, tool)}")


def source_id() -> str:
    """12 hex digits of a SHA-256 over the firmware sources (names and bytes): the cache folder's name."""
    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(FIRMWARE_DIR.glob(pattern)):
            digest.update(path.relative_to(FIRMWARE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def default_build_dir() -> Path:
    """Where builds go when no folder is named: $XDG_CACHE_HOME/hil/firmware/<source id> (~/.cache/...)."""
    return user_cache_dir() / "firmware" / source_id()


def build_dir(out: str | Path | None = None) -> Path:
    """The build folder: `out` (relative to the current folder) or the cache; made if missing."""
    folder = Path(out).resolve() if out else default_build_dir()
    if any(c.isspace() for c in str(folder)):  # make splits its variables (BUILD=...) at white space
        raise HilError(f"the build folder {str(folder)!r} has white space in its path: make cannot build there")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HilError(f"cannot make the build folder {folder}: {e.strerror or e}") from None
    return folder


def _installed_build_id() -> str | None:
    """An installed package's build id: the commit its wheel was built from (setup.py writes BUILD_ID), else its
    version. None in a checkout, where the Makefile asks git (and adds "+" after local edits)."""
    if not is_installed():
        return None
    stamp = FIRMWARE_DIR / "BUILD_ID"
    if stamp.is_file() and stamp.read_text().strip():
        return stamp.read_text().strip()
    from importlib.metadata import version

    return version("hil")


def _make(directory: Path, args: list[str], what: str, build: Path) -> str:
    """Run make under an exclusive lock on the build folder (parallel test workers share one); its stdout."""
    _need("make")
    with open(build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["make", "--no-print-directory", "-C", str(directory), *args],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise HilError(f"building {what} failed:\n" + "\n".join(tail))
    return proc.stdout


def build_firmware(target: str, build_id: str | None = None, out: str | Path | None = None) -> Path:
    """Build the radar or launcher firmware (incrementally) into `out` or the cache and return its .elf."""
    if target not in TARGETS:
        raise HilError(f"unknown firmware {target!r}: choose {' or '.join(TARGETS)}")
    build = build_dir(out)
    _need("avr-gcc")
    build_id = build_id or _installed_build_id()
    args = [f"BUILD={build}", target] + ([f"BUILD_ID={build_id}"] if build_id else [])
    _make(ARDUINO_DIR, args, f"the {target} firmware", build)
    return build / target / f"hil-{target}.elf"


def firmware_size(target: str, out: str | Path | None = None) -> FirmwareSize:
    """Flash and RAM use of the firmware (built if needed), as the Makefile measured them with avr-size."""
    elf = build_firmware(target, out=out)
    report = (elf.parent / "size.txt").read_text()
    m = _SIZE_LINE.search(report)
    if m is None:
        raise HilError(f"unreadable size report for {elf.name}: {report!r}")
    return FirmwareSize(m["name"], int(m["flash"]), int(m["flash_max"]), int(m["ram"]), int(m["ram_max"]))


def build_harness(out: str | Path | None = None) -> Path:
    """Build the simavr harness (Debian: libsimavr-dev libelf-dev) into `out`/sim or the cache; its path."""
    _need("cc")
    build = build_dir(out)
    (build / "sim").mkdir(exist_ok=True)
    # make runs in the build folder and finds the source through a vpath for it alone (VPATH would also find an
    # old ./hil-simavr beside the sources and call it up to date): the Makefile's ./hil-simavr lands there
    _make(build / "sim", ["-f", str(SIM_DIR / "Makefile"), f"--eval=vpath %.c {SIM_DIR}", "hil-simavr"],
          f"the simavr harness (it needs apt-get install {SIMAVR_PACKAGES})", build)
    return build / "sim" / "hil-simavr"


class SimavrBoard:
    """One AVR board in simavr: start() launches the harness and returns its UART's pty; stop() ends it.

    Usable as a context manager (`with SimavrBoard(elf) as board: board.pty`). The harness stops itself if this
    process dies, so no simulated board outlives a killed run.
    """

    def __init__(self, elf_path: str | Path, *, baud: int = 115200, pace: bool = True, name: str = "") -> None:
        self.elf = Path(elf_path)
        self.baud = baud
        self.pace = pace
        self.name = name or f"simavr {self.elf.stem}"
        self._child: Child | None = None
        self._launches: LaunchEvents | None = None
        self.stats = ""  # the harness's closing line: simulated vs wall time, bytes, slips

    def start(self) -> str:
        if self._child is not None:
            return self.pty
        if not self.elf.is_file():
            raise HilError(f"{self.name}: no firmware image at {self.elf}")
        argv = [str(build_harness()), "--baud", str(self.baud), *([] if self.pace else ["--no-pace"]), str(self.elf)]
        self._child = Child(argv, name=self.name)
        return self.pty

    @property
    def pty(self) -> str:
        if self._child is None:
            raise HilError(f"{self.name}: not started")
        return str(self._child.info["pty"])

    @property
    def pid(self) -> int:
        if self._child is None:
            raise HilError(f"{self.name}: not started")
        return self._child.proc.pid

    def launch_events(self) -> LaunchEvents | None:
        """The board's own launch reports: .poll() gives the launches since the last poll, each with the aim the
        fire command carried on the wire, whether or not its Modbus reply reached anyone. None when the firmware
        has no launch record for the harness to watch (the radar, a .hex): then only the link's read-back knows.
        The same object on every call (one reader of the harness's stdout)."""
        if self._child is None:
            raise HilError(f"{self.name}: not started")
        if self._launches is None and self._child.info.get("launch_feed"):
            from hil.emulators.launcher import LaunchEvents  # here: it brings asyncio, which building needs not

            assert self._child.proc.stdout is not None
            self._launches = LaunchEvents(self._child.proc.stdout.fileno())
        return self._launches

    def alive(self) -> bool:
        return self._child is not None and self._child.alive()

    def stop(self, timeout_s: float = 3.0) -> None:
        child, self._child = self._child, None
        self._launches = None
        if child is None:
            return
        proc = child.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            self.stats = proc.stderr.read().decode(errors="replace").strip()
        child.stop()

    def __enter__(self) -> SimavrBoard:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --- the command ----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="firmware_command", required=True)
    build = sub.add_parser("build", help="build the AVR firmware (avr-gcc) and print flash/RAM use")
    build.add_argument("targets", nargs="*", metavar="TARGET", help="radar, launcher (default: both)")
    build.add_argument("--harness", action="store_true", help="also build the simavr harness")
    build.add_argument("--out", default=None, metavar="DIR",
                       help="build folder (default: the per-user cache, $XDG_CACHE_HOME/hil/firmware/<source id>)")
    sim = sub.add_parser("sim", help="run a firmware under simavr with its UART on a pty (Ctrl-C stops it)")
    sim.add_argument("firmware", help="radar, launcher, or the path of an .elf/.hex")
    sim.add_argument("--baud", type=int, default=115200, help="byte pacing of the UART input (default 115200)")
    sim.add_argument("--no-pace", action="store_true", help="run simulated time as fast as it goes")


# the board a simulated firmware stands in for, in a one-board rig file (names of the shipped raid scenario)
SIM_BOARD_NAMES = {"radar": "radar-west", "launcher": "launcher-north"}


def sim_kind(firmware: str) -> str | None:
    """"radar" or "launcher" for a firmware name or an image whose file name says which; None when it does not."""
    name = Path(firmware).name
    found = [kind for kind in TARGETS if kind in name]
    return found[0] if len(found) == 1 else None


def sim_rig_text(kind: str, pty: str) -> str:
    """A rig file with the simulated board on its pty and every other board a software emulator."""
    return (f"# written by hil firmware sim: {SIM_BOARD_NAMES[kind]} is the firmware under simavr on {pty},\n"
            "# every other board of the scenario a software emulator; removed when the simulation stops\n"
            f'name = "simavr-{kind}"\n\n[defaults]\nradar_board = "mock"\nlauncher_board = "mock"\n'
            "timeout_ms = 100  # simavr paces the UART like a real 115200 wire, on a shared machine\n\n"
            f'[[{kind}]]\nname = "{SIM_BOARD_NAMES[kind]}"\nboard = "serial"\nport = "{pty}"\n')


def sim_hint(kind: str | None, pty: str, baud: int, rig_file: Path | None) -> str:
    """What `hil firmware sim` prints after the pty: which protocol the board speaks and commands that talk to it."""
    if kind == "launcher":
        lines = [f"It is a Modbus RTU slave on {pty}: device id 1, {baud} 8N1, registers in docs/PROTOCOLS.md §4.",
                 "From another terminal, read its input registers 0-9 (identity, state, rounds):",
                 f"  mbpoll -m rtu -a 1 -b {baud} -P none -t 3 -0 -r 0 -c 10 -1 {pty}"]
    elif kind == "radar":
        lines = [f"It speaks hil's serial framing on {pty}: {baud} 8N1, frames in docs/PROTOCOLS.md §1",
                 "(IDENT_REQ, TIME_SYNC_REQ, SENSOR_CONFIG and STIMULUS in; ASTERIX CAT048 plots and CAT034 sector",
                 "messages out once configured)."]
    else:
        return f"Its UART is {pty} at {baud} 8N1."
    if rig_file is not None:
        board = SIM_BOARD_NAMES[kind]
        lines += [f"Check it as hil does, as {board} with every other board emulated (rig file {rig_file}):",
                  f"  hil rig check --rig {rig_file}",
                  f"and drive the raid through it: hil run --rig {rig_file} --time real"]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.firmware_command == "build":
        for target in args.targets or TARGETS:
            elf = build_firmware(target, out=args.out)
            print(f"{elf}  {firmware_size(target, out=args.out)}")
        if args.harness:
            print(build_harness(args.out))
        return 0
    elf = build_firmware(args.firmware) if args.firmware in TARGETS else Path(args.firmware)
    board = SimavrBoard(elf, baud=args.baud, pace=not args.no_pace)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    previous = signal.signal(signal.SIGTERM, on_signal)
    kind = sim_kind(args.firmware)
    rig_file: Path | None = None
    try:
        with board:
            if kind is not None:
                with tempfile.NamedTemporaryFile("w", prefix=f"hil-sim-{kind}-", suffix=".toml",
                                                 delete=False) as f:
                    f.write(sim_rig_text(kind, board.pty))
                rig_file = Path(f.name)
            print(f"{elf.name} running under simavr on {board.pty} (pid {board.pid}); Ctrl-C stops it", flush=True)
            print(sim_hint(kind, board.pty, args.baud, rig_file), flush=True)
            while not stop and board.alive():
                time.sleep(0.2)
            crashed = not board.alive()
    except KeyboardInterrupt:
        crashed = False
    finally:
        signal.signal(signal.SIGTERM, previous)
        if rig_file is not None:
            rig_file.unlink(missing_ok=True)
    if board.stats:
        print(board.stats, file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":  # pragma: no cover - `hil firmware` is the entry point
    parser = argparse.ArgumentParser(prog="python -m hil.plant.firmware")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))

