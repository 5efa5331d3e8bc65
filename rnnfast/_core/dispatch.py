"""Which build of a compiled kernel module this process uses.

On x86-64 each compute module exists twice (see ``setup.py``): ``kernels``
(baseline x86-64, runs anywhere) and ``kernels_avx2`` (AVX2 + FMA).  The twin
is used when it was built and the CPU has those instructions.  Inside the twin,
on a CPU with AVX-512, the packed micro-kernel takes its panels two at a time in
512-bit registers (``avx512``): the same sums in the same order, so the same
bits as ``avx2``, at up to twice the flops per cycle where a core has two 512-bit
FMA units.  ``RNNFAST_ISA`` forces a choice: ``baseline``, ``avx2`` (the twin
with 256-bit micro-kernel) or ``avx512``.  Every build computes the same
function; FMA contraction can change the last bits between the baseline and the
twin, so results are bitwise reproducible per machine, not across those two.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from . import config

ENV_VAR = "RNNFAST_ISA"
CHOICES = ("auto", "baseline", "avx2", "avx512")


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


def avx512_available() -> bool:
    """True if the AVX2 twins were built with the micro-kernel and this CPU has AVX-512 for its wide form."""
    if not (avx2_available() and config.cpu_has_avx512f()):
        return False
    return bool(importlib.import_module("rnnfast._core.kernels_avx2").CONSTANTS["microkernel"])


def active_isa() -> str:
    """``"avx512"``, ``"avx2"`` or ``"baseline"``: the kernels this process runs."""
    wanted = requested_isa()
    if wanted == "baseline":
        return "baseline"
    if wanted in ("auto", "avx512") and avx512_available():
        return "avx512"
    if wanted == "avx512":
        raise ImportError(f"{ENV_VAR}=avx512, but the AVX2 kernels were not built or this CPU lacks AVX-512")
    if avx2_available():
        return "avx2"
    if wanted == "avx2":
        raise ImportError(f"{ENV_VAR}=avx2, but the AVX2 kernels were not built or this CPU lacks AVX2/FMA")
    return "baseline"


def kernel_module(name: str) -> ModuleType:
    """The compiled module ``rnnfast._core.<name>`` in the active ISA's build (for ``kernels``, with its
    micro-kernel's width set to match: each module that runs the micro-kernel has its own switch)."""
    isa = active_isa()
    module = importlib.import_module(f"rnnfast._core.{name}{'' if isa == 'baseline' else '_avx2'}")
    if hasattr(module, "use_wide_microkernel"):
        module.use_wide_microkernel(isa == "avx512")
    return module
