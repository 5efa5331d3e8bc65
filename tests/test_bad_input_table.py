"""The bad-input table: every argument of every kernel entry point, replaced by each kind of
malformed value (wrong type, dtype, byte order, rank, a prime-sized mismatch in each dimension,
a size-1 batch that must not broadcast, NaN/Inf), must raise TypeError/ValueError naming that
argument -- before any native code runs.  Absurd sizes raise before allocating; N = 0 gives
empty results.  The whole table also runs in a child process, where a crash would show as a
signal rather than a failed assertion."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnfast
import rnnfast.reference as reference

N, T, D, H = 3, 4, 5, 2
PRIME = 7  # added to one dimension at a time
rng = np.random.default_rng(0)


def _f(*shape):
    return rng.standard_normal(shape) * 0.3


# entry point -> [(argument name, valid value, may be None)]
SIGNATURES = {
    "lstm_forward": [("x", _f(N, T, D), False), ("Wx", _f(D, 4 * H), False), ("Wh", _f(H, 4 * H), False),
                     ("b", _f(4 * H), False), ("h0", _f(N, H), True), ("c0", _f(N, H), True)],
    "gru_forward": [("x", _f(N, T, D), False), ("Wx", _f(D, 3 * H), False), ("Wh", _f(H, 3 * H), False),
                    ("bx", _f(3 * H), False), ("bh", _f(3 * H), False), ("h0", _f(N, H), True)],
    "rnn_forward": [("x", _f(N, T, D), False), ("Wx", _f(D, H), False), ("Wh", _f(H, H), False),
                    ("b", _f(H), False), ("h0", _f(N, H), True)],
    # step states may be None (zeros), like h0/c0
    "lstm_step_forward": [("x", _f(N, D), False), ("h", _f(N, H), True), ("c", _f(N, H), True),
                          ("Wx", _f(D, 4 * H), False), ("Wh", _f(H, 4 * H), False), ("b", _f(4 * H), False)],
    "gru_step_forward": [("x", _f(N, D), False), ("h", _f(N, H), True), ("Wx", _f(D, 3 * H), False),
                         ("Wh", _f(H, 3 * H), False), ("bx", _f(3 * H), False), ("bh", _f(3 * H), False)],
    "rnn_step_forward": [("x", _f(N, D), False), ("h", _f(N, H), True), ("Wx", _f(D, H), False),
                         ("Wh", _f(H, H), False), ("b", _f(H), False)],
}


def _bad_values(name, value, optional):
    """(label, bad value, exception, text) for one argument."""
    if not optional:
        yield "None", None, TypeError, f"{name} must be a numpy.ndarray"
    yield "list", value.tolist(), TypeError, f"{name} must be a numpy.ndarray"
    yield "str", "abc", TypeError, f"{name} must be a numpy.ndarray"
    for dt in ("int64", "int8", "float16", "complex128", "object", "bool"):
        yield dt, value.astype(dt), TypeError, f"{name} has dtype {dt}"
    yield "float32-mixed", value.astype(np.float32), TypeError, f"{name} has dtype float32"
    swapped = value.astype(value.dtype.newbyteorder())
    yield "byteswapped", swapped, TypeError, f"{name} has non-native byte order"
    yield "rank+1", value[..., None], ValueError, f"{name} has {value.ndim + 1} dimension"
    if value.ndim > 1:
        yield "rank-1", value[0], ValueError, f"{name} has {value.ndim - 1} dimension"
    for axis in range(value.ndim):
        shape = list(value.shape)
        shape[axis] += PRIME
        yield f"dim{axis}+{PRIME}", np.zeros(shape), ValueError, f"{name} has shape {tuple(shape)}"
    if value.ndim >= 2 and value.shape[0] == N:
        yield "batch-1-broadcast", value[:1].copy(), ValueError, f"{name} has shape {value[:1].shape}"
    nan = value.copy()
    nan.flat[value.size // 2] = np.nan
    yield "nan", nan, ValueError, f"{name} contains NaN"
    yield "inf", np.full_like(value, -np.inf), ValueError, f"{name} contains NaN or Inf"


def _blame(fname, name, label, text):
    """x sets N, T and the dtype: a wrong x shows up as the other arguments disagreeing with it,
    and the message says so.  Returns None where the value is in fact valid (any T)."""
    if name != "x":
        return text
    if label == "float32-mixed":
        return "(the dtype of x)"
    if label.startswith("dim0") or label == "batch-1-broadcast":
        return "N = x.shape[0]"
    if label.startswith("dim1") and "step" not in fname:
        return None  # another T is just another sequence length
    if label.startswith("dim"):
        return "D = x.shape"
    return text


TABLE = []
for fname, sig in SIGNATURES.items():
    for name, value, optional in sig:
        for label, bad, exc, text in _bad_values(name, value, optional):
            text = _blame(fname, name, label, text)
            if text is not None:
                TABLE.append((f"{fname}-{name}-{label}", fname, name, bad, exc, text))


def _call(impl, fname, replace):
    args = {name: value for name, value, _ in SIGNATURES[fname]}
    args.update(replace)
    return getattr(impl, fname)(**args)


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_table(impl, row):
    _, fname, name, bad, exc, text = row
    with pytest.raises(exc) as info:
        _call(impl, fname, {name: bad})
    message = str(info.value)
    assert text in message, message
    assert "expected" in message or "; got " in message, message  # expected vs got


def test_table_size():
    assert len(TABLE) >= 150


@pytest.mark.parametrize("impl", [rnnfast, reference], ids=["kernel", "reference"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_empty_batch_gives_empty_results(impl, cell):
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    x = np.zeros((0, T, D))
    biases = [np.zeros(G * H)] * (2 if cell == "gru" else 1)
    out = getattr(impl, f"{cell}_forward")(x, np.ones((D, G * H)), np.ones((H, G * H)), *biases)
    assert out[0].shape == (0, T, H) and all(o.shape == (0, H) for o in out[1:-1])
    grads = getattr(impl, f"{cell}_backward")(np.zeros((0, T, H)), out[-1])
    assert grads[0].shape == (0, T, D)
    assert grads[1].shape == (D, G * H) and not grads[1].any()


def _huge(shape):
    """An array of ``shape`` without its memory: every stride 0."""
    return np.lib.stride_tricks.as_strided(np.zeros(1), shape=shape, strides=(0,) * len(shape))


@pytest.mark.parametrize("fname, args, exc, text", [
    ("lstm_forward", lambda: (_huge((2**16, 2**16, 1)), np.ones((1, 8)), np.ones((2, 8)), np.ones(8)),
     ValueError, "BLAS limit"),  # N*T > 2^31
    ("lstm_forward", lambda: (_huge((2**31, 2**28, 1)), np.ones((1, 64)), np.ones((16, 64)), np.ones(64)),
     ValueError, "BLAS limit"),  # N*T*4H = 2^65 elements of output: over 2^63
    ("rnn_forward", lambda: (_huge((2**20, 2**10, 1)), np.ones((1, 64)), np.ones((64, 64)), np.ones(64)),
     MemoryError, "rnn_forward needs"),  # within BLAS limits, but hundreds of GiB of outputs and cache
    ("gru_forward", lambda: (_huge((2**12, 2**12, 1)), np.ones((1, 3 * 512)), np.ones((512, 3 * 512)),
                             np.ones(3 * 512), np.ones(3 * 512)), MemoryError, "gru_forward needs"),
])
def test_absurd_sizes_raise_before_allocating(fname, args, exc, text):
    with pytest.raises(exc, match=text):
        getattr(rnnfast, fname)(*args())


@pytest.mark.skipif(os.environ.get("RNNFAST_TABLE_CHILD") == "1", reason="already in the child")
def test_the_table_in_a_child_process_does_not_crash():
    root = os.path.dirname(os.path.dirname(rnnfast.__file__))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
                          capture_output=True, text=True, timeout=600, cwd=os.path.dirname(__file__),
                          env=dict(os.environ, RNNFAST_TABLE_CHILD="1", PYTHONPATH=root))
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
