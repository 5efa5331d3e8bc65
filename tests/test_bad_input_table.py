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
    assert len(TABLE) + len(ENTRY_CASES) >= 150


def _layers():
    from rnnfast import compat, layers
    from rnnfast.compat import cs231n
    from rnnfast.interop import keras
    from rnnfast.train import load_checkpoint
    return layers, compat, cs231n, keras, load_checkpoint


f32 = np.float32
Z = np.zeros


def _lstm_layer(L, **kw):
    return L.TimeLSTM(Z((3, 8), f32), Z((2, 8), f32), Z(8, f32), **kw)


# Entry points above the kernels: (id, call, exception, text the message must contain)
ENTRY_CASES = [
    ("layer-Wx-list", lambda L, C, S, K, ck: L.TimeLSTM([[1.0] * 8] * 3, Z((2, 8), f32), Z(8, f32)), TypeError,
     "Wx must be a numpy.ndarray"),
    ("layer-Wh-shape", lambda L, C, S, K, ck: L.TimeLSTM(Z((3, 8), f32), Z((2, 7), f32), Z(8, f32)), ValueError,
     "Wh has shape (2, 7)"),
    ("layer-b-dtype", lambda L, C, S, K, ck: L.TimeLSTM(Z((3, 8), f32), Z((2, 8), f32), Z(8)), TypeError,
     "b has dtype float64"),
    ("layer-gru-bh", lambda L, C, S, K, ck: L.TimeGRU(Z((3, 6), f32), Z((2, 6), f32), Z(6, f32), Z(5, f32)),
     ValueError, "bh has shape (5,)"),
    ("layer-rnn-Wx", lambda L, C, S, K, ck: L.TimeRNN(Z((3, 3), f32), Z((2, 2), f32), Z(2, f32)), ValueError,
     "Wx has shape (3, 3)"),
    ("layer-x-D", lambda L, C, S, K, ck: _lstm_layer(L).forward(Z((2, 4, 5), f32)), ValueError, "D = x.shape[2]"),
    ("layer-x-None", lambda L, C, S, K, ck: _lstm_layer(L).forward(None), TypeError, "x must be a numpy.ndarray"),
    ("layer-x-f64", lambda L, C, S, K, ck: _lstm_layer(L).forward(Z((2, 4, 3))), TypeError, "dtype"),
    ("layer-backward-first", lambda L, C, S, K, ck: _lstm_layer(L).backward(Z((2, 4, 2), f32)), RuntimeError,
     "backward() called before forward()"),
    ("layer-backend", lambda L, C, S, K, ck: _lstm_layer(L, backend="cuda"), ValueError, "backend must be one of"),
    ("layer-lengths", lambda L, C, S, K, ck: _lstm_layer(L).forward(Z((2, 4, 3), f32), lengths=np.array([0, 9])),
     ValueError, "lengths must lie in 1..T"),
    ("gru-reset-after", lambda L, C, S, K, ck: L.TimeGRU(Z((3, 6), f32), Z((2, 6), f32), Z(6, f32), Z(6, f32),
                                                          reset_after="no").forward(Z((1, 2, 3), f32)),
     TypeError, "reset_after must be True or False"),
    ("rnn-nonlinearity", lambda L, C, S, K, ck: L.TimeRNN(Z((3, 2), f32), Z((2, 2), f32), Z(2, f32),
                                                           nonlinearity="gelu").forward(Z((1, 2, 3), f32)),
     ValueError, "nonlinearity must be 'tanh' or 'relu'"),
    ("embedding-float-ids", lambda L, C, S, K, ck: L.Embedding(Z((5, 3), f32)).forward(Z((2, 3))), TypeError,
     "ids has dtype float64"),
    ("embedding-range", lambda L, C, S, K, ck: L.Embedding(Z((5, 3), f32)).forward(np.array([[7]])), ValueError,
     "ids must lie in 0..4"),
    ("affine-x", lambda L, C, S, K, ck: L.TimeAffine(Z((3, 4), f32), Z(4, f32)).forward(Z((2, 2, 5), f32)),
     ValueError, "x has shape (2, 2, 5)"),
    ("softmax-targets-shape", lambda L, C, S, K, ck: L.TimeSoftmaxWithLoss().forward(Z((2, 3, 4), f32),
                                                                                   Z((2, 2), int)),
     ValueError, "targets has shape (2, 2)"),
    ("softmax-targets-range", lambda L, C, S, K, ck: L.TimeSoftmaxWithLoss().forward(Z((2, 3, 4), f32),
                                                                                   np.full((2, 3), 9)),
     ValueError, "targets must lie in 0..3"),
    ("stack-cell", lambda L, C, S, K, ck: L.RecurrentStack("transformer", 3, 4), ValueError, "cell must be one of"),
    ("stack-hidden", lambda L, C, S, K, ck: L.RecurrentStack("lstm", 3, 0), ValueError, "hidden_size must be"),
    ("stack-layers", lambda L, C, S, K, ck: L.RecurrentStack("lstm", 3, 4, num_layers=2.5), ValueError,
     "num_layers must be"),
    ("stack-dropout", lambda L, C, S, K, ck: L.RecurrentStack("lstm", 3, 4, dropout=2.0), ValueError,
     "dropout must be a number in [0, 1)"),
    ("stack-bi-stateful", lambda L, C, S, K, ck: L.RecurrentStack("lstm", 3, 4, bidirectional=True, stateful=True),
     ValueError, "stateful=True needs bidirectional=False"),
    ("stack-x-D", lambda L, C, S, K, ck: L.RecurrentStack("lstm", 3, 4).forward(Z((2, 5, 7), f32)), ValueError,
     "D = x.shape[2]"),
    ("dropout-p", lambda L, C, S, K, ck: L.TimeDropout(p=1.5), ValueError, "p must be a number in [0, 1)"),
    ("cs231n-h0", lambda L, C, S, K, ck: S.rnn_forward(Z((2, 3, 4)), Z((3, 5)), Z((4, 5)), Z((5, 5)), Z(5)),
     ValueError, "h0 has shape (3, 5)"),
    ("cs231n-lstm-Wx", lambda L, C, S, K, ck: S.lstm_forward(Z((2, 3, 4)), Z((2, 5)), Z((4, 21)), Z((5, 20)), Z(20)),
     ValueError, "Wx has shape (4, 21)"),
    ("cs231n-mask", lambda L, C, S, K, ck: S.temporal_softmax_loss(Z((2, 3, 4)), Z((2, 3), int), np.ones((2, 2), bool)),
     ValueError, "mask has shape (2, 2)"),
    ("cs231n-y-range", lambda L, C, S, K, ck: S.temporal_softmax_loss(Z((2, 3, 4)), np.full((2, 3), 4),
                                                                     np.ones((2, 3), bool)),
     ValueError, "y must lie in 0..3"),
    ("cs231n-embedding", lambda L, C, S, K, ck: S.word_embedding_forward(np.array([[9]]), Z((5, 3))), ValueError,
     "x must lie in 0..4"),
    ("textbook-Wh", lambda L, C, S, K, ck: C.TimeLSTM(Z((3, 8), f32), Z((2, 9), f32), Z(8, f32)).forward(
        Z((1, 2, 3), f32)), ValueError, "Wh has shape (2, 9)"),
    ("textbook-ts", lambda L, C, S, K, ck: C.TimeSoftmaxWithLoss().forward(Z((2, 3, 4), f32), Z((2, 2), int)),
     ValueError, "ts has shape (2, 2)"),
    ("keras-kernel", lambda L, C, S, K, ck: K.lstm_from_keras(Z((3, 7)), Z((2, 8)), Z(8)), ValueError,
     "kernel has shape (3, 7)"),
    ("keras-gru-bias", lambda L, C, S, K, ck: K.gru_from_keras(Z((3, 6)), Z((2, 6)), Z(6), reset_after=True),
     ValueError, "bias has shape (6,)"),
    ("keras-None", lambda L, C, S, K, ck: K.simple_rnn_from_keras(None, Z((2, 2))), TypeError,
     "kernel must be a float32/float64 numpy.ndarray"),
    ("checkpoint-dir", lambda L, C, S, K, ck: ck("/"), Exception, "checkpoint not found"),
    ("checkpoint-None", lambda L, C, S, K, ck: ck(None), TypeError, "path must be a str or os.PathLike"),
    ("stepper-Wx-None", lambda L, C, S, K, ck: rnnfast.LSTMStepper(None, Z((2, 8)), Z(8)), TypeError,
     "Wx must be a numpy.ndarray"),
]


@pytest.mark.parametrize("row", ENTRY_CASES, ids=[r[0] for r in ENTRY_CASES])
def test_entry_points(row):
    _, call, exc, text = row
    with pytest.raises(exc) as info:
        call(*_layers())
    assert text in str(info.value), str(info.value)


@pytest.mark.parametrize("argv, text", [
    (["train", "--data", "/nonexistent.txt"], "data file not found"),
    (["sample", "/nonexistent.npz"], "checkpoint not found"),
    (["bench", "--sizes", "1,2"], "expected N,T,D,H or N,T,H"),
    (["eval", "/", "--data", "x"], "checkpoint not found"),
])
def test_cli_errors_are_one_line(argv, text, capsys):
    from rnnfast.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["train", "--hidden", "-3"], ["train", "--layers", "x"], ["bench", "--threads", "0"],
                                  ["nonsense"], ["train", "--dropout", "1.5"]])
def test_cli_bad_options_exit_2(argv, capsys):
    from rnnfast.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


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
