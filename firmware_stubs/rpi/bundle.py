"""Copy the board side of hil into a folder a Raspberry Pi runs as it is: `python3 bundle.py DIR`.

DIR gets radar.py and launcher.py (the Pi's two boards) beside a `hil` package holding only what they import:
the emulators, the wire formats they speak (framing, ASTERIX, Modbus RTU, the register map, clock sync) and
hil's errors, geometry, units and process helpers. On the Pi that needs Python 3.11+, numpy, pyserial and
pymodbus and nothing else (README.md in this folder says how to install them and run the boards).

Before copying, every board-side module's imports (at any depth, in functions too) are checked: a module of
hil outside BOARD_MODULES, or a third-party package other than numpy, pyserial and pymodbus, stops the bundle
with the name of the module that asked for it. `python3 bundle.py --list` checks and lists without copying.

DIR must be new, empty, or a bundle made before (which is replaced).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ENTRY_SCRIPTS = ("radar.py", "launcher.py")
MANIFEST = "hil-board.json"
# where a package's sources sit in the checkout (pyproject's package-dir: hil.drivers is the drivers/ folder)
PACKAGE_DIRS = {"hil": REPO / "hil", "hil.drivers": REPO / "drivers", "hil.emulators": REPO / "hil" / "emulators"}
# the modules of hil a board may import; every module of hil.emulators is board side as well
BOARD_MODULES = frozenset({
    "hil", "hil.errors", "hil.geo", "hil.units", "hil.procutil",
    "hil.drivers", "hil.drivers.asterix", "hil.drivers.framing", "hil.drivers.modbus_rtu", "hil.drivers.registers",
    "hil.drivers.timesync",
    "hil.emulators",
})
# import name -> the package a Pi installs for it
THIRD_PARTY = {"numpy": "numpy", "serial": "pyserial", "pymodbus": "pymodbus"}


class BoundaryError(Exception):
    """A board-side module imports something a board does not have."""


def source_of(module: str) -> Path | None:
    """The checkout's source file of a hil module (a package's __init__.py), or None if there is none."""
    package = max((p for p in PACKAGE_DIRS if module == p or module.startswith(p + ".")), key=len, default=None)
    if package is None:
        return None
    base = PACKAGE_DIRS[package].joinpath(*module[len(package):].split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def emulator_modules() -> list[str]:
    return sorted(f"hil.emulators.{p.stem}" for p in PACKAGE_DIRS["hil.emulators"].glob("*.py")
                  if p.stem != "__init__")


def allowed(module: str) -> bool:
    return module in BOARD_MODULES or module.startswith("hil.emulators.")


def imports_of(path: Path, module: str) -> list[str]:
    """Every module path's code imports, wherever the import statement is; `from M import n` names M.n too when
    that is a module of hil."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importing module's package
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append(name)
            if name.split(".")[0] == "hil":
                out += [f"{name}.{alias.name}" for alias in node.names if source_of(f"{name}.{alias.name}")]
    return out


def board_side() -> dict[str, Path]:
    """The hil modules the entry scripts and the emulators need, with their sources; BoundaryError if any of them
    imports what a board does not have."""
    found: dict[str, Path] = {}
    todo: list[tuple[str, Path]] = [(f"entry script {name}", HERE / name) for name in ENTRY_SCRIPTS]

    def need(name: str, importer: str) -> None:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            sub = ".".join(parts[:depth])
            if not allowed(sub):
                raise BoundaryError(f"{importer} imports {name}: {sub} is not part of the board side")
            source = source_of(sub)
            if source is None:
                raise BoundaryError(f"{importer} imports {name}: no source for {sub} in {REPO}")
            if sub not in found:
                found[sub] = source
                todo.append((sub, source))

    for module in emulator_modules():
        need(module, "the board side")
    while todo:
        importer, path = todo.pop()
        module = importer if importer.startswith("hil") else "__main__"
        for name in imports_of(path, module):
            top = name.split(".")[0]
            if top == "hil":
                need(name, importer)
            elif top not in sys.stdlib_module_names and top != "__future__" and top not in THIRD_PARTY:
                raise BoundaryError(f"{importer} imports {name}, which a board does not install "
                                    f"(it has {', '.join(sorted(set(THIRD_PARTY.values())))} only)")
    return dict(sorted(found.items()))


def target_of(module: str) -> Path:
    """Where a module goes in the bundle: an ordinary package tree under DIR."""
    parts = module.split(".")
    source = source_of(module)
    assert source is not None
    return Path(*parts, "__init__.py") if source.name == "__init__.py" else Path(*parts[:-1], parts[-1] + ".py")


def checkout_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty=+"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def make_bundle(dest: Path) -> list[Path]:
    """Write the bundle into dest; returns the files written, relative to dest."""
    modules = board_side()
    if dest.exists() and any(dest.iterdir()):
        if not (dest / MANIFEST).is_file():
            raise FileExistsError(f"{dest} is not empty and holds no earlier bundle ({MANIFEST}): not touching it")
        shutil.rmtree(dest / "hil", ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for module, source in modules.items():
        target = target_of(module)
        (dest / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / target)
        written.append(target)
    for name in (*ENTRY_SCRIPTS, "README.md"):
        shutil.copyfile(HERE / name, dest / name)
        written.append(Path(name))
    manifest = {"commit": checkout_commit(), "python": ">=3.11", "needs": sorted(set(THIRD_PARTY.values())),
                "files": [str(p) for p in written]}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return [*written, Path(MANIFEST)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bundle.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, help="folder to write the bundle into")
    parser.add_argument("--list", action="store_true", help="check the board side and list its modules only")
    args = parser.parse_args(argv)
    if not args.list and args.dir is None:
        parser.error("give a folder to write the bundle into, or --list")
    try:
        if args.list:
            for module, source in board_side().items():
                print(f"{module}\t{source.relative_to(REPO)}")
            return 0
        files = make_bundle(args.dir)
    except (BoundaryError, FileExistsError) as e:
        print(f"bundle.py: {e}", file=sys.stderr)
        return 1
    print(f"{len(files)} files in {args.dir}: copy it to the Pi (scp -r {args.dir} pi:) and see README.md there")
    return 0


if __name__ == "__main__":
    sys.exit(main())
