"""Build the Cython kernels in ext/ as hil.ext.* (every .pyx there is one extension)."""


import os
import shutil
import subprocess
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# What hil reads at run time from the top of the checkout (hil/shipped.py finds it there): a wheel carries it in
# hil/data/ in the same layout. Rigs and scenarios by name, the firmware sources `hil firmware build` compiles, and
# the kernel benchmarks `hil bench --kernels` runs, with the tests package their files import from.
SHIPPED = (
    "rigs/*.toml", "scenarios/*.toml", "scenarios/*/*.toml",
    "firmware_stubs/arduino/Makefile", "firmware_stubs/arduino/*/*.c", "firmware_stubs/arduino/*/*.h",
    "firmware_stubs/common/*.h", "firmware_stubs/sim/Makefile", "firmware_stubs/sim/*.c", "firmware_stubs/rpi/*.py",
    "tests/__init__.py", "tests/conftest.py", "tests/helpers.py", "tests/bench/*.py",
)


def _build_id() -> str:
    """The commit a wheel is built from ("+" when the firmware sources differ from it), "" outside a git checkout:
    the build id the installed package's firmware reports."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "firmware_stubs"], capture_output=True,
                               text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


class BuildPyWithData(build_py):
    """build_py, then the SHIPPED files into hil/data/ (not for an editable install: it reads the checkout)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        data = Path(self.build_lib, "hil", "data")
        shutil.rmtree(data, ignore_errors=True)  # a file gone from the checkout leaves no stale copy in the wheel
        for pattern in SHIPPED:
            for source in sorted(Path().glob(pattern)):
                self.mkpath(str((data / source).parent))
                self.copy_file(str(source), str(data / source))
        build_id = _build_id()
        if build_id:
            (data / "firmware_stubs" / "BUILD_ID").write_text(build_id + "\n")

# Cython finds a kernel's .pxd under its full module name (hil/ext/<stem>.pxd), but ext/ only becomes
# hil/ext at install time: give the compiler that view of ext/ through a symlink in build/.
PXD_ROOT = Path("build/pxd")
(PXD_ROOT / "hil").mkdir(parents=True, exist_ok=True)
if not (PXD_ROOT / "hil" / "ext").exists():
    (PXD_ROOT / "hil" / "ext").symlink_to(Path("../../../ext"), target_is_directory=True)

extensions = [
    Extension(
        f"hil.ext.{pyx.stem}",
        [str(pyx)],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-fno-math-errno"],
    )
    for pyx in sorted(Path("ext").glob("*.pyx"))
    # HIL_EXT=tracker,decode builds only those kernels (handy while another one is being edited)
    if not os.environ.get("HIL_EXT") or pyx.stem in os.environ["HIL_EXT"].split(",")
]

setup(
    cmdclass={"build_py": BuildPyWithData},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=[str(PXD_ROOT)],
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False},
    )
)
