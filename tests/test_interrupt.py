"""Ctrl-C during a long kernel call returns control within about a second (KeyboardInterrupt)."""
import json
import os
import subprocess
import sys

import pytest

import rnnfast

CHILD = r"""if 1:
    import json, os, signal, sys, threading, time
    import numpy as np
    import rnnfast

    cell, phase = sys.argv[1], sys.argv[2]
    schedule = sys.argv[3] if len(sys.argv) > 3 else None  # a schedule forced on two threads, else the plan's
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    N, D, H = 32, 16, 1024  # large H: much work per byte of cache, so a long call fits in memory
    T = 40
    rng = np.random.default_rng(0)
    Wx = rng.standard_normal((D, G * H)).astype(np.float32) * 0.05
    Wh = rng.standard_normal((H, G * H)).astype(np.float32) * 0.05
    biases = [np.zeros(G * H, np.float32)] * (2 if cell == "gru" else 1)
    fwd, bwd = getattr(rnnfast, cell + "_forward"), getattr(rnnfast, cell + "_backward")
    if schedule is not None:
        from rnnfast._core import driver
        from rnnfast._core.plan import StepPlan
        from rnnfast.cells import CELLS
        spec = CELLS[cell]
        option = {"lstm": None, "gru": True, "rnn": "tanh"}[cell]
        states = [None] * (2 if cell == "lstm" else 1)

        def fwd(x, Wx, Wh, *biases):  # two 16-row blocks, one a thread
            plan = StepPlan.choose(G, N, x.shape[1], H, np.float32, 2, rows=16, units=H, schedule=schedule)
            hs, finals, cache = driver.sequence_forward(spec, x, Wx, Wh, biases, states, None, option, 2, plan=plan)
            return (hs, *finals, cache)

    def call(T):
        x = rng.standard_normal((N, T, D)).astype(np.float32)
        if phase == "forward":
            return lambda: fwd(x, Wx, Wh, *biases)
        out = fwd(x, Wx, Wh, *biases)
        dhs = np.ones_like(out[0])
        return lambda: bwd(dhs, out[-1])

    short = call(T)
    short()
    per_step = float("inf")
    for _ in range(3):  # the fastest of three: a call slowed by a busy machine would make the long one short
        t0 = time.perf_counter(); short(); per_step = min(per_step, (time.perf_counter() - t0) / T)
    steps = int(4.0 / per_step)           # a call that would take about 4 s
    long_call = call(steps)
    sent = []
    def interrupt():
        time.sleep(0.5)
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.perf_counter()
    try:
        long_call()
        outcome = "finished"
    except KeyboardInterrupt:
        outcome = "interrupted"
    done = time.perf_counter()
    after = done - sent[0] if sent else None  # None: the call ended before the signal was sent
    print(json.dumps({"outcome": outcome, "after_signal_s": after, "expected_s": steps * per_step}))
"""


def _interrupted_call(*args) -> dict:
    """Run CHILD with ``args`` (cell, phase[, schedule]) and return its report."""
    root = os.path.dirname(os.path.dirname(rnnfast.__file__))
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=300,
                          cwd=root, env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_ctrl_c_stops_a_long_call_within_a_second(cell, phase):
    r = _interrupted_call(cell, phase)
    assert r["outcome"] == "interrupted", r
    assert r["expected_s"] > 3.0 and r["after_signal_s"] < 1.0, r


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_ctrl_c_stops_threads_that_own_their_rows_within_a_second(phase):
    """Owned rows run all their steps in one parallel region: each thread looks at Ctrl-C between its windows."""
    r = _interrupted_call("lstm", phase, "owned_rows")
    assert r["outcome"] == "interrupted", r
    assert r["expected_s"] > 3.0 and r["after_signal_s"] < 1.0, r


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_long_inner_dimension_is_summed_in_chunks_exactly(cell):
    # N*T > K_CHUNK (16384): the weight gradients are accumulated over several pieces.
    import numpy as np

    from cells import CELL_BY_NAME, IMPLS, rel_err, run

    c = CELL_BY_NAME[{"lstm": "lstm", "gru": "gru_reset_before", "rnn": "rnn_tanh"}[cell]]
    rng = np.random.default_rng(3)
    N, T, D, H = 64, 300, 3, 4
    x = rng.standard_normal((N, T, D))
    params = c.params(rng, D, H, np.float64)
    states = c.states(rng, N, H, np.float64)
    dhs = rng.standard_normal((N, T, H))
    expected = run(c, IMPLS["reference"], x, params, states, None, dhs, None)
    runs = [run(c, IMPLS["kernel"], x, params, states, None, dhs, None, num_threads=nt) for nt in (1, 2, 3)]
    for k, r in zip(runs[0][0] + runs[0][1], expected[0] + expected[1]):
        assert rel_err(k, r) < 1e-12
    for other in runs[1:]:
        for a, b in zip(runs[0][0] + runs[0][1], other[0] + other[1]):
            np.testing.assert_array_equal(a, b)
