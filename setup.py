"""Build the Cython kernels into the ``rnnfast`` package.

Environment switches:
  RNNFAST_NO_OPENMP=1   build without OpenMP (serial kernels), even if the compiler has it
  RNNFAST_DEBUG=1       Cython bounds/wraparound/initialized checks on, -O0 -g (for tests and sanitizers)
  RNNFAST_SANITIZE=1    add -fsanitize=address,undefined (implies RNNFAST_DEBUG)
  RNNFAST_NO_SIMD=1     skip the AVX2+FMA twins of the kernels (baseline x86-64 only)

On x86-64 (gcc or clang) the compute kernels are built three times: a baseline
module that runs on any x86-64 CPU (SSE2), an ``*_avx2`` twin compiled with
-march=x86-64-v3 (AVX2, FMA) and an ``*_avx512`` twin compiled with -march=x86-64-v4
(AVX-512 F/BW/CD/DQ/VL, 512-bit vectors).  ``rnnfast._core.dispatch`` picks the
widest twin the CPU runs at import time (the gate arithmetic is 8 or 16 lanes wide
instead of 4).  Other machines (aarch64, MSVC) build the baseline only.

Compilers: gcc and clang (``-fopenmp``; Apple's clang through
``-Xpreprocessor -fopenmp -lomp`` with Homebrew's libomp, see
``[tool.cibuildwheel.macos]``) and MSVC (``/openmp``).
"""
import os
import platform
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# Compiled modules, rnnfast._core.<name> from src/<name>.pyx: the cell driver (kernels), the layout passes,
# the kernels' inline maths exposed for tests (mathfuncs), the GEMM timer of the benchmarks, the training
# step's element-wise passes (training), the build facts.
KERNELS = ["kernels", "mathfuncs", "blasbench", "layout", "training", "config"]
# Modules whose arithmetic gains from wider SIMD; each gets an ``_avx2`` twin.
SIMD_KERNELS = ["kernels", "mathfuncs", "training", "layout"]
SIMD_FLAGS = ["-march=x86-64-v3"]
SIMD_SUFFIX = "_avx2"
# The AVX-512 twin: the gate maths (sigmoid, tanh, exp) 16 lanes wide, faster even where a core splits a 512-bit
# operation in two (Zen 4): half the instructions, and faster divisions (bench/RESULTS.md).  The same C code
# makes the same operations on each element, so the same bits as the AVX2 twin (tests/test_dispatch.py).
AVX512_FLAGS = ["-march=x86-64-v4", "-mprefer-vector-width=512"]
AVX512_SUFFIX = "_avx512"
TWINS = ((SIMD_SUFFIX, SIMD_FLAGS, "x86-64-v3"), (AVX512_SUFFIX, AVX512_FLAGS, "x86-64-v4"))

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


# (compile flags, link flags) that turn OpenMP on, tried in order.
OPENMP_FLAGS = {
    "msvc": [(["/openmp"], [])],
    # gcc, clang; then Apple's clang, whose driver knows no -fopenmp (libomp from Homebrew or conda).
    "unix": [(["-fopenmp"], ["-fopenmp"]), (["-Xpreprocessor", "-fopenmp"], ["-lomp"])],
}


def _openmp_flags(compiler):
    """The first (compile, link) flag pair of ``OPENMP_FLAGS`` that compiles and links a tiny OpenMP
    program, or None: the kernels are then built serial."""
    if os.environ.get("RNNFAST_NO_OPENMP") == "1":
        return None
    for cflags, lflags in OPENMP_FLAGS.get(compiler.compiler_type, OPENMP_FLAGS["unix"]):
        if _links_openmp_probe(compiler, cflags, lflags):
            return cflags, lflags
    return None


def _links_openmp_probe(compiler, cflags, lflags) -> bool:
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
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(cflags))
            compiler.link_executable(objs, os.path.join(tmp, "omp_probe"), extra_postargs=list(lflags))
        except Exception:  # any compile/link failure means: not with these flags
            return False
    return True


def _compile_flags(compiler_type: str):
    """(compile, link) flags for every module, by compiler family."""
    if compiler_type == "msvc":
        return (["/Od", "/Zi"] if DEBUG else ["/O2"]), []
    if DEBUG:
        cflags = ["-O0", "-g", "-fno-omit-frame-pointer"]
    else:
        # No -ffast-math: the kernels must keep IEEE inf/NaN semantics.
        cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    lflags = []
    if SANITIZE:
        cflags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
        lflags += ["-fsanitize=address,undefined"]
    return cflags, lflags


class BuildExt(build_ext):
    """Compiler-specific flags, OpenMP only where the toolchain really has it, the AVX2 and AVX-512 twins
    only where the compiler takes their -march, and all cores for the build unless -j says otherwise."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        kind = self.compiler.compiler_type
        cflags, lflags = _compile_flags(kind)
        cflags = cflags + os.environ.get("RNNFAST_CFLAGS", "").split()
        openmp = _openmp_flags(self.compiler)
        mode = f"on ({' '.join(openmp[0])})" if openmp else "off (serial kernels)"
        print(f"rnnfast: OpenMP {mode}", file=sys.stderr)
        if kind != "msvc":
            # The gate loops read/write several arrays through pointers: let gcc
            # emit enough runtime alias checks to vectorize them (default is 10).
            alias = ["--param", "vect-max-version-for-alias-checks=64"]
            cflags += alias if _compiler_accepts(self.compiler, alias) else []
        for suffix, flags, arch in TWINS:
            if any(ext.name.endswith(suffix) for ext in self.extensions) and (
                kind == "msvc" or not _compiler_accepts(self.compiler, flags)
            ):
                print(f"rnnfast: compiler lacks -march={arch}; no {suffix[1:]} kernels", file=sys.stderr)
                self.extensions = [ext for ext in self.extensions if not ext.name.endswith(suffix)]
        for ext in self.extensions:
            # module-specific flags (the twins' -march) come last, after the common ones
            ext.extra_compile_args[:0] = cflags + (openmp[0] if openmp else [])
            ext.extra_link_args[:0] = lflags + (openmp[1] if openmp else [])
        super().build_extensions()


def _extensions():
    def extension(name, suffix="", flags=()):
        module = f"rnnfast._core.{name}"
        return Extension(
            module + suffix,
            [f"src/{name}.pyx"],
            include_dirs=[np.get_include(), "src"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=list(flags),
            extra_link_args=[],
        )

    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": True,
        "embedsignature": True,
    }
    exts = cythonize([extension(name) for name in KERNELS], compiler_directives=directives, include_path=["src"])
    if _want_simd_twins():
        for suffix, flags, _ in TWINS:
            # Same sources, other module names: Cython must write their C files elsewhere.
            twins = [extension(name, suffix, flags) for name in SIMD_KERNELS]
            exts += cythonize(twins, compiler_directives=directives, include_path=["src"],
                              build_dir=os.path.join("build", "cython" + suffix))
    return exts


def _want_simd_twins(machine=None, os_name=None, environ=None) -> bool:
    """The AVX2 and AVX-512 twins are for x86-64 with gcc or clang (POSIX); aarch64, other machines and
    MSVC build the baseline kernels only.  (Arguments: for the test of this decision.)"""
    machine = (platform.machine() if machine is None else machine).lower()
    os_name = os.name if os_name is None else os_name
    environ = os.environ if environ is None else environ
    return environ.get("RNNFAST_NO_SIMD") != "1" and machine in ("x86_64", "amd64") and os_name == "posix"


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import it to check the decisions
    setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
