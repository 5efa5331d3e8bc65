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
