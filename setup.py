"""Build the Cython kernels in ext/ as hil.ext.* (every .pyx there is one extension)."""


import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=[str(PXD_ROOT)],
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False},
    )
)
