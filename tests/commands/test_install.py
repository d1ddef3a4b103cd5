"""A wheel installs and runs like a real package: from an empty folder, nothing of the checkout around it.

Once per session (a module fixture; the Cython build takes a minute or a few): the working tree's files are copied
out of the checkout and `pip wheel` builds them, without build isolation when this environment has Cython, numpy
and a setuptools that makes wheels (the test extra installs them: no download). The wheel goes into a fresh
virtualenv made with --system-site-packages and --without-pip: its dependencies come from this environment (again
no download) and no older setuptools of the venv's own shadows them; pip installs into it with `pip --python`.
Then a new user's session: `hil run`, `hil rig check --rig simavr`, `hil firmware build`, `hil track --truth` and
`hil bench --kernels`, each from an empty folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO, require_tool

# the wheel's build is most of the module's time: a few minutes on two busy cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@dataclass(frozen=True)
class Installed:
    source: Path  # the copy the wheel was built from
    wheel: Path
    env: Path  # the virtualenv
    package: Path  # hil in the virtualenv's site-packages
    cache: Path  # XDG_CACHE_HOME of the commands run here

    def hil(self, cwd: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The installed `hil` command, as a user in `cwd` runs it."""
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
        base.update(PATH=f"{self.env / 'bin'}{os.pathsep}{base.get('PATH', '')}", VIRTUAL_ENV=str(self.env),
                    XDG_CACHE_HOME=str(self.cache), **(env or {}))
        return subprocess.run([str(self.env / "bin" / "hil"), *args], cwd=cwd, env=base, capture_output=True,
                              text=True, timeout=timeout)


def _working_tree() -> list[str]:
    """The checkout's files as a commit would see them now: tracked and new, nothing git ignores (no builds)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("building the wheel needs the git checkout (to know which files are the project's)")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True,
                         check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _isolation() -> list[str]:
    """--no-build-isolation when this environment has what the build needs (no download); else pip's isolated build
    environment, fetched from the index."""
    need = ("Cython", "numpy", "setuptools")
    wheel = importlib.util.find_spec("wheel") or importlib.util.find_spec("setuptools.command.bdist_wheel")
    return ["--no-build-isolation"] if wheel and all(importlib.util.find_spec(m) for m in need) else []


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    for name in _working_tree():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    # a repository of its own, so the wheel's firmware has a commit to report (as one built from the checkout does)
    git = ["git", "-C", str(source), "-c", "user.name=hil", "-c", "user.email=hil@localhost"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the working tree"]):
        subprocess.run([*git, *step], check=True, capture_output=True, timeout=120)
    wheels = root / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", *_isolation(), "-q",
                            "-w", str(wheels)], capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("hil-*.whl")
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env)], check=True,
                   timeout=120)
    # --no-index: every dependency must already be there (this environment's), nothing is fetched
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (package,) = (env / "lib").glob("python3*/site-packages/hil")
    return Installed(source, wheel, env, package, root / "cache")


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "new-user"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def run_folder(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hil run --time virtual --duration 10` from an empty folder: the run folder it makes there."""
    here = tmp_path_factory.mktemp("first-run")
    r = installed.hil(here, "run", "--time", "virtual", "--duration", "10", "--quiet")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (run,) = (here / "runs").iterdir()
    assert f"run folder: runs/{run.name}" in r.stdout
    return run


def test_the_wheel_carries_rigs_scenarios_firmware_sources_and_benchmarks(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for shipped in ("rigs/mock.toml", "rigs/simavr.toml", "scenarios/raid.toml", "scenarios/safety/escorts.toml",
                    "firmware_stubs/arduino/Makefile", "firmware_stubs/arduino/radar/radar.c",
                    "firmware_stubs/common/hil_registers.h", "firmware_stubs/sim/hil_simavr.c",
                    "firmware_stubs/rpi/launcher.py", "tests/conftest.py", "tests/bench/bench_tracker.py"):
        assert f"hil/data/{shipped}" in names
    data = [n for n in names if n.startswith("hil/data/")]
    # sources only: no build output of the checkout, no test suite beyond the benchmarks
    assert not [n for n in data if n.endswith((".elf", ".hex", ".o", "hil-simavr", "test_host")) or "/build/" in n]
    assert not [n for n in data if "/tests/test_" in n]


def test_the_sdist_carries_what_the_wheel_ships(installed: Installed, tmp_path: Path) -> None:
    """A wheel built from the sdist (as pip does from PyPI) ships the same files."""
    r = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=installed.source,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (sdist,) = tmp_path.glob("hil-*.tar.gz")
    import tarfile

    with tarfile.open(sdist) as tar:
        inside = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    shipped = {n.removeprefix("hil/data/") for n in zipfile.ZipFile(installed.wheel).namelist()
               if n.startswith("hil/data/")} - {"firmware_stubs/BUILD_ID"}
    assert shipped <= inside, sorted(shipped - inside)
    assert {"ext/tracker.pyx", "setup.py", "pyproject.toml"} <= inside


def test_hil_runs_from_the_installed_package(installed: Installed, empty: Path) -> None:
    r = subprocess.run([str(installed.env / "bin" / "python"), "-c",
                        "import hil, hil.shipped as s; print(hil.__file__); print(s.data_root())"],
                       cwd=empty, capture_output=True, text=True, timeout=60)
    module, data = r.stdout.split()
    assert Path(module).parent == installed.package and Path(data) == installed.package / "data"


def test_run_from_an_empty_folder(run_folder: Path) -> None:
    for name in ("summary.json", "plots.csv", "sensors.toml", "truth.csv", "scenario.toml", "report.html"):
        assert (run_folder / name).is_file(), name


def test_track_on_the_run_folder_it_just_made(installed: Installed, run_folder: Path) -> None:
    r = installed.hil(run_folder.parent.parent, "track", "--plots", str(run_folder / "plots.csv"), "--sensors",
                      str(run_folder / "sensors.toml"), "--truth", str(run_folder / "truth.csv"))
    assert r.returncode == 0, r.stderr
    assert "GOSPA" in r.stdout and "identity switches" in r.stdout


def test_rig_check_of_the_simavr_rig_by_name(installed: Installed, empty: Path) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    before = _files(installed.package)
    r = installed.hil(empty, "rig", "check", "--rig", "simavr")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "0 failed" in r.stdout
    assert _files(installed.package) == before  # firmware and harness built in the cache, not in site-packages
    assert list(empty.iterdir()) == []


def test_firmware_build_goes_to_the_user_cache(installed: Installed, empty: Path) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    before = _files(installed.package)
    r = installed.hil(empty, "firmware", "build")
    assert r.returncode == 0, r.stderr
    firmware = installed.cache / "hil" / "firmware"
    for target in ("radar", "launcher"):
        (elf,) = firmware.glob(f"*/{target}/hil-{target}.elf")
        assert f"{elf}  hil-{target}.elf: flash" in r.stdout
    assert _files(installed.package) == before
    assert list(empty.iterdir()) == []
    commit = subprocess.run(["git", "-C", str(installed.source), "rev-parse", "--short=7", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert commit.encode() in elf.read_bytes()  # the build id the board reports: the commit the wheel came from
    out = installed.hil(empty, "firmware", "build", "radar", "--out", "fw")
    assert out.returncode == 0, out.stderr
    assert (empty / "fw" / "radar" / "hil-radar.elf").is_file()


def test_kernel_benchmarks_from_the_wheel(installed: Installed, empty: Path) -> None:
    # every benchmark file is collected (their imports of tests.helpers and tests.conftest must resolve in the
    # package); the decoding ones run, briefly
    r = installed.hil(empty, "bench", "--kernels", "--out", "kernels.json",
                      env={"PYTEST_ADDOPTS": "-k decode --benchmark-max-time=0.02 --benchmark-min-rounds=2"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "tests/bench/bench_decode.py::test_decode_1000_plots[cython]" in r.stdout
    assert (empty / "kernels.json").is_file()
    assert not list(installed.package.rglob("*-pytest-*.pyc"))  # pytest left nothing in site-packages
