"""The kernels' exact bits, pinned: SHA-256 digests of the outputs and every gradient of fixed problems
(all cells, both dtypes, initial and final states, 1 and 2 threads, and shapes that take each code path:
BLAS steps, two row blocks, owned row blocks, the blocked copy of the step weights, the micro-kernel's steps
and all-step products; and ragged batches, with lengths), and of the streaming steppers.  A refactoring must
not change a bit.

The bits depend on the build (baseline or AVX2), the BLAS (version and kernel) and the machine, so digests are
recorded per such fingerprint in ``tests/data/kernel_digests.json``; on a fingerprint with no record the test
skips.  Record (before a change that must keep the bits): ``RNNFAST_RECORD_DIGESTS=1 pytest
tests/test_bitwise_digests.py`` (and again with ``RNNFAST_ISA=baseline``)."""
import hashlib
import json
import os
import pathlib
import platform

import numpy as np
import pytest
import threadpoolctl

import rnnfast
from cells import CELLS, problem, run

DIGESTS = pathlib.Path(__file__).parent / "data" / "kernel_digests.json"
RECORD = os.environ.get("RNNFAST_RECORD_DIGESTS") == "1"

# (N, T, D, H): small odd shapes (BLAS, one tile); two row blocks; 16-row blocks owned by threads (BLAS: too few
# rows, N * T, for the micro-kernel's panels; float64: the blocked copy of the step weights); all-step products on
# the micro-kernel; the micro-kernel's steps (H=1024); the float32 LSTM's and GRU's steps on the micro-kernel in
# 16-row blocks owned by threads (N * T = 512).
SHAPES = [(3, 5, 7, 9), (16, 6, 32, 64), (32, 5, 64, 256), (32, 8, 256, 256), (8, 4, 128, 1024), (32, 16, 64, 256)]


def fingerprint() -> str:
    blas = [i for i in threadpoolctl.threadpool_info() if "scipy.libs" in i.get("filepath", "")]
    blas_id = ",".join(f"{i['internal_api']} {i['version']} {i.get('architecture')}" for i in blas) or "unknown"
    isa = rnnfast.config_info()["isa"]
    # The AVX-512 micro-kernel makes the AVX2 build's sums in the same order: it must match its digests.
    isa = "avx2" if isa == "avx512" else isa
    return f"{isa}|{blas_id}|{platform.machine()}"


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def sequence_digest(cell, shape, dtype, num_threads, ragged):
    rng = np.random.default_rng(sum(shape) * 7 + len(cell.name))
    x, params, states, lengths, dhs, dfinals = problem(cell, rng, *shape, dtype=dtype)
    if ragged:  # lengths (the rows sorted, only the running ones computed), initial and final states
        outputs, grads = run(cell, rnnfast, x, params, states, lengths, dhs, dfinals, num_threads=num_threads)
        return digest(outputs + grads)
    outputs, grads = run(cell, rnnfast, x, params, states, None, dhs, dfinals, num_threads=num_threads)
    plain, plain_grads = run(cell, rnnfast, x, params, None, None, dhs, None, num_threads=num_threads)
    return digest(outputs + grads + plain + plain_grads)


def stepper_digest(name, dtype, num_threads, H=96, D=40, N=1, steps=6):
    rng = np.random.default_rng(H + N)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[name[:4].rstrip("_")]
    Wx = (rng.standard_normal((D, G * H)) * 0.2).astype(dtype)
    Wh = (rng.standard_normal((H, G * H)) * 0.2).astype(dtype)
    b = (rng.standard_normal(G * H) * 0.1).astype(dtype)
    if name == "lstm":
        s = rnnfast.LSTMStepper(Wx, Wh, b, batch_size=N, num_threads=num_threads)
    elif name.startswith("gru"):
        s = rnnfast.GRUStepper(Wx, Wh, b, b * 0.5, reset_after=name == "gru_reset_after", batch_size=N,
                               num_threads=num_threads)
    else:
        s = rnnfast.RNNStepper(Wx, Wh, b, nonlinearity=name[4:], batch_size=N, num_threads=num_threads)
    hs = [s.step(rng.standard_normal((N, D)).astype(dtype)) for _ in range(steps)]
    return digest(hs)


CASES = [(kind, cell.name, shape, dtype) for kind in ("seq", "ragged") for cell in CELLS for shape in SHAPES
         for dtype in ("float32", "float64")]
CASES += [("stream", c.name, (n,), dtype) for c in CELLS if not (c.peephole or c.zoneout) for n in (1, 3)  # no stepper
          for dtype in ("float32", "float64")]


def compute(kind, name, shape, dtype, num_threads):
    if kind in ("seq", "ragged"):
        cell = next(c for c in CELLS if c.name == name)
        return sequence_digest(cell, shape, np.dtype(dtype), num_threads, kind == "ragged")
    return stepper_digest(name, np.dtype(dtype), num_threads, N=shape[0])


def case_key(kind, name, shape, dtype):
    return f"{kind} {name} {'x'.join(map(str, shape))} {dtype}"


def load():
    return json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}


@pytest.mark.skipif(not RECORD, reason="records digests only with RNNFAST_RECORD_DIGESTS=1")
def test_record_digests():
    """Records the cases that have no digest yet (``RNNFAST_RECORD_DIGESTS_KINDS=seq,ragged`` re-records
    those kinds)."""
    data = load()
    kinds = [k for k in os.environ.get("RNNFAST_RECORD_DIGESTS_KINDS", "").split(",") if k]
    recorded = data.setdefault(fingerprint(), {})
    for c in CASES:
        if case_key(*c) not in recorded or c[0] in kinds:
            recorded[case_key(*c)] = compute(*c, num_threads=1)
    DIGESTS.parent.mkdir(exist_ok=True)
    DIGESTS.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@pytest.mark.parametrize("num_threads", [1, 2])
def test_bits_unchanged(num_threads):
    recorded = load().get(fingerprint())
    if recorded is None:
        pytest.skip(f"no digests recorded for {fingerprint()}")
    changed = [case_key(*c) for c in CASES if recorded.get(case_key(*c)) != compute(*c, num_threads=num_threads)]
    assert not changed, f"{len(changed)} of {len(CASES)} cases changed bits: {changed[:6]}"
