"""Build the Cython kernels into the ``rnnfast`` package.

Environment switches:
  RNNFAST_NO_OPENMP=1   build without OpenMP (serial kernels), even if the compiler has it
  RNNFAST_DEBUG=1       Cython bounds/wraparound/initialized checks on, -O0 -g (for tests and sanitizers)
  RNNFAST_SANITIZE=1    add -fsanitize=address,undefined (implies RNNFAST_DEBUG)
"""
import os
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNELS = ["lstm", "gru", "rnn", "mathfuncs", "blasbench", "_config"]

DEBUG = os.environ.get("RNNFAST_DEBUG") == "1" or os.environ.get("RNNFAST_SANITIZE") == "1"
SANITIZE = os.environ.get("RNNFAST_SANITIZE") == "1"


def _compiler_accepts(compiler, flags) -> bool:
    """Compile an empty C file with ``flags``; True if the compiler takes them."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("int rnnfast_probe(void) { return 0; }\n")
        try:
            compiler.compile([src], output_dir=tmp, extra_postargs=list(flags) + ["-Werror"])
        except Exception:
            return False
    return True


def _compiler_has_openmp(compiler) -> bool:
    """Compile and link a tiny OpenMP program; True if the toolchain supports -fopenmp."""
    if os.environ.get("RNNFAST_NO_OPENMP") == "1":
        return False
    code = textwrap.dedent(
        """
        #include <omp.h>
        int main(void) { int n = 0;
        #pragma omp parallel reduction(+:n)
          n += 1;
          return omp_get_max_threads() > 0 && n > 0 ? 0 : 1; }
        """
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write(code)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, os.path.join(tmp, "omp_probe"), extra_postargs=["-fopenmp"])
        except Exception:  # any compile/link failure means: no OpenMP
            return False
    return True


class BuildExt(build_ext):
    """Add OpenMP flags only when the compiler really supports them."""

    def build_extensions(self):
        openmp = _compiler_has_openmp(self.compiler)
        mode = "on" if openmp else "off (serial kernels)"
        print(f"rnnfast: OpenMP {mode}", file=sys.stderr)
        # The gate loops read/write several arrays through pointers: let gcc
        # emit enough runtime alias checks to vectorize them (default is 10).
        alias = ["--param", "vect-max-version-for-alias-checks=64"]
        extra = alias if _compiler_accepts(self.compiler, alias) else []
        for ext in self.extensions:
            ext.extra_compile_args.extend(extra)
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
        super().build_extensions()


def _extensions():
    if DEBUG:
        cflags = ["-O0", "-g", "-fno-omit-frame-pointer"]
    else:
        # No -ffast-math: the kernels must keep IEEE inf/NaN semantics.
        cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math"] + os.environ.get("RNNFAST_CFLAGS", "").split()
    lflags = []
    if SANITIZE:
        cflags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        lflags += ["-fsanitize=address,undefined"]
    exts = [
        Extension(
            f"rnnfast._{name.lstrip('_')}" if not name.startswith("_") else f"rnnfast.{name}",
            [f"src/{name}.pyx"],
            include_dirs=[np.get_include(), "src"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=list(cflags),
            extra_link_args=list(lflags),
        )
        for name in KERNELS
    ]
    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": True,
        "embedsignature": True,
    }
    return cythonize(exts, compiler_directives=directives, include_path=["src"])


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
