"""Build the Cython kernels in ext/ as hil.ext.* (every .pyx there is one extension)."""


import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False},
    )
)
