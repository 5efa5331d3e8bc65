"""The grid run behind ``rnnfast bench``: every case on every backend, side by
side, plus the GEMM yardstick and the streaming latencies.  Returns one
JSON-ready dict (``report`` prints and draws it)."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Optional, Sequence

from . import backends as backends_mod
from . import streaming as streaming_mod
from .cases import Case, flops, make_inputs
from .report import machine_info
from .timing import fma_ceiling_gflops, gemm_peak_gflops, pinned_threads, summary, time_side_by_side


def run(cases: Sequence[Case], backends: Iterable[str] = backends_mod.NAMES, *,
        stream_sizes: Sequence[int] = (256, 1024), stream_threads: Optional[int] = None,
        blocks: int = 3, block_seconds: float = 0.3, settle_seconds: float = 0.1,
        progress: Optional[Callable[[str], None]] = None) -> dict:
    """Measure ``cases`` on ``backends`` (rnnfast first); streaming at ``stream_sizes``."""
    say = progress or (lambda _: None)
    names = ["rnnfast"] + [b for b in backends if b != "rnnfast"]
    for b in names:
        if b not in backends_mod.NAMES:
            raise ValueError(f"backend must be one of {', '.join(backends_mod.NAMES)}; got {b!r}")
    started = time.time()
    result = {"machine": machine_info(), "methodology": {
        "warmup_calls": 2, "blocks": blocks, "block_seconds": block_seconds, "settle_seconds": settle_seconds,
        "statistic": "median of every timed call; blocks alternate between backends",
        "threads": "BLAS, OpenMP and PyTorch pools pinned to the row's thread count for every backend",
        "flops": "GEMM multiply-adds x2: forward 2NT(D+H)GH, training step 3x that (G = gates x H)",
        "peaks": "GEMM peak and FMA ceiling: the best of a measurement before the rows and one after"}}

    peaks, ceilings = {}, {}
    _measure_peaks(cases, peaks, ceilings, say)

    rows = []
    for case in cases:
        say(case.label)
        inputs = make_inputs(case)
        row = {"case": case.as_dict(), "label": case.label, "gflop": flops(case) / 1e9, "results": {}}
        fns = {}
        with pinned_threads(case.threads):
            for name in names:
                try:
                    fns[name] = backends_mod.prepare(name, case, inputs)
                except backends_mod.Unavailable as why:
                    row["results"][name] = {"skipped": str(why)}
            times = time_side_by_side(fns, blocks=blocks, block_seconds=block_seconds,
                                      settle_seconds=settle_seconds if case.threads > 1 else 0.0)
        for name, seconds in times.items():
            r = summary(seconds)
            r["gflops"] = row["gflop"] / (r["median_ms"] / 1e3)
            row["results"][name] = r
        ours = row["results"]["rnnfast"]["median_ms"]
        row["speedup"] = {name: r["median_ms"] / ours for name, r in row["results"].items()
                          if name != "rnnfast" and "median_ms" in r}
        rows.append(row)
    _measure_peaks(cases, peaks, ceilings, say)  # again: a neighbour's burst may have hit the first measurement
    result["gemm_peak_gflops"] = peaks
    result["fma_ceiling_gflops"] = ceilings
    for row in rows:
        peak = peaks[row["case"]["dtype"]][str(row["case"]["threads"])]
        for r in row["results"].values():
            if "gflops" in r:
                r["percent_of_peak"] = 100.0 * r["gflops"] / peak
    _scaling(rows)
    result["rows"] = rows

    result["streaming"] = []
    nt = stream_threads or result["machine"]["cores_available"]
    for H in stream_sizes:
        say(f"streaming LSTM batch 1, H={H}, threads={nt}")
        entry = {"H": H, "D": H, "threads": nt, "dtype": "float32", "results": {}}
        fns = {}
        with pinned_threads(nt):
            for name in streaming_mod.NAMES:
                if name in ("reference", "torch") and name not in names:  # a backend left out of the run
                    continue
                try:
                    fns[name] = streaming_mod.prepare_token_step(name, H, nt)
                except backends_mod.Unavailable as why:
                    entry["results"][name] = {"skipped": str(why)}
            times = time_side_by_side(fns, blocks=blocks, block_seconds=block_seconds / 2,
                                      max_rounds=2000, settle_seconds=settle_seconds if nt > 1 else 0.0)
        for name, seconds in times.items():
            s = summary(seconds)
            entry["results"][name] = {"median_us": s["median_ms"] * 1e3, "min_us": s["min_ms"] * 1e3,
                                      "calls": s["calls"]}
        ours = entry["results"]["rnnfast"]["median_us"]
        entry["speedup"] = {n: r["median_us"] / ours for n, r in entry["results"].items()
                            if n != "rnnfast" and "median_us" in r}
        result["streaming"].append(entry)
    result["seconds"] = time.time() - started
    return result


def _measure_peaks(cases, peaks: dict, ceilings: dict, say) -> None:
    """The GEMM peak and FMA ceiling of each dtype and thread count in the grid, kept as the best seen so far
    (both are maxima: a slower measurement is the machine's noise, not the machine)."""
    for dtype in sorted({c.dtype for c in cases}):
        for threads in sorted({c.threads for c in cases}):
            say(f"GEMM peak {dtype} threads={threads}")
            key = str(threads)
            peak, ceiling = gemm_peak_gflops(dtype, threads), fma_ceiling_gflops(dtype, threads)
            peaks.setdefault(dtype, {})[key] = max(peak, peaks.get(dtype, {}).get(key, 0.0))
            ceilings.setdefault(dtype, {})[key] = max(ceiling, ceilings.get(dtype, {}).get(key, 0.0))


def _scaling(rows) -> None:
    """Thread-scaling efficiency t1 / (t * t_t) of each backend, where the grid has the 1-thread twin."""
    one = {}
    for row in rows:
        c = row["case"]
        if c["threads"] == 1:
            key = tuple(v for k, v in c.items() if k != "threads")
            one[key] = row
    for row in rows:
        c = row["case"]
        key = tuple(v for k, v in c.items() if k != "threads")
        base = one.get(key)
        row["scaling_efficiency"] = {}
        if base is None or c["threads"] == 1:
            continue
        for name, r in row["results"].items():
            b = base["results"].get(name, {})
            if "median_ms" in r and "median_ms" in b:
                row["scaling_efficiency"][name] = b["median_ms"] / (c["threads"] * r["median_ms"])
