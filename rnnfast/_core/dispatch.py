"""Which build of a compiled kernel module this process uses.

On x86-64 each compute module exists twice (see ``setup.py``): ``kernels``
(baseline x86-64, runs anywhere) and ``kernels_avx2`` (AVX2 + FMA).  The twin
is used when it was built and the CPU has those instructions;
``RNNFAST_ISA=baseline`` forces the baseline (to compare or to test both).
Both compute the same function; FMA contraction can change the last bits,
so results are bitwise reproducible per machine, not across ISAs.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from . import config

ENV_VAR = "RNNFAST_ISA"
CHOICES = ("auto", "baseline", "avx2")


def requested_isa() -> str:
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV_VAR}={value!r}; expected one of {', '.join(CHOICES)}")
    return value


def avx2_available() -> bool:
    """True if the AVX2 twins were built and this CPU can run them."""
    try:
        importlib.import_module("rnnfast._core.kernels_avx2")
    except ImportError:
        return False
    return config.cpu_has_avx2_fma()


def active_isa() -> str:
    """``"avx2"`` or ``"baseline"``: the kernels this process runs."""
    wanted = requested_isa()
    if wanted == "baseline":
        return "baseline"
    if avx2_available():
        return "avx2"
    if wanted == "avx2":
        raise ImportError(f"{ENV_VAR}=avx2, but the AVX2 kernels were not built or this CPU lacks AVX2/FMA")
    return "baseline"


def kernel_module(name: str) -> ModuleType:
    """The compiled module ``rnnfast._core.<name>`` in the active ISA's build."""
    suffix = "_avx2" if active_isa() == "avx2" else ""
    return importlib.import_module(f"rnnfast._core.{name}{suffix}")
