"""``rnnfast.show_config()``: what this build is and what it will use."""
from __future__ import annotations

import sys

from . import config, dispatch, threads
from .threads import ENV_VAR, available_cores, configured_num_threads, serial_after_fork
from .workspace import pool


def config_info() -> dict:
    """The build and runtime configuration as a dict (what ``show_config`` prints)."""
    from .. import __version__

    blas = []
    try:
        from threadpoolctl import threadpool_info

        import scipy.linalg  # noqa: F401  (loads SciPy's BLAS so threadpoolctl sees it)

        blas = [
            {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ]
    except Exception as exc:  # threadpoolctl failing must not break the report
        blas = [{"error": repr(exc)}]
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "openmp": config.openmp_enabled(),
        "openmp_version": config.openmp_version(),
        "isa": dispatch.active_isa(),
        "avx2_available": dispatch.avx2_available(),
        "avx512_available": dispatch.avx512_available(),
        "avx512_twin": dispatch.avx512_twin_available(),
        "sliver_rows": dispatch.sliver_rows(),
        "num_threads": configured_num_threads(None),
        "serial_after_fork": serial_after_fork(),
        "workspace_budget_mb": pool.budget_bytes / (1 << 20),
        "workspace_held_mb": pool.held_bytes / (1 << 20),
        "available_cores": available_cores(),
        "env_" + ENV_VAR: __import__("os").environ.get(ENV_VAR),
        "blas": blas,
    }


def show_config(file=None) -> None:
    """Print the version, OpenMP status, kernel ISA, thread count in use and SciPy's BLAS."""
    info = config_info()
    out = file or sys.stdout
    omp = f"on (_OPENMP={info['openmp_version']})" if info["openmp"] else "off (serial kernels)"
    print(f"rnnfast {info['version']} (Python {info['python']})", file=out)
    print(f"  OpenMP:       {omp}", file=out)
    isa = {"avx512": "AVX-512 (x86-64-v4 build)" if info["avx512_twin"] else
           "AVX2 + FMA (x86-64-v3 build), micro-kernel in AVX-512", "avx2": "AVX2 + FMA (x86-64-v3 build)",
           "baseline": "baseline x86-64 build"}[info["isa"]]
    if info["isa"] == "baseline" and info["avx2_available"]:
        isa += f" (forced by {dispatch.ENV_VAR}; the AVX2 build is available)"
    elif info["isa"] == "avx2" and info["avx512_available"]:
        isa += (f" (forced by {dispatch.ENV_VAR}; the AVX-512 micro-kernel is available"
                + (", and the x86-64-v4 build)" if info["avx512_twin"] else ")"))
    print(f"  kernels:      {isa}", file=out)
    if info["isa"] != "baseline":
        print(f"  micro-kernel: slivers of {info['sliver_rows']} rows "
              f"({dispatch.SLIVER_ROWS_ENV_VAR}={__import__('os').environ.get(dispatch.SLIVER_ROWS_ENV_VAR, 'auto')})",
              file=out)
    omp = __import__("os").environ.get("OMP_NUM_THREADS")
    src = (f"{ENV_VAR}={info['env_' + ENV_VAR]}" if info["env_" + ENV_VAR]
           else f"OMP_NUM_THREADS={omp}" if threads._omp_num_threads() is not None else "core count")
    if info["serial_after_fork"]:
        src = "a fork after the parent used OpenMP: GNU OpenMP is not fork-safe, so kernels run serially"
    print(f"  threads:      {info['num_threads']} (from {src}; {info['available_cores']} cores available)", file=out)
    print(f"  workspaces:   {info['workspace_held_mb']:.1f} MiB held for reuse "
          f"(budget {info['workspace_budget_mb']:.0f} MiB, RNNFAST_WORKSPACE_MB)", file=out)
    for lib in info["blas"]:
        if "error" in lib:
            print(f"  BLAS:         unknown ({lib['error']})", file=out)
        else:
            print(f"  BLAS:         {lib['internal_api']} {lib['version']} ({lib['architecture']}), "
                  f"{lib['num_threads']} threads outside kernels, single-threaded inside", file=out)
            print(f"                {lib['filepath']}", file=out)
