"""Determinism over thread counts (OpenMP and BLAS), concurrent callers, executors and fork."""
import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import rnnfast
from cells import CELLS, IMPLS, problem, run

needs_openmp = pytest.mark.skipif(not rnnfast.config_info()["openmp"], reason="serial build")


def _problem(cell, seed):
    return problem(cell, np.random.default_rng(seed), N=13, T=6, D=11, H=70)


def _bits(cell, problem, num_threads=None):
    outs, grads = run(cell, IMPLS["kernel"], *problem, num_threads=num_threads)
    return [np.array(a, copy=True) for a in outs + grads]


def _assert_same_bits(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@needs_openmp
@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_bits_equal_for_1_to_8_threads_and_any_blas_threads(cell):
    problem = _problem(cell, 1)
    expected = _bits(cell, problem, 1)
    blas_all = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
    for blas in sorted({1, blas_all, 4}):
        with threadpool_limits(blas, user_api="blas"):
            for nt in range(1, 9):
                _assert_same_bits(_bits(cell, problem, nt), expected)


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_eight_python_threads_on_shared_weights_give_the_serial_bits(cell):
    problems = [_problem(cell, seed) for seed in range(8)]
    # Every thread uses the weights of problem 0 (shared arrays), with its own inputs.
    shared = problems[0][1]
    problems = [(p[0], shared, *p[2:]) for p in problems]
    expected = [_bits(cell, p, 2) for p in problems]
    results = [None] * 8
    barrier = threading.Barrier(8)

    def work(k):
        barrier.wait()  # start together, so that the calls overlap
        got = []
        for _ in range(5):
            got.append(_bits(cell, problems[k], 2))
        results[k] = got

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a kernel call hung under concurrency"
    for k in range(8):
        for got in results[k]:
            _assert_same_bits(got, expected[k])


def _lstm_checksum(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 20, 32)).astype(np.float32)
    Wx = rng.standard_normal((32, 256)).astype(np.float32) * 0.1
    Wh = rng.standard_normal((64, 256)).astype(np.float32) * 0.1
    b = np.zeros(256, np.float32)
    hs, _, _, cache = rnnfast.lstm_forward(x, Wx, Wh, b)
    grads = rnnfast.lstm_backward(np.ones_like(hs), cache)
    return float(hs.sum()) + sum(float(g.sum()) for g in grads)


def test_thread_pool_executor_neither_hangs_nor_changes_results():
    expected = [_lstm_checksum(s) for s in range(16)]
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(_lstm_checksum, range(16), timeout=120))
    assert got == expected


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_process_pools_after_the_parent_used_the_kernels(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    expected = [_lstm_checksum(s) for s in range(4)]  # the parent's OpenMP and BLAS pools are now started
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        got = list(ex.map(_lstm_checksum, range(4), timeout=120))
    assert got == expected


@pytest.mark.parametrize("env, expected", [
    ({"RNNFAST_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "1"}, 1),  # what joblib/loky workers get: their share of the cores
    ({"OMP_NUM_THREADS": "3,2"}, 3),  # nested levels: the first
    ({"OMP_NUM_THREADS": "1", "RNNFAST_NUM_THREADS": "2"}, 2),  # rnnfast's own variable first
])
def test_processes_do_not_oversubscribe_when_told_the_cores(env, expected):
    code = ("import rnnfast, json; print(json.dumps([rnnfast.config_info()['num_threads'], "
            "rnnfast._core.threads.resolve_num_threads()]))")
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "RNNFAST_NUM_THREADS")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120,
                         cwd=os.path.dirname(os.path.dirname(rnnfast.__file__)))
    assert out.returncode == 0, out.stderr
    if not rnnfast.config_info()["openmp"]:
        expected = 1
    assert out.stdout.strip() == f"[{expected}, {expected}]"


def test_joblib_process_pool():
    joblib = pytest.importorskip("joblib")
    expected = [_lstm_checksum(s) for s in range(4)]
    got = joblib.Parallel(n_jobs=2, backend="loky", timeout=120)(joblib.delayed(_lstm_checksum)(s) for s in range(4))
    assert got == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_runs_kernels_without_hanging():
    _lstm_checksum(0)  # start the parent's thread pools first: the classic fork hazard
    expected = _lstm_checksum(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            value = _lstm_checksum(1)
            os.write(w, repr(value).encode())
        finally:
            os._exit(0)
    os.close(w)
    import select

    ready, _, _ = select.select([r], [], [], 60)
    if not ready:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in a kernel call")
    data = os.read(r, 100)
    os.close(r)
    os.waitpid(pid, 0)
    assert float(data.decode()) == expected
