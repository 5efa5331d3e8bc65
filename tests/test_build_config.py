"""Decisions setup.py takes for machines CI cannot run: which builds get the AVX2 twins, and which flags
turn OpenMP on for each compiler family.  setup.py is loaded without running setup()."""
import pathlib
import runpy
import sys
import types

import pytest

SETUP = pathlib.Path(__file__).resolve().parents[1] / "setup.py"


@pytest.fixture(scope="module")
def setup_py():
    if not SETUP.exists():
        pytest.skip("setup.py is not beside the tests (an installed wheel's tests)")
    pytest.importorskip("setuptools")
    fakes = {}
    try:
        import Cython.Build  # noqa: F401
    except ImportError:  # the test environment need not have the build tools
        fakes["Cython"] = types.ModuleType("Cython")
        fakes["Cython.Build"] = types.SimpleNamespace(cythonize=lambda *a, **k: [])
    saved = {k: sys.modules.get(k) for k in fakes}
    sys.modules.update(fakes)
    try:
        return runpy.run_path(str(SETUP), run_name="rnnfast_setup")  # not __main__: setup() is not called
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@pytest.mark.parametrize("machine, os_name, env, twins", [
    ("x86_64", "posix", {}, True),
    ("AMD64", "posix", {}, True),
    ("x86_64", "posix", {"RNNFAST_NO_SIMD": "1"}, False),
    ("aarch64", "posix", {}, False),  # Linux on ARM: the baseline kernels only
    ("arm64", "posix", {}, False),    # Apple silicon
    ("AMD64", "nt", {}, False),       # Windows: MSVC has no -march=x86-64-v3
    ("ppc64le", "posix", {}, False),
])
def test_avx2_twins_only_on_x86_64_posix(setup_py, machine, os_name, env, twins):
    assert setup_py["_want_simd_twins"](machine, os_name, env) is twins


def test_openmp_flags_per_compiler_family(setup_py):
    flags = setup_py["OPENMP_FLAGS"]
    assert flags["msvc"] == [(["/openmp"], [])]
    assert flags["unix"][0] == (["-fopenmp"], ["-fopenmp"])
    assert (["-Xpreprocessor", "-fopenmp"], ["-lomp"]) in flags["unix"]  # Apple's clang with libomp


def test_msvc_gets_no_gcc_flags(setup_py):
    cflags, lflags = setup_py["_compile_flags"]("msvc")
    assert all(f.startswith("/") for f in cflags) and lflags == []
    cflags, _ = setup_py["_compile_flags"]("unix")
    assert "-O3" in cflags or "-O0" in cflags


def test_two_simd_twins_each_with_its_march(setup_py):
    twins = {suffix: (flags, arch) for suffix, flags, arch in setup_py["TWINS"]}
    assert set(twins) == {"_avx2", "_avx512"}
    assert "-march=x86-64-v3" in twins["_avx2"][0] and "-march=x86-64-v4" in twins["_avx512"][0]
    assert setup_py["SIMD_KERNELS"] == ["kernels", "mathfuncs", "training", "layout"]  # dispatch imports these twins
