"""The floors of the house: the kernels (ext/) and the drivers (drivers/) import nothing of hil above them, the
board side (hil/emulators/) runs on a Pi with pyserial, pymodbus and numpy only, and the ground floor (errors,
geo, units, process helpers) stands on the standard library and numpy.

A plain reading of every import statement (ast for Python and stubs, the import lines of Cython sources), so
a violation is named by file, line and import before anything is run; then the same promise checked at run
time, by importing the kernels and the drivers in a fresh interpreter and looking at what came with them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

GROUND_FLOOR = ("hil.errors", "hil.geo", "hil.units", "hil.procutil")
BELOW_ORCHESTRATION = ("hil.ext", "hil.drivers", "hil.errors", "hil.geo", "hil.units")


@dataclass(frozen=True)
class Rule:
    """What the files of one floor may import."""

    name: str
    files: tuple[str, ...]  # globs under the repository
    package: str  # the import name of the folder the globs start in (for relative imports)
    hil: tuple[str, ...]  # hil modules (and their submodules) it may import
    third_party: frozenset[str] | None = None  # None: any; else only these beside the standard library


RULES = (
    Rule("kernels", ("ext/**/*.py", "ext/**/*.pyi", "ext/**/*.pyx", "ext/**/*.pxd"), "hil.ext", BELOW_ORCHESTRATION),
    Rule("drivers", ("drivers/**/*.py", "drivers/**/*.pyi"), "hil.drivers", BELOW_ORCHESTRATION),
    Rule("board side", ("hil/emulators/**/*.py",), "hil.emulators",
         ("hil.drivers", "hil.errors", "hil.geo", "hil.units", "hil.procutil", "hil.emulators"),
         frozenset({"numpy", "serial", "pymodbus"})),
    Rule("ground floor", tuple(f"hil/{m.split('.')[1]}.py" for m in GROUND_FLOOR), "hil", GROUND_FLOOR,
         frozenset({"numpy"})),
)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str
    rule: Rule

    def __str__(self) -> str:
        allowed = ", ".join(self.rule.hil)
        if self.rule.third_party is not None:
            allowed += ", " + ", ".join(sorted(self.rule.third_party)) + " and the standard library"
        return f"{self.path}:{self.line}: imports {self.module} ({self.rule.name} may import only {allowed})"


# --- reading imports -------------------------------------------------------------------------------------


def _resolve(package: str, level: int, module: str | None) -> str:
    """The absolute name of a relative import made in a module of package."""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, module] if module else base)


def python_imports(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in Python source, including imports inside functions and
    importlib.import_module / __import__ of a literal name; `from pkg import name` yields pkg.name when pkg is a
    package a submodule may be taken from (hil itself, or a relative import)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(package, node.level, node.module) if node.level else node.module or ""
            if module == "hil" or node.level:
                for alias in node.names:
                    yield node.lineno, f"{module}.{alias.name}"
            else:
                yield node.lineno, module
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module")))):
            yield node.lineno, node.args[0].value


_TRIPLE = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
_CYTHON_FROM = re.compile(r"^\s*from\s+(\.*)([\w.]*)\s+c?import\s+\(?\s*([\w\s,*]*)")
_CYTHON_IMPORT = re.compile(r"^\s*c?import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)")


def cython_imports(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) of the import and cimport statements of Cython source (.pyx, .pxd), docstrings skipped."""
    blanked = _TRIPLE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)
    for number, line in enumerate(blanked.splitlines(), start=1):
        line = line.split("#", 1)[0]
        if m := _CYTHON_FROM.match(line):
            dots, module, names = m.groups()
            if dots:
                module = _resolve(package, len(dots), module or None)
            if module == "hil" or dots:
                for name in re.findall(r"\w+", names.split(" as ")[0] if " as " in names else names):
                    yield number, f"{module}.{name}"
            else:
                yield number, module
        elif m := _CYTHON_IMPORT.match(line):
            for part in m.group(1).split(","):
                yield number, part.split()[0]


# --- checking ----------------------------------------------------------------------------------------------


def allowed(module: str, rule: Rule) -> bool:
    top = module.split(".")[0]
    if top == "hil":
        return any(module == m or module.startswith(m + ".") for m in rule.hil)
    if rule.third_party is None:
        return True
    return top in sys.stdlib_module_names or top in rule.third_party


def check_file(path: Path, rule: Rule, root: Path = REPO) -> list[Violation]:
    """The forbidden imports of one file under rule."""
    folder = path.parent.relative_to(root)
    first = Path(rule.files[0].split("/")[0])
    sub = folder.relative_to(first).parts if folder.is_relative_to(first) else ()
    package = ".".join([rule.package, *sub])
    source = path.read_text(encoding="utf-8")
    found = cython_imports(source, package) if path.suffix in (".pyx", ".pxd") else python_imports(source, package)
    return [Violation(str(path.relative_to(root)), line, module, rule)
            for line, module in found if not allowed(module, rule)]


def check(rule: Rule, root: Path = REPO) -> list[Violation]:
    files = sorted({p for pattern in rule.files for p in root.glob(pattern) if p.is_file()})
    return [v for path in files for v in check_file(path, rule, root)]


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_each_floor_imports_only_what_is_below_it(rule: Rule) -> None:
    assert any(REPO.glob(rule.files[0])), f"no files for {rule.name}: the globs are stale"
    violations = check(rule)
    assert not violations, "\n".join(map(str, violations))


def test_the_checker_names_a_planted_import(tmp_path: Path) -> None:
    """So the floors' test can fail: imports upward, planted in every form, are each named by file and line."""
    kernels, board = RULES[0], RULES[2]
    (tmp_path / "ext" / "reference").mkdir(parents=True)
    (tmp_path / "ext" / "fine.py").write_text("import numpy\nfrom hil.errors import ConfigError\nfrom . import x\n")
    (tmp_path / "ext" / "bad.py").write_text(
        '"""from hil.scenario import Scenario: said in a docstring, not imported"""\n'
        "import numpy as np\n"
        "from hil.scenario import Scenario\n"
        "def f():\n    import hil.host.tracking\n"
        "from hil import runtime\n"
        "import importlib\nm = importlib.import_module('hil.records.replay')\n")
    (tmp_path / "ext" / "reference" / "up.py").write_text("from ...host import plots\n")
    (tmp_path / "ext" / "kernel.pyx").write_text(
        '# cython: language_level=3\n"""Docstring.\n\nfrom hil.commands import cli\n"""\n'
        "from libc.math cimport sqrt\ncimport numpy as cnp\nimport numpy as np\n"
        "from hil.host.fire_control import (\n    FireControlConfig,\n)\n"
        "from hil.ext.arrays cimport fits\n")
    (tmp_path / "hil" / "emulators").mkdir(parents=True)
    (tmp_path / "hil" / "emulators" / "board.py").write_text("import json\nimport serial\nimport scipy.stats\n"
                                                             "from hil.plant import nullmodem\n")
    found = {(v.path, v.line, v.module) for v in check(kernels, tmp_path) + check(board, tmp_path)}
    assert found == {
        ("ext/bad.py", 3, "hil.scenario"),
        ("ext/bad.py", 5, "hil.host.tracking"),
        ("ext/bad.py", 6, "hil.runtime"),
        ("ext/bad.py", 8, "hil.records.replay"),
        ("ext/reference/up.py", 1, "hil.host.plots"),
        ("ext/kernel.pyx", 9, "hil.host.fire_control"),
        ("hil/emulators/board.py", 3, "scipy.stats"),
        ("hil/emulators/board.py", 4, "hil.plant"),
    }
    message = str(next(v for v in check(kernels, tmp_path) if v.module == "hil.scenario"))
    assert message.startswith("ext/bad.py:3: imports hil.scenario (kernels may import only hil.ext, hil.drivers")


def test_the_kernels_and_drivers_load_without_orchestration() -> None:
    """Importing every kernel and driver module pulls in no orchestration module of hil, and none of the
    packages only orchestration needs (the scenario reader's pydantic, scipy, matplotlib)."""
    modules = ["hil.ext." + p.stem for p in sorted((REPO / "ext").glob("*.py*"))
               if p.suffix in (".py", ".pyx") and not p.stem.startswith("_")]
    modules += ["hil.drivers." + p.stem for p in sorted((REPO / "drivers").glob("*.py")) if p.stem != "__init__"]
    probe = ("import sys\n"
             f"for m in {sorted(set(modules))!r}:\n    __import__(m)\n"
             "print('\\n'.join(sorted(sys.modules)))\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = r.stdout.split()
    above = [m for m in loaded if m.split(".")[0] == "hil" and not any(
        m == f or m.startswith(f + ".") for f in (*BELOW_ORCHESTRATION, "hil"))]
    heavy = [m for m in loaded if m.split(".")[0] in ("pydantic", "scipy", "matplotlib")]
    heavy_packages = sorted({m.split(".")[0] for m in heavy})
    assert not above and not heavy, f"orchestration: {above}; heavy packages: {heavy_packages}"


def test_tests_share_helpers_only_through_tests_helpers() -> None:
    """No test or benchmark imports another: what two of them need lives in tests/helpers.py, so each can be
    read, run and changed alone (conftest.py is pytest's, and imported by nobody)."""
    found = [f"{path.relative_to(REPO)}:{line}: imports {module}"
             for path in sorted((REPO / "tests").rglob("*.py"))
             for line, module in python_imports(path.read_text(encoding="utf-8"), "tests")
             if module.split(".")[0] == "tests" and module != "tests.helpers"]
    assert not found, "\n".join(found) + "\n(a helper two tests share belongs in tests/helpers.py)"
