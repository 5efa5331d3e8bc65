"""Choosing between the baseline, AVX2+FMA and AVX-512 builds of the kernels."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnfast
from rnnfast._core import dispatch as _dispatch

ROOT = os.path.dirname(os.path.dirname(rnnfast.__file__))


def _run(code, **env):
    # cwd=ROOT: `python -c` puts the working directory first on sys.path, and in a
    # checkout that is the unbuilt source tree, not the installed package.
    full = dict(os.environ, PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                          cwd=ROOT, timeout=120)


def test_unknown_isa_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(_dispatch.ENV_VAR, "avx9000")
    with pytest.raises(ValueError, match="RNNFAST_ISA='avx9000'; expected one of auto, baseline, avx2, avx512"):
        _dispatch.active_isa()


def test_baseline_can_be_forced(monkeypatch):
    monkeypatch.setenv(_dispatch.ENV_VAR, "baseline")
    assert _dispatch.active_isa() == "baseline"
    assert _dispatch.kernel_module("kernels").__name__ == "rnnfast._core.kernels"


def test_config_reports_the_active_build():
    info = rnnfast.config_info()
    assert info["isa"] in ("avx512", "avx2", "baseline")
    expected = "avx512" if _dispatch.avx512_available() else "avx2" if _dispatch.avx2_available() else "baseline"
    assert info["isa"] == expected


def test_a_twin_the_cpu_cannot_run_is_never_imported():
    """Asking which builds exist must not import a twin: its module initialisation runs its ISA's
    instructions and, on a CPU without them, stops the process with SIGILL (`rnnfast bench` did so on an
    AVX2-only CPU). Here the CPU is made to look like one with neither AVX2 nor AVX-512."""
    code = """if 1:
        import importlib.machinery, sys

        class NoSimdConfig:  # loads rnnfast._core.config, then makes its CPU checks answer no
            def find_spec(self, name, path, target=None):
                if name != "rnnfast._core.config":
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                run = spec.loader.exec_module
                def exec_module(module):
                    run(module)
                    for check in ("cpu_has_avx2_fma", "cpu_has_avx512f", "cpu_has_x86_64_v4"):
                        setattr(module, check, lambda: False)
                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, NoSimdConfig())
        import rnnfast
        info = rnnfast.config_info()
        twins = sorted(m for m in sys.modules if m.endswith(("_avx2", "_avx512")))
        print(info["isa"], info["avx2_available"], info["avx512_twin"], twins)
    """
    done = _run(code, RNNFAST_ISA="auto")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["baseline", "False", "False", "[]"]


@pytest.mark.skipif(not _dispatch.avx2_available(), reason="no AVX2 build or CPU here")
def test_both_builds_compute_the_same_function():
    # Each build is tested against the reference in full (CI runs the kernel tests with
    # RNNFAST_ISA=baseline too); here: the two agree to rounding on one case per cell.
    code = """if 1:
        import numpy as np, rnnfast
        rng = np.random.default_rng(5)
        x = rng.standard_normal((3, 6, 5)); out = []
        for cell, G, nb in (("lstm", 4, 1), ("gru", 3, 2), ("rnn", 1, 1)):
            Wx = rng.standard_normal((5, G * 4)) * 0.5; Wh = rng.standard_normal((4, G * 4)) * 0.5
            bs = [rng.standard_normal(G * 4) for _ in range(nb)]
            res = getattr(rnnfast, cell + "_forward")(x, Wx, Wh, *bs)
            grads = getattr(rnnfast, cell + "_backward")(np.ones_like(res[0]), res[-1])
            out += [res[0], *grads]
        np.save(__import__("sys").stdout.buffer, np.concatenate([a.ravel() for a in out]))
    """
    import io
    runs = {}
    for isa in ("baseline", "avx2"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT, RNNFAST_ISA=isa), timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        runs[isa] = np.load(io.BytesIO(proc.stdout))
    np.testing.assert_allclose(runs["avx2"], runs["baseline"], rtol=1e-12, atol=1e-13)


def test_forcing_avx2_where_it_is_missing_fails_at_import():
    if _dispatch.avx2_available():
        proc = _run("import rnnfast; print(rnnfast.config_info()['isa'])", RNNFAST_ISA="avx2")
        assert proc.returncode == 0 and proc.stdout.strip() == "avx2"
    else:
        proc = _run("import rnnfast", RNNFAST_ISA="avx2")
        assert proc.returncode != 0 and "AVX2 kernels were not built" in proc.stderr


def test_the_avx512_microkernel_is_chosen_where_the_cpu_has_it_and_can_be_refused():
    code = ("import rnnfast; from rnnfast._core.dispatch import kernel_module; "
            "print(rnnfast.config_info()['isa'], kernel_module('kernels').use_wide_microkernel(True))")
    if _dispatch.avx512_available():
        assert _run(code).stdout.split() == ["avx512", "True"]
        proc = _run("import rnnfast; rnnfast.show_config()", RNNFAST_ISA="avx2")
        assert proc.returncode == 0 and "AVX-512 micro-kernel is available" in proc.stdout
    else:
        proc = _run("import rnnfast", RNNFAST_ISA="avx512")
        assert proc.returncode != 0 and "lacks AVX-512" in proc.stderr


def test_sliver_rows_are_12_on_intel_avx512_cores_6_elsewhere_and_can_be_forced():
    from rnnfast._core import config
    choice = "from rnnfast._core import dispatch; print(dispatch.sliver_rows())"
    want = "12" if _dispatch.avx512_available() and config.cpu_is_intel() else "6"
    assert _run(choice, RNNFAST_ISA="auto", RNNFAST_SLIVER_ROWS="auto").stdout.strip() == want
    assert _run(choice, RNNFAST_ISA="auto", RNNFAST_SLIVER_ROWS="6").stdout.strip() == "6"
    if _dispatch.avx2_available():
        shown = _run("import rnnfast; rnnfast.show_config()", RNNFAST_ISA="auto", RNNFAST_SLIVER_ROWS="auto").stdout
        assert f"micro-kernel: slivers of {want} rows (RNNFAST_SLIVER_ROWS=auto)" in shown
    proc = _run("import rnnfast", RNNFAST_SLIVER_ROWS="8")
    assert proc.returncode != 0 and "RNNFAST_SLIVER_ROWS='8'; expected one of auto, 6, 12" in proc.stderr
    if _dispatch.avx512_available():
        assert _run(choice, RNNFAST_ISA="auto", RNNFAST_SLIVER_ROWS="12").stdout.strip() == "12"
    if _dispatch.avx2_available():
        proc = _run("import rnnfast", RNNFAST_SLIVER_ROWS="12", RNNFAST_ISA="avx2")
        assert proc.returncode != 0 and "needs the AVX-512 micro-kernel" in proc.stderr


@pytest.mark.skipif(not _dispatch.avx512_twin_available(), reason="no AVX-512 build or x86-64-v4 CPU here")
def test_the_avx512_build_is_chosen_and_makes_the_bits_of_the_avx2_one():
    # The same C code, 16 lanes wide: each element gets the same operations, so the same bits -- in every cell
    # and variant, forward and backward, float32 and float64, and in the training passes.
    code = """if 1:
        import sys, numpy as np, rnnfast
        from rnnfast._core.dispatch import kernel_module
        from rnnfast.train import Adam
        print(kernel_module("kernels").__name__, file=sys.stderr)
        rng = np.random.default_rng(7); out = []
        for dtype in (np.float32, np.float64):
            N, T, D, H = 32, 9, 40, 256
            x = rng.standard_normal((N, T, D)).astype(dtype)
            lengths = rng.integers(1, T + 1, N)
            for cell, G, nb, kw in (("lstm", 4, 1, {}), ("lstm", 4, 1, {"peephole": 0}), ("gru", 3, 2, {}),
                                    ("rnn", 1, 1, {}), ("lstm", 4, 1, {"layer_norm": 0})):
                Wx = (rng.standard_normal((D, G * H)) * 0.1).astype(dtype)
                Wh = (rng.standard_normal((H, G * H)) * 0.1).astype(dtype)
                bs = [rng.standard_normal(G * H).astype(dtype) for _ in range(nb)]
                if "peephole" in kw:
                    kw = {"peephole": rng.standard_normal(3 * H).astype(dtype)}
                if "layer_norm" in kw:
                    kw = {"layer_norm": (1 + 0.1 * rng.standard_normal(10 * H)).astype(dtype)}
                for lens in (None, lengths):
                    res = getattr(rnnfast, cell + "_forward")(x, Wx, Wh, *bs, lengths=lens, **kw)
                    grads = getattr(rnnfast, cell + "_backward")(np.ones_like(res[0]), res[-1])
                    out += [res[0], *grads]
        params = [rng.standard_normal(1000).astype(np.float32)]
        grads = [rng.standard_normal(1000).astype(np.float32)]
        opt = Adam(lr=1e-2)
        for _ in range(3):
            opt.update(params, grads)
        out.append(params[0])
        np.save(sys.stdout.buffer, np.concatenate([a.ravel().astype(np.float64) for a in out]))
    """
    import io
    runs = {}
    for isa in ("avx2", "avx512"):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT, RNNFAST_ISA=isa), timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stderr.decode().split()[-1] == f"rnnfast._core.kernels_{isa}"
        runs[isa] = np.load(io.BytesIO(proc.stdout))
    np.testing.assert_array_equal(runs["avx512"], runs["avx2"])
