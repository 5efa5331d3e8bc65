"""Which build of a compiled kernel module this process uses.

On x86-64 each compute module exists three times (see ``setup.py``): ``kernels``
(baseline x86-64, runs anywhere), ``kernels_avx2`` (AVX2 + FMA) and
``kernels_avx512`` (x86-64-v4: AVX-512 F/BW/CD/DQ/VL).  A twin is used when it
was built and the CPU has its instructions.  ``avx512``: the packed micro-kernel
takes its panels two at a time in 512-bit registers, at up to twice the flops per
cycle where a core has two 512-bit FMA units, and the gate maths runs 16 lanes
wide in the AVX-512 twin (where it was not built, ``avx512`` is the AVX2 twin with
the wide micro-kernel).  Each element gets the same operations in the same order,
so ``avx512`` makes the bits of ``avx2``.  ``RNNFAST_ISA`` forces a choice:
``baseline``, ``avx2`` (the AVX2 twin, 256-bit micro-kernel) or ``avx512``.
With the AVX-512 micro-kernel, the rows of A go through it in slivers of 12 on
Intel's cores (two 512-bit FMA units: 24 accumulators keep both busy) and of 6
elsewhere (Zen 4 runs 512-bit FMAs on one unit, where 12 rows were no faster);
``RNNFAST_SLIVER_ROWS`` (6 or 12) forces a height.  A row's sums are the same in
any sliver, so the height never changes a bit.
Every build computes the same function; FMA contraction can change the last bits
between the baseline and the twins, so results are bitwise reproducible per
machine, not across those.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

from . import config

ENV_VAR = "RNNFAST_ISA"
CHOICES = ("auto", "baseline", "avx2", "avx512")
SLIVER_ROWS_ENV_VAR = "RNNFAST_SLIVER_ROWS"
SLIVER_ROWS_CHOICES = ("auto", "6", "12")


def requested_isa() -> str:
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV_VAR}={value!r}; expected one of {', '.join(CHOICES)}")
    return value


def _built(module: str) -> bool:
    """True if the compiled module is installed. Found, never imported: a twin's module initialisation is
    compiled for its ISA too, and would stop the process with SIGILL on a CPU without it."""
    try:
        return importlib.util.find_spec(f"rnnfast._core.{module}") is not None
    except ImportError:
        return False


def avx2_available() -> bool:
    """True if the AVX2 twins were built and this CPU can run them."""
    return config.cpu_has_avx2_fma() and _built("kernels_avx2")


def avx512_available() -> bool:
    """True if the AVX2 twins were built with the micro-kernel and this CPU has AVX-512 for its wide form."""
    if not (avx2_available() and config.cpu_has_avx512f()):
        return False
    return bool(importlib.import_module("rnnfast._core.kernels_avx2").CONSTANTS["microkernel"])


def avx512_twin_available() -> bool:
    """True if the AVX-512 twins were built and this CPU can run them (x86-64-v4)."""
    return config.cpu_has_x86_64_v4() and _built("kernels_avx512")


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


def sliver_rows() -> int:
    """Rows per micro-kernel sliver in this process: 12 where the AVX-512 micro-kernel runs on an Intel CPU,
    else 6; ``RNNFAST_SLIVER_ROWS`` forces 6, or 12 where the AVX-512 micro-kernel runs."""
    value = os.environ.get(SLIVER_ROWS_ENV_VAR, "auto").strip().lower() or "auto"
    if value not in SLIVER_ROWS_CHOICES:
        raise ValueError(f"{SLIVER_ROWS_ENV_VAR}={value!r}; expected one of {', '.join(SLIVER_ROWS_CHOICES)}")
    wide = active_isa() == "avx512"
    if value == "12" and not wide:
        raise ImportError(f"{SLIVER_ROWS_ENV_VAR}=12 needs the AVX-512 micro-kernel; this process runs "
                          f"{active_isa()!r}")
    if value == "auto":
        return 12 if wide and config.cpu_is_intel() else 6
    return int(value)


def kernel_module(name: str) -> ModuleType:
    """The compiled module ``rnnfast._core.<name>`` in the active ISA's build (for ``kernels``, with its
    micro-kernel's width and sliver height set to match: each module that runs the micro-kernel has its own
    switches)."""
    isa = active_isa()
    suffix = "" if isa == "baseline" else "_avx512" if isa == "avx512" and avx512_twin_available() else "_avx2"
    module = importlib.import_module(f"rnnfast._core.{name}{suffix}")
    if hasattr(module, "use_wide_microkernel"):
        module.use_wide_microkernel(isa == "avx512")
        module.use_sliver_rows(sliver_rows())
    return module
