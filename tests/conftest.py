import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/cells.py

from hypothesis import settings  # noqa: E402

# CI runs a quick hypothesis profile; HYPOTHESIS_PROFILE=release runs the long one.
settings.register_profile("ci", max_examples=40, deadline=None)
settings.register_profile("release", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def small_matrix_blas(monkeypatch):
    """The plan's rules beside OpenBLAS's small-matrix kernels (SkylakeX-class cores), whatever this CPU's
    OpenBLAS runs: the tests of those rules use it (``test_microkernel_steps.py`` checks the other world)."""
    import rnnfast._core.plan as plan_module
    monkeypatch.setattr(plan_module, "blas_has_small_matrix_path", lambda: True)
    plan_module._chosen.cache_clear()  # plans are kept per shape
    yield
    plan_module._chosen.cache_clear()
