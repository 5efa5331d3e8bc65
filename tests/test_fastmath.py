"""The gate functions of the kernels (src/fastmath.h) keep their stated error bounds,
in every build of them this machine can run (baseline, and the AVX2+FMA and AVX-512 twins)."""
import importlib

import numpy as np
import pytest

from rnnfast._core import dispatch as _dispatch

BUILDS = (["rnnfast._core.mathfuncs"] + (["rnnfast._core.mathfuncs_avx2"] if _dispatch.avx2_available() else [])
          + (["rnnfast._core.mathfuncs_avx512"] if _dispatch.avx512_twin_available() else []))


@pytest.fixture(params=BUILDS)
def _mathfuncs(request):
    return importlib.import_module(request.param)


ULP = {np.float32: 2.0**-23, np.float64: 2.0**-52}
BOUND_ULP = 2.0  # the header states <= 2 ulp (measured <= 1.5)


def _exact(name, x):
    xl = x.astype(np.longdouble)
    return {"exp": np.exp, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "tanh": np.tanh}[name](xl)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["exp", "sigmoid", "tanh"])
def test_relative_error_bound(_mathfuncs, dtype, name):
    x = np.concatenate([
        np.linspace(-80, 80, 400_001),
        np.geomspace(1e-30, 1, 20_001),
        -np.geomspace(1e-30, 1, 20_001),
        [0.0, 0.625, -0.625, 0.6249999, 0.6250001],
    ]).astype(dtype)
    y = x.copy()
    _mathfuncs.apply(name, y)
    exact = _exact(name, x)
    rel = np.abs((y.astype(np.longdouble) - exact) / np.where(exact == 0, 1, exact))
    assert float(rel.max()) <= BOUND_ULP * ULP[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturation_is_finite_and_exact_at_the_limits(_mathfuncs, dtype):
    info = np.finfo(dtype)
    x = np.array([-np.inf, -info.max, -1e30, -1000, 1000, 1e30, info.max, np.inf], dtype=dtype)
    s, t = x.copy(), x.copy()
    _mathfuncs.apply("sigmoid", s)
    _mathfuncs.apply("tanh", t)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(t))
    np.testing.assert_array_equal(t, np.sign(x))
    assert np.all(s[4:] == 1) and np.all(s[:4] < 1e-30) and np.all(s[:4] >= 0)


def test_unknown_function_name(_mathfuncs):
    with pytest.raises(ValueError, match="name must be"):
        _mathfuncs.apply("cos", np.zeros(3))
