"""What a benchmark run says: the machine and library versions, a table for the
terminal, the JSON file, and a PNG that a person can read at a glance."""
from __future__ import annotations

import json
import os
import platform
import tempfile

from . import backends


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    import numpy
    import scipy
    import threadpoolctl

    from .. import config_info
    from .._core.threads import available_cores

    libs = {"numpy": numpy.__version__, "scipy": scipy.__version__, "threadpoolctl": threadpoolctl.__version__}
    for name in ("torch", "thinc"):
        libs[name] = backends.version(name)
    cfg = config_info()
    return {
        "cpu": _cpu_model(), "cores_available": available_cores(), "cpu_count": os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
        "rnnfast": cfg["version"], "rnnfast_isa": cfg["isa"], "rnnfast_openmp": cfg["openmp"],
        "blas": [{k: b.get(k) for k in ("internal_api", "version", "architecture", "filepath")} for b in cfg["blas"]],
        "libraries": libs,
    }


def case_name(c: dict) -> str:
    """A row's cell and LSTM variant, from its case's dict (results files before the variants have none)."""
    return " ".join([c["cell"]] + (["peephole"] if c.get("peephole") else []) +
                    ([f"P{c['proj']}"] if c.get("proj") else []) + (["LN"] if c.get("layer_norm") else []) +
                    (["zoneout"] if c.get("zoneout") else []))


def _per_dtype(gflops: dict) -> str:
    return "; ".join(f"{dt} " + ", ".join(f"{t} thr {v:.0f}" for t, v in by_t.items()) for dt, by_t in gflops.items())


def format_table(result: dict) -> str:
    m = result["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v)
    lines = [f"rnnfast {m['rnnfast']} ({m['rnnfast_isa']}, OpenMP {'on' if m['rnnfast_openmp'] else 'off'}) "
             f"on {m['cpu']}, {m['cores_available']} cores; Python {m['python']}; {libs}",
             "GEMM peak (GFLOP/s, SciPy's BLAS): " + _per_dtype(result["gemm_peak_gflops"])]
    if any(v for by_t in result.get("fma_ceiling_gflops", {}).values() for v in by_t.values()):
        lines.append("FMA ceiling (GFLOP/s, vector FMAs on registers only; no GEMM beats it): "
                     + _per_dtype(result["fma_ceiling_gflops"]))
    lines.append("")
    others = sorted({n for row in result["rows"] for n in row["results"] if n != "rnnfast"},
                    key=backends.NAMES.index)
    width = max([4] + [len(case_name(row["case"])) for row in result["rows"]])
    head = f"{'cell':{width}} {'pass':7} {'N':>4} {'T':>4} {'D':>5} {'H':>5} {'dtype':7} {'thr':>3} | " \
           f"{'rnnfast ms':>10} {'GF/s':>6} {'%peak':>5} {'eff':>4}"
    for n in others:
        head += f" | {n + ' ms':>12} {'x':>6}"
    lines += [head, "-" * len(head)]
    skipped = {}
    for row in result["rows"]:
        c, r = row["case"], row["results"]
        ours = r["rnnfast"]
        eff = row["scaling_efficiency"].get("rnnfast")
        line = (f"{case_name(c):{width}} {c['pass']:7} {c['N']:4d} {c['T']:4d} {c['D']:5d} {c['H']:5d} {c['dtype']:7} "
                f"{c['threads']:3d} | {ours['median_ms']:10.2f} {ours['gflops']:6.1f} {ours['percent_of_peak']:5.0f} "
                f"{'' if eff is None else f'{eff:.2f}':>4}")
        for n in others:
            if "median_ms" in r.get(n, {}):
                line += f" | {r[n]['median_ms']:12.2f} {row['speedup'][n]:5.2f}x"
            else:
                line += f" | {'-':>12} {'':>6}"
                if n in r:
                    skipped.setdefault(n, set()).add(r[n]["skipped"])
        lines.append(line)
    lines.append("x = that backend's median time / rnnfast's (above 1: rnnfast is faster); "
                 "eff = thread-scaling efficiency t1 / (threads * t)")
    for n, why in skipped.items():
        lines.append(f"{n} skipped: {'; '.join(sorted(why))}")
    if result.get("streaming"):
        lines += ["", "Streaming generation, LSTM batch 1 (D = H), float32: microseconds per token"]
        names = [n for n in ("rnnfast", "rnnfast.lstm_step_forward", "reference", "torch")
                 if any(n in e["results"] for e in result["streaming"])]
        lines.append(f"{'H':>5} {'thr':>3} | " + " | ".join(f"{n:>25}" for n in names))
        for e in result["streaming"]:
            cells = []
            for n in names:
                r = e["results"].get(n, {})
                if "median_us" in r:
                    x = "" if n == "rnnfast" else f" ({e['speedup'][n]:.1f}x)"
                    cells.append(f"{r['median_us']:.1f}{x}".rjust(25))
                else:
                    cells.append("-".rjust(25))
            lines.append(f"{e['H']:5d} {e['threads']:3d} | " + " | ".join(cells))
    lines.append(f"\n{result['seconds']:.0f} s in all")
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    """Written to a temporary file and renamed: a reader never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def plot_png(result: dict, path: str) -> None:
    """Three panels: speed-up of rnnfast over each backend per row, % of GEMM peak per
    row and backend, and per-token streaming latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [f"{case_name(r['case'])} {r['case']['pass']} N={r['case']['N']} H={r['case']['H']} "
              f"{r['case']['dtype'].replace('float', 'f')} t={r['case']['threads']}" for r in rows]
    others = sorted({n for r in rows for n in r["speedup"]}, key=backends.NAMES.index)
    measured = sorted({n for r in rows for n, v in r["results"].items() if "gflops" in v},
                      key=backends.NAMES.index)
    has_stream = bool(result.get("streaming"))
    fig, axes = plt.subplots(1, 3 if has_stream else 2, figsize=(17 if has_stream else 12, 1.5 + 0.42 * len(rows)),
                             gridspec_kw={"width_ratios": [1.3, 1, 0.8] if has_stream else [1.3, 1]})
    ys = range(len(rows))
    width = 0.8 / max(1, len(others))
    ax = axes[0]
    for k, n in enumerate(others):
        vals = [r["speedup"].get(n, float("nan")) for r in rows]
        ax.barh([y + k * width for y in ys], vals, height=width, label=f"vs {n}")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks([y + width * (len(others) - 1) / 2 for y in ys], labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of rnnfast (other time / rnnfast time; > 1 is faster)")
    ax.legend(fontsize=8)
    ax.set_title("rnnfast vs other backends")

    ax = axes[1]
    width = 0.8 / max(1, len(measured))
    for k, n in enumerate(measured):
        vals = [r["results"].get(n, {}).get("percent_of_peak", float("nan")) for r in rows]
        ax.barh([y + k * width for y in ys], vals, height=width, label=n)
    ax.axvline(100, color="k", lw=1)
    ax.set_yticks([y + width * (len(measured) - 1) / 2 for y in ys], [""] * len(rows))
    ax.invert_yaxis()
    ax.set_xlabel("% of the machine's GEMM throughput at the same thread count")
    ax.legend(fontsize=8)
    ax.set_title("Efficiency")

    if has_stream:
        ax = axes[2]
        st = result["streaming"]
        names = [n for n in ("rnnfast", "rnnfast.lstm_step_forward", "reference", "torch")
                 if any("median_us" in e["results"].get(n, {}) for e in st)]
        width = 0.8 / max(1, len(names))
        for k, n in enumerate(names):
            vals = [e["results"].get(n, {}).get("median_us", float("nan")) for e in st]
            ax.bar([i + k * width for i in range(len(st))], vals, width=width, label=n)
        ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(st))],
                      [f"H={e['H']}, {e['threads']} thr" for e in st])
        ax.set_yscale("log")
        ax.set_ylabel("microseconds per token (lower is better)")
        ax.legend(fontsize=8)
        ax.set_title("Batch-1 LSTM generation")
    m = result["machine"]
    fig.suptitle(f"rnnfast {m['rnnfast']} on {m['cpu']}, {m['cores_available']} cores", fontsize=10)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        plt.close(fig)
